// A distributed Stratus for fault tests and benchmarks: identity, image, placement, compute-api,
// conductors, schedulers and compute agents, each its own `stratus serve …` process from one
// generated config, over RabbitMQ (an own vhost) and MariaDB or PostgreSQL (own databases).
// Every process reaches the broker, the databases and placement through a FaultProxy of this
// deployment (each compute host through its own), so faults are injected by cutting, stalling
// or delaying those proxies — never by stopping the shared servers.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { randomBytes } from 'node:crypto';
import { FaultProxy } from './proxy.ts';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
/**
 * The scenarios' client waits longer than the services' own deadlines (an RPC cast waits up to
 * 60 s for the broker): a client that gave up first and retried would itself make the duplicate
 * servers the scenarios count against the cloud.
 */
const HTTP_TIMEOUT_MS = 120_000;

export type Backend = 'mysql' | 'postgresql';

export interface DeploymentOptions {
  backend?: Backend;
  conductors?: number;
  schedulers?: number;
  /** Compute hosts, each its own process (fake driver). */
  computeHosts?: string[];
  /** Extra environment for every process (OS_SECTION__OPTION overrides). */
  env?: Record<string, string>;
  reportInterval?: number;
  serviceDownTime?: number;
  /** Every process's stderr is also appended to `<logDir>/<name>.log` (kept after stop, for diagnosis). */
  logDir?: string;
  /** Virt driver of the compute hosts: fake (default) or qemu (real guests; STRATUS_GUEST_CACHE holds the accelerator probe). */
  driver?: 'fake' | 'qemu';
}

export interface Proc {
  name: string;
  child: ChildProcess;
  stderr: string;
  exited?: number | null;
}

const reachable = (port: number) => new Promise<boolean>((res) => {
  const s = createConnection({ host: '127.0.0.1', port }, () => { s.end(); res(true); });
  s.on('error', () => res(false));
});

/** Whether RabbitMQ, rabbitmqctl and the SQL server of `backend` are here. */
export async function infraAvailable(backend: Backend): Promise<boolean> {
  if (!(await reachable(5672)) || !(await reachable(backend === 'postgresql' ? 5432 : 3306))) return false;
  try { await exec('rabbitmqctl', ['list_vhosts', '-q'], { timeout: 20_000 }); return true; } catch { return false; }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000, every = 250): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(every);
  }
}

export class Deployment {
  readonly procs: Proc[] = [];
  readonly ports: Record<string, number> = {};
  readonly id = `stratus_f_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  readonly backend: Backend;
  /** Broker proxy of the controller processes; each compute host has its own (hostBroker). */
  broker!: FaultProxy;
  readonly hostBroker = new Map<string, FaultProxy>();
  readonly hostPlacement = new Map<string, FaultProxy>();
  /** Database proxy every service's connections go through. */
  database!: FaultProxy;
  /** Placement proxy the controllers reach placement through (the catalog's URL). */
  placement!: FaultProxy;
  dir = '';
  conf = '';
  token = '';
  projectId = '';
  urls: Record<string, string> = {};
  private dbNames: string[] = [];
  private proxies: FaultProxy[] = [];
  /** tmpfs mounted by fullDisk(), unmounted by stop(). */
  private mounts = new Set<string>();
  private stopping = false;

  constructor(readonly opts: DeploymentOptions = {}) {
    this.backend = opts.backend ?? 'mysql';
  }

  get computeUrl(): string { return `http://127.0.0.1:${this.ports.compute}/v2.1`; }
  get imageUrl(): string { return `http://127.0.0.1:${this.ports.image}`; }
  get placementUrl(): string { return `http://127.0.0.1:${this.ports.placement}`; }
  get identityUrl(): string { return `http://127.0.0.1:${this.ports.identity}`; }

  private async proxy(name: string, port: number): Promise<FaultProxy> {
    const p = new FaultProxy(name, { host: '127.0.0.1', port });
    await p.start();
    this.proxies.push(p);
    return p;
  }

  private dbUrl(name: string, port: number): string {
    return this.backend === 'mysql' ? `mysql+pymysql://root:@127.0.0.1:${port}/${name}` : `postgresql://postgres@127.0.0.1:${port}/${name}`;
  }

  private async sql(statement: string): Promise<void> {
    if (this.backend === 'mysql') {
      const mysql = await import('mysql2/promise');
      const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', password: '' });
      try { await c.query(statement); } finally { await c.end(); }
    } else {
      const pg = (await import('pg')).default;
      const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
      await c.connect();
      try { await c.query(statement); } finally { await c.end(); }
    }
  }

  /** `stratus …` with this deployment's config (operator commands). */
  run(args: string[], env: Record<string, string> = {}) {
    return exec(process.execPath, [join(root, 'bin/stratus.mjs'), ...args, '--config', this.conf], { env: { ...process.env, ...this.opts.env, ...env }, timeout: 120_000 });
  }

  async start(): Promise<this> {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    this.dir = mkdtempSync(join(tmpdir(), 'stratus-faults-'));
    // Broker: an own vhost, so queues and exchanges of this deployment are nobody else's.
    await exec('rabbitmqctl', ['add_vhost', this.id], { timeout: 30_000 });
    await exec('rabbitmqctl', ['set_permissions', '-p', this.id, 'guest', '.*', '.*', '.*'], { timeout: 30_000 });
    this.broker = await this.proxy('broker', 5672);
    const sqlPort = this.backend === 'mysql' ? 3306 : 5432;
    this.database = await this.proxy('database', sqlPort);
    for (const n of ['identity', 'image', 'placement', 'nova_api', 'nova', 'nova_cell0']) {
      const name = `${this.id}_${n}`;
      await this.sql(this.backend === 'mysql' ? `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` : `CREATE DATABASE "${name}"`);
      this.dbNames.push(name);
      this.urls[n] = this.dbUrl(name, this.database.port);
    }
    const direct = (n: string) => this.dbUrl(`${this.id}_${n}`, sqlPort);
    const { freePort } = await import('../helpers/service.ts');
    for (const s of ['identity', 'image', 'placement', 'compute']) this.ports[s] = await freePort();
    this.placement = await this.proxy('placement', this.ports.placement);
    const base = (s: string) => `http://127.0.0.1:${this.ports[s]}`;
    const vhost = encodeURIComponent(this.id);
    this.conf = join(this.dir, 'stratus.conf');
    writeFileSync(this.conf, [
      '[DEFAULT]', `state_path = ${this.dir}`, `transport_url = rabbit://guest:guest@127.0.0.1:${this.broker.port}/${vhost}`,
      `report_interval = ${this.opts.reportInterval ?? 2}`, `service_down_time = ${this.opts.serviceDownTime ?? 10}`, 'my_ip = 127.0.0.1', '',
      '[identity_database]', `connection = ${this.urls.identity}`, '', '[image_database]', `connection = ${this.urls.image}`, '',
      // Small pools (oslo.db's default is 5): eleven processes with 10 per database each could
      // open more connections than the shared server allows (max_connections 100 on PostgreSQL).
      '[placement_database]', `connection = ${this.urls.placement}`, 'max_pool_size = 5', '',
      '[api_database]', `connection = ${this.urls.nova_api}`, 'max_pool_size = 4', '',
      '[database]', `connection = ${this.urls.nova}`, 'max_pool_size = 4', '',
      '[keystone_authtoken]', `auth_url = ${base('identity')}/v3`, 'username = stratus', 'password = service-pass', 'project_name = service', '',
      '[fernet_tokens]', `key_repository = ${join(this.dir, 'fernet-keys')}`, '',
      '[scheduler]', 'discover_hosts_in_cells_interval = 2', 'host_state_refresh_seconds = 0', '',
      '[quota]', 'instances = -1', 'cores = -1', 'ram = -1', '',
    ].join('\n'));
    // The install guide's steps, independent ones side by side (each is a process start).
    const keys = Promise.all([this.run(['manage', 'identity', 'fernet_setup']), this.run(['manage', 'identity', 'credential_setup'])]);
    await this.run(['manage', 'db', 'sync']);
    const cellSteps = (async () => {
      await this.run(['manage', 'api_db', 'sync']);
      await this.run(['manage', 'cell_v2', 'map_cell0', '--database_connection', this.urls.nova_cell0]);
      await this.run(['manage', 'cell_v2', 'create_cell', '--name', 'cell1']);
    })();
    await this.bootstrapIdentity(direct('identity'), base);
    await keys;
    this.serve('identity', 'identity', {}, this.ports.identity);
    this.serve('image', 'image', {}, this.ports.image);
    this.serve('placement', 'placement', {}, this.ports.placement);
    await cellSteps;
    this.serve('compute-api', 'compute-api', {}, this.ports.compute);
    for (let i = 1; i <= (this.opts.conductors ?? 2); i++) this.serve(`conductor${i}`, 'conductor', { OS_DEFAULT__HOST: `conductor${i}` });
    for (let i = 1; i <= (this.opts.schedulers ?? 2); i++) this.serve(`scheduler${i}`, 'scheduler', { OS_DEFAULT__HOST: `scheduler${i}` });
    for (const h of this.opts.computeHosts ?? ['compute1', 'compute2']) await this.startCompute(h);
    try {
      await this.login();
      await until('compute services up and hosts with inventory', async () => this.ready(), 120_000, 500);
    } catch (e) {
      for (const p of this.procs) if (p.stderr) console.error(`--- ${p.name} (exit ${p.exited ?? 'running'}):\n${p.stderr.slice(-2000)}`);
      throw e;
    }
    return this;
  }

  private async bootstrapIdentity(url: string, base: (s: string) => string): Promise<void> {
    const { openDatabase } = await import('../../src/common/db/database.ts');
    const { migrate } = await import('../../src/common/db/migrate.ts');
    const { identityMigrations } = await import('../../src/identity/store/schema.ts');
    const { bootstrap, ensureProject, ensureRole, ensureServiceEndpoints, ensureUser, grant } = await import('../../src/identity/bootstrap.ts');
    const idb = await openDatabase(url);
    try {
      await migrate(idb, identityMigrations);
      await bootstrap(idb.db as never, { password: 'admin-pass', publicUrl: `${base('identity')}/v3`, regionId: 'RegionOne' });
      const svcProject = await ensureProject(idb.db as never, 'service', 'Service Project');
      const svcUser = await ensureUser(idb.db as never, 'stratus', 'service-pass', { defaultProjectId: svcProject });
      await grant(idb.db as never, 'UserProject', svcUser.id, svcProject, await ensureRole(idb.db as never, 'admin'));
      // Placement's catalog URL is the controllers' placement proxy (slowPlacement delays it).
      for (const [type, name, url] of [['image', 'glance', base('image')], ['placement', 'placement', `http://127.0.0.1:${this.placement.port}`], ['compute', 'nova', `${base('compute')}/v2.1`]]) {
        await ensureServiceEndpoints(idb.db as never, { type, name, regionId: 'RegionOne', urls: { public: url, internal: url, admin: url } });
      }
    } finally { await idb.close(); }
  }

  /** The directory a compute host's disks live in (fullDisk mounts a small tmpfs here). */
  hostDir(host: string): string { return join(this.dir, 'hosts', host); }
  instancesPath(host: string): string { return join(this.hostDir(host), 'instances'); }

  /** A compute host: its own process, broker proxy and placement proxy (partition cuts both). */
  async startCompute(host: string): Promise<void> {
    let b = this.hostBroker.get(host);
    if (!b) { b = await this.proxy(`broker@${host}`, 5672); this.hostBroker.set(host, b); }
    let p = this.hostPlacement.get(host);
    if (!p) { p = await this.proxy(`placement@${host}`, this.ports.placement); this.hostPlacement.set(host, p); }
    mkdirSync(this.instancesPath(host), { recursive: true });
    const qemu: Record<string, string> = this.opts.driver === 'qemu' ? {
      OS_DEFAULT__COMPUTE_DRIVER: 'qemu', OS_QEMU__POWER_SYNC_INTERVAL: '2',
      OS_QEMU__GUEST_CACHE_DIR: process.env.STRATUS_GUEST_CACHE ?? join((await import('node:os')).homedir(), '.cache', 'stratus'),
    } : {};
    this.serve(host, 'compute', {
      ...qemu,
      OS_DEFAULT__HOST: host, OS_DEFAULT__INSTANCES_PATH: this.instancesPath(host),
      OS_DEFAULT__TRANSPORT_URL: `rabbit://guest:guest@127.0.0.1:${b.port}/${encodeURIComponent(this.id)}`,
      OS_PLACEMENT__ENDPOINT_OVERRIDE: `http://127.0.0.1:${p.port}`,
    });
  }

  /** Starts (or restarts, after kill9) the process called `name`. */
  serve(name: string, service: string, env: Record<string, string> = {}, port?: number): Proc {
    const args = [join(root, 'bin/stratus.mjs'), 'serve', service, '--config', this.conf, '--bind', '127.0.0.1', ...(port ? ['--port', String(port)] : [])];
    const child = spawn(process.execPath, args, { env: { ...process.env, STRATUS_LOG_LEVEL: 'warn', ...this.opts.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    const proc: Proc = { name, child, stderr: '' };
    (proc as Proc & { restart: () => Proc }).restart = () => this.serve(name, service, env, port);
    const log = this.opts.logDir ? join(this.opts.logDir, `${name}.log`) : undefined;
    if (log) mkdirSync(this.opts.logDir!, { recursive: true });
    child.stderr!.on('data', (b) => {
      if (log) appendFileSync(log, b);
      proc.stderr += b; if (proc.stderr.length > 40_000) proc.stderr = proc.stderr.slice(-20_000); });
    child.on('exit', (code, signal) => {
      proc.exited = code;
      if (code && code !== 143 && !this.stopping && signal !== 'SIGKILL') console.error(`${name} exited ${code}: ${proc.stderr.slice(-3000)}`);
    });
    const old = this.procs.findIndex((p) => p.name === name);
    if (old >= 0) this.procs.splice(old, 1, proc); else this.procs.push(proc);
    return proc;
  }

  proc(name: string): Proc {
    const p = this.procs.find((x) => x.name === name);
    if (!p) throw new Error(`no process ${name}`);
    return p;
  }

  async login(): Promise<void> {
    const auth = { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: 'admin-pass' } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } };
    const r = await until('identity', async () => {
      const res = await fetch(`${this.identityUrl}/v3/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(auth) });
      return res.status === 201 ? res : undefined;
    }, 120_000, 500);
    this.token = r.headers.get('x-subject-token')!;
    this.projectId = ((await r.json()) as any).token.project.id;
  }

  /** Every compute host up in os-services with inventory in placement, and discovered. */
  async ready(): Promise<boolean> {
    const hosts = this.opts.computeHosts ?? ['compute1', 'compute2'];
    const s = await this.http('GET', `${this.computeUrl}/os-services?binary=nova-compute`);
    if (s.status !== 200) return false;
    const up = new Set(s.body.services.filter((x: any) => x.state === 'up').map((x: any) => x.host));
    if (!hosts.every((h) => up.has(h))) return false;
    const rps = await this.http('GET', `${this.placementUrl}/resource_providers`);
    if (rps.status !== 200) return false;
    const withInv = await Promise.all(rps.body.resource_providers.map(async (rp: any) => (await this.http('GET', `${this.placementUrl}/resource_providers/${rp.uuid}/inventories`)).body?.inventories?.VCPU ? rp.name : undefined));
    if (!hosts.every((h) => withInv.includes(h))) return false;
    const hv = await this.http('GET', `${this.computeUrl}/os-hypervisors`);
    return hv.status === 200 && hosts.every((h) => hv.body.hypervisors.some((x: any) => x.hypervisor_hostname === h));
  }

  /** A request of the scenarios' client; see HTTP_TIMEOUT_MS. */
  async http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const r = await fetch(url, { method, headers: { 'x-auth-token': this.token, 'openstack-api-version': 'compute 2.37', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    const t = await r.text();
    let parsed: any;
    try { parsed = t ? JSON.parse(t) : undefined; } catch { parsed = t; }
    return { status: r.status, body: parsed };
  }

  // --- faults, by name ---

  /** kill -9 of one process; `restart` brings it back with the same arguments. */
  kill9(name: string): void {
    const p = this.proc(name);
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }

  async restart(name: string): Promise<void> {
    const p = this.proc(name) as Proc & { restart: () => Proc };
    if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await new Promise((r) => p.child.once('exit', r)); }
    p.restart();
  }

  /** A broker restart as every process sees it: all connections reset, refused for `downMs`. */
  async restartRabbit(downMs = 3000): Promise<void> {
    const all = [this.broker, ...this.hostBroker.values()];
    for (const p of all) p.cut();
    await sleep(downMs);
    for (const p of all) p.restore();
  }

  /** A database server restart: connections reset, refused for `downMs`. */
  async restartDatabase(downMs = 3000): Promise<void> {
    this.database.cut();
    await sleep(downMs);
    this.database.restore();
  }

  /** A network partition of one compute host: its broker and placement traffic stop (no reset). */
  partition(host: string): void { this.hostBroker.get(host)!.stall(); this.hostPlacement.get(host)!.stall(); }
  heal(host: string): void { this.hostBroker.get(host)!.restore(); this.hostPlacement.get(host)!.restore(); }

  /**
   * A full disk on a compute host: its instances_path moves onto a 1 GiB tmpfs (what the host
   * reports as its disk) filled up to `freeMiB` free, the agent restarted on it. Loop-free, and
   * gone with freeDisk() or stop().
   */
  async fullDisk(host: string, freeMiB: number): Promise<void> {
    const dir = this.hostDir(host);
    this.kill9(host);
    await new Promise((r) => { const c = this.proc(host).child; if (c.exitCode !== null || c.signalCode !== null) r(undefined); else c.once('exit', r); });
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=1024m', `stratus-full-${host}`, dir]);
    this.mounts.add(dir);
    mkdirSync(this.instancesPath(host), { recursive: true });
    await exec('fallocate', ['-l', `${1024 - freeMiB}m`, join(dir, 'filler')]);
    await this.restart(host);
  }

  /** Back to the host's normal disk (what the tmpfs held is gone with it). */
  async freeDisk(host: string): Promise<void> {
    const dir = this.hostDir(host);
    this.kill9(host);
    await new Promise((r) => { const c = this.proc(host).child; if (c.exitCode !== null || c.signalCode !== null) r(undefined); else c.once('exit', r); });
    await this.unmount(dir);
    mkdirSync(this.instancesPath(host), { recursive: true });
    await this.restart(host);
  }

  private async unmount(dir: string): Promise<void> {
    if (!this.mounts.delete(dir)) return;
    await exec('umount', [dir]).catch(() => exec('umount', ['-l', dir]));
  }

  /**
   * What a compute host has left behind once its instances are gone: files under instances_path
   * other than the image cache (`_base`) and its locks, and qemu processes running from it.
   */
  async leftovers(host: string): Promise<string[]> {
    const { readdirSync } = await import('node:fs');
    const root = this.instancesPath(host);
    const files = readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
      .filter((f) => !f.startsWith('_base/') && !f.startsWith('locks/') && !f.startsWith('_guest/'));
    const { stdout } = await exec('pgrep', ['-af', 'qemu-system']).catch(() => ({ stdout: '' }));
    const qemus = stdout.split('\n').filter((l) => l.includes(root)).map((l) => `qemu pid ${l.split(' ')[0]}`);
    return [...files, ...qemus];
  }

  /** Every placement request of controllers and agents waits `ms` per chunk (0: back to normal). */
  slowPlacement(ms: number): void { for (const p of [this.placement, ...this.hostPlacement.values()]) p.delayMs = ms; }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const p of this.procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(this.procs.map((p) => (p.child.exitCode !== null || p.child.signalCode !== null ? undefined : new Promise((r) => {
      const t = setTimeout(() => { p.child.kill('SIGKILL'); }, 10_000);
      p.child.once('exit', () => { clearTimeout(t); r(undefined); });
    }))));
    for (const p of this.proxies) await p.stop();
    for (const m of [...this.mounts]) await this.unmount(m);
    for (const n of this.dbNames) await this.sql(this.backend === 'mysql' ? `DROP DATABASE IF EXISTS \`${n}\`` : `DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`).catch(() => undefined);
    await exec('rabbitmqctl', ['delete_vhost', this.id], { timeout: 30_000 }).catch(() => undefined);
    if (this.dir) (await import('node:fs')).rmSync(this.dir, { recursive: true, force: true });
  }
}
