// npm run bench -- compare --against <auth-url> [--rounds=3] [--seconds=5] [--image-mib=64]
//                          [--stratus=<auth-url>]
// The same scenarios against Stratus and another OpenStack-compatible cloud, with the same
// client (this process), alternating which cloud goes first in each round (issue 14, item 7).
// The other cloud's credentials come from OS_* variables (an openrc) or clouds.yaml (OS_CLOUD
// or --cloud=<name>; ./clouds.yaml, ~/.config/openstack/, /etc/openstack/). Stratus is a fresh
// `stratus up --driver fake` started here, unless --stratus names a running one (then its
// credentials come from --stratus-openrc=<file>).
// Writes bench/results/compare-<date>.json and .md: both columns, the ratio (how many times
// Stratus is better: rate ÷ rate, or latency ÷ latency inverted) and the load average of each run.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

interface Cloud { name: string; token: string; endpoints: Record<string, string>; issue(): Promise<string> }

async function connect(name: string, c: Credentials): Promise<Cloud> {
  const base = c.authUrl.replace(/\/+$/, '').replace(/\/v3$/, '') + '/v3';
  const body = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: c.username, domain: { name: c.userDomain }, password: c.password } } }, scope: { project: { name: c.projectName, domain: { name: c.projectDomain } } } } });
  const issue = async (catalog = false) => {
    const r = await fetch(`${base}/auth/tokens${catalog ? '' : '?nocatalog'}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (r.status !== 201) throw new Error(`${name}: token issue answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
    return { id: r.headers.get('x-subject-token')!, body: await r.json() as { token: { catalog?: { type: string; endpoints: { interface: string; region_id?: string; region?: string; url: string }[] }[] } } };
  };
  const first = await issue(true);
  const endpoints: Record<string, string> = { identity: base };
  for (const svc of first.body.token.catalog ?? []) {
    const e = svc.endpoints.find((x) => x.interface === c.interface && (!c.regionName || (x.region_id ?? x.region) === c.regionName));
    if (e && svc.type !== 'identity') endpoints[svc.type] = e.url.replace(/\/+$/, '');
  }
  return { name, token: first.id, endpoints, issue: async () => (await issue()).id };
}

interface Scenario {
  name: string; unit: 'req/s' | 'ms' | 'MiB/s'; higherIsBetter: boolean;
  /** undefined when the cloud lacks the service the scenario needs. */
  run(cloud: Cloud): Promise<number | undefined>;
}

function scenarios(seconds: number, imageMiB: number): Scenario[] {
  const get = (service: string, path: string, extra: Record<string, string> = {}): Scenario => ({
    name: `GET ${service} ${path}, concurrency 10`, unit: 'req/s', higherIsBetter: true,
    async run(cloud) {
      const url = cloud.endpoints[service];
      if (!url) return undefined;
      const r = await load(10, seconds * 1000, async () => {
        const res = await fetch(url + path, { headers: { 'x-auth-token': cloud.token, ...extra } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${cloud.name} ${path}: ${res.status}`);
      });
      return round(r.perSecond, 0);
    },
  });
  return [
    {
      name: 'token issue (password), sequential, p50', unit: 'ms', higherIsBetter: false,
      async run(cloud) { return round(percentile(await timeMany(20, () => cloud.issue()), 50), 1); },
    },
    {
      name: 'token validation (GET /v3/auth/tokens), concurrency 10', unit: 'req/s', higherIsBetter: true,
      async run(cloud) {
        const r = await load(10, seconds * 1000, async () => {
          const res = await fetch(`${cloud.endpoints.identity}/auth/tokens?nocatalog`, { headers: { 'x-auth-token': cloud.token, 'x-subject-token': cloud.token } });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`${cloud.name} validate: ${res.status}`);
        });
        return round(r.perSecond, 0);
      },
    },
    get('compute', '/flavors/detail'),
    get('compute', '/servers/detail'),
    get('image', '/v2/images'),
    get('placement', '/resource_providers', { 'openstack-api-version': 'placement 1.14' }),
    ...(['upload', 'download'] as const).map((dir): Scenario => ({
      name: `image ${dir}, ${imageMiB} MiB`, unit: 'MiB/s', higherIsBetter: true,
      async run(cloud) { return imageTransfer(cloud, imageMiB, dir); },
    })),
  ];
}

/** Creates an image, uploads imageMiB of data, downloads it, deletes it; the chosen leg's rate. */
async function imageTransfer(cloud: Cloud, mib: number, leg: 'upload' | 'download'): Promise<number | undefined> {
  const url = cloud.endpoints.image;
  if (!url) return undefined;
  const H = { 'x-auth-token': cloud.token, 'content-type': 'application/json' };
  const img = await (await fetch(`${url}/v2/images`, { method: 'POST', headers: H, body: JSON.stringify({ name: 'stratus-compare', disk_format: 'raw', container_format: 'bare' }) })).json() as { id: string };
  try {
    const chunk = Buffer.alloc(1 << 20, 7);
    const t0 = performance.now();
    const up = await fetch(`${url}/v2/images/${img.id}/file`, {
      method: 'PUT', headers: { ...H, 'content-type': 'application/octet-stream' }, duplex: 'half',
      body: (async function* () { for (let i = 0; i < mib; i++) yield chunk; })(),
    } as unknown as RequestInit);
    await up.arrayBuffer();
    if (up.status !== 204) throw new Error(`${cloud.name} upload: ${up.status}`);
    const upSec = (performance.now() - t0) / 1000;
    if (leg === 'upload') return round(mib / upSec, 1);
    const t1 = performance.now();
    const down = await fetch(`${url}/v2/images/${img.id}/file`, { headers: H });
    let n = 0;
    for await (const b of down.body as unknown as AsyncIterable<Uint8Array>) n += b.length;
    if (down.status !== 200 || n !== mib << 20) throw new Error(`${cloud.name} download: ${down.status}, ${n} bytes`);
    return round(mib / ((performance.now() - t1) / 1000), 1);
  } finally {
    await fetch(`${url}/v2/images/${img.id}`, { method: 'DELETE', headers: H });
  }
}

async function startStratus(): Promise<{ child: ChildProcess; dir: string; env: Record<string, string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-compare-'));
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'bin/stratus.mjs'), 'up', '--data-dir', dir, '--port', String(port), '--driver', 'fake'], { stdio: 'ignore', env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
  for (let i = 0; ; i++) {
    if (existsSync(join(dir, 'admin-openrc'))) {
      try { if ((await fetch(`http://127.0.0.1:${port}/healthcheck`)).status === 200) break; } catch { /* not yet */ }
    }
    if (i > 600) throw new Error('stratus up did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, dir, env: readOpenrc(join(dir, 'admin-openrc')) };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };

export default async function compare(argv: string[]): Promise<void> {
  const arg = (k: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${k}=`))?.split('=').slice(1).join('='); };
  const against = arg('against');
  if (!against) { console.log('compare: skipped (usage: npm run bench -- compare --against <auth-url> [--cloud=<clouds.yaml entry>] [--rounds=3] [--seconds=5] [--image-mib=64])'); return; }
  const rounds = Number(arg('rounds') ?? 3);
  const seconds = Number(arg('seconds') ?? 5);
  const imageMiB = Number(arg('image-mib') ?? 64);
  const otherCreds = credentialsFrom(process.env, arg('cloud'), against);
  let started: Awaited<ReturnType<typeof startStratus>> | undefined;
  try {
    let stratusCreds: Credentials;
    if (arg('stratus')) stratusCreds = credentialsFrom(readOpenrc(arg('stratus-openrc') ?? ''), undefined, arg('stratus'));
    else { started = await startStratus(); stratusCreds = credentialsFrom(started.env); }
    const clouds = [await connect('stratus', stratusCreds), await connect('other', otherCreds)];
    const list = scenarios(seconds, imageMiB);
    const runs: { scenario: string; round: number; cloud: string; value: number | undefined; load1: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const s of list) {
        // Alternate which cloud goes first, so neither always meets a warmer (or busier) machine.
        const order = (r + list.indexOf(s)) % 2 === 0 ? clouds : [...clouds].reverse();
        for (const c of order) {
          const load1 = round(loadavg()[0], 2);
          const value = await s.run(c);
          runs.push({ scenario: s.name, round: r, cloud: c.name, value, load1 });
          console.log(`round ${r} ${s.name} ${c.name}: ${value ?? 'n/a'} ${s.unit} (load ${load1})`);
        }
      }
    }
    const rows = list.map((s) => {
      const of = (cloud: string) => runs.filter((x) => x.scenario === s.name && x.cloud === cloud && x.value !== undefined).map((x) => x.value!);
      const a = median(of('stratus')), b = median(of('other'));
      const ratio = Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0 ? round(s.higherIsBetter ? a / b : b / a, 2) : undefined;
      return { scenario: s.name, unit: s.unit, stratus: a, other: b, stratusTimesBetter: ratio };
    });
    const loads = runs.map((x) => x.load1);
    const meta = { against, stratus: arg('stratus') ?? 'started here: stratus up --driver fake', rounds, seconds, imageMiB, loadAverage: { min: Math.min(...loads), max: Math.max(...loads) } };
    const file = writeResult('compare', { ...meta, summary: rows, runs });
    const md = [
      `# Stratus against ${against} — ${new Date().toISOString().slice(0, 10)}`, '',
      `\`npm run bench -- compare --against ${against}\`: ${rounds} rounds, alternating which cloud goes first; medians. ` +
      `Load average (1 min) during the runs: ${meta.loadAverage.min}–${meta.loadAverage.max}. Ratio = how many times Stratus is better.`, '',
      '| scenario | unit | Stratus | other | ratio |', '|---|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.scenario} | ${r.unit} | ${r.stratus} | ${r.other} | ${r.stratusTimesBetter ?? 'n/a'} |`), '',
    ].join('\n');
    writeFileSync(file.replace(/\.json$/, '.md'), md);
    console.log(md);
  } finally {
    if (started) {
      started.child.kill('SIGTERM');
      await new Promise((r) => started!.child.once('exit', r));
      rmSync(started.dir, { recursive: true, force: true });
    }
  }
}
