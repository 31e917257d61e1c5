// Soak (issue 15): a bounded mixed workload (~50 req/s: token issues, server lists and shows,
// image lists, flavor lists, boots, deletes, image uploads) for a long time against
//   --shape aio          the all-in-one, `stratus up --driver fake` as its own process (SQLite)
//   --shape distributed  test/deploy/'s Deployment (11 processes, RabbitMQ + MariaDB/PostgreSQL)
// It compares latency (p50/p99 per operation) of the first and the last window, and samples every
// process's RSS and open file descriptors and the database connections throughout.
//
//   npm run bench -- soak [--shape aio|distributed] [--backend mysql|postgresql] [--minutes 30]
//                         [--rate 50] [--window 5] [--out bench/results/soak-<tag>.md]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, round, writeResult } from './lib.ts';

interface Target {
  identity: string; // …/v3
  image: string; // …/v2
  compute: string; // …/v2.1
  password: string;
  /** The processes to watch. */
  pids(): { name: string; pid: number }[];
  /** Open database connections of the deployment. */
  dbConnections(): Promise<number>;
  /** Error-level log lines the processes wrote (fatal and error). */
  errorLines(): string[];
  stop(): Promise<void>;
}

const opt = (argv: string[], n: string, d: string) => { const i = argv.indexOf(`--${n}`); return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Error or fatal lines of a pino JSON stderr stream (level ≥ 50). */
function errorLinesOf(text: string): string[] {
  return text.split('\n').filter((l) => { try { return (JSON.parse(l).level ?? 0) >= 50; } catch { return false; } });
}

async function allInOne(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-soak-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child: ChildProcess = spawn(process.execPath, ['bin/stratus.mjs', 'up', '--data-dir', dir, '--port', String(port), '--driver', 'fake', '--log-format', 'json'], { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const errors: string[] = [];
  child.stderr!.on('data', (b) => { err += b; const i = err.lastIndexOf('\n'); if (i >= 0) { errors.push(...errorLinesOf(err.slice(0, i))); err = err.slice(i + 1); } });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b) => { out += b; const m = /ready at (\S+) in/.exec(out); if (m) resolve(m[1]); });
    child.once('exit', (c) => reject(new Error(`stratus up exited ${c}: ${err.slice(-2000)}`)));
  });
  const password = /OS_PASSWORD='([^']+)'/.exec(readFileSync(join(dir, 'admin-openrc'), 'utf8'))![1];
  return {
    identity: `${url}/identity/v3`, image: `${url}/image/v2`, compute: `${url}/compute/v2.1`, password,
    pids: () => [{ name: 'stratus up', pid: child.pid! }],
    // SQLite: a connection is an open database file (the -wal/-shm companions not counted).
    dbConnections: async () => fdTargets(child.pid!).filter((t) => /\.(db|sqlite3?)$/.test(t)).length,
    errorLines: () => errors,
    stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); rmSync(dir, { recursive: true, force: true }); },
  };
}

async function distributed(backend: 'mysql' | 'postgresql'): Promise<Target> {
  const { Deployment } = await import('../test/deploy/deployment.ts');
  const dep = await new Deployment({ backend, env: { OS_FAKE_DRIVER__SPAWN_DELAY_MS: '300' } }).start();
  return {
    identity: `${dep.identityUrl}/v3`, image: `${dep.imageUrl}/v2`, compute: dep.computeUrl, password: 'admin-pass',
    pids: () => dep.procs.map((p) => ({ name: p.name, pid: p.child.pid! })),
    dbConnections: async () => {
      if (backend === 'mysql') {
        const mysql = await import('mysql2/promise');
        const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', password: '' });
        try { const [rows] = await c.query('SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db LIKE ?', [`${dep.id}%`]); return Number((rows as any)[0].n); } finally { await c.end(); }
      }
      const pg = (await import('pg')).default;
      const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
      await c.connect();
      try { return Number((await c.query('SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname LIKE $1', [`${dep.id}%`])).rows[0].n); } finally { await c.end(); }
    },
    errorLines: () => dep.procs.flatMap((p) => errorLinesOf(p.stderr).map((l) => `${p.name}: ${l}`)),
    stop: () => dep.stop(),
  };
}

function fdTargets(pid: number): string[] {
  try { return readdirSync(`/proc/${pid}/fd`).map((f) => { try { return readlinkSync(`/proc/${pid}/fd/${f}`); } catch { return ''; } }); } catch { return []; }
}
const rssMiB = (pid: number) => { try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024; } catch { return NaN; } };

interface Sample { t: number; load: number[]; db: number; procs: Record<string, { rss: number; fds: number }> }

export default async function run(argv: string[]): Promise<void> {
  const shape = opt(argv, 'shape', 'aio');
  const backend = opt(argv, 'backend', 'mysql') as 'mysql' | 'postgresql';
  const minutes = Number(opt(argv, 'minutes', '30'));
  const rate = Number(opt(argv, 'rate', '50'));
  const windowMin = Number(opt(argv, 'window', String(Math.min(5, minutes / 3))));
  const tgt = shape === 'aio' ? await allInOne() : await distributed(backend);
  const loadStart = loadavg();
  const auth = (password: string) => ({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } });
  const issue = async () => {
    const r = await fetch(`${tgt.identity}/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(auth(tgt.password)) });
    if (r.status !== 201) throw new Error(`token: ${r.status}`);
    const body = (await r.json()) as any;
    return { token: r.headers.get('x-subject-token')!, project: body.token.project.id as string };
  };
  let { token, project } = await issue();
  const call = async (method: string, url: string, body?: unknown, extra: Record<string, string> = {}) => {
    const r = await fetch(url, { method, headers: { 'x-auth-token': token, 'openstack-api-version': 'compute 2.37', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extra }, body: body === undefined ? undefined : (Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body)), signal: AbortSignal.timeout(60_000) });
    const t = await r.text();
    return { status: r.status, body: t && r.headers.get('content-type')?.includes('json') ? JSON.parse(t) : t };
  };
  // No quota in the way of a long run (the workload keeps the population bounded itself).
  await call('PUT', `${tgt.compute}/os-quota-sets/${project}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
  const img = await call('POST', `${tgt.image}/images`, { name: 'soak', disk_format: 'raw', container_format: 'bare' });
  await call('PUT', `${tgt.image}/images/${img.body.id}/file`, Buffer.alloc(64 << 10), { 'content-type': 'application/octet-stream' });
  const imageRef = img.body.id as string;

  const live: string[] = []; // servers booted by the soak, oldest first
  const expect = (want: number[], r: { status: number; body: unknown }, what: string) => { if (!want.includes(r.status)) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`); return r; };
  // Operation → weight per 50 requests (an image upload is three requests: create, PUT, delete).
  // Token issues are few (clients reuse tokens): each is an scrypt on libuv's thread pool, and 8/s
  // on this loaded machine queued the image uploads' file writes behind them (60 s timeouts).
  const ops: [string, number, () => Promise<unknown>][] = [
    ['token issue', 2, async () => { const t = await issue(); token = t.token; }],
    ['server list', 16, async () => expect([200], await call('GET', `${tgt.compute}/servers/detail?limit=50`), 'list')],
    ['server show', 8, async () => { const id = live[Math.floor(Math.random() * live.length)]; if (id) expect([200, 404], await call('GET', `${tgt.compute}/servers/${id}`), 'show'); }],
    ['image list', 8, async () => expect([200], await call('GET', `${tgt.image}/images?limit=20`), 'image list')],
    ['flavor list', 6, async () => expect([200], await call('GET', `${tgt.compute}/flavors/detail`), 'flavors')],
    ['boot', 3, async () => { const r = expect([202], await call('POST', `${tgt.compute}/servers`, { server: { name: `soak-${Date.now()}`, imageRef, flavorRef: '1', networks: 'none' } }), 'boot'); live.push((r.body as any).server.id); }],
    // Deletes keep the population around 40 (the oldest server goes).
    ['delete', 3, async () => { if (live.length > 40) expect([204, 404], await call('DELETE', `${tgt.compute}/servers/${live.shift()}`), 'delete'); }],
    ['image upload', 1, async () => {
      const i = expect([201], await call('POST', `${tgt.image}/images`, { name: `soak-up-${Date.now()}`, disk_format: 'raw', container_format: 'bare' }), 'image create');
      expect([204], await call('PUT', `${tgt.image}/images/${(i.body as any).id}/file`, Buffer.alloc(256 << 10, 7), { 'content-type': 'application/octet-stream' }), 'image upload');
      expect([204], await call('DELETE', `${tgt.image}/images/${(i.body as any).id}`), 'image delete');
    }],
  ];
  const reqs = (name: string) => (name === 'image upload' ? 3 : 1);
  const wheel = ops.flatMap(([name, w, fn]) => Array.from({ length: w }, () => ({ name, fn })));
  const perOpMs = (1000 * wheel.reduce((n, o) => n + reqs(o.name), 0) / wheel.length) / rate;

  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  const lat: { t: number; op: string; ms: number; ok: boolean }[] = [];
  const failures: string[] = [];
  const samples: Sample[] = [];
  let inflight = 0; let skipped = 0;
  const sample = async () => {
    const procs: Sample['procs'] = {};
    for (const p of tgt.pids()) procs[p.name] = { rss: round(rssMiB(p.pid), 1), fds: fdTargets(p.pid).length };
    samples.push({ t: Date.now() - t0, load: loadavg().map((l) => round(l, 2)), db: await tgt.dbConnections().catch(() => NaN), procs });
  };
  await sample();
  const sampler = setInterval(() => { void sample(); }, 30_000);
  // Open loop at a fixed rate, bounded in flight (a stalled cloud is not buried under requests).
  for (let k = 0; Date.now() < end; k++) {
    const next = t0 + k * perOpMs;
    if (next > Date.now()) await sleep(next - Date.now());
    if (inflight >= 100) { skipped++; continue; }
    const o = wheel[Math.floor(Math.random() * wheel.length)];
    inflight++;
    const s = Date.now();
    void o.fn().then(() => true, (e) => { if (failures.length < 50) failures.push(`${o.name}: ${(e as Error).message}`); return false; })
      .then((ok) => { inflight--; lat.push({ t: s - t0, op: o.name, ms: Date.now() - s, ok }); });
  }
  while (inflight > 0) await sleep(100);
  clearInterval(sampler);
  await sample();
  const loadEnd = loadavg();
  // Clean up what the soak left (and count what would not go).
  for (const id of live.splice(0)) await call('DELETE', `${tgt.compute}/servers/${id}`).catch(() => undefined);
  const errorLines = tgt.errorLines();
  await tgt.stop();

  const win = windowMin * 60_000;
  const stats = (from: number, to: number) => {
    const rows: Record<string, { n: number; p50: number; p99: number; errors: number }> = {};
    for (const name of ['all', ...ops.map((o) => o[0])]) {
      const xs = lat.filter((l) => l.t >= from && l.t < to && (name === 'all' || l.op === name));
      const sorted = xs.map((x) => x.ms).sort((a, b) => a - b);
      rows[name] = { n: xs.length, p50: round(percentile(sorted, 50), 1), p99: round(percentile(sorted, 99), 1), errors: xs.filter((x) => !x.ok).length };
    }
    return rows;
  };
  // Per minute, to tell a cloud that slows down by itself from a machine that got busier.
  const perMinute = Array.from({ length: Math.ceil(minutes) }, (_, m) => {
    const xs = lat.filter((l) => l.t >= m * 60_000 && l.t < (m + 1) * 60_000).map((l) => l.ms).sort((a, b) => a - b);
    const at = samples.filter((x) => x.t >= m * 60_000 && x.t < (m + 1) * 60_000)[0];
    return { minute: m, n: xs.length, p50: round(percentile(xs, 50), 1), p99: round(percentile(xs, 99), 1), load1: at?.load[0] };
  });
  const first = stats(0, win);
  const last = stats(minutes * 60_000 - win, Infinity);
  // Growth between the sample after the first window (warmed up) and the last sample.
  const warm = samples.find((s) => s.t >= win) ?? samples[0];
  const final = samples[samples.length - 1];
  const growth = Object.keys(final.procs).map((name) => {
    const a = samples[0].procs[name]; const w = warm.procs[name]; const b = final.procs[name];
    return { name, rssStart: a?.rss, rssWarm: w?.rss, rssEnd: b.rss, growthFromWarm: w ? round((100 * (b.rss - w.rss)) / w.rss, 1) : NaN, fdsStart: a?.fds, fdsWarm: w?.fds, fdsEnd: b.fds };
  });
  const rps = lat.reduce((n, l) => n + reqs(l.op), 0) / ((Date.now() - t0) / 1000);
  const title = shape === 'aio' ? 'all-in-one (stratus up, fake driver, SQLite)' : `distributed (test/deploy/, ${backend === 'mysql' ? 'MariaDB' : 'PostgreSQL'}, RabbitMQ, fake driver 300 ms spawn)`;
  const dbSeries = samples.map((s) => s.db);
  const md = [
    `## Soak: ${title}, ${minutes} min at ~${rate} req/s`, '',
    `\`npm run bench -- soak ${argv.join(' ')}\`. Load average ${loadStart.map((l) => l.toFixed(2)).join(', ')} at the start, ${loadEnd.map((l) => l.toFixed(2)).join(', ')} at the end (shared 2-core machine). ${lat.length} operations (${round(rps, 1)} req/s measured), ${lat.filter((l) => !l.ok).length} failed, ${skipped} not sent (100 in flight).`, '',
    `| operation | first ${windowMin} min n | p50 ms | p99 ms | errors | last ${windowMin} min n | p50 ms | p99 ms | errors |`, '|---|---|---|---|---|---|---|---|---|',
    ...Object.keys(first).map((k) => `| ${k} | ${first[k].n} | ${first[k].p50} | ${first[k].p99} | ${first[k].errors} | ${last[k].n} | ${last[k].p50} | ${last[k].p99} | ${last[k].errors} |`), '',
    `| process | RSS start MiB | RSS after ${windowMin} min | RSS end | growth after warm-up | fds start | fds after ${windowMin} min | fds end |`, '|---|---|---|---|---|---|---|---|',
    ...growth.map((g) => `| ${g.name} | ${g.rssStart} | ${g.rssWarm} | ${g.rssEnd} | ${g.growthFromWarm} % | ${g.fdsStart} | ${g.fdsWarm} | ${g.fdsEnd} |`), '',
    `Per minute (p50 / p99 ms, load average): ${perMinute.map((x) => `${x.minute}: ${x.p50}/${x.p99} (${x.load1 ?? '?'})`).join(', ')}.`, '',
    `Database connections (sampled every 30 s): min ${Math.min(...dbSeries)}, max ${Math.max(...dbSeries)}, first ${dbSeries[0]}, last ${dbSeries[dbSeries.length - 1]}.`, '',
    `Error-level log lines: ${errorLines.length}.${errorLines.length ? `\n\n\`\`\`\n${errorLines.slice(0, 20).map((l) => l.slice(0, 400)).join('\n')}\n\`\`\`` : ''}`,
    ...(failures.length ? ['', 'Failed operations (first 50):', '', '```', ...failures, '```'] : []), '',
  ].join('\n');
  console.log(md);
  const out = opt(argv, 'out', '');
  if (out) writeFileSync(out, md);
  writeResult(`soak-${shape}${shape === 'aio' ? '' : `-${backend}`}`, { shape, backend, minutes, rate, first, last, perMinute, growth, samples, failures, errorLines: errorLines.slice(0, 100) });
}
