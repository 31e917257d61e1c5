// Small helpers shared by the benchmarks: percentiles, a timed loop, result files.
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, hostname } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Runs fn n times sequentially, returns latencies in ms (sorted). */
export async function timeMany(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out.sort((a, b) => a - b);
}

/** Runs fn with `concurrency` workers for `ms`, returns completed ops and latencies. */
export async function load(concurrency: number, ms: number, fn: () => Promise<unknown>): Promise<{ ops: number; perSecond: number; lat: number[] }> {
  const end = Date.now() + ms;
  const lat: number[] = [];
  const start = Date.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      await fn();
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }));
  const secs = (Date.now() - start) / 1000;
  return { ops: lat.length, perSecond: lat.length / secs, lat: lat.sort((a, b) => a - b) };
}

export function summary(lat: number[]): { p50: number; p99: number; n: number } {
  return { p50: round(percentile(lat, 50)), p99: round(percentile(lat, 99)), n: lat.length };
}

export const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

export function machine() {
  return { host: hostname(), cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() };
}

export function writeResult(name: string, result: unknown): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), ...result as object }, null, 2) + '\n');
  console.log(`results written to ${file}`);
  return file;
}
