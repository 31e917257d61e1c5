// The compute host checks of `stratus status upgrade-check` for real guests (compute_driver =
// qemu): what a careful operator looks at before booting one — the accelerator (KVM or the TCG
// fallback, and why), free space under instances_path, the image cache (_base), the QEMU tools
// and their versions, the metadata proxy's shared secret. Each answers nova-status's Success (0),
// Warning (1) or Failure (2) with details; under another driver they say they do not apply.
import { existsSync } from 'node:fs';
import { access, constants, readdir, readFile, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../common/config.ts';
import { ifMissing } from '../common/files.ts';
import { instancesPath } from '../compute/workers.ts';
import { baseName } from '../compute/virt/qemu/image-cache.ts';
import { qemuVersion } from '../compute/virt/qemu/accel.ts';
import { run } from '../guest/run.ts';
import '../compute/virt/qemu/config.ts';
import '../compute/metadata/config.ts';

export type CheckResult = { code: 0 | 1 | 2; details?: string };
export type Check = [name: string, run: () => Promise<CheckResult>];

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** Free space under instances_path below which new disks soon fail (one flavor's root disk and a base image). */
export const LOW_SPACE_BYTES = 10 * GiB;

/** What the checks read of the host (tests give their own). */
export interface HostFacts {
  cpuinfo: () => Promise<string>;
  kvmDevice: string;
  lowSpaceBytes: number;
}
const realHost: HostFacts = { cpuinfo: () => readFile('/proc/cpuinfo', 'utf8').catch(() => ''), kvmDevice: '/dev/kvm', lowSpaceBytes: LOW_SPACE_BYTES };

export function hostChecks(config: Config, host: HostFacts = realHost): Check[] {
  const driver = config.get<string>('DEFAULT', 'compute_driver');
  const qemuOnly = (fn: () => Promise<CheckResult>) => async (): Promise<CheckResult> =>
    driver === 'qemu' ? fn() : { code: 0, details: `compute_driver = ${driver}: applies to the qemu driver only.` };
  const dir = instancesPath(config);
  return [
    ['Accelerator', qemuOnly(() => acceleratorCheck(config, dir, host))],
    ['Instances path free space', qemuOnly(() => freeSpaceCheck(dir, host.lowSpaceBytes))],
    ['Image cache', qemuOnly(() => imageCacheCheck(config, dir))],
    ['QEMU tools', qemuOnly(() => toolsCheck(config))],
    ['Metadata proxy shared secret', async () => config.get<string | undefined>('neutron', 'metadata_proxy_shared_secret')
      ? { code: 0 }
      : { code: 1, details: '[neutron] metadata_proxy_shared_secret is not set: the metadata service refuses every instance request (403), so guests on --nic auto get no metadata (config drives still work). `stratus up` generates one; set the same value for the metadata service and the compute agents.' }],
  ];
}

async function acceleratorCheck(config: Config, dir: string, host: HostFacts): Promise<CheckResult> {
  const kvmUsable = await access(host.kvmDevice, constants.R_OK | constants.W_OK).then(() => true, () => false);
  const vt = ((await host.cpuinfo()).match(/^flags\s*:.*\b(vmx|svm)\b/gm) ?? []).length;
  const tcgWhy = 'Guests run under TCG (QEMU\'s emulation, no hardware virtualization): they work, about ten times slower, and a systemd guest takes a minute or more to boot.';
  const configured = config.get<string | undefined>('libvirt', 'virt_type');
  if (configured === 'kvm') {
    return kvmUsable ? { code: 0, details: '[libvirt] virt_type = kvm.' }
      : { code: 2, details: `[libvirt] virt_type = kvm but ${host.kvmDevice} is missing or not accessible: every guest will fail to start. Set virt_type = qemu or leave it unset to probe.` };
  }
  if (configured === 'qemu') return { code: 1, details: `[libvirt] virt_type = qemu. ${tcgWhy}` };
  // The agent's probe verdict (accel.ts), when it has run on this host.
  const cacheDir = config.get<string | undefined>('qemu', 'guest_cache_dir') ?? join(dir, '_guest');
  const verdict = await readFile(join(cacheDir, 'accelerator.json'), 'utf8').then((t) => JSON.parse(t).result as { accel: string; detail: string }, () => undefined);
  if (verdict?.accel === 'kvm') return { code: 0, details: `KVM (the compute agent's probe: ${verdict.detail}).` };
  if (verdict?.accel === 'tcg') return { code: 1, details: `TCG fallback (the compute agent's probe: ${verdict.detail}). ${tcgWhy}` };
  if (!vt || !kvmUsable) {
    const why = !vt ? "the CPU flags show no vmx or svm (egrep -c '(vmx|svm)' /proc/cpuinfo is 0)" : `${host.kvmDevice} is missing or not accessible`;
    return { code: 1, details: `No KVM: ${why}; the agent will fall back to TCG (as Nova with virt_type = qemu). ${tcgWhy}` };
  }
  return { code: 0, details: 'KVM looks usable (vmx/svm and /dev/kvm); the compute agent confirms it with a probe guest at start.' };
}

async function freeSpaceCheck(dir: string, low: number): Promise<CheckResult> {
  let at = dir;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  const fs = await statfs(at);
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const text = `${(free / GiB).toFixed(1)} GiB free of ${(total / GiB).toFixed(1)} GiB under ${dir}`;
  if (existsSync(dir) && !(await access(dir, constants.W_OK).then(() => true, () => false))) return { code: 2, details: `${dir} is not writable: no guest disk can be made.` };
  if (free < low) return { code: 1, details: `${text}: below ${(low / GiB).toFixed(1)} GiB, new instances may go to ERROR for lack of disk (root disks grow as guests write; a snapshot needs the disk's size again).` };
  return { code: 0, details: `${text}.` };
}

async function imageCacheCheck(config: Config, dir: string): Promise<CheckResult> {
  const base = join(dir, config.get<string>('image_cache', 'subdirectory_name'));
  const names = await readdir(base).catch(ifMissing);
  if (!names) return { code: 0, details: `No image cache yet (${base}).` };
  const used = new Set<string>();
  for (const d of await readdir(dir).catch(() => [] as string[])) {
    if (!/^[0-9a-f-]{36}$/.test(d)) continue;
    const g = await readFile(join(dir, d, 'guest.json'), 'utf8').then((t) => JSON.parse(t) as { images?: string[] }, () => undefined);
    for (const i of g?.images ?? []) used.add(baseName(i));
  }
  let bytes = 0, unusedBytes = 0, unused = 0, entries = 0, partial = 0;
  for (const n of names) {
    if (n.includes('.part-')) { partial++; continue; }
    if (!/^[0-9a-f]{40}$/.test(n)) continue;
    const st = await stat(join(base, n));
    entries++;
    bytes += st.blocks * 512;
    if (!used.has(n)) { unused++; unusedBytes += st.blocks * 512; }
  }
  const keep = config.get<boolean>('image_cache', 'remove_unused_base_images');
  const age = config.get<number>('image_cache', 'remove_unused_original_minimum_age_seconds');
  const mib = (b: number) => `${Math.round(b / MiB)} MiB`;
  let details = `${entries} cached base image(s) in ${base}, ${mib(bytes)}; ${unused} not used by any instance (${mib(unusedBytes)})`;
  details += keep ? `, removed by the cache manager once unused for ${age} s.` : '.';
  if (partial) return { code: 1, details: `${details} ${partial} interrupted download(s) (*.part-*) are left: remove them while the agent is stopped.` };
  if (!keep && unused) return { code: 1, details: `${details} [image_cache] remove_unused_base_images = false: they are never removed.` };
  return { code: 0, details };
}

async function toolsCheck(config: Config): Promise<CheckResult> {
  const binary = config.get<string>('qemu', 'binary');
  const found: string[] = [];
  try { found.push((await qemuVersion(binary)).text); } catch (e) {
    return { code: 2, details: `${binary} is not usable (${(e as Error).message}): install qemu-system-x86 or set [qemu] binary.` };
  }
  try { found.push((await run('qemu-img', ['--version'])).stdout.split('\n')[0]!.trim()); } catch (e) {
    return { code: 2, details: `qemu-img is not usable (${(e as Error).message}): install qemu-utils.` };
  }
  // Config drives need no tool unless [DEFAULT] mkisofs_cmd names one (the built-in writer otherwise).
  const iso = config.get<string | undefined>('DEFAULT', 'mkisofs_cmd');
  if (!iso) return { code: 0, details: `${found.join('; ')}; config drives written by the built-in ISO 9660 writer.` };
  const isoOk = await run(iso, ['--version']).then(() => true, () => false);
  if (!isoOk) return { code: 1, details: `${found.join('; ')}. ${iso} is missing: config drives cannot be built (install it, or unset [DEFAULT] mkisofs_cmd for the built-in writer).` };
  return { code: 0, details: `${found.join('; ')}; ${iso} for config drives.` };
}
