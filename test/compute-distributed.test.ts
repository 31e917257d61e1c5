// Distributed mode: every service its own process from one config file, over RabbitMQ and a
// shared SQL server (MariaDB, or PostgreSQL when STRATUS_TEST_DB=postgresql): identity, image,
// placement, compute-api, conductor, scheduler and two compute agents (host = compute1,
// compute2). The operator steps run as commands (db sync, cell_v2 map_cell0 / create_cell /
// discover_hosts), then 20 servers boot and must spread over both hosts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';

if (process.env.STRATUS_TEST_DB !== 'postgresql') process.env.STRATUS_TEST_DB = 'mysql';
const { createTestDatabase, tempDir, uniqueName } = await import('./helpers/backends.ts');
const { freePort } = await import('./helpers/service.ts');
const { openDatabase } = await import('../src/common/db/database.ts');
const { migrate } = await import('../src/common/db/migrate.ts');
const { identityMigrations } = await import('../src/identity/store/schema.ts');
const { bootstrap, ensureProject, ensureRole, ensureServiceEndpoints, ensureUser, grant } = await import('../src/identity/bootstrap.ts');

const reachable = (port: number) => new Promise<boolean>((res) => {
  const s = createConnection({ host: '127.0.0.1', port }, () => { s.end(); res(true); });
  s.on('error', () => res(false));
});
const infra = (await reachable(5672)) && (await reachable(process.env.STRATUS_TEST_DB === 'postgresql' ? 5432 : 3306));

const root = join(import.meta.dirname, '..');
const procs: ChildProcess[] = [];
const dbs: { drop(): Promise<void> }[] = [];
let dir: ReturnType<typeof tempDir>;
let conf: string;
const ports: Record<string, number> = {};
let token = '';

const run = (args: string[], env: Record<string, string> = {}) => promisify(execFile)(process.execPath, [join(root, 'bin/stratus.mjs'), ...args, '--config', conf], { env: { ...process.env, ...env }, timeout: 60_000 });

function serve(name: string, env: Record<string, string> = {}, port?: number): void {
  const args = [join(root, 'bin/stratus.mjs'), 'serve', name, '--config', conf, '--bind', '127.0.0.1', ...(port ? ['--port', String(port)] : [])];
  const p = spawn(process.execPath, args, { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (b) => { err += b; if (err.length > 20000) err = err.slice(-10000); });
  p.on('exit', (code) => { if (code && code !== 143 && !stopping) console.error(`${name} exited ${code}: ${err.slice(-5000)}`); });
  procs.push(p);
}
let stopping = false;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(url, { method, headers: { 'x-auth-token': token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const t = await r.text();
  return { status: r.status, body: t ? JSON.parse(t) : undefined, headers: r.headers };
}

before(async () => {
  if (!infra) return;
  dir = tempDir('stratus-dist-');
  const names = ['identity', 'image', 'placement', 'nova_api', 'nova', 'nova_cell0'];
  const urls: Record<string, string> = {};
  for (const n of names) { const d = await createTestDatabase(); dbs.push(d); urls[n] = d.url; }
  for (const s of ['identity', 'image', 'placement', 'compute']) ports[s] = await freePort();
  const base = (s: string) => `http://127.0.0.1:${ports[s]}`;
  conf = join(dir.path, 'stratus.conf');
  writeFileSync(conf, [
    '[DEFAULT]', `state_path = ${dir.path}`, 'transport_url = rabbit://guest:guest@127.0.0.1:5672/', `control_exchange = ${uniqueName('stratus_dist')}`,
    'report_interval = 2', 'service_down_time = 20', 'my_ip = 127.0.0.1', '',
    '[identity_database]', `connection = ${urls.identity}`, '', '[image_database]', `connection = ${urls.image}`, '',
    '[placement_database]', `connection = ${urls.placement}`, '', '[api_database]', `connection = ${urls.nova_api}`, '',
    '[database]', `connection = ${urls.nova}`, '',
    '[keystone_authtoken]', `auth_url = ${base('identity')}/v3`, 'username = stratus', 'password = service-pass', 'project_name = service', '',
    '[fernet_tokens]', `key_repository = ${join(dir.path, 'fernet-keys')}`, '',
    '[scheduler]', 'discover_hosts_in_cells_interval = -1', '',
  ].join('\n'));
  // The install guide's steps.
  await run(['manage', 'identity', 'fernet_setup']);
  await run(['manage', 'identity', 'credential_setup']);
  await run(['manage', 'db', 'sync']);
  await run(['manage', 'api_db', 'sync']);
  await run(['manage', 'cell_v2', 'map_cell0', '--database_connection', urls.nova_cell0]);
  const created = await run(['manage', 'cell_v2', 'create_cell', '--name', 'cell1', '--verbose']);
  assert.match(created.stdout.trim(), /^[0-9a-f-]{36}$/);
  const cells = await run(['manage', 'cell_v2', 'list_cells']);
  assert.match(cells.stdout, / cell0 /);
  assert.match(cells.stdout, / cell1 /);
  const idb = await openDatabase(urls.identity);
  await migrate(idb, identityMigrations);
  await bootstrap(idb.db as never, { password: 'admin-pass', publicUrl: `${base('identity')}/v3`, regionId: 'RegionOne' });
  const svcProject = await ensureProject(idb.db as never, 'service', 'Service Project');
  const svcUser = await ensureUser(idb.db as never, 'stratus', 'service-pass', { defaultProjectId: svcProject });
  await grant(idb.db as never, 'UserProject', svcUser.id, svcProject, await ensureRole(idb.db as never, 'admin'));
  for (const [type, name, url] of [['image', 'glance', base('image')], ['placement', 'placement', base('placement')], ['compute', 'nova', `${base('compute')}/v2.1`]]) {
    await ensureServiceEndpoints(idb.db as never, { type, name, regionId: 'RegionOne', urls: { public: url, internal: url, admin: url } });
  }
  await idb.close();
  serve('identity', {}, ports.identity);
  serve('image', {}, ports.image);
  serve('placement', {}, ports.placement);
  serve('compute-api', {}, ports.compute);
  serve('conductor', { OS_DEFAULT__HOST: 'controller' });
  serve('scheduler', { OS_DEFAULT__HOST: 'controller' });
  serve('compute', { OS_DEFAULT__HOST: 'compute1' });
  serve('compute', { OS_DEFAULT__HOST: 'compute2' });
  const auth = { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: 'admin-pass' } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } };
  token = await until('identity', async () => {
    const r = await fetch(`${base('identity')}/v3/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(auth) });
    return r.status === 201 ? r.headers.get('x-subject-token')! : undefined;
  });
});

after(async () => {
  stopping = true;
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));
  for (const d of dbs) await d.drop().catch(() => undefined);
  dir?.remove();
});

test('distributed: separate processes over RabbitMQ and a SQL server; 20 servers spread over two compute hosts', { skip: !infra && 'needs RabbitMQ and MariaDB/PostgreSQL on 127.0.0.1', timeout: 360_000 }, async () => {
  const C = `http://127.0.0.1:${ports.compute}/v2.1`;
  const services = await until('all compute services up', async () => {
    const r = await http('GET', `${C}/os-services`);
    const up = r.status === 200 ? r.body.services.filter((s: any) => s.state === 'up') : [];
    return up.length === 4 ? up : undefined;
  }, 120_000);
  assert.deepEqual(services.map((s: any) => `${s.binary}@${s.host}`).sort(), ['nova-compute@compute1', 'nova-compute@compute2', 'nova-conductor@controller', 'nova-scheduler@controller']);
  const disc = await run(['manage', 'cell_v2', 'discover_hosts', '--verbose']);
  assert.match(disc.stdout, /Creating host mapping for compute host 'compute1'/);
  assert.match(disc.stdout, /Creating host mapping for compute host 'compute2'/);
  const hosts = await run(['manage', 'cell_v2', 'list_hosts']);
  assert.match(hosts.stdout, /compute1/);
  const check = await run(['status', 'upgrade-check']).catch((e) => e);
  assert.match(check.stdout, /Check: Cells v2\s+\|\n\| Result: Success/);

  // A service heartbeat comes before the agent's first inventory report: wait until placement
  // knows both hosts' capacity, or the first builds can only land on the host that reported.
  const P = `http://127.0.0.1:${ports.placement}`;
  await until('both compute hosts have inventory in placement', async () => {
    const rps = await http('GET', `${P}/resource_providers`);
    if (rps.status !== 200 || rps.body.resource_providers.length < 2) return undefined;
    const inv = await Promise.all(rps.body.resource_providers.map((rp: any) => http('GET', `${P}/resource_providers/${rp.uuid}/inventories`)));
    return inv.filter((r) => r.status === 200 && r.body.inventories.VCPU).length >= 2 ? true : undefined;
  }, 120_000);

  const img = await http('POST', `http://127.0.0.1:${ports.image}/v2/images`, { name: 'cirros', disk_format: 'raw', container_format: 'bare', visibility: 'public' });
  assert.equal(img.status, 201);
  const up = await fetch(`http://127.0.0.1:${ports.image}/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(65536) });
  assert.equal(up.status, 204);
  const project = (await http('GET', `http://127.0.0.1:${ports.identity}/v3/auth/tokens`, undefined, { 'x-subject-token': token })).body.token.project.id;
  await http('PUT', `${C}/os-quota-sets/${project}`, { quota_set: { instances: 50, cores: 50 } });
  const ids = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const r = await http('POST', `${C}/servers`, { server: { name: `d${i}`, imageRef: img.body.id, flavorRef: '1', networks: 'none' } }, { 'OpenStack-API-Version': 'compute 2.37' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.server.id as string;
  }));
  const servers = await until('20 ACTIVE servers', async () => {
    const r = await http('GET', `${C}/servers/detail`);
    const mine = r.body.servers.filter((s: any) => ids.includes(s.id));
    const bad = mine.find((s: any) => s.status === 'ERROR');
    if (bad) assert.fail(`server in ERROR: ${JSON.stringify(bad.fault)}`);
    return mine.length === 20 && mine.every((s: any) => s.status === 'ACTIVE') ? mine : undefined;
  }, 120_000);
  const perHost = new Map<string, number>();
  for (const s of servers) perHost.set(s['OS-EXT-SRV-ATTR:host'], (perHost.get(s['OS-EXT-SRV-ATTR:host']) ?? 0) + 1);
  assert.deepEqual([...perHost.keys()].sort(), ['compute1', 'compute2'], `spread: ${JSON.stringify([...perHost])}`);
  for (const n of perHost.values()) assert.ok(n >= 4, `uneven spread: ${JSON.stringify([...perHost])}`);
  const hv = await http('GET', `${C}/os-hypervisors/detail`);
  assert.deepEqual(hv.body.hypervisors.map((h: any) => h.hypervisor_hostname).sort(), ['compute1', 'compute2']);
  for (const id of ids) assert.equal((await http('DELETE', `${C}/servers/${id}`)).status, 204);
  await until('all deleted', async () => (await http('GET', `${C}/servers`)).body.servers.length === 0);
});
