// The host's image cache (Nova's `_base`): each image is downloaded once from the image service
// with the agent's service credentials, streamed to a temporary file while its md5 checksum,
// its os_hash (sha512) and the shared format inspectors see every byte, and renamed into place
// only when all of them agree — so nothing that qemu-img would be tricked by (a backing file, a
// data file, a VMDK extent outside the image, content unlike its disk_format) ever reaches a
// qemu-img call. A cached file that changed since it was verified (size, mtime) is hashed again
// and downloaded again on a mismatch. Unused bases are aged out by the cache manager (run()).
import { ifMissing } from '../../../common/files.ts';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageInspection } from '../../../common/format/index.ts';
import type { Logger } from '../../../common/logging.ts';
import type { ImageSpec } from '../driver.ts';
import { overlayTemplatePrefix } from './disks.ts';

/** Where images come from: the image service, reached with the agent's service token. */
export interface ImageSource {
  meta(id: string): Promise<ImageSpec>;
  open(id: string): Promise<Readable>;
}

export class UnsafeImage extends Error {}
export class ImageDownloadFailed extends Error {}

export interface CachedImage {
  imageId: string; path: string;
  /** The format the file is in (what every qemu-img call names with -f). */
  format: 'qcow2' | 'raw';
  virtualSize: number;
}

interface Info { imageId: string; format: 'qcow2' | 'raw'; virtualSize: number; size: number; mtimeMs: number; md5: string; hashAlgo: string | null; hash: string | null; verifiedAt: string; /** Last time an instance was built on it (ms): what ageing counts from. */ lastUsedAt?: number }

/** Base file name: Nova names bases by the SHA-1 of the image id. */
export const baseName = (imageId: string) => createHash('sha1').update(imageId).digest('hex');

export class ImageCache {
  private inflight = new Map<string, Promise<CachedImage>>();
  /** What was verified (read or written) of each base: a cache hit needs only a stat. */
  private verified = new Map<string, Info>();
  private writes = 0;
  /** Bytes fetched from the image service since start (the benchmark's "second boot downloads 0 bytes"). */
  downloadedBytes = 0;

  constructor(readonly dir: string, private readonly source: ImageSource, private readonly logger: Logger) {}

  /** The cached base of an image, downloading and verifying it when needed. Concurrent callers share one download. */
  async get(imageId: string, known?: ImageSpec | null): Promise<CachedImage> {
    const running = this.inflight.get(imageId);
    if (running) return running;
    const p = this.lookupOrFetch(imageId, known).finally(() => this.inflight.delete(imageId));
    this.inflight.set(imageId, p);
    return p;
  }

  /** A verified base of this image is on disk (a spawn need not make room for a download). */
  has(imageId: string): boolean {
    return this.verified.has(imageId) || existsSync(this.infoPath(imageId));
  }

  private async lookupOrFetch(imageId: string, known?: ImageSpec | null): Promise<CachedImage> {
    const path = join(this.dir, baseName(imageId));
    const info = this.verified.get(imageId) ?? await this.readInfo(imageId);
    const st = info ? await stat(path).catch(ifMissing) : undefined;
    if (info && st) {
      if (st.size === info.size && st.mtimeMs === info.mtimeMs) {
        // The inspection and hashes stand while the file is unchanged; only the use is recorded,
        // off the spawn's path (ageing counts from it in hours, not milliseconds).
        this.touch(info);
        return { imageId, path, format: info.format, virtualSize: info.virtualSize };
      }
      // Changed since verified: hash it again.
      if (await this.verify(path, info)) {
        await this.writeInfo({ ...info, size: st.size, mtimeMs: st.mtimeMs, verifiedAt: new Date().toISOString(), lastUsedAt: Date.now() });
        return { imageId, path, format: info.format, virtualSize: info.virtualSize };
      }
      this.logger.warn({ image: imageId, path }, 'cached base image does not match its checksum; downloading it again');
      await rm(path, { force: true });
    }
    return this.fetch(imageId, known ?? await this.source.meta(imageId));
  }

  private async verify(path: string, info: Info): Promise<boolean> {
    const md5 = createHash('md5');
    const h = info.hashAlgo && info.hash ? createHash(info.hashAlgo) : undefined;
    await pipeline(createReadStream(path), new Transform({ transform(c, _e, cb) { md5.update(c); h?.update(c); cb(); } }));
    return md5.digest('hex') === info.md5 && (!h || h.digest('hex') === info.hash);
  }

  private async fetch(imageId: string, meta: ImageSpec): Promise<CachedImage> {
    const fmt = meta.diskFormat;
    if (fmt !== 'qcow2' && fmt !== 'raw' && fmt !== 'ami' && fmt !== 'aki' && fmt !== 'ari') {
      throw new UnsafeImage(`Image ${imageId} has disk_format ${fmt ?? '(none)'}: the QEMU driver boots qcow2, raw and ami images (with aki/ari kernels and ramdisks).`);
    }
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, baseName(imageId));
    const tmp = `${path}.part-${process.pid}-${Date.now()}`;
    const inspection = new ImageInspection({ declared: fmt, containerFormat: meta.containerFormat });
    const md5 = createHash('md5');
    const algo = meta.osHashAlgo && meta.osHashValue ? meta.osHashAlgo : null;
    let hash: ReturnType<typeof createHash> | undefined;
    try { hash = algo ? createHash(algo) : undefined; } catch { throw new UnsafeImage(`Image ${imageId}: unknown os_hash_algo ${algo}`); }
    let bytes = 0;
    const t0 = Date.now();
    try {
      const body = await this.source.open(imageId);
      await pipeline(body, new Transform({
        transform: (c: Buffer, _e, cb) => { bytes += c.length; md5.update(c); hash?.update(c); inspection.feed(c); cb(null, c); },
      }), createWriteStream(tmp, { flags: 'wx' }));
      this.downloadedBytes += bytes;
      const got = md5.digest('hex');
      if (meta.checksum && got !== meta.checksum) throw new ImageDownloadFailed(`Image ${imageId}: downloaded data has md5 ${got}, the image service says ${meta.checksum}`);
      if (hash && hash.digest('hex') !== meta.osHashValue) throw new ImageDownloadFailed(`Image ${imageId}: downloaded data does not match its ${algo} os_hash_value`);
      if (meta.size != null && bytes !== meta.size) throw new ImageDownloadFailed(`Image ${imageId}: downloaded ${bytes} bytes, the image service says ${meta.size}`);
      const v = inspection.finish();
      if (v.errors.length) throw new UnsafeImage(`Image ${imageId} is not safe to boot: ${v.errors.join('; ')}`);
      const format = v.detected === 'qcow2' ? 'qcow2' : 'raw';
      const virtualSize = v.virtualSize ?? bytes;
      await rename(tmp, path);
      const st = await stat(path);
      await this.writeInfo({ imageId, format, virtualSize, size: st.size, mtimeMs: st.mtimeMs, md5: got, hashAlgo: algo, hash: algo ? meta.osHashValue : null, verifiedAt: new Date().toISOString(), lastUsedAt: Date.now() });
      this.logger.info({ image: imageId, bytes, ms: Date.now() - t0, format }, 'image cached');
      return { imageId, path, format, virtualSize };
    } catch (e) {
      await rm(tmp, { force: true });
      if (e instanceof UnsafeImage || e instanceof ImageDownloadFailed) throw e;
      throw new ImageDownloadFailed(`Image ${imageId} could not be downloaded: ${(e as Error).message}`);
    }
  }

  private infoPath(imageId: string) { return join(this.dir, `${baseName(imageId)}.info`); }
  private async readInfo(imageId: string): Promise<Info | undefined> {
    try { return JSON.parse(await readFile(this.infoPath(imageId), 'utf8')) as Info; } catch { return undefined; }
  }
  private async writeInfo(i: Info): Promise<void> {
    this.verified.set(i.imageId, i);
    // A name of its own per write: two spawns of one image may record their use at once.
    const tmp = `${this.infoPath(i.imageId)}.tmp-${process.pid}-${++this.writes}`;
    await writeFile(tmp, JSON.stringify(i));
    await rename(tmp, this.infoPath(i.imageId));
  }
  private touch(info: Info): void {
    this.writeInfo({ ...info, lastUsedAt: Date.now() }).catch((err) => this.logger.warn({ err, image: info.imageId }, 'could not record the use of a cached base image'));
  }

  /**
   * The cache manager's pass (Nova's ImageCacheManager): bases that no instance uses and that
   * were last used longer than minAgeSeconds ago are removed.
   * Returns the image ids removed.
   */
  async run(inUse: Set<string>, minAgeSeconds: number, remove = true): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try { names = await readdir(this.dir); } catch { return removed; }
    for (const n of names.filter((x) => x.endsWith('.info'))) {
      let info: Info;
      try { info = JSON.parse(await readFile(join(this.dir, n), 'utf8')) as Info; } catch { continue; }
      const path = join(this.dir, baseName(info.imageId));
      const st = await stat(path).catch(ifMissing);
      if (!inUse.has(info.imageId) && remove && (!st || (Date.now() - (info.lastUsedAt ?? st.mtimeMs)) / 1000 >= minAgeSeconds)) {
        this.verified.delete(info.imageId);
        await rm(path, { force: true });
        await rm(join(this.dir, n), { force: true });
        // The overlay templates made on it (disks.ts) go with it.
        for (const t of names.filter((x) => x.startsWith(basename(overlayTemplatePrefix(path))))) await rm(join(this.dir, t), { force: true });
        removed.push(info.imageId);
      }
    }
    return removed;
  }
}
