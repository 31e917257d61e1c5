// Shared by the real-guest tests (npm run test:qemu): the minimal guest image, built once per
// cache directory and reused, and an image source serving local files as if from the image service.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buildImage, defaultCacheDir } from '../../src/guest/build.ts';
import type { ImageSpec } from '../../src/compute/virt/driver.ts';
import type { ImageSource } from '../../src/compute/virt/qemu/image-cache.ts';

export const cacheDir = process.env.STRATUS_GUEST_CACHE ?? defaultCacheDir();

/** The minimal guest (STRATUS_MINIMAL_IMAGE, or built into the cache dir once). */
export async function minimalImage(): Promise<string> {
  const given = process.env.STRATUS_MINIMAL_IMAGE;
  if (given && existsSync(given)) return given;
  const out = join(cacheDir, 'minimal-test.qcow2');
  if (!existsSync(out)) await buildImage({ kind: 'minimal', output: out, format: 'qcow2', cacheDir });
  return out;
}

export async function fileImage(id: string, path: string, diskFormat: string, properties: Record<string, string> = {}, virtualSize: number | null = null): Promise<ImageSpec & { path: string }> {
  const data = await readFile(path);
  return {
    id, name: id, diskFormat, containerFormat: 'bare', checksum: createHash('md5').update(data).digest('hex'),
    osHashAlgo: 'sha512', osHashValue: createHash('sha512').update(data).digest('hex'), size: (await stat(path)).size,
    virtualSize, minDisk: 0, minRam: 0, properties, path,
  };
}

export class FileImages implements ImageSource {
  images = new Map<string, ImageSpec & { path: string }>();
  opened = 0;
  add(i: ImageSpec & { path: string }) { this.images.set(i.id, i); }
  async meta(id: string): Promise<ImageSpec> {
    const i = this.images.get(id);
    if (!i) throw new Error(`no image ${id}`);
    return i;
  }
  async open(id: string): Promise<Readable> {
    this.opened++;
    return createReadStream((await this.meta(id) as ImageSpec & { path: string }).path);
  }
}
