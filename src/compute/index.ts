// The Compute service (Nova v2.1 API), mounted at /compute in the all-in-one and served alone on
// 8774 by `stratus serve compute-api`. Its databases: the API database ([api_database]) and this
// host's cell database ([database]); further cells are found through cell_mappings.
import { openDatabase } from '../common/db/database.ts';
import { PolicyEngine } from '../common/http/policy.ts';
import { resolvePolicyFile } from '../common/policy-file.ts';
import type { ServiceDefinition, RunningService } from '../common/service.ts';
import './config.ts';
import './errors.ts';
import { apiMigrations, cellMigrations } from './db/schema.ts';
import { Cells } from './cells.ts';
import { CellTransports } from './rpc.ts';
import { transportOptions } from '../common/rpc/transport.ts';
import { ImageClient, PlacementClient } from './clients.ts';
import { computePolicyDefaults } from './policy.ts';
import type { ComputeApi } from './api/context.ts';
import { registerComputeRows } from './api/rows.ts';
import { ROUTES } from './api/routes.ts';
import { versionRoutes } from './api/versions.ts';
import { seedFlavors } from './api/flavors.ts';

export const computeService: ServiceDefinition = {
  name: 'compute',
  type: 'compute',
  defaultPort: 8774,
  prefix: '/compute',
  databases: [
    { set: apiMigrations, option: ['api_database', 'connection'] },
    { set: cellMigrations, option: ['database', 'connection'] },
  ],
  async start(ctx): Promise<RunningService> {
    const { config } = ctx;
    const apiUrl = config.get<string | undefined>('api_database', 'connection');
    if (!apiUrl) throw new Error('[api_database] connection is not set');
    const cells = await Cells.open(apiUrl, { apiPoolSize: config.get<number>('api_database', 'max_pool_size'), cellPoolSize: config.get<number>('database', 'max_pool_size') });
    await seedFlavors(cells.db);
    const policy = await PolicyEngine.load(computePolicyDefaults, resolvePolicyFile(config));
    const logger = ctx.logger;
    const cellTransports = new CellTransports(ctx.transport, config.get('DEFAULT', 'transport_url'), transportOptions(config, logger));
    let identity: Promise<string> | undefined;
    const api: ComputeApi = {
      cells, policy, config, logger, publicUrl: ctx.publicUrl, transport: ctx.transport, cellTransports,
      images: new ImageClient(async () => config.get<string | undefined>('glance', 'endpoint_override')?.replace(/\/+$/, '') ?? ctx.endpointFor('image')),
      placement: new PlacementClient({
        endpoint: async () => config.get<string | undefined>('placement', 'endpoint_override')?.replace(/\/+$/, '') ?? ctx.endpointFor('placement'),
        token: () => ctx.serviceToken(),
      }),
      identityUrl: () => (identity ??= (async () => {
        const u = config.get<string | undefined>('keystone_authtoken', 'www_authenticate_uri') ?? config.get<string | undefined>('keystone_authtoken', 'auth_url');
        if (u) return u;
        return (await ctx.endpointFor('identity').catch(() => ctx.publicUrl.replace(/\/compute$/, '/identity'))).replace(/\/v3\/?$/, '');
      })()),
    };
    return {
      mount: {
        name: 'compute',
        prefix: '/compute',
        errorShape: 'nova',
        extraHeaders: (req) => ({ 'x-compute-request-id': req.id }),
        async register(scope) {
          versionRoutes(scope, ctx.publicUrl);
          await registerComputeRows(scope, ROUTES, api, ctx.tokenValidator);
        },
      },
      healthChecks: [{ name: 'compute API database', check: async () => { await cells.db.selectFrom('cell_mappings').select('id').limit(1).execute(); } }],
      async stop() {
        await cellTransports.close();
        await cells.close();
      },
    };
  },
};

export { openDatabase };
