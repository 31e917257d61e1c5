// npm run bench -- coldstart [--rounds=3] (results: coldstart-up-<date>.json): cold start and idle memory of the all-in-one
// (issue 14, items 4 and 5). Per round: `stratus --help` (wall and CPU), then `stratus up
// --driver fake` on a data dir that already exists (the daily restart; the first start, which
// also bootstraps, is not counted) to the first 201 of POST /v3/auth/tokens (wall, and the
// process's CPU from /proc/<pid>/stat — the figure the machine's load does not inflate much),
// then its idle RSS 5 s later by part (/proc/<pid>/smaps_rollup and the V8 heap spaces the
// process reports on /metrics).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round, writeResult } from './lib.ts';
import { cpuUs, freePort } from './overhead.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin/stratus.mjs');

function memory(pid: number): Record<string, number> {
  const kb = (re: RegExp, text: string) => round(Number(re.exec(text)?.[1] ?? NaN) / 1024, 1);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssMiB: kb(/VmRSS:\s+(\d+)/, status), anonMiB: kb(/RssAnon:\s+(\d+)/, status), fileMiB: kb(/RssFile:\s+(\d+)/, status),
  };
}

/** CPU of this process's reaped children (cutime + cstime), ms: spawnSync reports no rusage. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

async function firstToken(dir: string): Promise<{ wallMs: number; cpuMs: number; pid: number; stop(): Promise<void>; port: number }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [bin, 'up', '--data-dir', dir, '--port', String(port), '--driver', 'fake'], { stdio: 'ignore', env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
  const stop = async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); };
  for (;;) {
    try {
      const pw = /OS_PASSWORD='([^']+)'/.exec(readFileSync(join(dir, 'admin-openrc'), 'utf8'))![1];
      const r = await fetch(`http://127.0.0.1:${port}/identity/v3/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: pw } } }, scope: { project: { name: 'admin', domain: { name: 'Default' } } } } }) });
      await r.arrayBuffer();
      if (r.status === 201) break;
    } catch { /* not listening yet */ }
    if (child.exitCode !== null) throw new Error(`stratus up exited ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { wallMs: round(performance.now() - t0, 0), cpuMs: round(cpuUs(child.pid!) / 1000, 0), pid: child.pid!, stop, port };
}

export default async function coldstart(argv: string[]): Promise<void> {
  const rounds = Number(argv.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'stratus-bench-cold-'));
  const runs: Record<string, unknown>[] = [];
  try {
    await (await firstToken(dir)).stop(); // the first start bootstraps the data dir
    for (let r = 0; r < rounds; r++) {
      const load1 = round(loadavg()[0], 2);
      const h0 = performance.now();
      const c0 = childrenCpuMs();
      const help = spawnSync(process.execPath, [bin, '--help'], { stdio: 'ignore' });
      const helpWallMs = round(performance.now() - h0, 0);
      const helpCpuMs = childrenCpuMs() - c0;
      const up = await firstToken(dir);
      await new Promise((res) => setTimeout(res, 5000));
      const mem = memory(up.pid);
      const metrics = await (await fetch(`http://127.0.0.1:${up.port}/metrics`)).text();
      const heap: Record<string, number> = {};
      for (const m of metrics.matchAll(/^nodejs_heap_space_size_used_bytes\{space="(\w+)"\} (\d+)/gm)) heap[m[1]] = round(Number(m[2]) / 2 ** 20, 1);
      await up.stop();
      const run = { round: r, load1, helpStatus: help.status, helpWallMs, helpCpuMs, firstTokenWallMs: up.wallMs, cpuMsToFirstToken: up.cpuMs, idle: mem, v8HeapUsedMiB: heap };
      runs.push(run);
      console.log(JSON.stringify(run));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (k: string) => { const xs = runs.map((x) => x[k] as number).sort((a, b) => a - b); return xs[Math.floor((xs.length - 1) / 2)]; };
  const summary = { helpWallMs: med('helpWallMs'), helpCpuMs: med('helpCpuMs'), firstTokenWallMs: med('firstTokenWallMs'), cpuMsToFirstToken: med('cpuMsToFirstToken') };
  console.log('medians', summary);
  writeResult('coldstart-up', { note: 'stratus up --driver fake on an existing data dir, to the first issued token (password auth included)', summary, runs });
}
