// Raw disk images. Anything is raw; this inspector recognises a partition table (MBR, or GPT
// behind a protective MBR) for the record, and refuses only a GPT whose header checksum is wrong
// (a partition table qemu and the guest would read differently). Boot sectors of unpartitioned
// volumes also end in 55AA, so an odd-looking MBR alone is not an error.
import { FormatInspector, u32le, u64le } from './inspector.ts';
import { crc32 } from './crc32.ts';

export class RawInspector extends FormatInspector {
  readonly format = 'raw';
  private table?: 'mbr' | 'gpt';
  private problems: string[] = [];
  private partitions = 0;

  constructor() {
    super();
    this.capture('lba0', 0, 1024);
  }

  protected override onRegion(_name: string, b: Buffer): void {
    if (b[510] !== 0x55 || b[511] !== 0xaa) return;
    const entries = [0, 1, 2, 3].map((i) => b.subarray(446 + i * 16, 462 + i * 16));
    const protective = entries.some((e) => e[4] === 0xee);
    const sane = entries.every((e) => e[0] === 0x00 || e[0] === 0x80);
    if (protective && b.toString('latin1', 512, 520) === 'EFI PART') {
      this.table = 'gpt';
      const hsize = u32le(b, 512 + 12);
      if (hsize < 92 || hsize > 512) { this.problems.push(`GPT header size ${hsize} is invalid`); return; }
      const header = Buffer.from(b.subarray(512, 512 + hsize));
      const stored = header.readUInt32LE(16);
      header.writeUInt32LE(0, 16);
      if (crc32(header) !== stored) this.problems.push('GPT header checksum is wrong');
      this.partitions = u32le(b, 512 + 80);
      if (u64le(b, 512 + 24) !== 1) this.problems.push('GPT header does not describe itself at LBA 1');
    } else if (sane && entries.some((e) => e[4] !== 0)) {
      this.table = 'mbr';
      this.partitions = entries.filter((e) => e[4] !== 0).length;
    }
  }

  matches(): boolean { return true; }

  override virtualSize(): number | null { return this.total; }

  override safetyCheck(): string[] { return [...this.problems]; }

  override details(): Record<string, unknown> { return { partition_table: this.table ?? null, partitions: this.partitions }; }
}
