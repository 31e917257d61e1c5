// VDI (VirtualBox). Only normal (dynamic) and fixed images; differencing ones link to a parent.
import { FormatInspector, u32le, u64le } from './inspector.ts';

const SIGNATURE = 0xbeda107f;
const TYPES: Record<number, string> = { 1: 'normal', 2: 'fixed', 3: 'undo', 4: 'differencing' };

export class VdiInspector extends FormatInspector {
  readonly format = 'vdi';
  private header?: Buffer;

  constructor() {
    super();
    this.capture('header', 0, 512);
  }

  protected override onRegion(_name: string, b: Buffer): void {
    if (u32le(b, 0x40) === SIGNATURE) this.header = Buffer.from(b);
  }

  protected override onTruncated(): void {
    const got = this.partial('header');
    if (got.length >= 0x44 && u32le(got, 0x40) === SIGNATURE) this.unreadable.push('vdi header (truncated)');
  }

  matches(): boolean { return this.header !== undefined || this.unreadable.length > 0; }

  override virtualSize(): number | null { return this.header ? u64le(this.header, 0x170) : null; }

  override safetyCheck(): string[] {
    const out = super.safetyCheck();
    if (!this.header) return out.length ? out : ['vdi header is missing'];
    const type = u32le(this.header, 0x4c);
    if (type !== 1 && type !== 2) out.push(`vdi image type ${TYPES[type] ?? type} is not supported`);
    if (!this.header.subarray(440, 456).equals(Buffer.alloc(16))) out.push('vdi image links to a parent image');
    return out;
  }

  override details(): Record<string, unknown> { return this.header ? { type: TYPES[u32le(this.header, 0x4c)] ?? null } : {}; }
}
