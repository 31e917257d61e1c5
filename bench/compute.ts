// Compute benchmark (issue 5), fake driver, all-in-one on the selected backend:
//   - boot 100 servers at concurrency 10 until all ACTIVE (servers/s; target: under 3 s)
//   - GET /servers/detail?limit=1000 with 1,000 servers (p50 < 50 ms, p99)
//   - delete all 1,000 until gone
//   - the scheduler's decision time per instance with 1,000 fake hosts (< 5 ms)
//   - idle RSS and cold start of `stratus up` (a separate process, every service)
//
//   npm run bench -- compute [--db=sqlite|mysql|postgresql] [--servers=1000] [--hosts=1000]
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { summary, timeMany, writeResult, round } from './lib.ts';

interface Args { db: string; servers: number; hosts: number }
const parse = (argv: string[]): Args => {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  return { db: get('db') ?? process.env.STRATUS_TEST_DB ?? 'sqlite', servers: Number(get('servers') ?? 1000), hosts: Number(get('hosts') ?? 1000) };
};

async function idleAllInOne(): Promise<{ coldStartMs: number; idleRssMiB: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-bench-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, ['bin/stratus.mjs', 'up', '--data-dir', dir, '--port', String(port), '--driver', 'fake'], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const ready = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b) => { out += b; const m = /ready at .* in (\d+) ms/.exec(out); if (m) resolve(Number(m[1])); });
      child.once('exit', (c) => reject(new Error(`stratus up exited ${c}`)));
    });
    // Second start (state exists) is the cold start users see every day; the first also bootstraps.
    await new Promise((r) => setTimeout(r, 5000));
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
    return { coldStartMs: ready, idleRssMiB: round(rss, 1) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function run(argv: string[]): Promise<void> {
  const args = parse(argv);
  process.env.STRATUS_TEST_DB = args.db;
  Object.assign(process.env, { OS_DEFAULT__REPORT_INTERVAL: '60', OS_DEFAULT__UPDATE_RESOURCES_INTERVAL: '600', OS_DEFAULT__MAX_CONCURRENT_BUILDS: '50' });
  const idle = await idleAllInOne();
  console.log(`stratus up: ready in ${idle.coldStartMs} ms, idle RSS ${idle.idleRssMiB} MiB`);

  const { startCloud } = await import('../test/helpers/cloud.ts');
  const cloud = await startCloud();
  const token = await cloud.adminToken();
  const C = `${cloud.url}/compute/v2.1`;
  const H = { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': 'compute 2.37' };
  const j = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${C}${path}`, { method, headers: H, body: body === undefined ? undefined : JSON.stringify(body) });
    const t = await r.text();
    return { status: r.status, body: t ? JSON.parse(t) : undefined };
  };
  const result: Record<string, unknown> = { db: args.db, idle };
  try {
    const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'bench', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
    await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
    const project = (await cloud.login('admin', cloud.adminPassword, 'admin')).body.token.project.id;
    await j('PUT', `/os-quota-sets/${project}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
    const server = (name: string, extra: Record<string, unknown> = {}) => ({ server: { name, imageRef: img.body.id, flavorRef: '1', networks: 'none', ...extra } });
    const countActive = async () => (await j('GET', '/servers?status=ACTIVE&limit=1000')).body.servers.length as number;

    // 1. 100 servers, 10 clients in parallel, until every one is ACTIVE.
    const t0 = process.hrtime.bigint();
    let next = 0;
    const createLat: number[] = [];
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next < 100) {
        const i = next++;
        const s = process.hrtime.bigint();
        const r = await j('POST', '/servers', server(`b${i}`));
        if (r.status !== 202) throw new Error(`create ${r.status}: ${JSON.stringify(r.body)}`);
        createLat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }));
    while (await countActive() < 100) await new Promise((r) => setTimeout(r, 20));
    const bootSec = Number(process.hrtime.bigint() - t0) / 1e9;
    result.boot100 = { seconds: round(bootSec), serversPerSecond: round(100 / bootSec, 1), createRequestMs: summary(createLat.sort((a, b) => a - b)) };
    console.log(`boot 100 at concurrency 10: ${bootSec.toFixed(2)} s (${(100 / bootSec).toFixed(1)} servers/s)`);

    // 2. Up to N servers, then the detail list.
    for (let have = 100; have < args.servers; have += 100) {
      const r = await j('POST', '/servers', server(`m${have}`, { min_count: Math.min(100, args.servers - have), max_count: Math.min(100, args.servers - have) }));
      if (r.status !== 202) throw new Error(`batch create ${r.status}: ${JSON.stringify(r.body)}`);
    }
    while (await countActive() < args.servers) await new Promise((r) => setTimeout(r, 100));
    const detail = await timeMany(50, async () => {
      const r = await fetch(`${C}/servers/detail?limit=1000`, { headers: H });
      await r.text();
      if (r.status !== 200) throw new Error(`detail ${r.status}`);
    });
    result.detail1000 = summary(detail);
    console.log(`GET /servers/detail?limit=1000 with ${args.servers} servers: p50 ${summary(detail).p50} ms, p99 ${summary(detail).p99} ms`);

    // 3. Delete everything.
    const ids = (await j('GET', '/servers?limit=1000')).body.servers.map((s: any) => s.id);
    const td = process.hrtime.bigint();
    let k = 0;
    await Promise.all(Array.from({ length: 10 }, async () => { while (k < ids.length) await j('DELETE', `/servers/${ids[k++]}`); }));
    while ((await j('GET', '/servers?limit=1000')).body.servers.length) await new Promise((r) => setTimeout(r, 50));
    const delSec = Number(process.hrtime.bigint() - td) / 1e9;
    result.deleteAll = { servers: ids.length, seconds: round(delSec), perSecond: round(ids.length / delSec, 1) };
    console.log(`deleted ${ids.length} servers in ${delSec.toFixed(2)} s`);

    // 4. Scheduler decisions with many fake hosts.
    const { startWorkers, discoverNow } = await import('../src/compute/workers.ts');
    const { createLogger } = await import('../src/common/logging.ts');
    const th = Date.now();
    const fake = await startWorkers({ config: cloud.config.with({ DEFAULT: { host: 'fake' } }), logger: createLogger({ level: 'silent' }), kinds: ['compute'], authUrl: `${cloud.url}/identity`, fakeHosts: args.hosts });
    await discoverNow(cloud.config);
    console.log(`${args.hosts} fake hosts registered and discovered in ${((Date.now() - th) / 1000).toFixed(1)} s`);
    const sched = cloud.compute!.scheduler!;
    const flavor = { flavorid: '1', name: 'm1.tiny', memory_mb: 512, vcpus: 1, root_gb: 1, ephemeral_gb: 0, swap: 0, rxtx_factor: 1, extra_specs: {} };
    const { loadRequestSpec } = await import('../src/compute/request-spec.ts');
    const spec = loadRequestSpec({ instance_uuid: randomUUID(), project_id: project, user_id: 'bench', flavor, image: { id: randomUUID(), min_ram: 0, min_disk: 0, size: 0, properties: {} }, availability_zone: null, force_hosts: [], force_nodes: [], ignore_hosts: [] });
    const ctx = { requestId: 'req-bench', roles: ['admin'] };
    await sched.selectDestinations(ctx, spec, [randomUUID()]); // warm the host state cache
    const consumers: string[] = [];
    const single = await timeMany(50, async () => { const u = randomUUID(); consumers.push(u); await sched.selectDestinations(ctx, spec, [u]); });
    const batch = Array.from({ length: 100 }, () => randomUUID());
    consumers.push(...batch);
    const tb = process.hrtime.bigint();
    const sel = await sched.selectDestinations(ctx, spec, batch);
    const batchMs = Number(process.hrtime.bigint() - tb) / 1e6;
    const spread = new Set(sel.map((s: any) => s.host)).size;
    result.scheduler = {
      hosts: args.hosts, singleInstanceMs: summary(single), batchOf100Ms: round(batchMs), perInstanceInBatchMs: round(batchMs / 100), hostsUsedByBatch: spread,
      note: 'select_destinations as the conductor calls it: placement allocation candidates (limit 1000), filters, weighers, and the claim (PUT /allocations) per instance',
    };
    console.log(`scheduler with ${args.hosts} hosts: single-instance decision p50 ${summary(single).p50} ms (p99 ${summary(single).p99}); 100 instances in one request ${batchMs.toFixed(0)} ms = ${(batchMs / 100).toFixed(2)} ms/instance over ${spread} hosts`);
    for (const u of consumers) await cloud.req('DELETE', `/placement/allocations/${u}`, { token });
    await fake.stop();
  } finally {
    await cloud.stop();
  }
  writeResult(`compute-${args.db}`, result);
}
