// The filesystem store: one file per image, named by image id, in the store's directory. New data
// goes to a temporary file beside it (same filesystem, so the final rename is atomic), is
// fsynced, and is renamed into place only once complete and accepted; the directory is fsynced
// after the rename so the name survives a crash. Temporary names carry the host and pid that
// wrote them, so the startup scrub removes only leftovers of dead processes.
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { open as openCb, read as readCb, close as closeCb, fstat } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

const TMP_SUFFIX = '.tmp';
const HOST = hostname().replace(/[^\w-]/g, '_');

export interface StoreInfo { id: string; type: 'file'; dir: string; description?: string; isDefault: boolean }

export class FilesystemStore {
  constructor(readonly id: string, readonly dir: string, readonly isDefault = true, readonly description?: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
  }

  /** Path of an image's data, relative to the store (what locations record). */
  relativePath(imageId: string): string { return imageId; }

  absolute(rel: string): string {
    if (rel.includes('/') || rel.includes('\\') || rel === '..' || rel === '.') throw new Error(`bad store path ${rel}`);
    return join(this.dir, rel);
  }

  /** A new temporary file for an image's incoming data. */
  async createTemp(imageId: string): Promise<{ path: string; fh: FileHandle }> {
    const path = join(this.dir, `.${imageId}.${HOST}.${process.pid}.${randomBytes(4).toString('hex')}${TMP_SUFFIX}`);
    const fh = await open(path, 'wx', 0o640);
    return { path, fh };
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
