// The filesystem store: one file per image, named by image id, in the store's directory. New data
// goes to a temporary file beside it (same filesystem, so the final rename is atomic), is
// fsynced, and is renamed into place only once complete and accepted; the directory is fsynced
// after the rename so the name survives a crash. Temporary names carry the host and pid that
// wrote them, so the startup scrub removes only leftovers of dead processes.
// New data is written through the page cache, as Glance writes it, so that the downloads that
// follow an upload (Nova fetching what was just uploaded) are served from memory. O_DIRECT
// (probed at init: tmpfs, for one, refuses it) is kept for data that would push everything else
// out of the cache — an upload declaring more than a quarter of RAM, or any download that large —
// and for operators who ask for it (`upload_direct_io`, `download_direct_io`).
// Measured side by side on this VM (bench/results/compare-bufvsdirect-2026-12-01.md): writing
// through the cache cost the upload nothing (271 vs 275 MiB/s, the hashes are the bound) and made
// the two downloads after it 3-5 times faster (2.5-3.7 GiB/s against 0.4-0.9 with O_DIRECT).
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { open as openCb, read as readCb, close as closeCb, fstat, constants as fsc } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { join } from 'node:path';
import { hostname, totalmem } from 'node:os';
import { randomBytes } from 'node:crypto';
import { DIRECT_ALIGN, SLOT, alignUp, giveRing, takeRing } from './ring.ts';

const TMP_SUFFIX = '.tmp';
const HOST = hostname().replace(/[^\w-]/g, '_');

export interface StoreInfo { id: string; type: 'file'; dir: string; description?: string; isDefault: boolean }

/** How data is written or read (`[glance_store] upload_direct_io`, `download_direct_io`): `auto` with O_DIRECT only for data larger than a quarter of RAM, `always` with O_DIRECT, `never` through the page cache. */
export type DirectIo = 'auto' | 'always' | 'never';

/** How a download was read (logged; the tests tell the modes apart by it). */
export type ReadMode = 'direct' | 'page-cache';

export class FilesystemStore {
  /** Whether the filesystem takes O_DIRECT (probed at init). */
  directIo = false;
  uploadDirectIo: DirectIo = 'auto';
  downloadDirectIo: DirectIo = 'auto';
  /** Above this size `auto` bypasses the page cache: more would push everything else out of it. */
  hugeBytes = totalmem() / 4;

  constructor(readonly id: string, readonly dir: string, readonly isDefault = true, readonly description?: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    this.directIo = await this.probeDirectIo();
  }

  /** Whether an aligned O_DIRECT write works here (tmpfs, for one, refuses the flag). */
  private async probeDirectIo(): Promise<boolean> {
    if (fsc.O_DIRECT === undefined) return false;
    const path = this.tempName('direct-probe');
    const ring = takeRing();
    try {
      const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_DIRECT, 0o600);
      try { await fh.write(Buffer.from(ring, 0, DIRECT_ALIGN), 0, DIRECT_ALIGN, 0); } finally { await fh.close(); }
      return true;
    } catch {
      return false;
    } finally {
      giveRing(ring);
      await rm(path, { force: true });
    }
  }

  private tempName(imageId: string): string {
    return join(this.dir, `.${imageId}.${HOST}.${process.pid}.${randomBytes(4).toString('hex')}${TMP_SUFFIX}`);
  }

  /** Path of an image's data, relative to the store (what locations record). */
  relativePath(imageId: string): string { return imageId; }

  absolute(rel: string): string {
    if (rel.includes('/') || rel.includes('\\') || rel === '..' || rel === '.') throw new Error(`bad store path ${rel}`);
    return join(this.dir, rel);
  }

  /** Whether `bytes` of data should bypass the page cache under `mode`. */
  private direct(mode: DirectIo, bytes: number | undefined): boolean {
    if (!this.directIo || mode === 'never') return false;
    return mode === 'always' || (bytes !== undefined && bytes > this.hugeBytes);
  }

  /** A new temporary file for an image's incoming data (`declaredBytes`: its Content-Length, if any). */
  async createTemp(imageId: string, declaredBytes?: number): Promise<{ path: string; fh: FileHandle; direct: boolean }> {
    const path = this.tempName(imageId);
    const direct = this.direct(this.uploadDirectIo, declaredBytes);
    const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (direct ? fsc.O_DIRECT : 0), 0o640);
    return { path, fh, direct };
  }

  /** Makes a complete, fsynced temporary file the image's data. */
  async commit(tmpPath: string, imageId: string): Promise<string> {
    const rel = this.relativePath(imageId);
    await rename(tmpPath, this.absolute(rel));
    await syncDir(this.dir);
    return rel;
  }

  /** The bytes [start, end] of an image's data, read ahead several MiB at a time. */
  read(rel: string, start = 0, end?: number): Readable {
    return readAhead(this.absolute(rel), start, end);
  }

  /** Writes bytes [start, end] of an image's data to `out` (a download): see sendRange. */
  async send(rel: string, out: Writable, start: number, end: number): Promise<ReadMode> {
    const direct = this.direct(this.downloadDirectIo, end - start + 1);
    await sendRange(this.absolute(rel), out, start, end, direct);
    return direct ? 'direct' : 'page-cache';
  }

  async size(rel: string): Promise<number | undefined> {
    try { return (await stat(this.absolute(rel))).size; } catch { return undefined; }
  }

  async delete(rel: string): Promise<void> {
    await rm(this.absolute(rel), { force: true });
  }

  async freeBytes(): Promise<number | undefined> {
    try { const s = await statfs(this.dir); return s.bavail * s.bsize; } catch { return undefined; }
  }

  /**
   * Removes temporary files left by processes that died mid-write (this host's dead pids; other
   * hosts' files once a day old), and data files no image refers to (older than `graceMs`, so a
   * commit racing with the scrub is left alone). Returns what it removed.
   */
  async scrub(isReferenced: (rel: string) => Promise<boolean>, graceMs = 600_000): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try { names = await readdir(this.dir); } catch { return removed; }
    const now = Date.now();
    for (const name of names) {
      const path = join(this.dir, name);
      let st;
      try { st = await stat(path); } catch { continue; }
      if (!st.isFile()) continue;
      if (name.endsWith(TMP_SUFFIX)) {
        const m = /^\.[^.]+\.([^.]+)\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
        const sameHost = m?.[1] === HOST;
        const dead = sameHost ? !pidAlive(Number(m![2])) : now - st.mtimeMs > 86_400_000;
        if (!m || dead) { await rm(path, { force: true }); removed.push(name); }
        continue;
      }
      if (name.startsWith('.')) continue;
      if (now - st.mtimeMs < graceMs) continue;
      if (!(await isReferenced(name))) { await rm(path, { force: true }); removed.push(name); }
    }
    return removed;
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } catch { /* some filesystems refuse fsync on directories */ } finally { await fh.close(); }
}

const CHUNK = 1 << 20;
const DEPTH = 4;

/**
 * A file reader that keeps DEPTH positional reads in flight, so the disk is busy while the
 * socket drains (a plain fs.ReadStream reads one chunk at a time).
 */
export function readAhead(path: string, start = 0, end?: number): Readable {
  let fd = -1;
  let next = start;
  let last = end ?? Infinity;
  const pending: Promise<Buffer>[] = [];
  let pumping = false;
  const out = new Readable({
    highWaterMark: CHUNK * DEPTH,
    read() { if (fd >= 0) pump(); },
    destroy(err, cb) { if (fd >= 0) closeCb(fd, () => cb(err)); else cb(err); },
  });
  const issue = () => {
    while (pending.length < DEPTH && next <= last) {
      const len = Math.min(CHUNK, last - next + 1);
      const pos = next;
      next += len;
      pending.push(new Promise((resolve, reject) => {
        const b = Buffer.allocUnsafeSlow(len);
        readCb(fd, b, 0, len, pos, (e, n) => (e ? reject(e) : resolve(n === len ? b : b.subarray(0, n))));
      }));
    }
  };
  const pump = () => {
    if (pumping || out.destroyed) return;
    issue();
    const head = pending.shift();
    if (!head) { out.push(null); return; }
    pumping = true;
    head.then((b) => {
      pumping = false;
      if (out.destroyed) return;
      if (b.length === 0) { out.push(null); return; }
      if (out.push(b)) pump();
    }, (e) => { pumping = false; out.destroy(e); });
  };
  openCb(path, 'r', (e, f) => {
    if (e) return out.destroy(e);
    fd = f;
    if (out.destroyed) { closeCb(f, () => undefined); return; }
    fstat(f, (e2, st) => {
      if (e2) return out.destroy(e2);
      last = Math.min(last, st.size - 1);
      pump();
    });
  });
  return out;
}

/**
 * Writes bytes [start, end] of a file to `out` through a ring of reused buffers, reading ahead
 * while the socket drains. A buffer is read into again only once `out` has handed its previous
 * bytes to the kernel (the write callback), which a Readable cannot know, hence not a stream.
 * With `direct`, reads bypass the page cache (O_DIRECT from block-aligned offsets; the ring is
 * page-aligned). Either way the buffers are the same few reused MiB: a download takes no fresh
 * memory of its own. Settles once `out` has taken every byte; rejects if the file ends
 * early, a read fails or `out` closes first (a client gone).
 */
export async function sendRange(path: string, out: Writable, start: number, end: number, direct: boolean): Promise<void> {
  const fh = await open(path, direct ? fsc.O_RDONLY | fsc.O_DIRECT : fsc.O_RDONLY);
  const ring = takeRing();
  let gone: (e: Error) => void = () => undefined;
  const closed = new Promise<never>((_, reject) => { gone = reject; });
  closed.catch(() => undefined); // raced against every read below; only observed there
  const onClose = () => gone(new Error('The client closed the connection before the download ended.'));
  out.once('close', onClose);
  /** Per slot: settles when `out` has taken the bytes last written from it. */
  const taken: Promise<void>[] = Array.from({ length: DEPTH }, () => Promise.resolve());
  try {
    const reads: Promise<{ k: number; b: Buffer }>[] = [];
    let next = direct ? start - (start % DIRECT_ALIGN) : start;
    let n = 0;
    const readAheadOf = () => {
      while (reads.length < DEPTH && next <= end) {
        const k = n++ % DEPTH;
        const pos = next;
        const want = Math.min(SLOT, (direct ? alignUp(end + 1) : end + 1) - pos);
        next += want;
        const slot = Buffer.from(ring, k * SLOT, SLOT);
        const read = taken[k].then(() => readFull(fh, slot, want, pos, Math.min(want, end + 1 - pos)))
          .then((got) => ({ k, b: slot.subarray(Math.max(0, start - pos), got) }));
        read.catch(() => undefined); // awaited below, unless the client is gone first
        reads.push(read);
      }
    };
    readAheadOf();
    while (reads.length) {
      const { k, b } = await Promise.race([reads.shift()!, closed]);
      taken[k] = new Promise<void>((resolve, reject) => out.write(b, (e) => (e ? reject(e) : resolve())));
      taken[k].catch(() => undefined); // awaited by the read that reuses slot k, which sees the error
      readAheadOf();
    }
    await Promise.race([Promise.all(taken), closed]);
  } finally {
    out.off('close', onClose);
    await fh.close();
    // The ring is reused only once no write still holds a view of it.
    void Promise.allSettled(taken).then(() => giveRing(ring));
  }
}

/** Reads up to `want` bytes at `pos` into `buf`; at least `need` must come before end of file. */
async function readFull(fh: FileHandle, buf: Buffer, want: number, pos: number, need: number): Promise<number> {
  let got = 0;
  while (got < need) {
    const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
    if (bytesRead === 0) throw new Error(`image data ends at byte ${pos + got}, before its recorded size`);
    got += bytesRead;
  }
  return Math.min(got, need);
}
