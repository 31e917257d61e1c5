// LUKS (dm-crypt's on-disk format), v1 and v2. Glance has no LUKS disk_format: an encrypted
// volume uploaded as raw (or as anything else) is refused as a content mismatch, because a
// guest handed it as a plain disk could get qemu to open it with a key it controls, and because
// "raw" that is not raw makes every later inspection meaningless. Recognised here so it is never
// taken for raw data; the virtual size is what follows the header (the payload).
import { FormatInspector, u32be, u64be } from './inspector.ts';

const MAGIC = Buffer.from('LUKS\xba\xbe', 'latin1');
/** v1: the fixed 592-byte header; v2: the 4 KiB binary header before its JSON area. */
const V1_HEADER = 592;
const V2_BINARY = 4096;

export class LuksInspector extends FormatInspector {
  readonly format = 'luks';
  private version?: number;
  /** Where the encrypted payload starts, from the header (v1) or the JSON metadata (v2). */
  private payloadOffset?: number;
  private readonly problems: string[] = [];

  constructor() {
    super();
    this.capture('header', 0, V2_BINARY);
  }

  protected override onRegion(name: string, b: Buffer): void {
    if (name === 'header') {
      if (!b.subarray(0, 6).equals(MAGIC)) return;
      this.version = b.readUInt16BE(6);
      if (this.version === 1) this.payloadOffset = u32be(b, 104) * 512;
      else if (this.version === 2) {
        const hdrSize = u64be(b, 8);
        if (hdrSize <= V2_BINARY || hdrSize > V2_BINARY + (1 << 20)) this.problems.push(`luks2 header size ${hdrSize} is not valid`);
        else this.capture('json', V2_BINARY, hdrSize - V2_BINARY);
      }
      return;
    }
    // LUKS2's JSON area, NUL-padded: the first data segment says where the payload is.
    try {
      const meta = JSON.parse(b.toString('utf8').replace(/\0+$/, '')) as { segments?: Record<string, { offset?: string }> };
      const first = Object.values(meta.segments ?? {})[0];
      const off = Number(first?.offset);
      if (Number.isSafeInteger(off) && off >= 0) this.payloadOffset = off;
    } catch { this.problems.push('luks2 JSON metadata is not valid'); }
  }

  protected override onTruncated(name: string): void {
    const got = this.partial(name);
    if (name === 'header' && got.length >= 8 && got.subarray(0, 6).equals(MAGIC)) {
      this.version = got.readUInt16BE(6);
      if (this.version === 1 && got.length >= V1_HEADER) this.payloadOffset = u32be(got, 104) * 512;
      else this.unreadable.push('luks header (truncated)');
    }
  }

  matches(): boolean { return this.version !== undefined; }

  override virtualSize(): number | null {
    if (this.payloadOffset === undefined) return null;
    return Math.max(0, this.total - this.payloadOffset);
  }

  override safetyCheck(): string[] {
    const out = [...super.safetyCheck(), ...this.problems];
    if (this.version !== undefined && this.version !== 1 && this.version !== 2) out.push(`luks version ${this.version} is not supported`);
    return out;
  }

  override details(): Record<string, unknown> { return this.version !== undefined ? { luks_version: this.version } : {}; }
}
