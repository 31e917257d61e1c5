// The Identity service (Keystone v3): tokens, the assignment model, the catalog.
import type { FastifyRequest } from 'fastify';
import { join } from 'node:path';
import { registerOpts } from '../common/config.ts';
import { Unauthorized } from '../common/errors.ts';
import { openDatabase } from '../common/db/database.ts';
import { PolicyEngine } from '../common/http/policy.ts';
import { AUTH_REQUIRED, authContextFromTokenBody, authenticateRequest, type AuthContext, type TokenValidator } from '../common/http/auth.ts';
import type { ServiceDefinition } from '../common/service.ts';
import { identityMigrations, type IdentityDB } from './store/schema.ts';
import { IdentityStore } from './store/store.ts';
import { loadFernet } from './tokens/fernet.ts';
import { CredentialCipher } from './credential-keys.ts';
import { TokenInvalid, TokenProvider } from './tokens/provider.ts';
import { identityPolicyDefaults } from './policy.ts';
import type { IdentityApi } from './api/context.ts';
import { versionRoutes } from './api/versions.ts';
import { authRoutes } from './api/auth.ts';
import { domainProjectRoutes } from './api/domains-projects.ts';
import { userGroupRoutes } from './api/users-groups.ts';
import { roleAssignmentRoutes } from './api/roles-assignments.ts';
import { catalogRoutes } from './api/catalog.ts';
import { appCredentialRoutes } from './api/app-credentials.ts';
import { credentialRoutes } from './api/credentials.ts';
import { trustRoutes } from './api/trusts.ts';
import { oauth1Routes } from './api/oauth1.ts';
import { oauth1FlowRoutes } from './api/oauth1-flow.ts';
import { policyRoutes } from './api/policies.ts';
import { endpointFilterRoutes } from './api/endpoint-filter.ts';
import { domainConfigRoutes } from './api/domain-config.ts';
import { ec2TokenRoutes } from './api/ec2tokens.ts';
import { resolvePolicyFile } from '../common/policy-file.ts';
import { registerIdentityRows } from './api/rows.ts';

registerOpts([
  { section: 'identity_database', name: 'connection', type: 'url', help: 'Identity database URL (sqlite:///…, mysql+pymysql://…, postgresql://…).' },
  { section: 'token', name: 'expiration', type: 'int', default: 3600, min: 60, help: 'Token lifetime in seconds.' },
  { section: 'fernet_tokens', name: 'key_repository', type: 'string', help: 'Directory of the Fernet keys (default: <state_path>/fernet-keys).' },
  { section: 'fernet_tokens', name: 'max_active_keys', type: 'int', default: 3, min: 1, help: 'Keys kept by fernet_rotate, the staged key included.' },
  { section: 'oauth1', name: 'request_token_duration', type: 'int', default: 28800, min: 0, help: 'Lifetime of an OAuth1 request token in seconds (0: no expiry).' },
  { section: 'oauth1', name: 'access_token_duration', type: 'int', default: 86400, min: 0, help: 'Lifetime of an OAuth1 access token in seconds (0: no expiry).' },
  { section: 'credential', name: 'provider', type: 'string', default: 'fernet', choices: ['fernet'], help: 'How credential blobs are encrypted at rest (Keystone\'s fernet provider).' },
  { section: 'credential', name: 'key_repository', type: 'string', help: 'Directory of the credential encryption keys (default: <state_path>/credential-keys); stratus manage identity credential_setup creates it.' },
]);

/** Fanout topic on which Identity announces revocations so token caches elsewhere are flushed. */
export const REVOCATION_TOPIC = 'identity_revocations';

export function keyRepository(config: import('../common/config.ts').Config): string {
  return config.get<string | undefined>('fernet_tokens', 'key_repository') ?? join(config.get<string>('DEFAULT', 'state_path'), 'fernet-keys');
}

export function credentialKeyRepository(config: import('../common/config.ts').Config): string {
  return config.get<string | undefined>('credential', 'key_repository') ?? join(config.get<string>('DEFAULT', 'state_path'), 'credential-keys');
}

/** Validates tokens in process: what Identity itself uses for X-Auth-Token. */
export class LocalTokenValidator implements TokenValidator {
  constructor(private readonly tokens: TokenProvider) {}
  async validate(token: string): Promise<AuthContext> {
    try {
      const v = await this.tokens.validate(token);
      return authContextFromTokenBody(token, v.body);
    } catch (e) {
      if (e instanceof TokenInvalid) throw new Unauthorized(AUTH_REQUIRED);
      throw e;
    }
  }
}

export const identityService: ServiceDefinition = {
  name: 'identity',
  type: 'identity',
  defaultPort: 5000,
  prefix: '/identity',
  databases: [{ set: identityMigrations, option: ['identity_database', 'connection'] }],
  async start(ctx) {
    const { config, logger } = ctx;
    const database = await openDatabase<IdentityDB>(config.get('identity_database', 'connection'));
    const store = new IdentityStore(database);
    await store.loadRevocations();
    store.startRevocationPolling();
    const expiration = config.get<number>('token', 'expiration');
    const keyDir = keyRepository(config);
    const tokens = new TokenProvider(store, await loadFernet(keyDir), expiration);
    // `fernet_rotate` (here or on another host that syncs the repository) takes effect without a
    // restart: the repository is re-read every 30 s, off the request path.
    const keyTimer = setInterval(() => {
      loadFernet(keyDir).then((f) => tokens.setKeys(f), (e) => logger.warn({ err: e }, 'could not reload the Fernet keys; keeping the current ones'));
    }, 30_000);
    keyTimer.unref();
    // Credential keys the same way: credential_rotate elsewhere is picked up within 30 s.
    const credDir = credentialKeyRepository(config);
    let credentialCipher = await CredentialCipher.load(credDir);
    const credTimer = setInterval(() => {
      CredentialCipher.load(credDir).then((c) => { credentialCipher = c; }, (e) => logger.warn({ err: e }, 'could not reload the credential keys; keeping the current ones'));
    }, 30_000);
    credTimer.unref();
    const policy = await PolicyEngine.load(identityPolicyDefaults, resolvePolicyFile(config));
    const local = new LocalTokenValidator(tokens);
    // Revocations are pruned once their tokens could no longer be valid anyway.
    const pruneTimer = setInterval(() => { store.pruneRevocations(expiration).catch((err) => logger.warn({ err }, 'could not prune expired revocation events')); }, 3600_000);
    pruneTimer.unref();
    const challenge = `Keystone uri="${ctx.publicUrl}"`;
    const service = { type: 'identity', mountPrefix: '' }; // set when mounted
    const api: IdentityApi = {
      store, tokens, policy, logger, publicUrl: ctx.publicUrl,
      credentialCipher: () => credentialCipher,
      oauth1: { requestTtl: config.get<number>('oauth1', 'request_token_duration'), accessTtl: config.get<number>('oauth1', 'access_token_duration') },
      onRevoke: () => {
        ctx.transport()
          .then((t) => t.fanout({ requestId: 'identity-revocation', roles: [] }, REVOCATION_TOPIC, 'flush', {}))
          .catch((e) => logger.warn({ err: e }, 'could not announce a revocation on the bus'));
      },
      // Identity applies application credential access rules to its own routes too.
      authenticate: (req: FastifyRequest) => authenticateRequest(req, local, service, challenge),
    };
    return {
      mount: {
        name: 'identity',
        prefix: '/identity',
        errorShape: 'keystone',
        async register(scope) {
          service.mountPrefix = scope.prefix;
          // Every route of the API, in one table on the route kit.
          registerIdentityRows(scope, api, [versionRoutes, authRoutes, ec2TokenRoutes, domainProjectRoutes, userGroupRoutes, roleAssignmentRoutes, catalogRoutes, appCredentialRoutes, credentialRoutes,
            trustRoutes, oauth1Routes, oauth1FlowRoutes, policyRoutes, endpointFilterRoutes, domainConfigRoutes].flatMap((rows) => rows(api)));
        },
      },
      healthChecks: [{ name: 'identity database', check: async () => { await database.db.selectFrom('domains').select('id').limit(1).execute(); } }],
      async stop() {
        clearInterval(pruneTimer);
        clearInterval(keyTimer);
        clearInterval(credTimer);
        store.stop();
        await database.close();
      },
    };
  },
};
