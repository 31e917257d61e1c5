// A BIOS-bootable whole-disk image without loop devices or root: an MBR (GRUB's boot.img with
// one partition entry), GRUB's core.img in the gap before the first partition (sector 1, where
// boot.img looks for it by default), and an ext4 partition at 1 MiB built by mke2fs -d from a
// directory. GRUB comes from the host (grub-pc-bin) or, when absent, from the Debian archive.
import { existsSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { debianPackage } from './debian.ts';
import { run } from './run.ts';

const SECTOR = 512;
const PART_START = 2048; // 1 MiB, as every partitioning tool aligns

interface Grub { mkimage: string; dir: string }

async function grub(cacheDir: string): Promise<Grub> {
  if (existsSync('/usr/lib/grub/i386-pc/boot.img') && existsSync('/usr/bin/grub-mkimage')) return { mkimage: '/usr/bin/grub-mkimage', dir: '/usr/lib/grub/i386-pc' };
  const bin = await debianPackage('grub-pc-bin', cacheDir);
  const common = await debianPackage('grub-common', cacheDir);
  return { mkimage: join(common.root, 'usr', 'bin', 'grub-mkimage'), dir: join(bin.root, 'usr', 'lib', 'grub', 'i386-pc') };
}

/** The MBR: boot code, a disk signature, one bootable Linux partition, the 0x55AA mark. */
export function mbr(bootImg: Buffer, startSector: number, sectors: number, signature: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  bootImg.copy(b, 0, 0, 440);
  b.writeUInt32LE(signature >>> 0, 440);
  const e = 446;
  b[e] = 0x80; // active
  b.set([0xfe, 0xff, 0xff], e + 1); // CHS: beyond 1024 cylinders, LBA only
  b[e + 4] = 0x83; // Linux
  b.set([0xfe, 0xff, 0xff], e + 5);
  b.writeUInt32LE(startSector, e + 8);
  b.writeUInt32LE(sectors, e + 12);
  b[510] = 0x55; b[511] = 0xaa;
  return b;
}

export interface BootDiskInput {
  /** Directory whose tree becomes the partition (must hold boot/grub/grub.cfg). */
  rootDir: string;
  label: string;
  partitionMb: number;
  cacheDir: string;
  /** Raw output file. */
  output: string;
  workDir: string;
}

export async function buildBootDisk(i: BootDiskInput): Promise<void> {
  const g = await grub(i.cacheDir);
  const core = join(i.workDir, 'core.img');
  // The prefix names the partition directly: biosdisk sees the boot disk as hd0.
  await run(g.mkimage, ['-d', g.dir, '-O', 'i386-pc', '-o', core, '-p', '(hd0,msdos1)/boot/grub',
    'biosdisk', 'part_msdos', 'ext2', 'linux', 'normal', 'configfile', 'search', 'search_label', 'echo', 'test']);
  const coreSize = (await stat(core)).size;
  if (coreSize > (PART_START - 1) * SECTOR) throw new Error(`GRUB core.img (${coreSize} bytes) does not fit before the first partition`);
  const part = join(i.workDir, 'part.img');
  await run('mkfs.ext4', ['-q', '-F', '-L', i.label, '-d', i.rootDir, '-E', 'root_owner=0:0', part, `${i.partitionMb}M`]);
  const sectors = (await stat(part)).size / SECTOR;
  const bootImg = await readFile(join(g.dir, 'boot.img'));
  const out = await open(i.output, 'w');
  try {
    await out.write(mbr(bootImg, PART_START, sectors, 0x53545241 /* "ARTS" */), 0, SECTOR, 0);
    await out.write(await readFile(core), 0, coreSize, SECTOR);
    // Copy the partition in 4 MiB pieces, leaving holes where the filesystem has none.
    const src = await open(part, 'r');
    try {
      const buf = Buffer.alloc(4 << 20);
      for (let off = 0; ; off += buf.length) {
        const { bytesRead } = await src.read(buf, 0, buf.length, off);
        if (!bytesRead) break;
        const chunk = buf.subarray(0, bytesRead);
        if (chunk.some((x) => x !== 0)) await out.write(chunk, 0, bytesRead, PART_START * SECTOR + off);
      }
    } finally { await src.close(); }
    await out.truncate(PART_START * SECTOR + sectors * SECTOR);
  } finally {
    await out.close();
  }
}
