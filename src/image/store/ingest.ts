// Brings image data into a store in one pass: each chunk is counted (size cap, quota), shown to
// the format inspectors and copied into a shared ring (ring.ts) from which it is written at its
// offset in a temporary file and hashed by worker threads (md5 for `checksum`, the configured
// multihash for `os_hash_value`; see hashpool.ts). At most 8 MiB is in flight, so memory stays
// flat whatever the image size. Writes go one at a time, in order: they extend the file, and
// concurrent extending writes to one file only queue on its inode lock (spinning, on ext4).
// With O_DIRECT (a huge upload, or configured: see filesystem.ts) every write is a whole slot at
// a slot-aligned offset, except the last, which is padded to the alignment and cut back by ftruncate. The file is fsynced at the end; committing
// it (rename) is the caller's decision once the verdict is known. On any failure the temporary
// file is removed before the promise settles.
import type { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import type { FilesystemStore } from './filesystem.ts';
import type { ImageInspection, Verdict } from '../../common/format/index.ts';
import { StratusError, BadRequest } from '../../common/errors.ts';
import { HashJob } from './hashpool.ts';
import { SLOT, SLOTS, alignUp, giveRing, takeRing } from './ring.ts';

/** The client went away before sending everything. */
export class ClientDisconnected extends StratusError {
  override readonly status = 400;
}

export interface IngestOptions {
  store: FilesystemStore;
  imageId: string;
  /** Bytes beyond which the upload fails with the error `overLimit` returns. */
  maxBytes: number;
  overLimit: (bytesSoFar: number) => StratusError;
  hashAlgo: string;
  inspection?: ImageInspection;
  /** Declared length (Content-Length), checked against what arrives. */
  expectedSize?: number;
}

export interface IngestResult {
  tmpPath: string;
  size: number;
  checksum: string;
  hashValue: string;
  verdict?: Verdict;
}

export function ingest(source: Readable, opts: IngestOptions): Promise<IngestResult> {
  return new Promise<IngestResult>((resolve, reject) => {
    let fh: FileHandle | undefined;
    let direct = false;
    let tmpPath: string | undefined;
    let size = 0;
    let written = 0;
    let inflight = 0;
    let ended = false;
    let settled = false;
    const waiters: (() => void)[] = [];
    const sab = takeRing();
    const ring = Buffer.from(sab);
    /** The tail of the write queue: each write starts when the one before it has finished. */
    let writes: Promise<void> = Promise.resolve();
    const free: number[] = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
    let cur = -1;
    let curLen = 0;
    let leftover: Buffer | null = null;
    const hashes = new HashJob(sab, opts.hashAlgo);

    const cleanup = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('aborted', onAborted);
      source.off('close', onClose);
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      hashes.abort();
      const done = async () => {
        // Wait for writes in flight before closing and removing the file.
        while (inflight > 0) await new Promise<void>((r) => waiters.push(r));
        giveRing(sab);
        // The upload's own error is what the caller gets; a close failing after it changes nothing
        // (the descriptor is released either way), but a partial file that stays is said.
        if (fh) await fh.close().catch(() => undefined);
        if (tmpPath) await rm(tmpPath, { force: true }).catch((e) => process.emitWarning(`partial upload ${tmpPath} could not be removed: ${(e as Error).message}`));
      };
      done().finally(() => reject(err));
    };

    /** Sends the current slot to disk and to both hashes; the slot is free again when all three are done. */
    const dispatch = () => {
      const slot = cur;
      const len = curLen;
      const pos = written;
      written += len;
      cur = -1;
      curLen = 0;
      inflight++;
      const off = slot * SLOT;
      // A direct write's length must be aligned too: the last, short slot is written padded (the
      // padding is whatever the slot held before) and the file cut to its size in finish().
      const wlen = direct ? alignUp(len) : len;
      writes = writes.then(() => writeAll(fh!, ring.subarray(off, off + wlen), pos));
      Promise.all([writes, hashes.update(off, len)]).then(() => {
        inflight--;
        free.push(slot);
        waiters.splice(0).forEach((w) => w());
        if (settled) return;
        if (leftover) {
          const rest = leftover;
          leftover = null;
          if (!place(rest)) return;
          if (!ended) source.resume();
        }
        if (ended && inflight === 0 && !leftover) void finish();
      }, (e) => {
        inflight--;
        waiters.splice(0).forEach((w) => w());
        fail(e);
      });
    };

    /** Copies a chunk into the ring; false (and the rest kept aside) when the ring is full. */
    const place = (chunk: Buffer): boolean => {
      let o = 0;
      while (o < chunk.length) {
        if (cur < 0) {
          const slot = free.pop();
          if (slot === undefined) { leftover = chunk.subarray(o); return false; }
          cur = slot;
          curLen = 0;
        }
        const n = Math.min(SLOT - curLen, chunk.length - o);
        chunk.copy(ring, cur * SLOT + curLen, o, o + n);
        curLen += n;
        o += n;
        if (curLen === SLOT) dispatch();
      }
      return true;
    };

    const onData = (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > opts.maxBytes) return fail(opts.overLimit(size));
      opts.inspection?.feed(chunk);
      // Backpressure: stop reading the socket while the disk or the hashes are behind.
      if (!place(chunk)) source.pause();
    };
    const finish = async () => {
      if (settled) return;
      try {
        if (direct && size % SLOT !== 0) await fh!.truncate(size);
        await fh!.sync();
        await fh!.close();
        fh = undefined;
      } catch (e) {
        return fail(e);
      }
      if (opts.expectedSize !== undefined && opts.expectedSize !== size) {
        return fail(new BadRequest(`Image data of ${size} bytes does not match the declared Content-Length of ${opts.expectedSize} bytes.`));
      }
      let digests: { md5: string; multi: string };
      try { digests = await hashes.digests(); } catch (e) { return fail(e); }
      if (settled) return;
      settled = true;
      giveRing(sab);
      cleanup();
      resolve({ tmpPath: tmpPath!, size, checksum: digests.md5, hashValue: digests.multi, verdict: opts.inspection?.finish() });
    };
    const onEnd = () => {
      ended = true;
      if (cur >= 0 && curLen > 0) dispatch();
      else if (cur >= 0) { free.push(cur); cur = -1; }
      if (inflight === 0) void finish();
    };
    const onError = (e: Error) => fail(new ClientDisconnected(`The image data upload was interrupted: ${e.message}`, { cause: e }));
    const onAborted = () => fail(new ClientDisconnected('The client disconnected before sending all the image data.'));
    const onClose = () => { if (!ended) onAborted(); };

    opts.store.createTemp(opts.imageId, opts.expectedSize).then((t) => {
      fh = t.fh;
      direct = t.direct;
      tmpPath = t.path;
      if (settled) { void t.fh.close().then(() => rm(t.path, { force: true })); return; }
      source.on('data', onData);
      source.on('end', onEnd);
      source.on('error', onError);
      source.on('aborted', onAborted);
      source.on('close', onClose);
      // The stream may already have ended or failed before we listened.
      if (source.readableEnded) onEnd();
      else if (source.destroyed) onAborted();
      else source.resume();
    }, fail);
  });
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * After refusing an upload early (quota, size cap, bad content), reads and discards what the
 * client still sends, so that a client that sends its whole body before reading (python-requests)
 * gets the error instead of a reset connection. A client that stops sending (fetch/undici does,
 * once it sees the response) is disconnected after `idleMs`; nobody is drained forever.
 */
export function drain(source: Readable, opts: { maxBytes?: number; maxMs?: number; idleMs?: number } = {}): void {
  if (source.readableEnded || source.destroyed) return;
  const { maxBytes = 1 << 30, maxMs = 60_000, idleMs = 2_000 } = opts;
  let n = 0;
  const stop = () => { clearTimeout(total); clearTimeout(idle); };
  const total = setTimeout(() => source.destroy(), maxMs);
  let idle = setTimeout(() => source.destroy(), idleMs);
  total.unref();
  source.on('data', (c: Buffer) => {
    n += c.length;
    if (n > maxBytes) { stop(); source.destroy(); return; }
    clearTimeout(idle);
    idle = setTimeout(() => source.destroy(), idleMs);
  });
  source.on('end', stop);
  source.on('close', stop);
  source.on('error', () => undefined);
  source.resume();
}
