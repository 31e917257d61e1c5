// The filesystem store: one file per image, named by image id, in the store's directory. New data
// goes to a temporary file beside it (same filesystem, so the final rename is atomic), is
// fsynced, and is renamed into place only once complete and accepted; the directory is fsynced
// after the rename so the name survives a crash. Temporary names carry the host and pid that
// wrote them, so the startup scrub removes only leftovers of dead processes.
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { createReadStream, type ReadStream } from 'node:fs';
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

  read(rel: string, start?: number, end?: number): ReadStream {
    return createReadStream(this.absolute(rel), { start, end, highWaterMark: 1 << 20 });
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
