// The EC2-compatible API: Amazon's EC2 Query API (what awscli and boto3 speak) on top of the
// compute and image APIs. Mounted at /ec2 in the all-in-one, served alone on 8788 by
// `stratus serve ec2`. It reaches identity, compute and image only over HTTP, with the token
// identity's /v3/ec2tokens gives for each signed request.
import { hostname } from 'node:os';
import { registerOpts } from '../common/config.ts';
import { REVOCATION_TOPIC } from '../identity/index.ts';
import { openDatabase } from '../common/db/database.ts';
import type { RunningService, ServiceDefinition } from '../common/service.ts';
import { SignatureVerifier } from './auth.ts';
import { ec2Migrations, type Ec2DB } from './db.ts';
import { COMPUTE_MICROVERSION, Downstream } from './downstream.ts';
import { IdMapper } from './ids.ts';
import { registerEc2Routes } from './router.ts';

registerOpts([
  { section: 'ec2_database', name: 'connection', type: 'url', secret: true, help: 'Database URL of the EC2 API (EC2 id mappings, reservations, client tokens): sqlite:///path, mysql+pymysql://…, postgresql://….' },
  { section: 'ec2_database', name: 'max_pool_size', type: 'int', default: 5, min: 1, help: 'Connections kept to the EC2 database (MariaDB, PostgreSQL).' },
  { section: 'ec2', name: 'max_request_skew', type: 'int', default: 900, min: 1, max: 3600, help: 'Seconds a signed request\'s time may differ from the server\'s, either way, before it is refused as RequestExpired (AWS EC2: 15 minutes). A signed request is good for this long around its signing time (the replay limit), and a verified one is cached as long.' },
  { section: 'ec2', name: 'signing_key_cache_time', type: 'int', default: 300, min: 0, max: 3600, help: 'Seconds a SigV4 signing key from Identity (one access key, day, region and service) is used to check requests locally before Identity is asked again; also how long a deleted EC2 credential may keep working here (keystonemiddleware\'s token_cache_time trade-off). 0 asks Identity for every new request.' },
  { section: 'ec2', name: 'default_instance_type', type: 'string', default: 'm1.small', help: 'Flavor RunInstances uses when no InstanceType is given.' },
  { section: 'ec2', name: 'network', type: 'string', default: 'auto', choices: ['auto', 'none'], help: 'Nova `networks` value RunInstances boots with (EC2 has no "no network" instance; none for clouds without networking).' },
]);

export const ec2Service: ServiceDefinition = {
  name: 'ec2',
  type: 'ec2',
  defaultPort: 8788,
  prefix: '/ec2',
  databases: [{ set: ec2Migrations, option: ['ec2_database', 'connection'] }],
  async start(ctx): Promise<RunningService> {
    const cfg = ctx.config;
    const url = cfg.get<string | undefined>('ec2_database', 'connection');
    if (!url) throw new Error('[ec2_database] connection is not set');
    const database = await openDatabase<Ec2DB>(url, { poolSize: cfg.get<number>('ec2_database', 'max_pool_size') });
    const identity = async () => {
      const u = (await ctx.endpointFor('identity')).replace(/\/+$/, '');
      return u.endsWith('/v3') ? u : `${u}/v3`;
    };
    const verifier = new SignatureVerifier({
      identityUrl: identity, maxSkewMs: cfg.get<number>('ec2', 'max_request_skew') * 1000,
      serviceToken: () => ctx.serviceToken(), keyCacheMs: cfg.get<number>('ec2', 'signing_key_cache_time') * 1000, logger: ctx.logger,
    });
    // Identity announces revocations (users disabled, roles removed…) on the bus: forget what
    // was verified. Every server of the topic gets the fanout, so this one has a name of its own.
    const revocations = await (await ctx.transport()).serve({ topic: REVOCATION_TOPIC, server: `ec2-${hostname()}-${process.pid}` }, { flush: () => verifier.flush() });
    const compute = new Downstream('compute', () => ctx.endpointFor('compute'), { 'openstack-api-version': `compute ${COMPUTE_MICROVERSION}` });
    const image = new Downstream('image', async () => (await ctx.endpointFor('image')).replace(/\/v2\/?$/, ''));
    const settings = {
      region: cfg.get<string>('keystone_authtoken', 'region_name'), publicUrl: ctx.publicUrl,
      defaultInstanceType: cfg.get<string>('ec2', 'default_instance_type'), network: cfg.get<'auto' | 'none'>('ec2', 'network'),
    };
    return {
      mount: {
        name: 'ec2', prefix: '/ec2', errorShape: 'nova',
        register: (scope) => registerEc2Routes(scope, { verifier, compute, image, ids: new IdMapper(database.db), db: database.db, settings, serviceToken: () => ctx.serviceToken() }),
      },
      healthChecks: [{ name: 'ec2 database', check: async () => { await database.db.selectFrom('ec2_ids').select('ec2_id').limit(1).execute(); } }],
      stop: async () => { await revocations.stop(); await database.close(); },
    };
  },
};

export { ec2IdFor } from './ids.ts';
