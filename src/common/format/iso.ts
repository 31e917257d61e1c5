// ISO 9660 (and UDF) optical media. The volume descriptors start at sector 16 (32 KiB); the
// primary volume descriptor gives the volume size.
import { FormatInspector, u16le, u32le } from './inspector.ts';

const START = 16 * 2048;
const COUNT = 16;

export class IsoInspector extends FormatInspector {
  readonly format = 'iso';
  private iso9660 = false;
  private udf = false;
  private volumeSize?: number;

  constructor() {
    super();
    this.capture('descriptors', START, COUNT * 2048);
  }

  protected override onRegion(_name: string, b: Buffer): void { this.parse(b); }
  protected override onTruncated(name: string): void { this.parse(this.partial(name)); }

  private parse(b: Buffer): void {
    for (let i = 0; (i + 1) * 2048 <= b.length; i++) {
      const d = b.subarray(i * 2048, (i + 1) * 2048);
      const id = d.toString('latin1', 1, 6);
      if (id === 'CD001') {
        this.iso9660 = true;
        if (d[0] === 1 && this.volumeSize === undefined) this.volumeSize = u32le(d, 80) * u16le(d, 128);
        if (d[0] === 255) break;
      } else if (['BEA01', 'NSR02', 'NSR03', 'TEA01'].includes(id)) {
        this.udf = true;
      } else if (i > 0 && !this.iso9660 && !this.udf) break;
    }
  }

  matches(): boolean { return this.iso9660 || this.udf; }

  override virtualSize(): number | null { return this.volumeSize ?? (this.matches() ? this.total : null); }

  override safetyCheck(): string[] { return []; }

  override details(): Record<string, unknown> { return { iso9660: this.iso9660, udf: this.udf }; }
}
