// VHDX (Hyper-V). The virtual size sits in the metadata region, found through the region table
// at 192 KiB. A parent locator (a differencing disk) names other files and is refused.
import { FormatInspector, guidBytes, u16le, u32le, u64le } from './inspector.ts';

const SIGNATURE = 'vhdxfile';
const REGION_TABLE = 192 * 1024;
const METADATA_REGION = guidBytes('8B7CA206-4790-4B9A-B8FE-575F050F886E');
const VIRTUAL_DISK_SIZE = guidBytes('2FA54224-CD1B-4876-B211-5DBED83BF4B8');
const FILE_PARAMETERS = guidBytes('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
const PARENT_LOCATOR = guidBytes('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C');

export class VhdxInspector extends FormatInspector {
  readonly format = 'vhdx';
  private signed = false;
  private metaOffset?: number;
  private items = new Map<string, { offset: number; length: number }>();
  private volumeSize?: number;
  private hasParent = false;
  private problems: string[] = [];

  constructor() {
    super();
    this.capture('signature', 0, 8);
  }

  protected override onRegion(name: string, b: Buffer): void {
    if (name === 'signature') {
      if (b.toString('latin1') !== SIGNATURE) return;
      this.signed = true;
      this.capture('regions', REGION_TABLE, 64 * 1024);
    } else if (name === 'regions') {
      if (b.toString('latin1', 0, 4) !== 'regi') { this.problems.push('vhdx region table signature is missing'); return; }
      const count = u32le(b, 8);
      if (count > 2047) { this.problems.push(`vhdx region table has ${count} entries`); return; }
      for (let i = 0; i < count; i++) {
        const e = 16 + i * 32;
        if (b.subarray(e, e + 16).equals(METADATA_REGION)) {
          this.metaOffset = u64le(b, e + 16);
          const len = u32le(b, e + 24);
          this.capture('metadata', this.metaOffset, Math.min(len, 1 << 20));
        }
      }
      if (this.metaOffset === undefined) this.problems.push('vhdx has no metadata region');
    } else if (name === 'metadata') {
      if (b.toString('latin1', 0, 8) !== 'metadata') { this.problems.push('vhdx metadata table signature is missing'); return; }
      const count = u16le(b, 10);
      if (count > 2047) { this.problems.push(`vhdx metadata table has ${count} entries`); return; }
      for (let i = 0; i < count; i++) {
        const e = 32 + i * 32;
        if (e + 32 > b.length) break;
        const id = b.subarray(e, e + 16);
        const item = { offset: u32le(b, e + 16), length: u32le(b, e + 20) };
        if (id.equals(VIRTUAL_DISK_SIZE) && item.offset + 8 <= b.length) this.volumeSize = u64le(b, item.offset);
        if (id.equals(PARENT_LOCATOR)) this.hasParent = true;
        if (id.equals(FILE_PARAMETERS) && item.offset + 8 <= b.length && (u32le(b, item.offset + 4) & 2)) this.hasParent = true;
        this.items.set(id.toString('hex'), item);
      }
      if (this.volumeSize === undefined) this.problems.push('vhdx metadata has no virtual disk size');
    }
  }

  protected override onTruncated(name: string): void {
    if (name !== 'signature') this.problems.push(`vhdx ${name} lies past the end of the image`);
  }

  matches(): boolean { return this.signed; }

  override virtualSize(): number | null { return this.volumeSize ?? null; }

  override safetyCheck(): string[] {
    const out = [...super.safetyCheck(), ...this.problems];
    if (this.hasParent) out.push('vhdx is a differencing disk that names a parent file');
    return out;
  }
}
