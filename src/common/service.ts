// The contract between a service (identity, image, placement, compute…) and the process that
// runs it: `stratus up` mounts every service in one fastify app; `stratus serve <name>` runs one.
// Services reach each other only over HTTP (URLs from the catalog / config) or the RPC bus.
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.ts';
import type { Logger } from './logging.ts';
import type { ServiceMount, HealthCheck } from './http/app.ts';
import type { TokenValidator } from './http/auth.ts';
import type { MigrationSet } from './db/migrate.ts';
import type { Transport } from './rpc/transport.ts';

export interface ServiceContext {
  config: Config;
  logger: Logger;
  /** The message bus (memory:// in the all-in-one). Opened lazily: most APIs never need it. */
  transport(): Promise<Transport>;
  /** Validates X-Auth-Token for this service (remote through Identity, cached). */
  tokenValidator: TokenValidator;
  /** A token of the service user from [keystone_authtoken], for calls to other services. */
  serviceToken(): Promise<string>;
  /** Public URL of another service (e.g. 'placement', 'image'), from config or the catalog. */
  endpointFor(serviceType: string): Promise<string>;
  /** The URL this service is reached at (scheme://host:port/prefix), for links in responses. */
  publicUrl: string;
}

export interface RunningService {
  mount: ServiceMount;
  healthChecks?: HealthCheck[];
  /** Routes outside the service's prefix, in the all-in-one only (the dashboard's `/` redirect). */
  registerRoot?(app: FastifyInstance, prefix: string): void;
  /** Background work (periodic tasks, RPC servers) that runs beside the API. */
  stop(): Promise<void>;
}

export interface ServiceDefinition {
  /** 'identity' | 'image' | 'placement' | 'compute' … */
  name: string;
  /** Catalog type, e.g. 'identity', 'image', 'placement', 'compute'. */
  type: string;
  /** Port when run alone (`stratus serve <name>`), as OpenStack's. */
  defaultPort: number;
  /** Path prefix in the all-in-one (DevStack style). */
  prefix: string;
  /** Migration sets and the config option holding each database URL. */
  databases: { set: MigrationSet; option: [section: string, name: string] }[];
  start(ctx: ServiceContext): Promise<RunningService>;
}
