// Image format inspection, shared by the image service (every upload and import) and the compute
// agent (what it downloads, before qemu-img ever sees it), as Nova and Glance both use
// oslo.utils' format_inspector.
//
// Entry points:
//   inspect(source, opts?) → Promise<{ format, virtualSize, safetyCheck() → failures[], verdict }>
//     source: a Readable stream, a file path or a Buffer; read once, never seeked.
//   new ImageInspection(opts)  .feed(chunk)… .finish() → Verdict
//     for callers that already own the stream (the image data path feeds it chunk by chunk).
// A Verdict says which format the data is, its virtual size, and every reason to refuse it (the
// content does not match disk_format; the content, whatever it was declared as, is unsafe).
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FormatInspector } from './inspector.ts';
import { Qcow2Inspector } from './qcow2.ts';
import { VmdkInspector } from './vmdk.ts';
import { VhdInspector } from './vhd.ts';
import { VhdxInspector } from './vhdx.ts';
import { VdiInspector } from './vdi.ts';
import { IsoInspector } from './iso.ts';
import { RawInspector } from './raw.ts';
import { PloopInspector } from './ploop.ts';
import { AkiInspector, AriInspector } from './ami.ts';
import { LuksInspector } from './luks.ts';

export interface Verdict {
  declared: string | null;
  /** What the data is ('raw' when no container format was recognised). */
  detected: string;
  virtualSize: number | null;
  /** Reasons to refuse the data, all of them. Empty: accept. */
  errors: string[];
  details: Record<string, unknown>;
}

export interface InspectionOptions {
  declared: string | null;
  containerFormat?: string | null;
  requireMatch?: boolean;
  vmdkAllowedTypes?: string[];
}

/** Container formats whose payload is not a bare disk: the disk_format match is not checked. */
const WRAPPED = new Set(['ova', 'ovf', 'docker', 'compressed']);
/** Detection order: formats with a magic number at offset 0 first, then the looser ones. */
const ORDER = ['qcow2', 'luks', 'vhdx', 'vmdk', 'vdi', 'ploop', 'vhd', 'iso'];
/** Declared formats whose data is raw bytes as far as disk containers go. */
const RAW_LIKE = new Set(['raw', 'ami', 'aki', 'ari']);

export class ImageInspection {
  private readonly inspectors: FormatInspector[];
  private active: FormatInspector[];
  private size = 0;

  constructor(private readonly opts: InspectionOptions) {
    this.inspectors = [
      new Qcow2Inspector(), new LuksInspector(), new VhdxInspector(), new VmdkInspector(opts.vmdkAllowedTypes), new VdiInspector(),
      new PloopInspector(), new VhdInspector(), new IsoInspector(), new RawInspector(),
    ];
    if (opts.declared === 'aki') this.inspectors.push(new AkiInspector());
    if (opts.declared === 'ari') this.inspectors.push(new AriInspector());
    this.active = [...this.inspectors];
  }

  feed(chunk: Buffer): void {
    this.size += chunk.length;
    let idle = false;
    for (const i of this.active) {
      i.feed(chunk);
      if (i.satisfied) idle = true;
    }
    // Inspectors that need nothing more stop seeing data: after the first few MiB only the
    // VHD footer watcher still runs.
    if (idle) this.active = this.active.filter((i) => !i.satisfied);
  }

  private get(format: string): FormatInspector | undefined {
    return this.inspectors.find((i) => i.format === format);
  }

  finish(): Verdict {
    for (const i of this.inspectors) i.finish(this.size);
    const declared = this.opts.declared;
    const detectedInspector = ORDER.map((f) => this.get(f)!).find((i) => i.matches()) ?? this.get('raw')!;
    const detected = detectedInspector.format;
    const errors: string[] = [];
    const checkMatch = (this.opts.requireMatch ?? true) && declared && !WRAPPED.has(this.opts.containerFormat ?? 'bare');
    if (checkMatch) {
      const ok = RAW_LIKE.has(declared) ? detected === 'raw' : detected === declared;
      if (!ok) {
        errors.push(detected === 'raw'
          ? `Image content does not match disk_format ${declared}: the data is not ${a(declared)} image`
          : `Image content does not match disk_format ${declared}: the data is ${a(detected)} image`);
      }
    }
    // Safety checks run on what the data is, whatever it was declared as: a qcow2 with a
    // backing file uploaded as "raw" is still refused (qemu could be made to probe it).
    for (const e of detectedInspector.safetyCheck()) errors.push(`Image does not pass safety check: ${e}`);
    const details: Record<string, unknown> = { ...detectedInspector.details() };
    if (declared === 'aki') Object.assign(details, this.get('aki')!.details());
    if (declared === 'ari') Object.assign(details, this.get('ari')!.details());
    const vs = detectedInspector.virtualSize();
    return { declared, detected, virtualSize: vs ?? this.size, errors, details };
  }
}

export { Qcow2Inspector, LuksInspector, VmdkInspector, VhdInspector, VhdxInspector, VdiInspector, IsoInspector, RawInspector, PloopInspector, AkiInspector, AriInspector };

const a = (word: string) => `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;

/** What inspect() found: the detected format, its virtual size and the safety verdict. */
export interface Inspection {
  format: string;
  virtualSize: number | null;
  /** Every reason to refuse the data (format mismatch when a format was declared, unsafe content). Empty: safe. */
  safetyCheck(): string[];
  verdict: Verdict;
}

/**
 * Inspects a whole stream, file or buffer. Without `declared`, only the safety checks of what
 * the data is apply (no disk_format match).
 */
export async function inspect(source: Readable | string | Buffer, opts: Partial<InspectionOptions> = {}): Promise<Inspection> {
  const ins = new ImageInspection({ declared: null, ...opts });
  if (Buffer.isBuffer(source)) ins.feed(source);
  else {
    const stream = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source;
    for await (const chunk of stream) ins.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  }
  const verdict = ins.finish();
  return { format: verdict.detected, virtualSize: verdict.virtualSize, safetyCheck: () => [...verdict.errors], verdict };
}
