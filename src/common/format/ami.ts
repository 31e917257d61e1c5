// The EC2-style triple: ami (a raw machine disk), aki (a kernel), ari (a ramdisk). Kernels and
// ramdisks come in many shapes, so these inspectors recognise the common ones for the record and
// only refuse data that is plainly a disk image container (qcow2, vmdk…): see ./index.ts.
import { FormatInspector, u32le } from './inspector.ts';

export class AkiInspector extends FormatInspector {
  readonly format = 'aki';
  private kind?: string;
  constructor() { super(); this.capture('head', 0, 1024); }
  protected override onRegion(_n: string, b: Buffer): void { this.kind = kernelKind(b); }
  protected override onTruncated(n: string): void { this.kind = kernelKind(this.partial(n)); }
  matches(): boolean { return this.kind !== undefined; }
  override safetyCheck(): string[] { return []; }
  override details(): Record<string, unknown> { return { kernel: this.kind ?? null }; }
}

export class AriInspector extends FormatInspector {
  readonly format = 'ari';
  private kind?: string;
  constructor() { super(); this.capture('head', 0, 16); }
  protected override onRegion(_n: string, b: Buffer): void { this.kind = ramdiskKind(b); }
  protected override onTruncated(n: string): void { this.kind = ramdiskKind(this.partial(n)); }
  matches(): boolean { return this.kind !== undefined; }
  override safetyCheck(): string[] { return []; }
  override details(): Record<string, unknown> { return { ramdisk: this.kind ?? null }; }
}

export function kernelKind(b: Buffer): string | undefined {
  if (b.length >= 0x206 && b.toString('latin1', 0x202, 0x206) === 'HdrS') return 'linux-x86-bzimage';
  if (b.length >= 0x3c && b.toString('latin1', 0x38, 0x3c) === 'ARMd') return 'linux-arm64-image';
  if (b.length >= 0x28 && u32le(b, 0x24) === 0x016f2818) return 'linux-arm-zimage';
  if (b.length >= 4 && b.toString('latin1', 0, 4) === '\x7fELF') return 'elf';
  if (b.length >= 2 && b.toString('latin1', 0, 2) === 'MZ') return 'pe';
  return undefined;
}

export function ramdiskKind(b: Buffer): string | undefined {
  const h = b.toString('hex');
  if (h.startsWith('1f8b')) return 'gzip';
  if (b.toString('latin1', 0, 6) === '070701' || b.toString('latin1', 0, 6) === '070702') return 'cpio';
  if (h.startsWith('fd377a585a00')) return 'xz';
  if (h.startsWith('28b52ffd')) return 'zstd';
  if (h.startsWith('02214c18') || h.startsWith('04224d18')) return 'lz4';
  if (b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (h.startsWith('5d0000')) return 'lzma';
  return undefined;
}
