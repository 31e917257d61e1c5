// `stratus image build`: OpenStack-ready guest images from Debian packages only.
//   minimal — the Debian cloud kernel, a busybox initramfs running stratus-init (minimal-init.ts)
//             and a small ext4 root, booted by GRUB from the disk: boots in seconds under TCG.
//   debian  — debootstrap + cloud-init + openssh-server + growpart + GRUB (debian-image.ts).
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { debianCloudKernel, type Kernel } from './kernel.ts';
import { makeInitramfs } from './initramfs.ts';
import { GUEST_MODULES, ROOT_LABEL, minimalGuestFiles } from './minimal-init.ts';
import { buildBootDisk } from './bootdisk.ts';
import { run } from './run.ts';
import { DEBIAN_VERSION, buildDebianImage } from './debian-image.ts';

const MINIMAL_PARTITION_MB = 48;

export type ImageKind = 'minimal' | 'debian';
export type ImageFormat = 'qcow2' | 'raw';

export interface BuildOptions {
  kind: ImageKind;
  output: string;
  format: ImageFormat;
  /** Where fetched packages (and the debootstrapped tree) are kept between builds. */
  cacheDir?: string;
  /** Virtual disk size of the debian kind (e.g. "2G"); the minimal kind is always ~49 MiB. */
  size?: string;
  log?: (m: string) => void;
}

export interface BuiltImage {
  path: string; format: ImageFormat; kind: ImageKind; kernel: string;
  /** Glance's min_disk (GiB) and min_ram (MiB). */
  minDiskGb: number; minRamMb: number;
  /** Glance properties an operator should set on upload. */
  properties: Record<string, string>;
}

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'stratus');
}

/** The kernel command line of the minimal guest (serial console last, so /dev/console is ttyS0). */
export const MINIMAL_CMDLINE = `root=LABEL=${ROOT_LABEL} console=tty0 console=ttyS0,115200n8`;

export async function minimalInitramfs(kernel: Kernel, out: string): Promise<void> {
  await makeInitramfs({ kernel, modules: GUEST_MODULES, binaries: ['/usr/sbin/resize2fs'], files: minimalGuestFiles() }, out);
}

/** The minimal guest's raw disk. */
async function buildMinimalImage(cacheDir: string, work: string, rawOut: string, log: (m: string) => void): Promise<Omit<BuiltImage, 'path' | 'format'>> {
  const kernel = await debianCloudKernel(cacheDir);
  log(`kernel ${kernel.release} (${kernel.version})`);
  const root = join(work, 'root');
  await mkdir(join(root, 'boot', 'grub'), { recursive: true });
  await mkdir(join(root, 'root'), { recursive: true, mode: 0o700 });
  await copyFile(kernel.vmlinuz, join(root, 'boot', 'vmlinuz'));
  await minimalInitramfs(kernel, join(root, 'boot', 'initrd.img'));
  log('initramfs: busybox, stratus-init, modules, resize2fs');
  await writeFile(join(root, 'boot', 'grub', 'grub.cfg'), [
    'set timeout=0', 'serial --unit=0 --speed=115200', 'terminal_input serial console', 'terminal_output serial console',
    'menuentry "Stratus minimal" {', `  linux /boot/vmlinuz ${MINIMAL_CMDLINE}`, '  initrd /boot/initrd.img', '}', '',
  ].join('\n'));
  await buildBootDisk({ rootDir: root, label: ROOT_LABEL, partitionMb: MINIMAL_PARTITION_MB, cacheDir, output: rawOut, workDir: work });
  return {
    kind: 'minimal', kernel: kernel.release, minDiskGb: 1, minRamMb: 128,
    properties: {
      architecture: 'x86_64', hypervisor_type: 'qemu', vm_mode: 'hvm', os_type: 'linux', hw_disk_bus: 'virtio',
      os_distro: 'debian', os_version: DEBIAN_VERSION,
      // What the disk boots (GRUB in the image): the same kernel and command line serve an AMI-style boot.
      os_kernel_release: kernel.release, os_command_line: MINIMAL_CMDLINE,
    },
  };
}

export async function buildImage(o: BuildOptions): Promise<BuiltImage> {
  const log = o.log ?? (() => undefined);
  const cacheDir = o.cacheDir ?? defaultCacheDir();
  const output = resolve(o.output);
  await mkdir(dirname(output), { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'stratus-image-'));
  try {
    const raw = join(work, 'disk.raw');
    const built = o.kind === 'debian' ? await buildDebianImage(o, cacheDir, work, raw) : await buildMinimalImage(cacheDir, work, raw, log);
    const tmpOut = `${output}.tmp-${process.pid}`;
    if (o.format === 'qcow2') await run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, tmpOut]);
    else await rename(raw, tmpOut).catch(async () => { await copyFile(raw, tmpOut); });
    await rename(tmpOut, output);
    log(`wrote ${output} (${o.format})`);
    return { path: output, format: o.format, ...built };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
