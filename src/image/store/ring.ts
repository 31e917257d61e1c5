// The shared buffer an upload's bytes pass through: written to disk from it and hashed in place
// by the worker threads (hashpool.ts). It must be page-aligned, because the store may write with
// O_DIRECT, and the kernel refuses (EINVAL) a direct write from an unaligned buffer. JavaScript
// cannot see addresses, and a plain SharedArrayBuffer sits 16 bytes past a page boundary (it is
// malloc'd), so the memory comes from a shared WebAssembly.Memory, whose pages V8 maps
// page-aligned. Rings are kept for reuse: each one reserves address space with guard regions.

/** Bytes per slot: the unit written and hashed at a time. */
export const SLOT = 1 << 20;
/** Slots per ring: at most SLOTS × SLOT bytes of an upload are in memory at once. */
export const SLOTS = 8;
/** What O_DIRECT offsets and lengths must be multiples of (covers 512- and 4096-byte sectors). */
export const DIRECT_ALIGN = 4096;

const WASM_PAGE = 65536;
const KEEP = 4;
const spare: SharedArrayBuffer[] = [];

export function takeRing(): SharedArrayBuffer {
  const pages = (SLOT * SLOTS) / WASM_PAGE;
  return spare.pop() ?? (new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer);
}

/** Returns a ring nobody reads or writes any more (no write or hash still in flight). */
export function giveRing(ring: SharedArrayBuffer): void {
  if (spare.length < KEEP) spare.push(ring);
}

/** `n` rounded up to the next multiple of DIRECT_ALIGN. */
export function alignUp(n: number): number {
  return Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;
}
