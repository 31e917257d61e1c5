// VMDK. Only single-file sparse variants are accepted (monolithicSparse, streamOptimized): their
// one extent is the file itself. Any other extent (FLAT, VMFS…), a second extent, a descriptor-only
// file or a parent link would make qemu open other files on the compute host.
import { FormatInspector, u32le, u64le } from './inspector.ts';

const MAGIC = 'KDMV';
const DESCRIPTOR_TEXT = '# Disk DescriptorFile';

export interface VmdkExtent { access: string; sectors: number; type: string; file?: string; offset?: number }

export class VmdkInspector extends FormatInspector {
  readonly format = 'vmdk';
  private header?: { version: number; capacity: number; descOffset: number; descSize: number };
  private descriptorOnly = false;
  private descriptor?: string;
  private problems: string[] = [];

  constructor(private readonly allowedTypes: string[] = ['streamOptimized', 'monolithicSparse']) {
    super();
    this.capture('header', 0, 512);
    // A descriptor-only VMDK is a small text file; read enough of it to list its extents.
    this.capture('text', 0, 65536);
  }

  protected override onRegion(name: string, b: Buffer): void {
    if (name === 'header') {
      if (b.toString('latin1', 0, 4) === MAGIC) {
        const h = { version: u32le(b, 4), capacity: u64le(b, 12), descOffset: u64le(b, 28), descSize: u64le(b, 36) };
        this.header = h;
        if (h.descOffset === 0 || h.descSize === 0) { this.problems.push('vmdk has no embedded descriptor'); return; }
        const bytes = h.descSize * 512;
        if (bytes > 1 << 20) { this.problems.push(`vmdk descriptor of ${bytes} bytes is too large`); return; }
        this.capture('descriptor', h.descOffset * 512, bytes);
      }
    } else if (name === 'text') {
      this.readText(b);
    } else if (name === 'descriptor') {
      this.descriptor = b.toString('latin1').replace(/\0[\s\S]*$/, '');
    }
  }

  protected override onTruncated(name: string): void {
    if (name === 'header' && this.partial(name).toString('latin1').startsWith(MAGIC)) this.problems.push('vmdk header is truncated');
    if (name === 'text') this.readText(this.partial(name));
    if (name === 'descriptor') this.problems.push('vmdk descriptor lies outside the image');
  }

  private readText(b: Buffer): void {
    if (b.toString('latin1', 0, DESCRIPTOR_TEXT.length) !== DESCRIPTOR_TEXT) return;
    this.descriptorOnly = true;
    this.descriptor = b.toString('latin1').replace(/\0[\s\S]*$/, '');
  }

  matches(): boolean {
    return this.header !== undefined || this.descriptorOnly || this.problems.includes('vmdk header is truncated');
  }

  override virtualSize(): number | null {
    if (this.header) return this.header.capacity * 512;
    const ext = this.extents();
    return ext.length ? ext.reduce((s, e) => s + e.sectors * 512, 0) : null;
  }

  createType(): string | undefined {
    return /^\s*createType\s*=\s*"([^"]*)"/m.exec(this.descriptor ?? '')?.[1];
  }

  extents(): VmdkExtent[] {
    const out: VmdkExtent[] = [];
    for (const line of (this.descriptor ?? '').split(/\r?\n/)) {
      const m = /^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)")?(?:\s+(\d+))?/.exec(line);
      if (m) out.push({ access: m[1], sectors: Number(m[2]), type: m[3].toUpperCase(), file: m[4], offset: m[5] === undefined ? undefined : Number(m[5]) });
    }
    return out;
  }

  override safetyCheck(): string[] {
    const out = [...super.safetyCheck(), ...this.problems];
    if (this.descriptorOnly) out.push('vmdk is a descriptor file whose data lives in other files');
    if (this.descriptor === undefined) {
      if (!out.length) out.push('vmdk descriptor could not be read');
      return out;
    }
    const type = this.createType();
    if (!type) out.push('vmdk descriptor has no createType');
    else if (!this.allowedTypes.includes(type)) out.push(`vmdk create type "${type}" is not allowed (allowed: ${this.allowedTypes.join(', ')})`);
    const extents = this.extents();
    if (extents.length === 0) out.push('vmdk descriptor lists no extent');
    if (extents.length > 1) out.push(`vmdk lists ${extents.length} extents; only a single extent inside the image is allowed`);
    for (const e of extents) {
      if (e.type !== 'SPARSE') out.push(`vmdk extent of type ${e.type}${e.file ? ` ("${e.file}")` : ''} lies outside the image`);
      if (e.file && /[/\\]/.test(e.file)) out.push(`vmdk extent names a path ("${e.file}")`);
    }
    if (this.header && extents.length === 1 && extents[0].sectors !== this.header.capacity) {
      out.push(`vmdk extent size (${extents[0].sectors} sectors) differs from the header capacity (${this.header.capacity})`);
    }
    if (/^\s*parentFileNameHint\s*=/m.test(this.descriptor)) out.push('vmdk has a parent (backing) file');
    const parentCid = /^\s*parentCID\s*=\s*(\w+)/m.exec(this.descriptor)?.[1];
    if (parentCid && parentCid.toLowerCase() !== 'ffffffff') out.push('vmdk is a delta link of a parent image');
    return [...new Set(out)];
  }

  override details(): Record<string, unknown> {
    return { create_type: this.createType() ?? null, extents: this.extents(), version: this.header?.version ?? null };
  }
}
