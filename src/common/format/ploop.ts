// Virtuozzo ploop: recognised by its header signature so that it is not taken for raw data.
import { FormatInspector, u32le, u64le } from './inspector.ts';

const SIGNATURES = ['WithoutFreeSpace', 'WithouFreSpacExt'];

export class PloopInspector extends FormatInspector {
  readonly format = 'ploop';
  private header?: Buffer;
  constructor() { super(); this.capture('header', 0, 64); }
  protected override onRegion(_n: string, b: Buffer): void {
    if (SIGNATURES.includes(b.toString('latin1', 0, 16))) this.header = Buffer.from(b);
  }
  matches(): boolean { return this.header !== undefined; }
  override virtualSize(): number | null {
    if (!this.header) return null;
    // v1 keeps a 32-bit sector count at 36; v2 ("WithouFreSpacExt") a 64-bit one.
    const v2 = this.header.toString('latin1', 0, 16) === SIGNATURES[1];
    return (v2 ? u64le(this.header, 36) : u32le(this.header, 36)) * 512;
  }
  override safetyCheck(): string[] { return []; }
}
