// `--kind debian`: what an operator uploads — Debian 12 debootstrapped from apt's own archive
// (the mirror and proxy apt is configured with), with the cloud kernel, cloud-init (ConfigDrive
// and OpenStack datasources), openssh-server and growpart, on a whole-disk image whose MBR and
// GRUB core boot it without kernel_id (bootdisk.ts: no loop devices, no mounts of the image).
// The configured root tree is cached under --cache-dir, keyed by everything that shapes it, so
// a second build only makes the filesystem and the disk.
import { ifExists } from '../common/files.ts';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildOptions, BuiltImage } from './build.ts';
import { ConfigError } from '../common/config.ts';
import { buildBootDisk } from './bootdisk.ts';
import { run } from './run.ts';

export const DEBIAN_SUITE = 'bookworm';
export const DEBIAN_VERSION = '12';
export const DEBIAN_ROOT_LABEL = 'debian-root';
/** The guest's kernel command line: serial console last, so /dev/console (and cloud-init's output) is ttyS0. */
export const DEBIAN_CMDLINE = `root=LABEL=${DEBIAN_ROOT_LABEL} ro console=tty0 console=ttyS0,115200n8 net.ifnames=0`;

/** Packages on top of minbase. The notes (real-guests.md) explain the less obvious ones. */
export const DEBIAN_PACKAGES = [
  'systemd-sysv', 'udev', 'linux-image-cloud-amd64', 'cloud-init', 'openssh-server', 'sudo',
  // growpart needs sfdisk (fdisk) and resizefs needs resize2fs (e2fsprogs).
  'cloud-guest-utils', 'fdisk', 'e2fsprogs',
  // python3-cryptography stays unconfigured without cffi; kmod loads modules; without dbus
  // systemd-logind never sees the ACPI power button, so a soft stop would be ignored.
  'python3-cffi-backend', 'kmod', 'dbus',
  // cloud-init renders network_data.json for ifupdown (ENI) and brings the NIC up with DHCP.
  'ifupdown', 'isc-dhcp-client', 'iproute2', 'netbase',
];

/** Bumped when the files written into the tree change, so stale cached trees are not reused. */
const TREE_VERSION = 1;

/** cloud-init's configuration: Nova's datasources only, the root grown to the disk at boot. */
export const CLOUD_CFG = `# Written by stratus image build --kind debian
datasource_list: [ ConfigDrive, OpenStack, None ]
growpart:
  mode: auto
  devices: ['/']
resize_rootfs: true
`;

export interface AptSource { mirror: string; proxy?: string }

/** The mirror apt uses for bookworm main (apt-cache policy), and apt's HTTP proxy if one is set. */
export async function aptSource(): Promise<AptSource> {
  const { stdout } = await run('apt-cache', ['policy']);
  const m = new RegExp(`^\\s*\\d+\\s+(\\S+)\\s+${DEBIAN_SUITE}/main amd64 Packages`, 'm').exec(stdout);
  if (!m) throw new Error(`apt is configured with no ${DEBIAN_SUITE} main archive (see /etc/apt/sources.list*); it is the only package source`);
  const proxy = (await run('apt-config', ['shell', 'P', 'Acquire::http::Proxy'])).stdout.match(/^P='(.*)'$/m)?.[1];
  return { mirror: m[1], proxy: proxy || undefined };
}

/** Files the image needs beyond what the packages install. `release` names the kernel in /boot. */
export function debianTreeFiles(release: string): Record<string, string> {
  return {
    'etc/fstab': `LABEL=${DEBIAN_ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 1\n`,
    'etc/hostname': 'debian\n',
    'etc/hosts': '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n',
    // cloud-init's ENI renderer writes the NIC's stanza into interfaces.d.
    'etc/network/interfaces': 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n',
    'etc/cloud/cloud.cfg.d/90_stratus.cfg': CLOUD_CFG,
    'boot/grub/grub.cfg': [
      'set timeout=1', 'serial --unit=0 --speed=115200', 'terminal_input serial console', 'terminal_output serial console',
      `menuentry "Debian GNU/Linux ${DEBIAN_VERSION} (${release})" {`,
      `  linux /boot/vmlinuz-${release} ${DEBIAN_CMDLINE}`, `  initrd /boot/initrd.img-${release}`, '}', '',
    ].join('\n'),
  };
}

/** The configured root tree: from the cache, or debootstrapped and configured, then cached. */
async function debianTree(cacheDir: string, log: (m: string) => void): Promise<{ dir: string; release: string }> {
  const src = await aptSource();
  const key = createHash('sha256').update(JSON.stringify([DEBIAN_SUITE, src.mirror, DEBIAN_PACKAGES, TREE_VERSION, CLOUD_CFG, DEBIAN_CMDLINE])).digest('hex').slice(0, 12);
  const dir = join(cacheDir, 'debootstrap', `${DEBIAN_SUITE}-${key}`);
  if (existsSync(dir)) {
    log(`root tree from the cache: ${dir}`);
    return { dir, release: await kernelRelease(dir) };
  }
  await mkdir(join(cacheDir, 'debootstrap'), { recursive: true });
  const tmp = await mkdtemp(join(cacheDir, 'debootstrap', `.${DEBIAN_SUITE}-`));
  try {
    const t0 = Date.now();
    log(`debootstrap --variant=minbase ${DEBIAN_SUITE} from ${src.mirror}${src.proxy ? ` through ${src.proxy}` : ''} (+ ${DEBIAN_PACKAGES.length} packages; a few minutes)`);
    const env = { ...process.env, ...(src.proxy ? { http_proxy: src.proxy } : {}), DEBIAN_FRONTEND: 'noninteractive' };
    await run('debootstrap', ['--variant=minbase', `--include=${DEBIAN_PACKAGES.join(',')}`, DEBIAN_SUITE, tmp, src.mirror], { env, timeoutMs: 30 * 60_000 });
    log(`debootstrap done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const release = await kernelRelease(tmp);
    await configureTree(tmp, release);
    log(`configured: cloud-init datasources ConfigDrive, OpenStack; growpart; serial console; kernel ${release}`);
    await rename(tmp, dir).catch(async (e) => { if (!existsSync(dir)) throw e; }); // another build won the race
    return { dir, release };
  } finally {
    await removeTree(tmp, log);
  }
}

/**
 * Removes a (failed) debootstrap target: whatever debootstrap left mounted in it (proc, sys,
 * bind-mounted devices) is unmounted first, and rm stays on the tree's own filesystem.
 */
async function removeTree(root: string, log: (m: string) => void): Promise<void> {
  if (!existsSync(root)) return; // renamed into the cache
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' ')).filter((m): m is string => !!m && (m === root || m.startsWith(`${root}/`)))
    .sort((a, b) => b.length - a.length);
  // Cleanup of a build that already failed (or succeeded): say what is left rather than hide the
  // first error behind this one.
  for (const m of mounts) await run('umount', ['-l', m]).catch((e) => log(`warning: could not unmount ${m}: ${(e as Error).message}`));
  await run('rm', ['-rf', '--one-file-system', root]).catch((e) => log(`warning: could not remove ${root}: ${(e as Error).message}`));
}

async function kernelRelease(root: string): Promise<string> {
  const v = (await readdir(join(root, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
  const release = v?.slice('vmlinuz-'.length);
  if (!release || !existsSync(join(root, 'boot', `initrd.img-${release}`))) throw new Error(`${root}/boot holds no kernel and initrd`);
  return release;
}

/** Makes a debootstrapped tree a cloud image: config files, and nothing one instance must not share with another. */
async function configureTree(root: string, release: string): Promise<void> {
  for (const [path, text] of Object.entries(debianTreeFiles(release))) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
  await mkdir(join(root, 'etc/network/interfaces.d'), { recursive: true });
  // Each instance gets its own machine-id (systemd, first boot) and ssh host keys (cloud-init).
  await writeFile(join(root, 'etc/machine-id'), '');
  await rm(join(root, 'var/lib/dbus/machine-id'), { force: true });
  await symlink('/etc/machine-id', join(root, 'var/lib/dbus/machine-id')).catch(ifExists);
  for (const f of await readdir(join(root, 'etc/ssh'))) if (f.startsWith('ssh_host_')) await unlink(join(root, 'etc/ssh', f));
  // What apt downloaded is not part of the image.
  for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
    for (const f of await readdir(join(root, d)).catch(() => [] as string[])) if (f !== 'partial' && f !== 'lock') await rm(join(root, d, f), { recursive: true, force: true });
  }
  await rm(join(root, 'var/lib/cloud'), { recursive: true, force: true });
  await chmod(join(root, 'root'), 0o700);
  await chmod(root, 0o755); // mkdtemp made it 0700: it becomes the guest's /
}

/** Bytes from "2G", "1536M", "2147483648". */
export function parseSize(s: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(s.trim());
  if (!m) throw new ConfigError(`--size ${s}: expected a size like 2G or 1536M`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}

export async function buildDebianImage(o: BuildOptions, cacheDir: string, work: string, rawOut: string): Promise<Omit<BuiltImage, 'path' | 'format'>> {
  const log = o.log ?? (() => undefined);
  const size = parseSize(o.size ?? '2G');
  const partitionMb = Math.floor(size / 2 ** 20) - 1;
  if (partitionMb < 1024) throw new ConfigError(`--size ${o.size}: a Debian cloud image needs at least 1G`);
  const { dir, release } = await debianTree(cacheDir, log);
  const { stdout } = await run('du', ['-sm', dir]);
  const used = Number(stdout.split(/\s/)[0]);
  if (used * 1.15 > partitionMb) throw new Error(`--size ${o.size}: the root tree takes ${used} MiB; give at least ${Math.ceil((used * 1.15 + 1) / 1024)}G`);
  log(`disk: ${partitionMb + 1} MiB, MBR + GRUB (i386-pc) + ext4 "${DEBIAN_ROOT_LABEL}" from the ${used} MiB tree`);
  await buildBootDisk({ rootDir: dir, label: DEBIAN_ROOT_LABEL, partitionMb, cacheDir, output: rawOut, workDir: work });
  return debianImageFacts(size, release);
}

/** What the build reports about a debian image: Glance's min_disk/min_ram and the properties to upload it with. */
export function debianImageFacts(sizeBytes: number, release: string): Omit<BuiltImage, 'path' | 'format'> {
  return {
    kind: 'debian', kernel: release,
    // systemd + cloud-init want 512 MiB; the disk must hold the image's virtual size.
    minDiskGb: Math.ceil(sizeBytes / 2 ** 30), minRamMb: 512,
    properties: {
      architecture: 'x86_64', hypervisor_type: 'qemu', vm_mode: 'hvm', os_type: 'linux', hw_disk_bus: 'virtio',
      os_distro: 'debian', os_version: DEBIAN_VERSION, os_admin_user: 'debian',
    },
  };
}
