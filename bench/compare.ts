// npm run bench -- compare --against <auth-url> [--rounds=3] [--seconds=5] [--image-mib=512]
//   [--servers=100] [--stratus=<auth-url>] [--only=<scenario name part>,...] [--tag=NAME]
//   [--other-pids=<cmd>] [--other-stop=<cmd> --other-start=<cmd>]
// The same scenarios against Stratus and another OpenStack-compatible cloud, with the same
// client (this process), alternating which cloud goes first in each round (issue 14, item 7).
// The other cloud's credentials come from OS_* variables (an openrc) or clouds.yaml (OS_CLOUD
// or --cloud=<name>; ./clouds.yaml, ~/.config/openstack/, /etc/openstack/). Stratus is a fresh
// `stratus up --driver fake` started here, unless --stratus names a running one (then its
// credentials come from --stratus-openrc=<file>).
// Writes bench/results/compare[-NAME]-<date>.json and .md: both columns, the ratio (how many times
// Stratus is better: rate ÷ rate, or latency ÷ latency inverted) and the load average of each run.
// Scenarios: password token issue, token validation, flavor / server / image / provider lists at
// concurrency 10, a 512 MiB image uploaded with `curl -T` and downloaded twice with curl (as the
// issue measured it: curl processes, not this event loop), 100 servers booted with the fake
// driver, listed and deleted (the other cloud needs a compute service with a fake driver: see
// bench/zed/osref.sh), and — where this process can see the
// other cloud's processes — cold start to the first token and idle memory.
// Where the servers' processes are known (Stratus: the child started here; the other cloud:
// `--other-pids`, a shell command printing its top-level PIDs, whose descendants are added), the
// servers' CPU per request or per GiB is recorded beside each rate: on a loaded machine the
// rates are mostly the queue for the CPU, the CPU cost much less so. Database servers (MariaDB
// for the other cloud) are not counted; Stratus started here uses in-process SQLite.
// Cold start (`--other-stop` and `--other-start`, shell commands; Stratus: restarted on its data
// dir) is the time from the start command to the first 201 of a password token; idle memory is
// the RSS and PSS summed over the process tree 20 s after that token, once its CPU has been quiet for 2 s.
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { load, percentile, round, timeMany, writeResult } from './lib.ts';
import { freePort } from './overhead.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface Credentials {
  authUrl: string; username: string; password: string; projectName: string;
  userDomain: string; projectDomain: string; regionName?: string; interface: string;
}

/** Credentials from OS_* variables (openrc) or a clouds.yaml entry. */
export function credentialsFrom(env: Record<string, string | undefined>, cloud?: string, authUrl?: string): Credentials {
  const name = cloud ?? env.OS_CLOUD;
  if (name) {
    const files = [env.OS_CLIENT_CONFIG_FILE, 'clouds.yaml', join(homedir(), '.config/openstack/clouds.yaml'), '/etc/openstack/clouds.yaml'].filter((f): f is string => !!f);
    const file = files.find((f) => existsSync(f));
    if (!file) throw new Error(`cloud ${name}: no clouds.yaml found (looked in ${files.join(', ')})`);
    const c = (parseYaml(readFileSync(file, 'utf8')) as { clouds?: Record<string, any> }).clouds?.[name];
    if (!c) throw new Error(`cloud ${name} is not in ${file}`);
    const a = c.auth ?? {};
    return {
      authUrl: authUrl ?? a.auth_url, username: a.username, password: a.password, projectName: a.project_name,
      userDomain: a.user_domain_name ?? 'Default', projectDomain: a.project_domain_name ?? 'Default',
      regionName: c.region_name, interface: c.interface ?? 'public',
    };
  }
  const need = (k: string) => { const v = env[k]; if (!v) throw new Error(`${k} is not set (source the cloud's openrc, or name a clouds.yaml entry with --cloud)`); return v; };
  return {
    authUrl: authUrl ?? need('OS_AUTH_URL'), username: need('OS_USERNAME'), password: need('OS_PASSWORD'), projectName: need('OS_PROJECT_NAME'),
    userDomain: env.OS_USER_DOMAIN_NAME ?? 'Default', projectDomain: env.OS_PROJECT_DOMAIN_NAME ?? 'Default',
    regionName: env.OS_REGION_NAME, interface: env.OS_INTERFACE ?? 'public',
  };
}

/** `export K=V` lines of an openrc file as an environment. */
export function readOpenrc(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^export (\w+)=['"]?(.*?)['"]?$/gm)) out[m[1]] = m[2];
  return out;
}

// --- the servers' processes: their tree, CPU and memory (Linux /proc) --------------------------

/** The PIDs given and all their descendants. */
export function processTree(top: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch { /* gone meanwhile */ }
  }
  const out = new Set<number>();
  const walk = (p: number) => { if (out.has(p)) return; out.add(p); for (const c of children.get(p) ?? []) walk(c); };
  top.forEach(walk);
  return [...out];
}

/** user+system CPU seconds of the tree, with the children its processes have reaped (cutime, cstime: short-lived helpers). */
function treeCpu(top: number[]): number {
  let ticks = 0;
  for (const p of processTree(top)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8');
      const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(x[11]) + Number(x[12]) + Number(x[13]) + Number(x[14]);
    } catch { /* gone */ }
  }
  return ticks / 100;
}

/** RSS and PSS (shared pages split between their users) summed over the tree, MiB. */
function treeMemory(top: number[]): { rssMiB: number; pssMiB: number; processes: number } {
  let rss = 0, pss = 0, n = 0;
  for (const p of processTree(top)) {
    try {
      const t = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      rss += Number(/^Rss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
      pss += Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
      n++;
    } catch { /* gone, or a kernel thread */ }
  }
  return { rssMiB: round(rss / 1024, 1), pssMiB: round(pss / 1024, 1), processes: n };
}

/** Waits until the tree has used < 2 % of a core for 2 s (lazy-loading workers done), max 180 s. */
async function quiet(top: number[]): Promise<void> {
  const end = Date.now() + 180_000;
  let last = treeCpu(top);
  let calm = 0;
  while (Date.now() < end && calm < 2) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = treeCpu(top);
    calm = now - last < 0.02 ? calm + 1 : 0;
    last = now;
  }
}

/**
 * fetch, tried once more when the server closed a kept-alive connection before answering
 * (uwsgi's --http-socket closes after each response; undici may already have sent the next
 * request on it: "other side closed" with nothing read). Only for requests that may be repeated.
 */
async function retrying(url: string, init: RequestInit): Promise<Response> {
  try { return await fetch(url, init); } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    // A reset instead of a close (uwsgi, under load) is as safe to repeat for an idempotent method.
    const idempotent = ['GET', 'HEAD', 'PUT', 'DELETE'].includes((init.method ?? 'GET').toUpperCase());
    if (cause?.code !== 'UND_ERR_SOCKET' && !(idempotent && cause?.code === 'ECONNRESET')) throw e;
    return fetch(url, init);
  }
}

// --- the clouds ----------------------------------------------------------------------------------

interface Cloud {
  name: string; token: string; endpoints: Record<string, string>; issue(): Promise<string>;
  /** The servers' top-level PIDs (empty when unknown). */
  pids(): number[];
  /** Stops and starts the cloud; resolves at the start of the start (for timing). */
  restart?: { stop(): Promise<void>; start(): Promise<void> };
}

async function connect(name: string, c: Credentials, pids: () => number[], restart?: Cloud['restart']): Promise<Cloud> {
  const base = c.authUrl.replace(/\/+$/, '').replace(/\/v3$/, '') + '/v3';
  const body = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: c.username, domain: { name: c.userDomain }, password: c.password } } }, scope: { project: { name: c.projectName, domain: { name: c.projectDomain } } } } });
  const issue = async (catalog = false) => {
    const r = await retrying(`${base}/auth/tokens${catalog ? '' : '?nocatalog'}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (r.status !== 201) throw new Error(`${name}: token issue answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
    return { id: r.headers.get('x-subject-token')!, body: await r.json() as { token: { catalog?: { type: string; endpoints: { interface: string; region_id?: string; region?: string; url: string }[] }[] } } };
  };
  const first = await issue(true);
  const endpoints: Record<string, string> = { identity: base };
  for (const svc of first.body.token.catalog ?? []) {
    const e = svc.endpoints.find((x) => x.interface === c.interface && (!c.regionName || (x.region_id ?? x.region) === c.regionName));
    if (e && svc.type !== 'identity') endpoints[svc.type] = e.url.replace(/\/+$/, '');
  }
  return { name, token: first.id, endpoints, issue: async () => (await issue()).id, pids, restart };
}

// --- scenarios -----------------------------------------------------------------------------------

interface Metric { name: string; unit: string; higherIsBetter: boolean }
interface Scenario {
  name: string; metrics: Metric[];
  /** One value per metric; undefined where the cloud lacks the service or the figure. */
  run(cloud: Cloud): Promise<(number | undefined)[]>;
}

/** Server CPU per operation while fn runs (undefined when the servers' PIDs are unknown). */
async function withCpu<T>(cloud: Cloud, fn: () => Promise<T>): Promise<{ value: T; cpuSeconds: number | undefined }> {
  const pids = cloud.pids();
  const c0 = pids.length ? treeCpu(pids) : NaN;
  const value = await fn();
  const cpuSeconds = pids.length ? treeCpu(pids) - c0 : undefined;
  return { value, cpuSeconds };
}

function scenarios(seconds: number, imageMiB: number, imageFile: () => string, servers: number): Scenario[] {
  const cpuPerRequest = (label: string): Metric => ({ name: `${label}: servers' CPU per request`, unit: 'ms', higherIsBetter: false });
  const concurrent = (label: string, service: string | undefined, request: (cloud: Cloud) => Promise<number>): Scenario => ({
    name: label,
    metrics: [
      { name: label, unit: 'req/s', higherIsBetter: true }, cpuPerRequest(label),
      { name: `${label}: answers other than 200`, unit: 'count', higherIsBetter: false },
    ],
    async run(cloud) {
      if (service && !cloud.endpoints[service]) return [undefined, undefined, undefined];
      // A cloud that answers some requests wrongly under load is counted, not stopped: the rate
      // is of 200s only, and the wrong answers are a figure of their own (statuses logged).
      const statuses = new Map<number, number>();
      let ok = 0;
      const once = async () => { const status = await request(cloud); if (status === 200) ok++; else statuses.set(status, (statuses.get(status) ?? 0) + 1); };
      await load(10, 1000, once); // warm-up: lazily loaded workers, connection pools, caches
      statuses.clear();
      ok = 0;
      const t0 = performance.now();
      const { cpuSeconds } = await withCpu(cloud, () => load(10, seconds * 1000, once));
      const wrong = [...statuses.values()].reduce((a, b) => a + b, 0);
      if (wrong) console.log(`${cloud.name} ${label}: ${wrong} answers other than 200: ${JSON.stringify(Object.fromEntries(statuses))}`);
      return [round(ok / ((performance.now() - t0) / 1000), 0), cpuSeconds === undefined || !ok ? undefined : round((cpuSeconds * 1000) / (ok + wrong), 2), wrong];
    },
  });
  const get = (service: string, path: string, extra: Record<string, string> = {}) =>
    concurrent(`GET ${service} ${path}, concurrency 10`, service, async (cloud) => {
      const res = await retrying(cloud.endpoints[service] + path, { headers: { 'x-auth-token': cloud.token, ...extra } });
      await res.arrayBuffer();
      return res.status;
    });
  const image = `image ${imageMiB} MiB, curl`;
  return [
    {
      name: 'token issue (password), sequential, p50',
      metrics: [{ name: 'token issue (password), sequential, p50', unit: 'ms', higherIsBetter: false }, cpuPerRequest('token issue')],
      async run(cloud) {
        await cloud.issue();
        const { value: lat, cpuSeconds } = await withCpu(cloud, () => timeMany(20, () => cloud.issue()));
        return [round(percentile(lat, 50), 1), cpuSeconds === undefined ? undefined : round((cpuSeconds * 1000) / 20, 2)];
      },
    },
    concurrent('token validation (GET /v3/auth/tokens), concurrency 10', undefined, async (cloud) => {
      const res = await retrying(`${cloud.endpoints.identity}/auth/tokens?nocatalog`, { headers: { 'x-auth-token': cloud.token, 'x-subject-token': cloud.token } });
      await res.arrayBuffer();
      return res.status;
    }),
    get('compute', '/flavors/detail'),
    get('compute', '/servers/detail'),
    get('image', '/v2/images'),
    get('placement', '/resource_providers', { 'openstack-api-version': 'placement 1.14' }),
    {
      name: image,
      metrics: [
        { name: `image upload, ${imageMiB} MiB, curl -T (md5 + sha512)`, unit: 'MiB/s', higherIsBetter: true },
        { name: "image upload: servers' CPU per GiB", unit: 's', higherIsBetter: false },
        { name: `image download, ${imageMiB} MiB, curl, first after the upload`, unit: 'MiB/s', higherIsBetter: true },
        { name: `image download, ${imageMiB} MiB, curl, second`, unit: 'MiB/s', higherIsBetter: true },
        { name: `image download, ${imageMiB} MiB, curl, third (hot)`, unit: 'MiB/s', higherIsBetter: true },
        { name: "image download, first: servers' CPU per GiB", unit: 's', higherIsBetter: false },
        { name: "image download, third: servers' CPU per GiB", unit: 's', higherIsBetter: false },
        { name: "image upload + three downloads: servers' CPU per GiB moved, until quiet again", unit: 's', higherIsBetter: false },
      ],
      async run(cloud) { return imageTransfer(cloud, imageMiB, imageFile()); },
    },
    {
      name: `${servers} servers`,
      metrics: [
        { name: `boot ${servers} servers (fake driver, networks none), concurrency 10, until all ACTIVE`, unit: 'servers/s', higherIsBetter: true },
        { name: `GET compute /servers/detail with ${servers} servers, concurrency 10`, unit: 'req/s', higherIsBetter: true },
        { name: `GET compute /servers/detail with ${servers} servers: servers' CPU per request`, unit: 'ms', higherIsBetter: false },
        { name: `delete ${servers} servers, concurrency 10, until all gone`, unit: 'servers/s', higherIsBetter: true },
      ],
      async run(cloud) { return serverLifecycle(cloud, servers, seconds); },
    },
    {
      name: 'cold start',
      metrics: [
        { name: 'cold start: start command to the first password token', unit: 's', higherIsBetter: false },
        { name: 'idle memory: RSS summed over the processes', unit: 'MiB', higherIsBetter: false },
        { name: 'idle memory: PSS summed over the processes', unit: 'MiB', higherIsBetter: false },
        { name: 'idle memory: processes', unit: 'count', higherIsBetter: false },
      ],
      async run(cloud) {
        if (!cloud.restart) return [undefined, undefined, undefined, undefined];
        await cloud.restart.stop();
        const t0 = performance.now();
        await cloud.restart.start();
        for (let i = 0; ; i++) {
          try { cloud.token = await cloud.issue(); break; } catch { /* not up yet */ }
          if (performance.now() - t0 > 300_000) throw new Error(`${cloud.name}: no token 300 s after the start`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const sec = round((performance.now() - t0) / 1000, 2);
        // Idle = 20 s after the first token and then 2 s without work: what a process settles
        // to, not its start-up garbage (Stratus collects it 15 s after it is ready: src/cli/settle.ts).
        await new Promise((r) => setTimeout(r, Math.max(0, t0 + sec * 1000 + 20_000 - performance.now())));
        await quiet(cloud.pids());
        const m = treeMemory(cloud.pids());
        return [sec, m.rssMiB, m.pssMiB, m.processes];
      },
    },
  ];
}

/** curl with `-w '%{size_download} %{size_upload}'`: seconds and the bytes moved. */
function curl(args: string[]): Promise<{ seconds: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('curl', ['-sS', '-f', '-w', '%{size_download} %{size_upload}', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`curl ${args.join(' ')} exited ${code}: ${err}`));
      const [down, up] = out.trim().split(' ').map(Number);
      resolve({ seconds: (performance.now() - t0) / 1000, bytes: Math.max(down, up) });
    });
  });
}

/** Creates an image, uploads the file with curl -T, downloads it three times with curl, deletes
 * it. The last figure is all the servers' CPU from the upload's start until they are quiet after
 * the third download (writeback and any background work included), per GiB moved. */
async function imageTransfer(cloud: Cloud, mib: number, file: string): Promise<(number | undefined)[]> {
  const url = cloud.endpoints.image;
  if (!url) return Array(8).fill(undefined);
  const H = { 'x-auth-token': cloud.token, 'content-type': 'application/json' };
  const created = await fetch(`${url}/v2/images`, { method: 'POST', headers: H, body: JSON.stringify({ name: 'stratus-compare', disk_format: 'raw', container_format: 'bare' }) });
  if (created.status !== 201) throw new Error(`${cloud.name} image create: ${created.status}`);
  const img = await created.json() as { id: string };
  const fileUrl = `${url}/v2/images/${img.id}/file`;
  const tok = ['-H', `x-auth-token: ${cloud.token}`];
  const gib = mib / 1024;
  const pids = cloud.pids();
  const total0 = pids.length ? treeCpu(pids) : NaN;
  try {
    const up = await withCpu(cloud, () => curl(['-T', file, ...tok, '-H', 'content-type: application/octet-stream', '-X', 'PUT', fileUrl]));
    const shown = await (await fetch(`${url}/v2/images/${img.id}`, { headers: H })).json() as { status: string; size: number };
    if (shown.status !== 'active' || shown.size !== mib * 2 ** 20) throw new Error(`${cloud.name} upload: ${JSON.stringify(shown)}`);
    const download = async () => {
      const d = await curl(['-o', '/dev/null', ...tok, fileUrl]);
      if (d.bytes !== mib * 2 ** 20) throw new Error(`${cloud.name} download: ${d.bytes} bytes`);
      return d;
    };
    const first = await withCpu(cloud, download);
    const second = await download();
    const third = await withCpu(cloud, download);
    if (pids.length) await quiet(pids);
    const total = pids.length ? treeCpu(pids) - total0 : undefined;
    const perGiB = (s: number | undefined, n = 1) => (s === undefined ? undefined : round(s / gib / n, 2));
    const rate = (s: number) => round(mib / s, 1);
    return [rate(up.value.seconds), perGiB(up.cpuSeconds), rate(first.value.seconds), rate(second.seconds), rate(third.value.seconds), perGiB(first.cpuSeconds), perGiB(third.cpuSeconds), perGiB(total, 4)];
  } finally {
    await fetch(`${url}/v2/images/${img.id}`, { method: 'DELETE', headers: H });
  }
}

/** Runs `fn` over `items`, `concurrency` at a time. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < items.length) await fn(items[next++]); }));
}

/**
 * Boots `n` servers (a 1 MiB raw image, flavor 1, `networks: none`, 10 requests at a time) and
 * times them until every one is ACTIVE; lists them with `servers/detail` at concurrency 10 for
 * `seconds`; deletes them (10 at a time) and times it until none is listed. Both clouds must run
 * a compute service with a fake driver (Stratus: `--driver fake`; Zed: nova-compute with
 * `compute_driver = fake.FakeDriver`, bench/zed/osref.sh). The project's quota is lifted first.
 */
async function serverLifecycle(cloud: Cloud, n: number, seconds: number): Promise<(number | undefined)[]> {
  const compute = cloud.endpoints.compute;
  const image = cloud.endpoints.image;
  if (!compute || !image) return [undefined, undefined, undefined, undefined];
  const H = { 'x-auth-token': cloud.token, 'content-type': 'application/json', 'openstack-api-version': 'compute 2.37' };
  const call = async (method: string, url: string, body?: unknown, want = [200]) => {
    const r = await retrying(url, { method, headers: H, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    if (!want.includes(r.status)) throw new Error(`${cloud.name}: ${method} ${url} answered ${r.status}: ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : undefined;
  };
  const me = await (await retrying(`${cloud.endpoints.identity}/auth/tokens?nocatalog`, { headers: { 'x-auth-token': cloud.token, 'x-subject-token': cloud.token } })).json() as { token: { project: { id: string } } };
  await call('PUT', `${compute}/os-quota-sets/${me.token.project.id}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
  const img = await call('POST', `${image}/v2/images`, { name: 'stratus-compare-servers', disk_format: 'raw', container_format: 'bare' }, [201]);
  const up = await retrying(`${image}/v2/images/${img.id}/file`, { method: 'PUT', headers: { 'x-auth-token': cloud.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(1 << 20) });
  if (up.status !== 204) throw new Error(`${cloud.name}: image upload answered ${up.status}`);
  const ids: string[] = [];
  /** Polls the server list until `done` says so (every 250 ms, up to 20 minutes). */
  const until = async (done: (list: { id: string; status: string; fault?: unknown }[]) => boolean) => {
    for (const end = Date.now() + 1_200_000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
      const list = (await call('GET', `${compute}/servers/detail`)).servers as { id: string; status: string; fault?: unknown }[];
      const failed = list.find((x) => ids.includes(x.id) && x.status === 'ERROR');
      if (failed) throw new Error(`${cloud.name}: server ${failed.id} went to ERROR: ${JSON.stringify(failed.fault)}`);
      if (done(list)) return;
    }
    throw new Error(`${cloud.name}: servers not settled after 20 minutes`);
  };
  try {
    const t0 = performance.now();
    await pool(Array.from({ length: n }, (_, i) => i), 10, async (i) => {
      const create = () => call('POST', `${compute}/servers`, { server: { name: `compare-${i}`, imageRef: img.id, flavorRef: '1', networks: 'none' } }, [202]);
      let r;
      try { r = await create(); } catch (e) {
        // A connection reset before any answer: created only if the server now lists it.
        if ((e as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw e;
        const found = (await call('GET', `${compute}/servers?name=${encodeURIComponent(`^compare-${i}$`)}`)).servers as { id: string }[];
        r = found.length ? { server: found[0] } : await create();
      }
      ids.push(r.server.id);
    });
    await until((list) => ids.every((id) => list.some((x) => x.id === id && x.status === 'ACTIVE')));
    const boots = n / ((performance.now() - t0) / 1000);
    let ok = 0, requests = 0;
    const detail = async () => { requests++; const r = await retrying(`${compute}/servers/detail`, { headers: H }); await r.arrayBuffer(); if (r.status === 200) ok++; };
    await load(10, 1000, detail);
    ok = requests = 0;
    const t1 = performance.now();
    const { cpuSeconds } = await withCpu(cloud, () => load(10, seconds * 1000, detail));
    const detailRate = ok / ((performance.now() - t1) / 1000);
    const t2 = performance.now();
    await pool([...ids], 10, async (id) => { await call('DELETE', `${compute}/servers/${id}`, undefined, [204]); });
    await until((list) => !list.some((x) => ids.includes(x.id)));
    const deletes = n / ((performance.now() - t2) / 1000);
    ids.length = 0;
    return [round(boots, 2), round(detailRate, 0), cpuSeconds === undefined || !requests ? undefined : round((cpuSeconds * 1000) / requests, 2), round(deletes, 2)];
  } finally {
    // A run that failed half-way leaves nothing behind for the next round.
    await pool([...ids], 10, async (id) => { await retrying(`${compute}/servers/${id}`, { method: 'DELETE', headers: H }).then((r) => r.arrayBuffer(), () => undefined); });
    await retrying(`${image}/v2/images/${img.id}`, { method: 'DELETE', headers: H }).then((r) => r.arrayBuffer(), () => undefined);
  }
}

// --- Stratus started here --------------------------------------------------------------------------

interface Started { child: ChildProcess; dir: string; port: number; env: Record<string, string> }

async function launchStratus(dir: string, port: number): Promise<ChildProcess> {
  return spawn(process.execPath, [join(root, 'bin/stratus.mjs'), 'up', '--data-dir', dir, '--port', String(port), '--driver', 'fake'], { stdio: 'ignore', env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
}

async function startStratus(): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-compare-'));
  const port = await freePort();
  const child = await launchStratus(dir, port);
  for (let i = 0; ; i++) {
    if (existsSync(join(dir, 'admin-openrc'))) {
      try { if ((await fetch(`http://127.0.0.1:${port}/healthcheck`)).status === 200) break; } catch { /* not yet */ }
    }
    if (i > 600) throw new Error('stratus up did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, dir, port, env: readOpenrc(join(dir, 'admin-openrc')) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };
const range = (xs: number[]) => (xs.length ? `${Math.min(...xs)}–${Math.max(...xs)}` : '');

export default async function compare(argv: string[]): Promise<void> {
  const arg = (k: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${k}=`))?.split('=').slice(1).join('='); };
  const against = arg('against');
  if (!against) { console.log('compare: skipped (usage: npm run bench -- compare --against <auth-url> [--cloud=<clouds.yaml entry>] [--rounds=3] [--seconds=5] [--image-mib=512] [--only=a,b] [--other-pids=<cmd>] [--other-stop=<cmd> --other-start=<cmd>] [--tag=NAME])'); return; }
  const rounds = Number(arg('rounds') ?? 3);
  const seconds = Number(arg('seconds') ?? 5);
  const imageMiB = Number(arg('image-mib') ?? 512);
  const servers = Number(arg('servers') ?? 100);
  const only = arg('only')?.split(',');
  const tag = arg('tag');
  const sh = (cmd: string) => execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const otherPidsCmd = arg('other-pids');
  const otherPids = () => (otherPidsCmd ? sh(otherPidsCmd).split(/\s+/).filter(Boolean).map(Number) : []);
  const otherStop = arg('other-stop'), otherStart = arg('other-start');
  const otherRestart = otherStop && otherStart ? { stop: async () => { sh(otherStop); }, start: async () => { sh(otherStart); } } : undefined;
  const otherCreds = credentialsFrom(process.env, arg('cloud'), against);
  const tmp = mkdtempSync(join(tmpdir(), 'stratus-compare-data-'));
  let started: Started | undefined;
  try {
    let imageFile: string | undefined;
    const file = () => {
      // Incompressible data, made once, hot in the page cache for every upload (curl reads memory).
      imageFile ??= join(tmp, 'image.bin');
      if (!existsSync(imageFile)) sh(`openssl enc -aes-128-ctr -pass pass:stratus -nosalt -pbkdf2 -in /dev/zero 2>/dev/null | head -c ${imageMiB}M > ${imageFile}`);
      return imageFile;
    };
    let stratus: Cloud;
    if (arg('stratus')) stratus = await connect('stratus', credentialsFrom(readOpenrc(arg('stratus-openrc') ?? ''), undefined, arg('stratus')), () => []);
    else {
      const s = started = await startStratus();
      stratus = await connect('stratus', credentialsFrom(s.env), () => [s.child.pid!], {
        stop: () => stopChild(s.child),
        start: async () => { s.child = await launchStratus(s.dir, s.port); },
      });
    }
    const clouds = [stratus, await connect('other', otherCreds, otherPids, otherRestart)];
    const list = scenarios(seconds, imageMiB, file, servers).filter((s) => !only || only.some((o) => s.name.includes(o)));
    const runs: { metric: string; round: number; cloud: string; value: number | undefined; load1: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const s of list) {
        // Alternate which cloud goes first, so neither always meets a warmer (or busier) machine.
        const order = (r + list.indexOf(s)) % 2 === 0 ? clouds : [...clouds].reverse();
        for (const c of order) {
          const load1 = round(loadavg()[0], 2);
          const values = await s.run(c);
          s.metrics.forEach((m, i) => runs.push({ metric: m.name, round: r, cloud: c.name, value: values[i], load1 }));
          console.log(`round ${r} ${s.name} ${c.name}: ${s.metrics.map((m, i) => `${values[i] ?? 'n/a'} ${m.unit}`).join(', ')} (load ${load1})`);
        }
      }
    }
    const rows = list.flatMap((s) => s.metrics).map((m) => {
      const of = (cloud: string) => runs.filter((x) => x.metric === m.name && x.cloud === cloud && x.value !== undefined).map((x) => x.value!);
      const a = median(of('stratus')), b = median(of('other'));
      const ratio = Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0 ? round(m.higherIsBetter ? a / b : b / a, 2) : undefined;
      return { metric: m.name, unit: m.unit, stratus: a, other: b, stratusTimesBetter: ratio, stratusRange: range(of('stratus')), otherRange: range(of('other')) };
    });
    const loads = runs.map((x) => x.load1);
    const meta = { against, stratus: arg('stratus') ?? 'started here: stratus up --driver fake (SQLite)', rounds, seconds, imageMiB, loadAverage: { min: Math.min(...loads), max: Math.max(...loads) } };
    const out = writeResult(tag ? `compare-${tag}` : 'compare', { ...meta, summary: rows, runs });
    const md = [
      `# Stratus against ${against} — ${new Date().toISOString().slice(0, 10)}`, '',
      `\`npm run bench -- compare ${argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}\`: ${rounds} rounds, alternating which cloud goes first; medians (range over the rounds). ` +
      `Load average (1 min) during the runs: ${meta.loadAverage.min}–${meta.loadAverage.max}. Ratio = how many times Stratus is better.`, '',
      '| metric | unit | Stratus | other | ratio |', '|---|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.metric} | ${r.unit} | ${r.stratus} (${r.stratusRange}) | ${r.other} (${r.otherRange}) | ${r.stratusTimesBetter ?? 'n/a'} |`), '',
    ].join('\n');
    writeFileSync(out.replace(/\.json$/, '.md'), md);
    console.log(md);
  } finally {
    if (started) {
      await stopChild(started.child);
      rmSync(started.dir, { recursive: true, force: true });
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}
