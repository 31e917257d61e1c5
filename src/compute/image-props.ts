// The image properties compute interprets (Nova's ImageMetaProps enums), canonicalised as Nova
// does; an unknown value is refused at boot with Nova's message.
import { BadRequest } from '../common/errors.ts';

export const ARCHITECTURES = ['alpha', 'armv6', 'armv7l', 'armv7b', 'aarch64', 'cris', 'i686', 'ia64', 'lm32', 'm68k', 'microblaze', 'microblazeel', 'mips', 'mipsel', 'mips64', 'mips64el', 'openrisc', 'parisc', 'parisc64', 'ppc', 'ppcle', 'ppc64', 'ppc64le', 'ppcemb', 's390', 's390x', 'sh4', 'sh4eb', 'sparc', 'sparc64', 'unicore32', 'x86_64', 'xtensa', 'xtensaeb'];
export const HV_TYPES = ['baremetal', 'bhyve', 'docker', 'fake', 'hyperv', 'ironic', 'kqemu', 'kvm', 'lxc', 'lxd', 'openvz', 'parallels', 'virtuozzo', 'phyp', 'qemu', 'test', 'uml', 'vbox', 'vmware', 'xen', 'zvm', 'powervm'];
export const VM_MODES = ['hvm', 'xen', 'uml', 'exe'];

export function canonicalArch(a: string): string | undefined {
  let x = a.toLowerCase();
  if (/^i[3-6]86$/.test(x)) x = 'i686';
  else if (x === 'amd64' || x === 'x64') x = 'x86_64';
  else if (x === 'powerpc') x = 'ppc';
  else if (x === 'arm64') x = 'aarch64';
  return ARCHITECTURES.includes(x) ? x : undefined;
}

export function canonicalVmMode(m: string): string | undefined {
  let x = m.toLowerCase();
  if (x === 'pv') x = 'xen';
  if (x === 'hv' || x === 'baremetal') x = 'hvm';
  return VM_MODES.includes(x) ? x : undefined;
}

export function canonicalHvType(h: string): string | undefined {
  const x = h.toLowerCase();
  return HV_TYPES.includes(x) ? x : undefined;
}

/** Image properties the scheduler and driver use, checked and canonicalised. */
export function imageProps(image: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const bad = (m: string) => new BadRequest(`Invalid image metadata. Error: ${m}`);
  for (const [k, v] of Object.entries(image)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue;
    const s = String(v);
    if (k === 'architecture' || k === 'hw_architecture') {
      const a = canonicalArch(s);
      if (!a) throw bad(`Architecture name '${s}' is not recognised`);
      out.hw_architecture = a;
    } else if (k === 'hypervisor_type' || k === 'img_hv_type') {
      const h = canonicalHvType(s);
      if (!h) throw bad(`Hypervisor virt type '${s}' is not recognised`);
      out.img_hv_type = h;
    } else if (k === 'vm_mode' || k === 'hw_vm_mode') {
      const m = canonicalVmMode(s);
      if (!m) throw bad(`Virtual machine mode '${s}' is not recognised`);
      out.hw_vm_mode = m;
    } else if (k.startsWith('hw_') || k.startsWith('img_') || k.startsWith('os_') || k.startsWith('trait:') || k === 'hypervisor_version_requires') {
      out[k] = s;
    }
  }
  return out;
}
