// The filesystem store: one file per image, named by image id, in the store's directory. New data
// goes to a temporary file beside it (same filesystem, so the final rename is atomic), is
// fsynced, and is renamed into place only once complete and accepted; the directory is fsynced
// after the rename so the name survives a crash. Temporary names carry the host and pid that
// wrote them, so the startup scrub removes only leftovers of dead processes.
// New data is written with O_DIRECT where the filesystem allows it (probed at init): copying
// each uploaded byte into the page cache cost the kernel as much CPU as md5 did, on a machine
// where the hashes already compete for two cores, and the dirty pages were then written back
// anyway. Direct writes go from the upload's ring (ring.ts) straight to the device.
// Downloads read through the page cache, except where O_DIRECT is known to be cheaper (see
// readsDirect): a hot image is then served at the page-cache copy rate, as Glance serves it.
// Data written with O_DIRECT is read into the page cache after its commit by a background
// reader at the lowest CPU priority (see warm), and downloads read it with O_DIRECT until then:
// no request pays for filling the cache.
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { open as openCb, read as readCb, close as closeCb, fstat, constants as fsc } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { Readable, type Writable } from 'node:stream';
import { join } from 'node:path';
import { hostname, totalmem } from 'node:os';
import { randomBytes } from 'node:crypto';
import { DIRECT_ALIGN, SLOT, alignUp, giveRing, takeRing } from './ring.ts';

const TMP_SUFFIX = '.tmp';
const HOST = hostname().replace(/[^\w-]/g, '_');

export interface StoreInfo { id: string; type: 'file'; dir: string; description?: string; isDefault: boolean }

/** How downloads read (`[glance_store] download_direct_io`): `auto` (see readsDirect), `always` with O_DIRECT, `never` through the page cache. */
export type DownloadDirectIo = 'auto' | 'always' | 'never';

/** How a download was read (logged; the tests tell the modes apart by it). */
export type ReadMode = 'direct' | 'page-cache';

export class FilesystemStore {
  /** Temporary files are opened with O_DIRECT (writes must then be aligned: see ingest.ts). */
  directIo = false;
  downloadDirectIo: DownloadDirectIo = 'auto';
  /** Above this size an `auto` download reads with O_DIRECT (see readsDirect). */
  hugeBytes = totalmem() / 4;
  /**
   * Data files this process wrote with O_DIRECT that are not in the page cache yet (a direct
   * write leaves no page of them cached; it drops any it overwrites), until warm has read them in.
   */
  private readonly uncached = new Set<string>();
  /** The most files `uncached` remembers (the oldest are forgotten: read through the cache). */
  uncachedLimit = 10_000;
  /** Whether committed direct-written data is read into the page cache in the background (not for staging: read once). */
  warmAfterWrite = true;
  /** Files waiting for their warm-up, oldest first; one is read at a time. */
  private readonly warmQueue: string[] = [];
  private closed = false;
  /** The warm-up running now, if any. */
  private warming: { rel: string; child: ChildProcess; done: Promise<void> } | undefined;

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

  /** A new temporary file for an image's incoming data. */
  async createTemp(imageId: string): Promise<{ path: string; fh: FileHandle; direct: boolean }> {
    const path = this.tempName(imageId);
    const flags = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (this.directIo ? fsc.O_DIRECT : 0);
    const fh = await open(path, flags, 0o640);
    return { path, fh, direct: this.directIo };
  }

  /** Makes a complete, fsynced temporary file the image's data. */
  async commit(tmpPath: string, imageId: string): Promise<string> {
    const rel = this.relativePath(imageId);
    await rename(tmpPath, this.absolute(rel));
    await syncDir(this.dir);
    this.forget(rel);
    if (this.directIo && this.warmAfterWrite && (await stat(this.absolute(rel))).size <= this.hugeBytes) {
      this.uncached.add(rel);
      // A Set iterates in insertion order: the first entry is the longest-remembered one.
      if (this.uncached.size > this.uncachedLimit) this.forget(this.uncached.values().next().value!);
      this.warmQueue.push(rel);
      this.warmNext();
    }
    return rel;
  }

  /**
   * Reads the next queued file into the page cache with `nice -n 19 dd … of=/dev/null`: a child
   * process, so that the kernel schedules the work below every request of this service (libuv's
   * pool threads cannot be deprioritised), and it is done where the CPU would otherwise be idle.
   * Filling the cache is the expensive part of reading a file through it on VMs whose free memory
   * goes back to the host (each new page is a host fault: ~1.3–1.8 CPU-s per GiB here, 5–10 times
   * a direct read). Glance pays it on every upload (it writes through the cache); a Stratus upload
   * does not, and neither does any download. Files larger than hugeBytes stay out of the cache.
   * When the reader fails (no dd, the file deleted), the file stays read with O_DIRECT.
   */
  private warmNext(): void {
    if (this.warming || this.closed) return;
    let rel: string | undefined;
    while ((rel = this.warmQueue.shift()) !== undefined && !this.uncached.has(rel));
    if (rel === undefined) return;
    const path = this.absolute(rel);
    const child = spawn('nice', ['-n', '19', 'dd', `if=${path}`, 'of=/dev/null', 'bs=1M', 'status=none'], { stdio: 'ignore' });
    const done = new Promise<void>((resolve) => {
      const end = (ok: boolean) => {
        if (this.warming?.child !== child) return resolve();
        this.warming = undefined;
        if (ok) this.uncached.delete(rel!);
        resolve();
        this.warmNext();
      };
      child.once('error', () => end(false));
      child.once('exit', (code) => end(code === 0));
    });
    this.warming = { rel, child, done };
  }

  /** Settles once no warm-up is running or queued (tests, and the benchmarks' quiet point). */
  async warmed(): Promise<void> {
    while (this.warming) await this.warming.done;
  }

  /** Stops a file's warm-up and forgets it was uncached (it is deleted or replaced). */
  private forget(rel: string): void {
    this.uncached.delete(rel);
    if (this.warming?.rel === rel) this.warming.child.kill();
  }

  /** Stops the background work (the service is stopping). */
  close(): void {
    this.closed = true;
    this.warmQueue.length = 0;
    this.warming?.child.kill();
  }

  /**
   * Whether a download of `size` bytes of `rel` should bypass the page cache. `auto` reads through
   * it (a hot image is then a memory copy) except:
   *  - data this process wrote with O_DIRECT, until its warm-up has read it into the cache. None
   *    of its pages is cached before, and a cold read through the page cache costs far more CPU
   *    than a direct one wherever fresh pages are expensive: on a VM whose balloon reports free
   *    memory to the host (Firecracker or QEMU with free page reporting, as here), each page the
   *    cache takes costs a host fault, 1.3 CPU-s per GiB against 0.1 for the direct read;
   *  - an image larger than a quarter of RAM, which would push everything else out of the cache.
   * The store cannot see what the kernel evicts later (Node has neither mincore nor RWF_NOWAIT):
   * a cached image dropped meanwhile is read cold through the cache; `always` avoids that.
   */
  private readsDirect(rel: string, size: number): boolean {
    if (!this.directIo || this.downloadDirectIo === 'never') return false;
    if (this.downloadDirectIo === 'always') return true;
    if (size > this.hugeBytes) return true;
    return this.uncached.has(rel);
  }

  /** The bytes [start, end] of an image's data, read ahead several MiB at a time. */
  read(rel: string, start = 0, end?: number): Readable {
    return readAhead(this.absolute(rel), start, end);
  }

  /** Writes bytes [start, end] of an image's data to `out` (a download): see sendRange. */
  async send(rel: string, out: Writable, start: number, end: number): Promise<ReadMode> {
    const direct = this.readsDirect(rel, end - start + 1);
    await sendRange(this.absolute(rel), out, start, end, direct);
    return direct ? 'direct' : 'page-cache';
  }

  async size(rel: string): Promise<number | undefined> {
    try { return (await stat(this.absolute(rel))).size; } catch { return undefined; }
  }

  async delete(rel: string): Promise<void> {
    this.forget(rel);
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
