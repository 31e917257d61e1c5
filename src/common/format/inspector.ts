// Streaming format inspection. Image data passes through the server once, so an inspector never
// seeks: it names the byte ranges ("regions") it needs, the stream fills them as it goes by, and
// an inspector may ask for more regions once earlier ones are parsed (a qcow2 header tells
// where its header extensions are). A region that starts behind the stream position can never be
// filled; the inspector then reports that it could not inspect what it needed, which callers
// treat as a failure. Each format lives in its own module and is registered in ./index.ts.

export interface Region { offset: number; length: number; buf: Buffer; filled: number }

/** The largest region any inspector may ask for: a hostile header cannot make us buffer more. */
export const MAX_REGION = 1 << 20;

export abstract class FormatInspector {
  /** The disk_format this inspector recognises. */
  abstract readonly format: string;
  /** How many trailing bytes this format needs (VHD's footer). */
  protected readonly tailLength: number = 0;

  private readonly regions = new Map<string, Region>();
  private readonly pending: string[] = [];
  private position = 0;
  private tailChunks: Buffer[] = [];
  private tailBytes = 0;
  private done = false;
  /** Regions asked for too late or too large: inspection of this format is incomplete. */
  protected readonly unreadable: string[] = [];
  protected total = 0;

  /** Bytes seen so far. */
  get size(): number { return this.position; }

  /** Asks for `length` bytes at `offset`. Returns false (and records why) when that cannot be had. */
  protected capture(name: string, offset: number, length: number): boolean {
    if (this.regions.has(name)) return true;
    if (length <= 0 || length > MAX_REGION || !Number.isSafeInteger(offset) || offset < 0) {
      this.unreadable.push(`${name} (${length} bytes at ${offset})`);
      return false;
    }
    if (offset < this.position) {
      this.unreadable.push(`${name} at offset ${offset} (already streamed past)`);
      return false;
    }
    this.regions.set(name, { offset, length, buf: Buffer.alloc(length), filled: 0 });
    this.pending.push(name);
    return true;
  }

  /** A complete region's bytes, or undefined. */
  protected region(name: string): Buffer | undefined {
    const r = this.regions.get(name);
    return r && r.filled === r.length ? r.buf : undefined;
  }

  /** The bytes of a region received so far (a truncated image may never complete it). */
  protected partial(name: string): Buffer {
    const r = this.regions.get(name);
    return r ? r.buf.subarray(0, r.filled) : Buffer.alloc(0);
  }

  /** Called when a region is complete; subclasses parse it and may capture() more. */
  protected onRegion(_name: string, _data: Buffer): void {}

  /** True when this inspector needs nothing more from the stream. */
  get satisfied(): boolean { return this.pending.length === 0 && this.tailLength === 0; }

  feed(chunk: Buffer): void {
    const start = this.position;
    const end = start + chunk.length;
    this.position = end;
    if (this.pending.length) {
      for (let i = 0; i < this.pending.length; i++) {
        const name = this.pending[i];
        const r = this.regions.get(name)!;
        const rEnd = r.offset + r.length;
        if (r.offset >= end || rEnd <= start) continue;
        const from = Math.max(r.offset, start);
        const to = Math.min(rEnd, end);
        chunk.copy(r.buf, from - r.offset, from - start, to - start);
        // Data arrives in order, so `filled` is a high-water mark; copying twice is harmless.
        r.filled = Math.max(r.filled, to - r.offset);
        if (r.filled === r.length) {
          this.pending.splice(i, 1);
          i--;
          // A new region may lie inside this same chunk: onRegion's captures are placed with
          // offset >= start by rewinding the position to the chunk start while it runs.
          this.position = start;
          this.onRegion(name, r.buf);
          this.position = end;
          i = -1; // rescan: onRegion may have added regions that overlap this chunk
        }
      }
    }
    if (this.tailLength) {
      this.tailChunks.push(chunk);
      this.tailBytes += chunk.length;
      while (this.tailChunks.length > 1 && this.tailBytes - this.tailChunks[0].length >= this.tailLength) {
        this.tailBytes -= this.tailChunks.shift()!.length;
      }
    }
  }

  /**
   * Ends the stream. `total` is the data size (an inspector that stopped being fed once it had
   * what it needed has not seen it all).
   */
  finish(total = this.position): void {
    if (this.done) return;
    this.done = true;
    this.total = total;
    // Regions that run past the end of the data stay incomplete; formats decide what that means
    // (usually a truncated image).
    for (const name of [...this.pending]) this.onTruncated(name);
    if (this.tailLength) {
      const all = Buffer.concat(this.tailChunks);
      this.onTail(all.subarray(Math.max(0, all.length - this.tailLength)));
      this.tailChunks = [];
    }
    this.onFinish();
  }

  protected onTruncated(_name: string): void {}
  protected onTail(_tail: Buffer): void {}
  protected onFinish(): void {}

  /** Does the data look like this format? */
  abstract matches(): boolean;

  /** The disk size a guest sees, when the format says. */
  virtualSize(): number | null { return null; }

  /**
   * Every reason this data is unsafe to hand to qemu as this format (collected, not just the
   * first: DESIGN.md style rule 9). Only meaningful when matches() is true.
   */
  safetyCheck(): string[] { return this.unreadable.length ? [`could not inspect ${this.unreadable.join(', ')}`] : []; }

  /** Details for logs and tests (e.g. the VMDK create type, the partition table kind). */
  details(): Record<string, unknown> { return {}; }
}

export const u16le = (b: Buffer, o: number) => b.readUInt16LE(o);
export const u32le = (b: Buffer, o: number) => b.readUInt32LE(o);
export const u32be = (b: Buffer, o: number) => b.readUInt32BE(o);
export const u64le = (b: Buffer, o: number) => Number(b.readBigUInt64LE(o));
export const u64be = (b: Buffer, o: number) => Number(b.readBigUInt64BE(o));

/** A GUID as stored on disk (first three fields little-endian), from its canonical text. */
export function guidBytes(guid: string): Buffer {
  const h = guid.replace(/-/g, '');
  const b = Buffer.from(h, 'hex');
  const out = Buffer.alloc(16);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  b.copy(out, 8, 8, 16);
  return out;
}
