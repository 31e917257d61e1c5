// A real all-in-one (`stratus up`) on a free port with a temporary data dir, on the database and
// transport chosen by STRATUS_TEST_DB / STRATUS_TEST_TRANSPORT, for integration tests.
import { before, after } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { up } from '../../src/cli/up.ts';
import { allServices } from '../../src/cli/services.ts';
import { createTestDatabase, tempDir, testTransportUrl } from './backends.ts';
import { freePort } from './service.ts';
import { apiDbSync, mapCell0 } from '../../src/compute/cells.ts';

export interface TestCloud {
  url: string;
  identityUrl: string;
  dataDir: string;
  adminPassword: string;
  /** A project-scoped admin token. */
  adminToken(): Promise<string>;
  /** Authenticates by name and returns the token id and the token body. */
  login(user: string, password: string, project?: string): Promise<{ token: string; body: any; status: number }>;
  /** JSON request helper: returns status, headers and parsed body. */
  req(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  stop(): Promise<void>;
  /** The cloud's resolved configuration and, when compute runs, its conductor/scheduler/agents. */
  config: import('../../src/common/config.ts').Config;
  compute?: import('../../src/compute/workers.ts').Workers;
}

export interface CloudOptions {
  /** Extra configuration, section → option → value (e.g. `{ DEFAULT: { log_file: … } }`). */
  config?: Record<string, Record<string, string>>;
  /** Compute agents (`stratus up --compute-hosts N`): compute1 … computeN when N > 1. */
  computeHosts?: number;
  /** Extra `[DEFAULT]` lines (`allow_resize_to_same_host = true` …) and whole sections after them. */
  defaults?: string[];
  /** More stratus.conf lines after the databases (e.g. a [qemu] section for the real-guest tests). */
  extraConfig?: string[];
}

export async function startCloud(o: CloudOptions = {}): Promise<TestCloud> {
  const dir = tempDir('stratus-cloud-');
  const sets = allServices.flatMap((s) => s.databases);
  const dbs = await Promise.all(sets.map(() => createTestDatabase()));
  const { url: transportUrl, exchange } = testTransportUrl();
  // The fake driver: CI has qemu installed, and only the real-guest tests (npm run test:qemu) use it.
  const lines = ['[DEFAULT]', `state_path = ${dir.path}`, `transport_url = ${transportUrl}`, `control_exchange = ${exchange}`, `compute_driver = ${process.env.STRATUS_TEST_DRIVER ?? 'fake'}`, ...(o.defaults ?? []), ''];
  sets.forEach((s, i) => lines.push(`[${s.option[0]}]`, `${s.option[1]} = ${dbs[i].url}`, ''));
  lines.push('[keystone_authtoken]', 'username = stratus', 'password = service-pass', 'project_name = service', '');
  for (const [section, options] of Object.entries(o.config ?? {})) {
    lines.push(`[${section}]`, ...Object.entries(options).map(([k, v]) => `${k} = ${v}`), '');
  }
  lines.push(...(o.extraConfig ?? []), '');
  // Compute's cell0 needs a database of its own (the all-in-one derives one beside the cell
  // database, which only works for SQLite files): create it and map it before `up`.
  const apiIdx = sets.findIndex((s) => s.option[0] === 'api_database');
  if (apiIdx >= 0) {
    const cell0 = await createTestDatabase();
    dbs.push(cell0);
    await apiDbSync(dbs[apiIdx].url);
    await mapCell0(dbs[apiIdx].url, { databaseConnection: cell0.url });
  }
  writeFileSync(join(dir.path, 'stratus.conf'), lines.join('\n'));
  process.env.STRATUS_LOG_LEVEL ??= process.env.STRATUS_TEST_LOG ?? 'silent';
  const port = await freePort();
  const r = await up({ dataDir: dir.path, bind: '127.0.0.1', port, computeHosts: o.computeHosts });
  const url = r.url;
  const identityUrl = `${url}/identity/v3`;
  const adminPassword = r.adminPassword!;

  const req: TestCloud['req'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers['x-auth-token'] = opts.token;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(path.startsWith('http') ? path : `${url}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
  const login: TestCloud['login'] = async (user, password, project) => {
    const auth: Record<string, unknown> = { identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password } } } };
    if (project) auth.scope = { project: { name: project, domain: { id: 'default' } } };
    const res = await req('POST', '/identity/v3/auth/tokens', { body: { auth } });
    return { token: res.headers.get('x-subject-token') ?? '', body: res.body, status: res.status };
  };
  let admin: string | undefined;
  return {
    url, identityUrl, dataDir: dir.path, adminPassword, req, login, config: r.config, compute: r.computeWorkers,
    adminToken: async () => (admin ??= (await login('admin', adminPassword, 'admin')).token),
    stop: async () => {
      await r.stop();
      await Promise.all(dbs.map((d) => d.drop()));
      dir.remove();
    },
  };
}

/** Asserts a Keystone-shaped error body with this status. */
/**
 * One all-in-one for a test file: started before its tests with an admin token, stopped after
 * them. `ready` receives both (the file keeps them in its own variables).
 */
export function useCloud(ready: (cloud: TestCloud, adminToken: string) => void, o: CloudOptions = {}): void {
  let cloud: TestCloud | undefined;
  before(async () => {
    cloud = await startCloud(o);
    ready(cloud, await cloud.adminToken());
  });
  after(async () => { await cloud?.stop(); });
}

export function assertKeystoneError(res: { status: number; body: any }, status: number): void {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  if (res.body?.error?.code !== status || typeof res.body.error.title !== 'string' || typeof res.body.error.message !== 'string') {
    throw new Error(`not a Keystone error body: ${JSON.stringify(res.body)}`);
  }
}
