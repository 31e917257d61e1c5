// npm run bench -- overhead [--requests=3000] [--servers=10] [--cpu-prof=DIR] [--from-source] [--bin=PATH]:
// the server-side CPU one API request costs (issue 14, item 3). `stratus up --driver fake` runs
// as a child process; a cached token is reused; the figure is the child's user+system CPU time
// (from /proc/<pid>/stat) over N sequential-at-concurrency-10 requests, divided by N — CPU time
// does not depend on how loaded the machine is the way wall time does. --cpu-prof writes a
// V8 profile of the measured phase only (the profiler is started and stopped around it through
// the inspector protocol, so start-up does not dilute it).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import WebSocket from 'ws';
import { writeResult, round } from './lib.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TICK_US = 1e6 / 100; // USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s on Linux

export function freePort(): Promise<number> {
  return new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
}
/** user+system CPU of a process, µs. */
export function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

export default async function overhead(argv: string[]): Promise<void> {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  const requests = Number(get('requests') ?? 3000);
  const servers = Number(get('servers') ?? 10);
  const profDir = get('cpu-prof');
  const dir = mkdtempSync(join(tmpdir(), 'stratus-bench-oh-'));
  const port = await freePort();
  const inspectPort = profDir ? await freePort() : 0;
  const env = { ...process.env, STRATUS_LOG_LEVEL: process.env.STRATUS_LOG_LEVEL ?? 'info', ...(argv.includes('--from-source') ? { STRATUS_FROM_SOURCE: '1' } : {}) };
  const child = spawn(process.execPath, [...(profDir ? [`--inspect=127.0.0.1:${inspectPort}`] : []), get('bin') ?? join(root, 'bin/stratus.mjs'), 'up', '--data-dir', dir, '--port', String(port), '--driver', 'fake'], { stdio: ['ignore', 'ignore', 'ignore'], env });
  const base = `http://127.0.0.1:${port}`;
  try {
    let token = '';
    for (;;) {
      try {
        const pw = /OS_PASSWORD='([^']+)'/.exec(readFileSync(join(dir, 'admin-openrc'), 'utf8'))![1];
        const r = await fetch(`${base}/identity/v3/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: pw } } }, scope: { project: { name: 'admin', domain: { name: 'Default' } } } } }) });
        if (r.status === 201) { token = r.headers.get('x-subject-token')!; await r.text(); break; }
      } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    const H = { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': 'compute 2.37' };
    // A few servers so the list has rows to render (fake driver: ACTIVE at once).
    const img = await (await fetch(`${base}/image/v2/images`, { method: 'POST', headers: H, body: JSON.stringify({ name: 'oh', disk_format: 'raw', container_format: 'bare' }) })).json() as { id: string };
    await fetch(`${base}/image/v2/images/${img.id}/file`, { method: 'PUT', headers: { ...H, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
    if (servers) {
      const r = await fetch(`${base}/compute/v2.1/servers`, { method: 'POST', headers: H, body: JSON.stringify({ server: { name: 'oh', imageRef: img.id, flavorRef: '1', networks: 'none', min_count: servers, max_count: servers } }) });
      if (r.status !== 202) throw new Error(`create ${r.status} ${await r.text()}`);
      for (;;) {
        const l = await (await fetch(`${base}/compute/v2.1/servers/detail`, { headers: H })).json() as { servers: { status: string; fault?: { message: string } }[] };
        const failed = l.servers.find((s) => s.status === 'ERROR');
        if (failed) throw new Error(`a server went to ERROR: ${failed.fault?.message}`);
        if (l.servers.filter((s) => s.status === 'ACTIVE').length >= servers) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const scenarios: Record<string, string> = {
      'GET /compute/v2.1/flavors/detail': '/compute/v2.1/flavors/detail',
      [`GET /compute/v2.1/servers/detail (${servers} servers)`]: '/compute/v2.1/servers/detail',
      'GET /compute/v2.1/servers': '/compute/v2.1/servers',
      'GET /image/v2/images': '/image/v2/images',
      'GET /placement/resource_providers': '/placement/resource_providers',
      'GET /identity/v3/projects': '/identity/v3/projects',
    };
    const only = get('only');
    const inspector = profDir ? await connectInspector(inspectPort) : undefined;
    const out: Record<string, unknown> = {};
    for (const [name, path] of Object.entries(scenarios)) {
      if (only && !name.includes(only)) continue;
      const hit = async () => { const r = await fetch(base + path, { headers: H }); await r.arrayBuffer(); if (r.status !== 200) throw new Error(`${name}: ${r.status}`); };
      const run = async (n: number) => { let k = 0; await Promise.all(Array.from({ length: 10 }, async () => { while (k++ < n) await hit(); })); };
      await run(Math.min(500, requests)); // warm: JIT, caches
      if (inspector) await inspector.call('Profiler.start');
      const load0 = loadavg()[0];
      const c0 = cpuUs(child.pid!); const t0 = performance.now();
      await run(requests);
      const c1 = cpuUs(child.pid!); const t1 = performance.now();
      if (inspector) {
        const { profile } = await inspector.call('Profiler.stop') as { profile: unknown };
        mkdirSync(profDir!, { recursive: true });
        writeFileSync(join(profDir!, `${name.replace(/[^a-z0-9]+/gi, '_')}.cpuprofile`), JSON.stringify(profile));
      }
      const r = { serverCpuUsPerRequest: round((c1 - c0) / requests, 1), requestsPerSecond: round(requests / ((t1 - t0) / 1000), 0), requests, load1: round(load0, 2) };
      out[name] = r;
      console.log(`${name}: ${r.serverCpuUsPerRequest} µs server CPU/request, ${r.requestsPerSecond} req/s at concurrency 10 (load ${r.load1})`);
    }
    inspector?.close();
    if (!profDir && !only) writeResult('overhead', { note: 'server CPU per request (user+system of the stratus up process / requests), cached token, concurrency 10, client in another process', results: out });
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function connectInspector(port: number) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  let id = 0;
  const pending = new Map<number, (v: unknown) => void>();
  ws.on('message', (d) => { const m = JSON.parse(String(d)); pending.get(m.id)?.(m.result); pending.delete(m.id); });
  const call = (method: string, params: object = {}) => new Promise<unknown>((r) => { pending.set(++id, r); ws.send(JSON.stringify({ id, method, params })); });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 100 });
  return { call, close: () => ws.close() };
}
