// The compute processes without an HTTP API — conductor, scheduler, compute agent(s) — and
// what they need from their environment: the bus, a service token and the catalog (placement's
// URL). `stratus serve conductor|scheduler|compute` runs one kind; the all-in-one runs all three.
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/logging.ts';
import { openDatabase, type Database } from '../common/db/database.ts';
import { createTransport, transportOptions, type Transport } from '../common/rpc/transport.ts';
import { RemoteTokenValidator } from '../common/http/auth.ts';
import { ServiceUnavailable, BadRequest, NotFound } from '../common/errors.ts';
import { httpRequest } from '../common/http-client.ts';
import { Cells, discoverHosts } from './cells.ts';
import { CellTransports } from './rpc.ts';
import { ImageClient, PlacementClient, type ServiceAccess } from './clients.ts';
import { Conductor } from './conductor/conductor.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { ComputeManager } from './agent/manager.ts';
import { createDriver } from './virt/drivers.ts';
import { imageSpecFromSystemMetadata, imageSystemMetadata } from './image-props.ts';
import './config.ts';

export type WorkerKind = 'conductor' | 'scheduler' | 'compute';

export interface WorkerOptions {
  config: Config;
  logger: Logger;
  kinds: WorkerKind[];
  /** Identity URL for the service token and the catalog (default [keystone_authtoken] auth_url). */
  authUrl?: string;
  /** Fake hosts this process presents (compute with the fake driver). */
  fakeHosts?: number;
  /**
   * Compute agents of the all-in-one (`stratus up --compute-hosts N`): compute1 … computeN when
   * N > 1, each with its own instances_path (<instances_path>/<host>) and compute node.
   */
  computeHosts?: number;
}

export interface Workers {
  conductor?: Conductor;
  scheduler?: Scheduler;
  agents: ComputeManager[];
  cells?: Cells;
  stop(): Promise<void>;
}

function v3(url: string): string {
  const u = url.replace(/\/+$/, '');
  return u.endsWith('/v3') ? u : `${u}/v3`;
}

/** Password credentials for Keystone v3, as [keystone_authtoken] or an openstack client's OS_* name them. */
export interface PasswordCredentials {
  authUrl?: string; username: string; password: string; projectName: string;
  userDomainName?: string; projectDomainName?: string;
}

/** Service token and catalog lookups, as the launcher gives HTTP services. */
export function serviceAccess(config: Config, authUrl: string | undefined, type: 'placement' | 'image'): ServiceAccess {
  return passwordAccess({
    authUrl: authUrl ?? config.get<string | undefined>('keystone_authtoken', 'auth_url'),
    username: config.get('keystone_authtoken', 'username'),
    password: config.get<string | undefined>('keystone_authtoken', 'password') ?? '',
    projectName: config.get('keystone_authtoken', 'project_name'),
    userDomainName: config.get('keystone_authtoken', 'user_domain_name'),
    projectDomainName: config.get('keystone_authtoken', 'project_domain_name'),
  }, type, { override: config.get<string | undefined>(type === 'placement' ? 'placement' : 'glance', 'endpoint_override') });
}

/** A token for the credentials and the service's endpoint from the catalog (the interface asked for, else internal, else public). */
export function passwordAccess(c: PasswordCredentials, type: 'placement' | 'image', o: { override?: string; interface?: string; region?: string } = {}): ServiceAccess {
  const url = c.authUrl;
  const validator = new RemoteTokenValidator({
    identityUrl: url ? v3(url) : 'http://127.0.0.1:5000/v3',
    username: c.username, password: c.password, projectName: c.projectName,
    userDomainName: c.userDomainName, projectDomainName: c.projectDomainName,
  });
  let endpoint: Promise<string> | undefined;
  return {
    token: () => validator.getServiceToken(),
    endpoint: () => (endpoint ??= (async () => {
      if (o.override) return o.override.replace(/\/+$/, '');
      if (!url) throw new ServiceUnavailable(`No [keystone_authtoken] auth_url to find the ${type} endpoint in the catalog`);
      const res = await httpRequest(`${v3(url)}/auth/catalog`, { headers: { 'x-auth-token': await validator.getServiceToken() } });
      if (res.status !== 200) throw new ServiceUnavailable(`Could not read the service catalog (${res.status})`);
      const cat = ((await res.json()) as { catalog: { type: string; endpoints: { interface: string; url: string; region?: string; region_id?: string }[] }[] }).catalog;
      const e = cat.find((x) => x.type === type)?.endpoints.filter((x) => !o.region || (x.region_id ?? x.region) === o.region);
      const ep = (o.interface && e?.find((x) => x.interface === o.interface)) || e?.find((x) => x.interface === 'internal') || e?.find((x) => x.interface === 'public');
      if (!ep) throw new ServiceUnavailable(`No ${type} endpoint in the service catalog`);
      return ep.url.replace(/\/+$/, '');
    })().catch((err) => { endpoint = undefined; throw err; })),
  };
}

/** `[DEFAULT] instances_path`, default `<state_path>/instances` (Nova's). */
export function instancesPath(config: Config): string {
  return config.get<string | undefined>('DEFAULT', 'instances_path') || join(config.get<string>('DEFAULT', 'state_path'), 'instances');
}

export function hostName(config: Config): string {
  return config.get<string>('DEFAULT', 'host') || hostname();
}

export async function startWorkers(o: WorkerOptions): Promise<Workers> {
  const { config, logger } = o;
  const transport: Transport = await createTransport(config.get('DEFAULT', 'transport_url'), transportOptions(config, logger.child({ component: 'rpc' })));
  const placement = new PlacementClient(serviceAccess(config, o.authUrl, 'placement'));
  const host = hostName(config);
  const out: Workers = { agents: [], stop: async () => {} };
  let cells: Cells | undefined;
  let local: Database | undefined;
  const needDb = o.kinds.includes('conductor') || o.kinds.includes('scheduler');
  const cellTransports = new CellTransports(async () => transport, config.get('DEFAULT', 'transport_url'), transportOptions(config, logger));
  try {
    if (needDb) {
      const apiUrl = config.get<string | undefined>('api_database', 'connection');
      const cellUrl = config.get<string | undefined>('database', 'connection');
      if (!apiUrl) throw new BadRequest('[api_database] connection is not set: the conductor and the scheduler need the API database.');
      if (!cellUrl) throw new BadRequest('[database] connection is not set: the conductor and the scheduler need their cell database.');
      cells = await Cells.open(apiUrl, { apiPoolSize: config.get<number>('api_database', 'max_pool_size'), cellPoolSize: config.get<number>('database', 'max_pool_size') });
      local = await openDatabase(cellUrl, { poolSize: config.get<number>('database', 'max_pool_size') });
      out.cells = cells;
    }
    if (o.kinds.includes('conductor')) {
      out.conductor = new Conductor({ config, logger: logger.child({ service: 'conductor' }), cells: cells!, localCell: local!.db, transport, cellTransports, placement });
      await out.conductor.start(host);
    }
    if (o.kinds.includes('scheduler')) {
      out.scheduler = new Scheduler({ config, logger: logger.child({ service: 'scheduler' }), cells: cells!, localCell: local!.db, transport, placement });
      await out.scheduler.start(host);
    }
    if (o.kinds.includes('compute')) {
      const driverName = config.get<string>('DEFAULT', 'compute_driver');
      const imageAccess = serviceAccess(config, o.authUrl, 'image');
      const images = new ImageClient(imageAccess.endpoint, imageAccess.token);
      const n = o.fakeHosts ?? config.get<number>('compute', 'fake_hosts');
      const many = (o.computeHosts ?? 1) > 1;
      const names = many ? Array.from({ length: o.computeHosts! }, (_, i) => `compute${i + 1}`)
        : n > 1 ? Array.from({ length: n }, (_, i) => `${host}-${i + 1}`) : [host];
      // Many fake hosts start a few at a time so placement and the conductor are not flooded.
      for (let i = 0; i < names.length; i += 25) {
        await Promise.all(names.slice(i, i + 25).map(async (h) => {
          const driver = await createDriver(driverName, {
            config, logger: logger.child({ service: 'compute', host: h, component: 'virt' }), host: h, instancesPath: many ? join(instancesPath(config), h) : instancesPath(config),
            downloadImage: (id) => images.download(id),
            imageMeta: async (id) => {
              const m = await images.get(await imageAccess.token(), id);
              if (!m) throw new NotFound(`Image ${id} could not be found.`);
              return imageSpecFromSystemMetadata(imageSystemMetadata(m), m.id)!;
            },
          });
          const agent = new ComputeManager({ config, logger: logger.child({ service: 'compute', host: h }), transport, placement, driver, host: h, images });
          await agent.start();
          out.agents.push(agent);
        }));
      }
    }
  } catch (e) {
    await cells?.close();
    await local?.close();
    await transport.close();
    throw e;
  }
  out.stop = async () => {
    for (const a of out.agents) await a.stop().catch((err) => logger.warn({ err, host: a.host }, 'compute agent did not stop cleanly'));
    await out.scheduler?.stop();
    await out.conductor?.stop();
    await cellTransports.close();
    await transport.close();
    await cells?.close();
    await local?.close();
  };
  return out;
}

/** Maps hosts that registered since the last discovery (the all-in-one does this at start). */
export async function discoverNow(config: Config): Promise<string[]> {
  const cells = await Cells.open(config.get<string>('api_database', 'connection'));
  try { return (await discoverHosts(cells)).map((r) => r.host); } finally { await cells.close(); }
}
