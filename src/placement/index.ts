// The Placement service: resource providers, inventories, allocations, traits, aggregates and
// allocation candidates (the Placement API 1.0-1.39). Mounted at /placement in the all-in-one,
// served alone on 8778 by `stratus serve placement`.
import { dirname, isAbsolute, join } from 'node:path';
import { registerOpts } from '../common/config.ts';
import { openDatabase } from '../common/db/database.ts';
import { PolicyEngine } from '../common/http/policy.ts';
import type { ServiceDefinition, RunningService } from '../common/service.ts';
import { placementMigrations, type PlacementDB } from './db/schema.ts';
import { PlacementStore } from './model/store.ts';
import { DEFAULT_POLICY } from './policy.ts';
import { placementErrorShape, registerRoutes, type PlacementApi } from './api/router.ts';
import { ROUTES } from './api/routes.ts';

registerOpts([
  { section: 'placement_database', name: 'connection', type: 'url', secret: true, help: 'Database URL of the placement service (sqlite:///path, mysql+pymysql://…, postgresql://…).' },
  { section: 'placement_database', name: 'max_pool_size', type: 'int', default: 10, min: 1, help: 'Connections kept to the placement database (MariaDB, PostgreSQL).' },
  { section: 'placement', name: 'randomize_allocation_candidates', type: 'bool', default: false, help: 'Return allocation candidates in random order (and a random sample when limit is given) instead of provider order, to spread concurrent schedulers over hosts.' },
  { section: 'placement', name: 'max_allocation_candidates', type: 'int', default: -1, min: -1, help: 'Stop generating allocation candidates after this many (-1: no limit). Bounds time and memory for requests whose groups combine into very many candidates.' },
  { section: 'placement', name: 'incomplete_consumer_project_id', type: 'string', default: '00000000-0000-0000-0000-000000000000', help: 'Project recorded for allocations written before microversion 1.8 without a project.' },
  { section: 'placement', name: 'incomplete_consumer_user_id', type: 'string', default: '00000000-0000-0000-0000-000000000000', help: 'User recorded for allocations written before microversion 1.8 without a user.' },
]);

export const placementService: ServiceDefinition = {
  name: 'placement',
  type: 'placement',
  defaultPort: 8778,
  prefix: '/placement',
  databases: [{ set: placementMigrations, option: ['placement_database', 'connection'] }],
  async start(ctx): Promise<RunningService> {
    const cfg = ctx.config;
    const url = cfg.get<string | undefined>('placement_database', 'connection');
    if (!url) throw new Error('[placement_database] connection is not set');
    const database = await openDatabase<PlacementDB>(url, { poolSize: cfg.get<number>('placement_database', 'max_pool_size') });
    const logger = ctx.logger.child({ service: 'placement' });
    const store = new PlacementStore(database, logger);
    await store.syncStandards();
    let policyFile = cfg.get<string>('oslo_policy', 'policy_file');
    if (policyFile && !isAbsolute(policyFile)) policyFile = cfg.file ? join(dirname(cfg.file), policyFile) : '';
    const policy = await PolicyEngine.load(DEFAULT_POLICY, policyFile || undefined);
    const api: PlacementApi = {
      store, policy, validator: ctx.tokenValidator,
      config: {
        randomizeCandidates: cfg.get<boolean>('placement', 'randomize_allocation_candidates'),
        maxCandidates: cfg.get<number>('placement', 'max_allocation_candidates'),
        incompleteProjectId: cfg.get<string>('placement', 'incomplete_consumer_project_id'),
        incompleteUserId: cfg.get<string>('placement', 'incomplete_consumer_user_id'),
      },
    };
    return {
      mount: {
        name: 'placement',
        prefix: '/placement',
        errorShape: placementErrorShape,
        register: (scope) => registerRoutes(scope, ROUTES, api),
      },
      healthChecks: [{ name: 'placement database', check: async () => { await store.db.selectFrom('resource_classes').select('id').limit(1).execute(); } }],
      stop: () => store.close(),
    };
  },
};
