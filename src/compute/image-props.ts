// The image properties compute interprets (Nova's ImageMetaProps enums), canonicalised as Nova
// does; an unknown value is refused at boot with Nova's message.
import { BadRequest } from '../common/errors.ts';
import type { ImageSpec } from './virt/driver.ts';

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

/** Glance's core image attributes: everything else on an image is a property. */
const CORE_ATTRIBUTES = new Set([
  'id', 'name', 'status', 'visibility', 'protected', 'os_hidden', 'checksum', 'os_hash_algo', 'os_hash_value', 'owner', 'size',
  'virtual_size', 'min_ram', 'min_disk', 'disk_format', 'container_format', 'created_at', 'updated_at', 'tags', 'self', 'file',
  'schema', 'direct_url', 'locations', 'stores',
]);

/**
 * The image as the instance remembers it, in system_metadata, so a later start, reboot or rescue
 * needs no image service (Nova's utils.get_system_metadata_from_image): `image_<prop>` for each
 * property, Nova's `image_min_ram` / `image_min_disk` / `image_disk_format` /
 * `image_container_format`, `image_base_image_ref`; and, outside the `image_` prefix (which a
 * snapshot inherits as properties), what a driver needs to verify a download: `base_image_info`.
 */
export function imageSystemMetadata(image: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(image)) {
    if (CORE_ATTRIBUTES.has(k) || v === null || v === undefined || typeof v === 'object') continue;
    out[`image_${k}`] = String(v);
  }
  out.image_base_image_ref = String(image.id);
  out.image_min_ram = String(image.min_ram ?? 0);
  out.image_min_disk = String(image.min_disk ?? 0);
  if (image.disk_format) out.image_disk_format = String(image.disk_format);
  if (image.container_format) out.image_container_format = String(image.container_format);
  out.base_image_info = JSON.stringify({
    name: image.name ?? null, checksum: image.checksum ?? null, os_hash_algo: image.os_hash_algo ?? null,
    os_hash_value: image.os_hash_value ?? null, size: image.size ?? null, virtual_size: image.virtual_size ?? null,
  });
  return out;
}

/** Drops what imageSystemMetadata wrote (a rebuild replaces the image). */
export function withoutImageSystemMetadata(sm: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(sm).filter(([k]) => !k.startsWith('image_') && k !== 'base_image_info'));
}

const NOVA_IMAGE_KEYS = new Set(['image_base_image_ref', 'image_min_ram', 'image_min_disk', 'image_disk_format', 'image_container_format']);

/** The ImageSpec a driver gets, from the instance's system_metadata alone; null for an instance without an image. */
export function imageSpecFromSystemMetadata(sm: Record<string, unknown>, imageRef: string | null): ImageSpec | null {
  const id = imageRef || (typeof sm.image_base_image_ref === 'string' ? sm.image_base_image_ref : '');
  if (!id) return null;
  const str = (k: string) => (typeof sm[k] === 'string' && sm[k] !== '' ? (sm[k] as string) : null);
  let info: Record<string, unknown> = {};
  try { info = JSON.parse(str('base_image_info') ?? '{}') ?? {}; } catch { info = {}; }
  const s = (v: unknown) => (typeof v === 'string' ? v : null);
  const n = (v: unknown) => (typeof v === 'number' ? v : null);
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(sm)) {
    if (k.startsWith('image_') && !NOVA_IMAGE_KEYS.has(k) && typeof v === 'string') properties[k.slice(6)] = v;
  }
  return {
    id, name: s(info.name), diskFormat: str('image_disk_format'), containerFormat: str('image_container_format'),
    checksum: s(info.checksum), osHashAlgo: s(info.os_hash_algo), osHashValue: s(info.os_hash_value),
    size: n(info.size), virtualSize: n(info.virtual_size),
    minDisk: Number(str('image_min_disk') ?? 0) || 0, minRam: Number(str('image_min_ram') ?? 0) || 0,
    properties,
  };
}
