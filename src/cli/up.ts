// `stratus up`: the all-in-one. First run writes a config into the data dir, creates the Fernet
// token and credential keys and databases, bootstraps the admin user and the catalog, and writes admin-openrc and
// clouds.yaml; later runs keep all state. Every API is served on one port under its prefix.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig, type Config } from '../common/config.ts';
import { createLogger, type LogFormat } from '../common/logging.ts';
import { openDatabase } from '../common/db/database.ts';
import { fernetSetup } from '../identity/tokens/fernet.ts';
import { credentialKeyRepository, keyRepository } from '../identity/index.ts';
import { credentialMigrate, credentialSetup } from '../identity/credential-keys.ts';
import { bootstrap, ensureProject, ensureRole, ensureServiceEndpoints, ensureUser, grant } from '../identity/bootstrap.ts';
import type { IdentityDB } from '../identity/store/schema.ts';
import { allServices } from './services.ts';
import { launch, migrateAll, type Launched } from './launcher.ts';
import { ensureDefaultCells } from '../compute/cells.ts';
import { startWorkers, discoverNow, type Workers } from '../compute/workers.ts';
import { ensureMetadataSecret, withAllInOneMetadataUrl } from '../compute/metadata/all-in-one.ts';
import { withAllInOneConsoleUrls } from '../compute/console/all-in-one.ts';

/** The console proxies run in the all-in-one whenever compute does. */
const CONSOLE_PROXIES = ['novncproxy', 'spicehtml5proxy', 'serialproxy'];

export interface UpOptions {
  dataDir: string; bind: string; port: number; quiet?: boolean; logFormat?: LogFormat;
  /** Virt driver: written into the config on first run (default: qemu when qemu-system-x86_64 is installed, else fake); given on a later run, it replaces the config's. */
  driver?: 'fake' | 'qemu';
  /** Compute agents of the all-in-one (compute1 … computeN when N > 1; default 1, named as the host). */
  computeHosts?: number;
}

/** The all-in-one runs real guests when it can: qemu when its binary is on PATH. */
export function defaultDriver(): 'fake' | 'qemu' {
  const path = (process.env.PATH ?? '/usr/bin:/bin').split(':');
  return path.some((d) => d && existsSync(join(d, 'qemu-system-x86_64'))) ? 'qemu' : 'fake';
}

/** Catalog entries of the all-in-one: name, type, description, path under the base URL. */
const CATALOG: Record<string, { name: string; description: string; path: string }> = {
  identity: { name: 'keystone', description: 'OpenStack Identity', path: '/identity' },
  image: { name: 'glance', description: 'OpenStack Image', path: '/image' },
  placement: { name: 'placement', description: 'Placement API', path: '/placement' },
  compute: { name: 'nova', description: 'OpenStack Compute', path: '/compute/v2.1' },
  ec2: { name: 'ec2', description: 'EC2 Compatibility API', path: '/ec2' },
};

const secret = () => randomBytes(18).toString('base64url');

function initialConfig(dir: string, servicePassword: string, driver: 'fake' | 'qemu'): string {
  const db = (name: string) => `sqlite:///${join(dir, `${name}.db`)}`;
  return [
    '# Written by `stratus up` on first run. Edit freely; `stratus config sample` lists every option.',
    '[DEFAULT]',
    `state_path = ${dir}`,
    'transport_url = memory://',
    `compute_driver = ${driver}`,
    '# One node: a resize may stay on it (as DevStack writes).',
    'allow_resize_to_same_host = true',
    '',
    '[identity_database]', `connection = ${db('identity')}`, '',
    '[image_database]', `connection = ${db('image')}`, '',
    '[placement_database]', `connection = ${db('placement')}`, '',
    '[api_database]', `connection = ${db('nova_api')}`, '',
    '[database]', `connection = ${db('nova')}`, '',
    '[ec2_database]', `connection = ${db('ec2')}`, '',
    '[keystone_authtoken]', 'username = stratus', `password = ${servicePassword}`, 'project_name = service', '',
    '[fernet_tokens]', `key_repository = ${join(dir, 'fernet-keys')}`, '',
    '[credential]', `key_repository = ${join(dir, 'credential-keys')}`, '',
  ].join('\n');
}

export async function up(o: UpOptions): Promise<Launched & { config: Config; adminPassword?: string; computeWorkers?: Workers; endpoints: { name: string; url: string }[] }> {
  const dir = resolve(o.dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const confFile = join(dir, 'stratus.conf');
  const firstRun = !existsSync(confFile);
  if (firstRun) await writeFile(confFile, initialConfig(dir, secret(), o.driver ?? defaultDriver()), { mode: 0o600 });
  else if (o.driver) await setDefaultOption(confFile, 'compute_driver', o.driver);
  await ensureMetadataSecret(confFile);
  let config = await loadConfig(confFile);
  const logger = createLogger({ level: config.get<boolean>('DEFAULT', 'debug') ? 'debug' : process.env.STRATUS_LOG_LEVEL ?? 'info', file: config.get<string | undefined>('DEFAULT', 'log_file'), format: o.logFormat });
  for (const w of config.warnings) logger.warn(w.message);
  // Data dirs from before the EC2 API have no database for it: add one beside the others.
  if (!config.get<string | undefined>('ec2_database', 'connection')) {
    await writeFile(confFile, `${await readFile(confFile, 'utf8')}\n[ec2_database]\nconnection = sqlite:///${join(dir, 'ec2.db')}\n`, { mode: 0o600 });
    config = await loadConfig(confFile);
  }
  const enabled = config.get<string[]>('DEFAULT', 'enabled_apis');
  const services = allServices.filter((s) => s.name === 'identity' || enabled.includes(s.name) || (s.name === 'dashboard' && config.get<boolean>('dashboard', 'enabled'))
    || (CONSOLE_PROXIES.includes(s.name) && enabled.includes('compute')));

  await fernetSetup(keyRepository(config));
  await migrateAll(config, services.flatMap((s) => s.databases));
  const compute = services.some((s) => s.name === 'compute');
  // Compute's cells: cell0 beside the cell database and cell1 on it (idempotent).
  if (compute) await ensureDefaultCells(config.get('api_database', 'connection'), config.get('database', 'connection'), config.get('DEFAULT', 'transport_url'));

  const host = o.bind === '0.0.0.0' || o.bind === '::' ? config.get<string>('DEFAULT', 'my_ip') : o.bind;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${o.port}`;
  // The config must be complete for the operator commands run against it (upgrade-check reaches
  // placement through identity's catalog), so it names this run's identity URL; re-read so every
  // service of this run sees the same value.
  if (await recordAuthUrl(confFile, `${base}/identity`)) config = await loadConfig(confFile);
  const adminPassword = firstRun || !existsSync(join(dir, 'admin-openrc')) ? secret() : undefined;
  // Guests' metadata relays reach this process on loopback (or on the bound address).
  config = withAllInOneMetadataUrl(config, o.bind === '0.0.0.0' || o.bind === '::' ? `http://127.0.0.1:${o.port}` : base);
  // Console URLs handed out by the API lead to this process's own proxies.
  config = withAllInOneConsoleUrls(config, base);

  // Bootstrap (idempotent): admin, roles, the service project and user, and the catalog at
  // this run's address (a different --port updates the endpoint URLs).
  const idb = await openDatabase<IdentityDB>(config.get('identity_database', 'connection'));
  try {
    // Credential encryption: a data dir from before it gets its key repository here, and its
    // plain credential rows are sealed (credential_setup + credential_migrate).
    await credentialSetup(credentialKeyRepository(config));
    await credentialMigrate(credentialKeyRepository(config), idb.db);
    await bootstrap(idb.db, { password: adminPassword, publicUrl: `${base}/identity`, regionId: 'RegionOne' });
    const serviceProject = await ensureProject(idb.db, 'service', 'Service Project');
    const svcUser = await ensureUser(idb.db, config.get('keystone_authtoken', 'username'), config.get<string>('keystone_authtoken', 'password'), { defaultProjectId: serviceProject });
    await grant(idb.db, 'UserProject', svcUser.id, serviceProject, await ensureRole(idb.db, 'admin'));
    await grant(idb.db, 'UserProject', svcUser.id, serviceProject, await ensureRole(idb.db, 'service'));
    for (const s of services) {
      const c = CATALOG[s.name];
      if (!c || s.name === 'identity') continue;
      const url = `${base}${c.path}`;
      await ensureServiceEndpoints(idb.db, { type: s.type, name: c.name, description: c.description, regionId: 'RegionOne', urls: { public: url, internal: url, admin: url } });
    }
  } finally {
    await idb.close();
  }

  if (adminPassword) await writeClientFiles(dir, `${base}/identity/v3`, adminPassword);
  const launched = await launch({ config, logger, services, bind: o.bind, port: o.port, allInOne: true, publicBase: base, migrated: true });
  let computeWorkers: Workers | undefined;
  if (compute) {
    // Conductor, scheduler and the compute agent of this host (its [DEFAULT] compute_driver), then its discovery.
    const workers = await startWorkers({ config, logger, kinds: ['conductor', 'scheduler', 'compute'], authUrl: `${base}/identity`, computeHosts: o.computeHosts }).catch(async (e) => { await launched.stop(); throw e; });
    computeWorkers = workers;
    await discoverNow(config);
    const stopHttp = launched.stop;
    let stopping: Promise<void> | undefined;
    launched.stop = () => (stopping ??= (async () => { await stopHttp(); await workers.stop(); })());
  }
  // What the start-up banner lists: each API's root and the dashboard.
  const endpoints = services.map((s) => ({ name: s.name, url: s.name === 'identity' ? `${base}/identity/v3` : s.name === 'dashboard' ? `${base}/dashboard/` : `${base}${CATALOG[s.name]?.path ?? s.prefix}` }));
  return { ...launched, config, adminPassword, computeWorkers, endpoints };
}

/** Sets one `[DEFAULT]` option in the all-in-one's config file, keeping every other line. */
async function setDefaultOption(confFile: string, name: string, value: string): Promise<void> {
  const lines = (await readFile(confFile, 'utf8')).split('\n');
  const start = lines.findIndex((l) => l.trim() === '[DEFAULT]');
  let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
  if (end < 0) end = lines.length;
  const at = lines.findIndex((l, i) => i > start && i < end && new RegExp(`^\\s*${name}\\s*=`).test(l));
  if (start < 0) lines.unshift('[DEFAULT]', `${name} = ${value}`, '');
  else if (at >= 0) lines[at] = `${name} = ${value}`;
  else lines.splice(start + 1, 0, `${name} = ${value}`);
  await writeFile(confFile, lines.join('\n'), { mode: 0o600 });
}

/** Sets `[keystone_authtoken] auth_url` (true when the file changed) in the all-in-one's config file, keeping every other line. */
export async function recordAuthUrl(confFile: string, url: string): Promise<boolean> {
  const lines = (await readFile(confFile, 'utf8')).split('\n');
  const start = lines.findIndex((l) => l.trim() === '[keystone_authtoken]');
  if (start < 0) {
    lines.push('', '[keystone_authtoken]', `auth_url = ${url}`, '');
  } else {
    let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
    if (end < 0) end = lines.length;
    const at = lines.findIndex((l, i) => i > start && i < end && /^\s*auth_url\s*=/.test(l));
    if (at >= 0) {
      if (lines[at]!.split('=').slice(1).join('=').trim() === url) return false;
      lines[at] = `auth_url = ${url}`;
    } else {
      lines.splice(start + 1, 0, `auth_url = ${url}`);
    }
  }
  await writeFile(confFile, lines.join('\n'), { mode: 0o600 });
  return true;
}

async function writeClientFiles(dir: string, authUrl: string, password: string) {
  const openrc = [
    '# Source this file to use the openstack CLI against this Stratus all-in-one.',
    'export OS_AUTH_TYPE=password',
    `export OS_AUTH_URL=${authUrl}`,
    'export OS_IDENTITY_API_VERSION=3',
    'export OS_USERNAME=admin',
    `export OS_PASSWORD='${password}'`,
    'export OS_PROJECT_NAME=admin',
    'export OS_USER_DOMAIN_NAME=Default',
    'export OS_PROJECT_DOMAIN_NAME=Default',
    'export OS_REGION_NAME=RegionOne',
    'export OS_INTERFACE=public',
    '# Compute microversions as the server and client negotiate (--nic none needs 2.37 or later).',
    'export OS_COMPUTE_API_VERSION=2.latest',
    '',
  ].join('\n');
  const clouds = [
    'clouds:',
    '  stratus:',
    '    auth:',
    `      auth_url: ${authUrl}`,
    '      username: admin',
    `      password: '${password}'`,
    '      project_name: admin',
    '      user_domain_name: Default',
    '      project_domain_name: Default',
    '    region_name: RegionOne',
    '    interface: public',
    '    identity_api_version: 3',
    "    compute_api_version: '2.latest'",
    '',
  ].join('\n');
  await writeFile(join(dir, 'admin-openrc'), openrc, { mode: 0o600 });
  await writeFile(join(dir, 'clouds.yaml'), clouds, { mode: 0o600 });
}
