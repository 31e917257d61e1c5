// Starts one service on a free port with a fresh database on the selected backend, and a token
// validator that knows a few fixed tokens, so a service's HTTP behaviour can be tested without
// the rest of the cloud. Whole-cloud tests use test/helpers/cloud.ts (a real all-in-one).
import type { FastifyInstance } from 'fastify';
import { buildConfig, type Config } from '../../src/common/config.ts';
import { createHttpServer, mountService } from '../../src/common/http/app.ts';
import { createLogger } from '../../src/common/logging.ts';
import { openDatabase } from '../../src/common/db/database.ts';
import { migrate } from '../../src/common/db/migrate.ts';
import { Unauthorized } from '../../src/common/errors.ts';
import type { AuthContext, TokenValidator } from '../../src/common/http/auth.ts';
import type { ServiceDefinition, RunningService } from '../../src/common/service.ts';
import { createServer } from 'node:net';
import { createTestDatabase, tempDir, testTransportUrl } from './backends.ts';

export function fakeAuth(over: Partial<AuthContext> & { token: string }): AuthContext {
  return {
    userId: 'u-' + over.token, userName: 'user-' + over.token, userDomainId: 'default', userDomainName: 'Default',
    projectId: 'p-' + over.token, projectName: 'project-' + over.token, projectDomainId: 'default', projectDomainName: 'Default',
    roles: ['member', 'reader'], roleIds: [], expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    issuedAt: new Date().toISOString(), methods: ['password'], auditIds: ['a'], ...over,
  };
}

/** Tokens: 'admin' (admin in project p-admin), 'member-a', 'member-b', 'reader-a' (projects p-…). */
export class StaticTokenValidator implements TokenValidator {
  readonly tokens = new Map<string, AuthContext>([
    ['admin', fakeAuth({ token: 'admin', roles: ['admin', 'member', 'reader'] })],
    ['member-a', fakeAuth({ token: 'member-a', projectId: 'p-a', userId: 'u-a' })],
    ['member-b', fakeAuth({ token: 'member-b', projectId: 'p-b', userId: 'u-b' })],
    ['reader-a', fakeAuth({ token: 'reader-a', projectId: 'p-a', userId: 'u-ra', roles: ['reader'] })],
    ['service', fakeAuth({ token: 'service', projectId: 'p-service', roles: ['service', 'admin', 'member', 'reader'] })],
  ]);
  async validate(token: string): Promise<AuthContext> {
    const ctx = this.tokens.get(token);
    if (!ctx) throw new Unauthorized('The request you have made requires authentication.');
    return ctx;
  }
}

export interface TestService {
  app: FastifyInstance;
  url: string;
  config: Config;
  dataDir: string;
  running: RunningService;
  close(): Promise<void>;
}

/**
 * Runs `def` alone. `configText` is extra INI; database options named by def.databases get a
 * fresh database each, or the databases of `shareDatabasesOf` (a second process of the same
 * service on the same data; its close() leaves them to their owner). `endpoints` answers
 * ctx.endpointFor().
 */
export async function startTestService(def: ServiceDefinition, opts: { configText?: string; endpoints?: Record<string, string>; validator?: TokenValidator; shareDatabasesOf?: TestService } = {}): Promise<TestService> {
  const dir = tempDir();
  const shared = opts.shareDatabasesOf;
  const dbs = shared
    ? def.databases.map((d) => ({ url: shared.config.get<string>(d.option[0], d.option[1]), drop: async () => {} }))
    : await Promise.all(def.databases.map(() => createTestDatabase()));
  const { url: transportUrl, exchange } = testTransportUrl();
  const lines = [`[DEFAULT]`, `state_path = ${dir.path}`, `transport_url = ${transportUrl}`, `control_exchange = ${exchange}`];
  let cfg = buildConfig(lines.join('\n') + '\n' + (opts.configText ?? ''), {});
  const overrides: Record<string, Record<string, unknown>> = {};
  def.databases.forEach((d, i) => { (overrides[d.option[0]] ??= {})[d.option[1]] = dbs[i].url; });
  cfg = cfg.with(overrides);
  const logger = createLogger({ level: process.env.STRATUS_TEST_LOG ?? 'silent' });
  for (const [i, d] of def.databases.entries()) {
    const database = await openDatabase(dbs[i].url);
    await migrate(database, d.set);
    await database.close();
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let transport: Promise<import('../../src/common/rpc/transport.ts').Transport> | undefined;
  const running = await def.start({
    config: cfg, logger,
    transport: () => (transport ??= import('../../src/common/rpc/transport.ts').then((m) => m.createTransport(transportUrl, { exchange }))),
    tokenValidator: opts.validator ?? new StaticTokenValidator(),
    serviceToken: async () => 'service',
    endpointFor: async (type) => {
      const u = opts.endpoints?.[type];
      if (!u) throw new Error(`no endpoint for ${type} in this test`);
      return u;
    },
    publicUrl: url,
  });
  const app2 = createHttpServer({ logger, bodyLimit: cfg.get<number>('DEFAULT', 'max_request_body_size') });
  await mountService(app2, { ...running.mount, prefix: '/' });
  app2.healthChecks.push(...(running.healthChecks ?? []));
  await app2.listen({ host: '127.0.0.1', port });
  return {
    app: app2, url, config: cfg, dataDir: dir.path, running,
    close: async () => {
      await app2.close();
      await running.stop();
      if (transport) await (await transport).close();
      await Promise.all(dbs.map((d) => d.drop()));
      dir.remove();
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
