// What the host offers, read from the host itself: CPUs and their model from /proc/cpuinfo,
// memory from /proc/meminfo, disk from statvfs of instances_path. The manager reports
// reserved_host_* to placement as each inventory's `reserved`, as Nova does.
import { readFileSync, statfsSync, existsSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import type { HostResources } from '../driver.ts';
import type { Accelerator, QemuVersion } from './accel.ts';

export function cpuInfo(): Record<string, unknown> {
  const text = (() => { try { return readFileSync('/proc/cpuinfo', 'utf8'); } catch { return ''; } })();
  const first = text.split('\n\n')[0] ?? '';
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
  const procs = text.split('\n\n').filter((b) => /^processor/m.test(b));
  const sockets = new Set(procs.map((b) => /^physical id\s*:\s*(\d+)/m.exec(b)?.[1] ?? '0')).size || 1;
  const cores = Number(field('cpu cores') ?? 1) || 1;
  const siblings = Number(field('siblings') ?? cores) || cores;
  return {
    arch: 'x86_64', model: field('model name') ?? 'unknown', vendor: field('vendor_id') === 'AuthenticAMD' ? 'AMD' : field('vendor_id') === 'GenuineIntel' ? 'Intel' : (field('vendor_id') ?? 'unknown'),
    features: (field('flags') ?? '').split(/\s+/).filter(Boolean).sort(),
    topology: { sockets, cores, threads: Math.max(1, Math.round(siblings / cores)) },
  };
}

export function memoryMb(): number {
  try {
    const kb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    return Math.floor(kb / 1024);
  } catch { return 0; }
}

export function diskGb(path: string): number {
  const s = statfsSync(path);
  return Math.floor((s.blocks * s.bsize) / 1024 ** 3);
}

export function hostResources(o: { instancesPath: string; accel: Accelerator; version: QemuVersion; hostname?: string }): HostResources {
  // libvirt reports the guest types the host can run: with KVM both kvm and qemu (TCG), else qemu only.
  const types = o.accel.accel === 'kvm' ? ['kvm', 'qemu'] : ['qemu'];
  return {
    vcpus: cpus().length, memoryMb: memoryMb(), localGb: diskGb(o.instancesPath),
    hypervisorType: 'QEMU', hypervisorVersion: o.version.number, hypervisorHostname: o.hostname ?? hostname(),
    cpuInfo: cpuInfo(),
    supportedInstances: types.flatMap((t) => [['x86_64', t, 'hvm'], ['i686', t, 'hvm']] as [string, string, string][]),
  };
}

export const OVMF_CODE = ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_CODE.fd'];
export const OVMF_VARS = ['/usr/share/OVMF/OVMF_VARS_4M.fd', '/usr/share/OVMF/OVMF_VARS.fd'];
export const ovmf = (): { code: string; vars: string } | undefined => {
  const code = OVMF_CODE.find(existsSync);
  const vars = OVMF_VARS.find(existsSync);
  return code && vars ? { code, vars } : undefined;
};

/** Capabilities as os-traits (what libvirt's driver reports for a QEMU host). */
export function capabilityTraits(): string[] {
  const t = [
    'COMPUTE_NET_VIF_MODEL_VIRTIO', 'COMPUTE_NET_VIF_MODEL_E1000', 'COMPUTE_NET_VIF_MODEL_E1000E', 'COMPUTE_NET_VIF_MODEL_RTL8139',
    'COMPUTE_NET_VIF_MODEL_NE2K_PCI', 'COMPUTE_NET_VIF_MODEL_PCNET',
    'COMPUTE_STORAGE_BUS_VIRTIO', 'COMPUTE_STORAGE_BUS_IDE', 'COMPUTE_STORAGE_BUS_SCSI', 'COMPUTE_STORAGE_BUS_SATA', 'COMPUTE_STORAGE_BUS_USB',
    'COMPUTE_GRAPHICS_MODEL_VGA', 'COMPUTE_GRAPHICS_MODEL_CIRRUS', 'COMPUTE_GRAPHICS_MODEL_VIRTIO', 'COMPUTE_GRAPHICS_MODEL_QXL', 'COMPUTE_GRAPHICS_MODEL_NONE',
    'COMPUTE_IMAGE_TYPE_QCOW2', 'COMPUTE_IMAGE_TYPE_RAW', 'COMPUTE_IMAGE_TYPE_AMI', 'COMPUTE_IMAGE_TYPE_AKI', 'COMPUTE_IMAGE_TYPE_ARI',
    'COMPUTE_FIRMWARE_BIOS', 'COMPUTE_GRAPHICS_MODEL_BOCHS',
  ];
  if (ovmf()) t.push('COMPUTE_FIRMWARE_UEFI');
  return t.sort();
}
