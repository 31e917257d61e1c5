// The disks of one instance, as Nova's libvirt driver lays them out with qcow2 images: a qcow2
// overlay on the cached base grown to the flavor's root disk, an ephemeral disk (ext4 labelled
// ephemeral0) and a swap disk (labelled swap) when the flavor has them. Every qemu-img call
// names the input format (-f / -F): nothing is left to qemu's probing.
import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { copyFile, open, rename, rm, statfs } from 'node:fs/promises';
import { run } from '../../../guest/run.ts';
import type { CachedImage } from './image-cache.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export class DiskTooSmall extends Error {}
export class InsufficientDiskSpace extends Error {}

/** Refuses before any work when the image does not fit the flavor's root disk (Nova's FlavorDiskSmallerThanImage). */
export function checkRootFits(virtualSize: number, rootGb: number, imageId: string): void {
  if (rootGb > 0 && virtualSize > rootGb * GiB) {
    throw new DiskTooSmall(`Flavor's disk is too small for requested image. Flavor disk is ${rootGb * GiB} bytes, image ${imageId} is ${virtualSize} bytes.`);
  }
}

/** Free space of the filesystem holding path, in bytes (what an unprivileged writer may use). */
export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/** Fails with the numbers when the filesystem of dir has less than `need` bytes free. */
export async function checkFreeSpace(dir: string, need: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free < need) {
    throw new InsufficientDiskSpace(`Insufficient free disk space on the compute host for ${what}: ${Math.ceil(need / MiB)} MiB needed in ${dir}, ${Math.floor(free / MiB)} MiB free.`);
  }
}

/** Beside a cached base: the overlays of each size made on it (removed with the base). */
export const overlayTemplatePrefix = (basePath: string) => `${basePath}.overlay-`;

/**
 * The instance's qcow2 overlay on the cached base, of the flavor's root size. What `qemu-img
 * create -b base -F fmt overlay SIZE` writes depends on nothing else (qcow2 keeps no id or
 * timestamp in an empty image), so it is made once per base and size beside the base and copied
 * for each instance: a spawn of a cached image runs no qemu-img (tens of ms on a busy host).
 */
export async function createOverlay(base: CachedImage, path: string, rootGb: number): Promise<void> {
  const size = rootGb > 0 ? rootGb * GiB : base.virtualSize;
  const template = `${overlayTemplatePrefix(base.path)}${size}`;
  if (!existsSync(template)) {
    const tmp = `${template}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', base.format, '-b', base.path, tmp, String(size)]);
      await rename(tmp, template);
    } finally {
      await rm(tmp, { force: true });
    }
  }
  await copyFile(template, path, constants.COPYFILE_EXCL);
}

/** A sparse raw file of `bytes`. */
async function sparse(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'wx');
  try { await fh.truncate(bytes); } finally { await fh.close(); }
}

export async function createEphemeral(path: string, gb: number): Promise<void> {
  await sparse(path, gb * GiB);
  await run('mkfs.ext4', ['-q', '-F', '-L', 'ephemeral0', '-E', 'lazy_itable_init=1,nodiscard', path]);
}

export async function createSwap(path: string, mb: number): Promise<void> {
  await sparse(path, mb * MiB);
  await run('mkswap', ['-L', 'swap', path]);
}

/** Flattens a disk (overlay and backing chain) into a standalone qcow2: snapshots of stopped guests. */
export async function flatten(src: string, srcFormat: 'qcow2' | 'raw', dest: string, sharedLock: boolean): Promise<void> {
  await run('qemu-img', ['convert', '-q', ...(sharedLock ? ['-U'] : []), '-f', srcFormat, '-O', 'qcow2', src, dest]);
}
