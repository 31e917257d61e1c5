// Runs one or more services in this process: migrations, the HTTP server with each service
// mounted, the shared bus, token validation through Identity, and a clean shutdown.
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { registerOpts, type Config } from '../common/config.ts';
import type { Logger } from '../common/logging.ts';
import { openDatabase } from '../common/db/database.ts';
import { migrate, type MigrationSet } from '../common/db/migrate.ts';
import { createHttpServer, mountService } from '../common/http/app.ts';
import { corsOptions, registerCors } from '../common/http/cors.ts';
import { RemoteTokenValidator } from '../common/http/auth.ts';
import { ServiceUnavailable } from '../common/errors.ts';
import { createTransport, transportOptions, type Transport } from '../common/rpc/transport.ts';
import type { RunningService, ServiceDefinition } from '../common/service.ts';
import { REVOCATION_TOPIC } from '../identity/index.ts';
import { httpRequest } from '../common/http-client.ts';

registerOpts([
  { section: 'keystone_authtoken', name: 'auth_url', type: 'url', help: 'Identity URL services validate tokens against (e.g. http://controller:5000/v3).' },
  { section: 'keystone_authtoken', name: 'www_authenticate_uri', type: 'url', help: 'Identity URL advertised to clients in WWW-Authenticate (defaults to auth_url).' },
  { section: 'keystone_authtoken', name: 'username', type: 'string', default: 'stratus', help: 'Service user that validates tokens and calls other services.' },
  { section: 'keystone_authtoken', name: 'password', type: 'string', secret: true, help: 'Password of the service user.' },
  { section: 'keystone_authtoken', name: 'project_name', type: 'string', default: 'service', help: 'Project of the service user.' },
  { section: 'keystone_authtoken', name: 'user_domain_name', type: 'string', default: 'Default', help: 'Domain of the service user.' },
  { section: 'keystone_authtoken', name: 'project_domain_name', type: 'string', default: 'Default', help: 'Domain of the service project.' },
  { section: 'keystone_authtoken', name: 'region_name', type: 'string', default: 'RegionOne', help: 'Region whose endpoints services use to reach each other.' },
  { section: 'keystone_authtoken', name: 'valid_interfaces', type: 'list', default: ['internal', 'public'], help: 'Endpoint interfaces services use to reach each other, in order of preference.' },
]);

export function identityV3(url: string): string {
  const u = url.replace(/\/+$/, '');
  return u.endsWith('/v3') ? u : `${u}/v3`;
}

export async function migrateAll(config: Config, sets: { set: MigrationSet; option: [string, string] }[], log?: (m: string) => void): Promise<void> {
  for (const { set, option } of sets) {
    const url = config.get<string | undefined>(option[0], option[1]);
    if (!url) throw new Error(`[${option[0]}] ${option[1]} is not set: cannot open the ${set.name} database`);
    const db = await openDatabase(url);
    try {
      const { applied } = await migrate(db, set);
      log?.(`${set.name}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
    } finally {
      await db.close();
    }
  }
}

export interface LaunchOptions {
  config: Config;
  logger: Logger;
  services: ServiceDefinition[];
  bind: string;
  port: number;
  /** Mount each service under its prefix (all-in-one) instead of at '/'. */
  allInOne: boolean;
  /** Base URL clients use (defaults to http://bind:port). */
  publicBase?: string;
  /** The services' databases are migrated already (the all-in-one did it before its bootstrap). */
  migrated?: boolean;
}

export interface Launched {
  app: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

export async function launch(o: LaunchOptions): Promise<Launched> {
  const { config, logger } = o;
  if (!o.migrated) await migrateAll(config, o.services.flatMap((s) => s.databases));
  const base = (o.publicBase ?? `http://${o.bind === '0.0.0.0' || o.bind === '::' ? config.get('DEFAULT', 'my_ip') : o.bind}:${o.port}`).replace(/\/+$/, '');
  // The all-in-one's identity is this process, at this run's address (the config's auth_url is written for operator commands).
  const authUrl = o.allInOne ? `${base}/identity` : config.get<string | undefined>('keystone_authtoken', 'auth_url');

  let transport: Promise<Transport> | undefined;
  const getTransport = () => (transport ??= createTransport(config.get('DEFAULT', 'transport_url'), transportOptions(config, logger.child({ component: 'rpc' }))));

  const validator = new RemoteTokenValidator({
    identityUrl: authUrl ? identityV3(authUrl) : 'http://127.0.0.1:5000/v3',
    wwwAuthenticateUri: config.get<string | undefined>('keystone_authtoken', 'www_authenticate_uri'),
    username: config.get('keystone_authtoken', 'username'),
    password: config.get<string | undefined>('keystone_authtoken', 'password') ?? '',
    projectName: config.get('keystone_authtoken', 'project_name'),
    userDomainName: config.get('keystone_authtoken', 'user_domain_name'),
    projectDomainName: config.get('keystone_authtoken', 'project_domain_name'),
  });

  // The catalog, read with the service token, tells services where the others are.
  let catalog: Promise<{ type: string; endpoints: { interface: string; region_id: string | null; url: string }[] }[]> | undefined;
  const endpointFor = async (type: string): Promise<string> => {
    catalog ??= (async () => {
      const res = await httpRequest(`${identityV3(authUrl!)}/auth/catalog`, { headers: { 'x-auth-token': await validator.getServiceToken() } });
      if (res.status !== 200) throw new ServiceUnavailable(`Could not read the service catalog (${res.status})`);
      return ((await res.json()) as { catalog: never[] }).catalog;
    })().catch((e) => { catalog = undefined; throw e; });
    const region = config.get<string>('keystone_authtoken', 'region_name');
    const entry = (await catalog).find((c) => c.type === type);
    for (const iface of config.get<string[]>('keystone_authtoken', 'valid_interfaces')) {
      const ep = entry?.endpoints.find((e) => e.interface === iface && (!e.region_id || e.region_id === region));
      if (ep) return ep.url.replace(/\/+$/, '');
    }
    throw new ServiceUnavailable(`No ${type} endpoint in region ${region} of the service catalog`);
  };

  const app = createHttpServer({ logger, bodyLimit: config.get<number>('DEFAULT', 'max_request_body_size') });
  registerCors(app, corsOptions(config));
  const running: RunningService[] = [];
  for (const def of o.services) {
    const publicUrl = o.allInOne ? `${base}${def.prefix}` : base;
    const r = await def.start({
      config, logger: logger.child({ service: def.name }), transport: getTransport, tokenValidator: validator,
      serviceToken: () => validator.getServiceToken(), endpointFor, publicUrl,
    });
    running.push(r);
    await mountService(app, { ...r.mount, prefix: o.allInOne ? def.prefix : '/' });
    app.healthChecks.push(...(r.healthChecks ?? []));
    if (o.allInOne) r.registerRoot?.(app, def.prefix);
  }

  // Revocations announced by Identity (in this process or another) flush our token cache.
  let revocationServer: { stop(): Promise<void> } | undefined;
  if (o.services.some((s) => s.name !== 'identity' && s.name !== 'dashboard')) {
    revocationServer = await (await getTransport()).serve(
      { topic: REVOCATION_TOPIC, server: `${hostname()}-${process.pid}` },
      { flush: () => { validator.flush(); catalog = undefined; } },
    );
  }

  await app.listen({ host: o.bind, port: o.port });
  const address = app.server.address() as { port: number };
  const url = o.publicBase ?? `http://${o.bind}:${address.port}`;
  let stopping: Promise<void> | undefined;
  return {
    app, url,
    stop: () => (stopping ??= (async () => {
      // Stop accepting and let in-flight requests finish; a connection still open after the
      // grace period (a slow client, a body still being drained) is cut rather than waited for.
      const grace = setTimeout(() => app.server.closeAllConnections(), 10_000);
      await app.close();
      clearTimeout(grace);
      await revocationServer?.stop();
      for (const r of running.reverse()) await r.stop().catch((e) => logger.error({ err: e }, 'service stop failed'));
      if (transport) await (await transport).close();
    })()),
  };
}
