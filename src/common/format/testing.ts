// Feeds a buffer to an inspection in chunks of several sizes, as a network stream would.
import { ImageInspection, type InspectionOptions, type Verdict } from './index.ts';

export function inspectBuffer(data: Buffer, opts: InspectionOptions, chunk = 65536): Verdict {
  const ins = new ImageInspection(opts);
  for (let o = 0; o < data.length; o += chunk) ins.feed(data.subarray(o, Math.min(o + chunk, data.length)));
  return ins.finish();
}

/** The same verdict whatever the chunking (1 byte is too slow for MiB images: 509 is odd enough). */
export function inspectAllChunkings(data: Buffer, opts: InspectionOptions): Verdict {
  const sizes = [509, 4096, 65536, data.length || 1];
  const verdicts = sizes.map((s) => inspectBuffer(data, opts, s));
  const first = JSON.stringify(verdicts[0]);
  for (const [i, v] of verdicts.entries()) {
    if (JSON.stringify(v) !== first) throw new Error(`verdict differs with ${sizes[i]}-byte chunks: ${JSON.stringify(v)} vs ${first}`);
  }
  return verdicts[0];
}
