// VHD (Virtual PC). A dynamic or differencing disk carries a copy of its footer at offset 0; a
// fixed disk only at the end, so the last 512 bytes are kept as the stream goes by. Differencing
// disks name a parent file on the host and are refused.
import { FormatInspector, u32be, u64be } from './inspector.ts';

const COOKIE = 'conectix';
const DISK_TYPES: Record<number, string> = { 2: 'fixed', 3: 'dynamic', 4: 'differencing' };

export class VhdInspector extends FormatInspector {
  readonly format = 'vhd';
  protected override readonly tailLength = 512;
  private footer?: Buffer;
  private where?: 'head' | 'tail';

  constructor() {
    super();
    this.capture('head', 0, 512);
  }

  protected override onRegion(name: string, b: Buffer): void {
    if (name === 'head' && b.toString('latin1', 0, 8) === COOKIE) { this.footer = Buffer.from(b); this.where = 'head'; }
  }

  protected override onTail(tail: Buffer): void {
    if (!this.footer && tail.length === 512 && tail.toString('latin1', 0, 8) === COOKIE) { this.footer = Buffer.from(tail); this.where = 'tail'; }
  }

  matches(): boolean { return this.footer !== undefined; }

  diskType(): string | undefined {
    return this.footer ? DISK_TYPES[u32be(this.footer, 60)] ?? `unknown (${u32be(this.footer, 60)})` : undefined;
  }

  override virtualSize(): number | null {
    return this.footer ? u64be(this.footer, 48) : null;
  }

  override safetyCheck(): string[] {
    const out = super.safetyCheck();
    if (!this.footer) return ['vhd footer is missing'];
    const type = u32be(this.footer, 60);
    if (type === 4) out.push('vhd is a differencing disk that names a parent file');
    else if (type !== 2 && type !== 3) out.push(`vhd disk type ${type} is not supported`);
    // A checksum mismatch means a corrupt or forged footer.
    let sum = 0;
    for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += this.footer[i];
    if (((~sum) >>> 0) !== u32be(this.footer, 64)) out.push('vhd footer checksum is wrong');
    return out;
  }

  override details(): Record<string, unknown> { return { disk_type: this.diskType() ?? null, footer_at: this.where ?? null }; }
}
