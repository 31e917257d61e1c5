// Brings image data into a store in one pass: each chunk is counted (size cap, quota), hashed
// (md5 for `checksum`, the configured multihash for `os_hash_value`), shown to the format
// inspectors, and written at its offset in a temporary file, with at most a few MiB in flight so
// memory stays flat whatever the image size. The file is fsynced at the end; committing it
// (rename) is the caller's decision once the verdict is known. On any failure the temporary
// file is removed before the promise settles.
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import type { FilesystemStore } from './filesystem.ts';
import type { ImageInspection, Verdict } from '../format/index.ts';
import { StratusError, BadRequest } from '../../common/errors.ts';

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

const BATCH = 4 << 20;
const MAX_INFLIGHT = 2;

export function ingest(source: Readable, opts: IngestOptions): Promise<IngestResult> {
  return new Promise<IngestResult>((resolve, reject) => {
    let fh: FileHandle | undefined;
    let tmpPath: string | undefined;
    let size = 0;
    let written = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let inflight = 0;
    let ended = false;
    let settled = false;
    const waiters: (() => void)[] = [];
    const md5: Hash = createHash('md5');
    const multi: Hash = createHash(opts.hashAlgo);

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
      const done = async () => {
        // Wait for writes in flight before closing and removing the file.
        while (inflight > 0) await new Promise<void>((r) => waiters.push(r));
        if (fh) await fh.close().catch(() => undefined);
        if (tmpPath) await rm(tmpPath, { force: true }).catch(() => undefined);
      };
      done().finally(() => reject(err));
    };

    const writeBatch = () => {
      if (!batchBytes) return;
      const bufs = batch;
      const pos = written;
      written += batchBytes;
      batch = [];
      batchBytes = 0;
      inflight++;
      writeAll(fh!, bufs, pos).then(() => {
        inflight--;
        waiters.splice(0).forEach((w) => w());
        if (settled) return;
        if (source.isPaused() && !ended) source.resume();
        if (ended && inflight === 0) finish();
      }, (e) => {
        inflight--;
        waiters.splice(0).forEach((w) => w());
        fail(e);
      });
    };

    const onData = (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > opts.maxBytes) return fail(opts.overLimit(size));
      md5.update(chunk);
      multi.update(chunk);
      opts.inspection?.feed(chunk);
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH) {
        writeBatch();
        // Backpressure: stop reading the socket while the disk is behind.
        if (inflight >= MAX_INFLIGHT) source.pause();
      }
    };
    const finish = async () => {
      if (settled) return;
      try {
        await fh!.sync();
        await fh!.close();
        fh = undefined;
      } catch (e) {
        return fail(e);
      }
      if (opts.expectedSize !== undefined && opts.expectedSize !== size) {
        return fail(new BadRequest(`Image data of ${size} bytes does not match the declared Content-Length of ${opts.expectedSize} bytes.`));
      }
      settled = true;
      cleanup();
      resolve({
        tmpPath: tmpPath!, size, checksum: md5.digest('hex'), hashValue: multi.digest('hex'),
        verdict: opts.inspection?.finish(),
      });
    };
    const onEnd = () => {
      ended = true;
      writeBatch();
      if (inflight === 0) void finish();
    };
    const onError = (e: Error) => fail(new ClientDisconnected(`The image data upload was interrupted: ${e.message}`, { cause: e }));
    const onAborted = () => fail(new ClientDisconnected('The client disconnected before sending all the image data.'));
    const onClose = () => { if (!ended) onAborted(); };

    opts.store.createTemp(opts.imageId).then((t) => {
      fh = t.fh;
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

async function writeAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = bufs;
  while (rest.length) {
    const { bytesWritten } = await fh.writev(rest, pos);
    pos += bytesWritten;
    // writev on a regular file writes everything; handle a short write anyway.
    let n = bytesWritten;
    while (rest.length && n >= rest[0].length) { n -= rest[0].length; rest = rest.slice(1); }
    if (n > 0) rest = [rest[0].subarray(n), ...rest.slice(1)];
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
