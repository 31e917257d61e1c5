// QCOW2 (QEMU copy-on-write v2/v3). Unsafe when the header points outside the image: a backing
// file (which qemu would open on the compute host, e.g. /etc/passwd), an external data file, or
// an incompatible feature this inspector does not know.
import { FormatInspector, u32be, u64be } from './inspector.ts';

const MAGIC = 0x514649fb; // 'QFI\xfb'
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_DATA_FILE = 0x44415441;
const KNOWN_INCOMPATIBLE = ['dirty', 'corrupt', 'external data file', 'compression type', 'extended L2 entries'];

export class Qcow2Inspector extends FormatInspector {
  readonly format = 'qcow2';
  private header?: {
    version: number; backingOffset: number; backingSize: number; clusterBits: number; size: number;
    cryptMethod: number; incompatible: bigint; headerLength: number;
  };
  private backingName?: string;
  private extensions: number[] = [];
  private problems: string[] = [];

  constructor() {
    super();
    this.capture('header', 0, 112);
  }

  protected override onRegion(name: string, b: Buffer): void {
    if (name === 'header') {
      if (u32be(b, 0) !== MAGIC) return;
      const version = u32be(b, 4);
      const h = {
        version,
        backingOffset: u64be(b, 8),
        backingSize: u32be(b, 16),
        clusterBits: u32be(b, 20),
        size: u64be(b, 24),
        cryptMethod: u32be(b, 32),
        incompatible: version >= 3 ? b.readBigUInt64BE(72) : 0n,
        headerLength: version >= 3 ? u32be(b, 100) : 72,
      };
      this.header = h;
      if (version !== 2 && version !== 3) { this.problems.push(`unsupported qcow2 version ${version}`); return; }
      if (h.clusterBits < 9 || h.clusterBits > 21) { this.problems.push(`invalid cluster_bits ${h.clusterBits}`); return; }
      if (version >= 3 && (h.headerLength < 104 || h.headerLength % 8 !== 0)) { this.problems.push(`invalid header_length ${h.headerLength}`); return; }
      if (h.backingOffset) {
        const len = Math.min(h.backingSize, 1023);
        if (len > 0) this.capture('backing', h.backingOffset, len);
      }
      // Header extensions sit between the header and the end of the first cluster.
      const clusterSize = 2 ** h.clusterBits;
      const extLen = Math.min(clusterSize, 1 << 20) - h.headerLength;
      if (extLen > 0) this.capture('extensions', h.headerLength, extLen);
    } else if (name === 'backing') {
      this.backingName = b.toString('utf8').replace(/\0+$/, '');
    } else if (name === 'extensions') {
      this.parseExtensions(b);
    }
  }

  private truncated = false;

  protected override onTruncated(name: string): void {
    const got = this.partial(name);
    if (name === 'header' && got.length >= 4 && u32be(got, 0) === MAGIC) this.truncated = true;
    // Extensions may run past the end of a tiny image: parse what there is.
    if (name === 'extensions') this.parseExtensions(got);
  }

  private parseExtensions(b: Buffer): void {
    let o = 0;
    for (let n = 0; n < 64 && o + 8 <= b.length; n++) {
      const type = u32be(b, o);
      const len = u32be(b, o + 4);
      if (type === EXT_END) return;
      this.extensions.push(type);
      o += 8 + Math.ceil(len / 8) * 8;
    }
  }

  matches(): boolean {
    return this.truncated || (this.header !== undefined && u32be(this.region('header')!, 0) === MAGIC);
  }

  override virtualSize(): number | null {
    return this.header ? this.header.size : null;
  }

  override safetyCheck(): string[] {
    if (this.truncated) return ['qcow2 header is truncated'];
    const out = [...super.safetyCheck(), ...this.problems];
    const h = this.header;
    if (!h) return ['qcow2 header is missing'];
    if (h.backingOffset !== 0) {
      out.push(`qcow2 image has a backing file${this.backingName ? ` (${JSON.stringify(this.backingName)})` : ''}`);
    }
    if (h.incompatible & 4n) out.push('qcow2 image has an external data file');
    if (this.extensions.includes(EXT_DATA_FILE)) out.push('qcow2 image names an external data file');
    if (h.incompatible & 2n) out.push('qcow2 image is marked corrupt');
    const unknown = h.incompatible & ~((1n << BigInt(KNOWN_INCOMPATIBLE.length)) - 1n);
    if (unknown) out.push(`qcow2 image has unknown incompatible features 0x${unknown.toString(16)}`);
    if (h.size <= 0 || !Number.isSafeInteger(h.size)) out.push(`qcow2 virtual size ${h.size} is invalid`);
    return out;
  }

  override details(): Record<string, unknown> {
    const h = this.header;
    return h ? {
      version: h.version, cluster_size: 2 ** h.clusterBits, encrypted: h.cryptMethod !== 0,
      backing_file: this.backingName ?? null, backing_format_extension: this.extensions.includes(EXT_BACKING_FORMAT),
    } : {};
  }
}
