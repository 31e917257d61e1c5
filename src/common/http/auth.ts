// Who is calling: the token-validation middleware every API uses. Identity validates its own
// tokens in process; the other services ask Identity over HTTP (as keystonemiddleware does) and
// cache the answer until the token expires or a revocation event arrives on the bus.
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Forbidden, Unauthorized, ServiceUnavailable } from '../errors.ts';
import type { Credentials } from './policy.ts';
import { httpRequest } from '../http-client.ts';

export interface AuthContext {
  token: string;
  userId: string;
  userName: string;
  userDomainId: string;
  userDomainName: string;
  projectId?: string;
  projectName?: string;
  projectDomainId?: string;
  projectDomainName?: string;
  domainId?: string;
  domainName?: string;
  system?: boolean;
  roles: string[];
  roleIds: string[];
  expiresAt: string;
  issuedAt: string;
  methods: string[];
  auditIds: string[];
  applicationCredentialId?: string;
  /** Set for application credential tokens; `accessRules` only when the credential has some. */
  applicationCredential?: { id: string; name?: string; restricted: boolean; accessRules?: AccessRule[] };
  /** The trust a trust-scoped token acts within. */
  trustId?: string;
  /** The OAuth1 access token an oauth1 token was issued from. */
  oauthAccessTokenId?: string;
}

/** What an application credential may call: one service type, one method, a path template. */
export interface AccessRule { id?: string; service: string; method: string; path: string }

/**
 * The version of access-rule enforcement this middleware implements, sent to Identity when it
 * validates a token (keystonemiddleware's `OpenStack-Identity-Access-Rules`). Identity refuses to
 * validate a token whose credential has access rules for a caller that does not send it, so a
 * service that would not enforce the rules never accepts such a token.
 */
export const ACCESS_RULES_HEADER = 'openstack-identity-access-rules';
export const ACCESS_RULES_VERSION = '1.0';

export interface TokenValidator {
  validate(token: string): Promise<AuthContext>;
  /** The WWW-Authenticate challenge sent with 401s (keystonemiddleware's `Keystone uri="…"`). */
  challenge?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth?: AuthContext;
  }
}

export const AUTH_REQUIRED = 'The request you have made requires authentication.';

/** Which service a request reaches: its catalog type and where its API is mounted ('' or '/compute'). */
export interface ServiceScope { type: string; mountPrefix: string }

/**
 * Authenticates a request for a service: a valid X-Auth-Token (401 otherwise, with the
 * challenge) whose application credential's access rules, if it has any, allow this method and
 * path on this service type (403 otherwise). Every service's API authenticates through here, so
 * no route can skip the access rules.
 */
export async function authenticateRequest(req: FastifyRequest, validator: TokenValidator, service: ServiceScope, challenge = validator.challenge): Promise<AuthContext> {
  const headers = challenge ? { 'WWW-Authenticate': challenge } : undefined;
  const token = req.headers['x-auth-token'];
  if (typeof token !== 'string' || token === '') throw new Unauthorized(AUTH_REQUIRED, { headers });
  let auth: AuthContext;
  try {
    auth = await validator.validate(token);
  } catch (e) {
    if (e instanceof Unauthorized) throw new Unauthorized(AUTH_REQUIRED, { headers });
    throw e;
  }
  enforceAccessRules(auth, service.type, req.method, servicePath(req, service.mountPrefix));
  req.auth = auth;
  return auth;
}

/** A fastify hook: refuses requests without a valid X-Auth-Token or outside its access rules. */
export function requireAuth(validator: TokenValidator, service: ServiceScope) {
  return async (req: FastifyRequest): Promise<void> => {
    await authenticateRequest(req, validator, service);
  };
}

/**
 * The request path as the service itself sees it: without the all-in-one mount prefix
 * (`/compute`) and the query, percent-decoded as the router decodes it — `/v2.1/servers/x`.
 * Access rules name paths this way (`/v2.1/servers/*`), as keystonemiddleware matches them
 * against the path of the service's own WSGI application.
 */
export function servicePath(req: FastifyRequest, mountPrefix: string): string {
  const raw = req.url.split('?')[0];
  const rel = mountPrefix && raw.startsWith(mountPrefix) ? raw.slice(mountPrefix.length) || '/' : raw;
  try { return decodeURIComponent(rel); } catch { return rel; }
}

/**
 * keystonemiddleware's path templates: `*` and `{name}` stand for one non-empty path segment,
 * `**` for anything (several segments, or none after a slash); everything else is literal.
 */
export function pathMatches(path: string, template: string): boolean {
  let re = '';
  for (const m of template.matchAll(/(\{[^}]*\})|(\*\*)|(\*)|([^{}*])/g)) {
    if (m[1] || m[3]) re += '[^/]+';
    else if (m[2]) re += '.*';
    else re += m[4].replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(path);
}

export const ACCESS_RULES_REFUSAL = 'You are not authorized to perform the requested action: the application credential used does not allow this request (access rules).';

/**
 * Refuses (403) a request that no access rule of the token's application credential allows:
 * the rule's service type, method and path template must all match. Tokens without access
 * rules pass. Validating a token (`GET /v3/auth/tokens`) is always allowed, as in Keystone.
 */
export function enforceAccessRules(auth: AuthContext, serviceType: string, method: string, path: string): void {
  const rules = auth.applicationCredential?.accessRules;
  if (!rules) return;
  if (serviceType === 'identity' && method === 'GET' && path.endsWith('/v3/auth/tokens')) return;
  if (rules.some((r) => r.service === serviceType && r.method === method && pathMatches(path, r.path))) return;
  throw new Forbidden(ACCESS_RULES_REFUSAL);
}

/** Policy credentials for an authenticated request. */
export function credentialsOf(auth: AuthContext): Credentials {
  return {
    user_id: auth.userId,
    user_domain_id: auth.userDomainId,
    project_id: auth.projectId,
    project_domain_id: auth.projectDomainId,
    domain_id: auth.domainId,
    system_scope: auth.system ? 'all' : undefined,
    roles: auth.roles,
  };
}

interface CacheEntry { ctx: AuthContext; expires: number }

interface ServiceToken { id: string; expires: number; ctx: AuthContext }
/**
 * Service tokens by credentials, shared by every validator and service client of this process
 * that has the same ones: the all-in-one's services and compute agents authenticate once, not
 * once each (every password check costs Identity a KDF, ~70 ms of CPU).
 */
const serviceTokens = new Map<string, { current?: ServiceToken; pending?: Promise<ServiceToken> }>();
/**
 * The current service tokens of this process by id, with the context Identity issued them with:
 * a service receiving one (the agent's token at placement) knows it without asking Identity.
 * A revocation event removes them (`flush()`), so they are then validated remotely as any other.
 */
const ownTokens = new Map<string, ServiceToken>();

/**
 * Validates tokens through Identity's `GET /v3/auth/tokens`, authenticated with the service's own
 * token (from [keystone_authtoken]). Results are cached until the token expires; `flush()` is
 * called on revocation events so a revoked token stops working at once.
 */
export class RemoteTokenValidator implements TokenValidator {
  private cache = new Map<string, CacheEntry>();
  private inflight = new Map<string, Promise<AuthContext>>();
  private readonly serviceToken: { current?: ServiceToken; pending?: Promise<ServiceToken> };

  readonly challenge: string;

  constructor(private readonly opts: {
    identityUrl: string; // e.g. http://127.0.0.1:5000/v3 or http://host/identity/v3
    /** Advertised to clients in WWW-Authenticate ([keystone_authtoken] www_authenticate_uri). */
    wwwAuthenticateUri?: string;
    username: string; password: string; projectName: string;
    userDomainName?: string; projectDomainName?: string;
    maxCacheEntries?: number;
  }) {
    this.challenge = `Keystone uri="${opts.wwwAuthenticateUri ?? opts.identityUrl.replace(/\/v3\/?$/, '')}"`;
    // Keyed by a digest: the map need not hold the password itself (once per validator, not per request).
    const key = createHash('sha256').update(JSON.stringify([opts.identityUrl, opts.username, opts.password, opts.projectName, opts.userDomainName, opts.projectDomainName])).digest('hex');
    let shared = serviceTokens.get(key);
    if (!shared) serviceTokens.set(key, shared = {});
    this.serviceToken = shared;
  }

  flush(): void {
    this.cache.clear();
    ownTokens.clear();
  }

  async validate(token: string): Promise<AuthContext> {
    const hit = this.cache.get(token);
    if (hit && hit.expires > Date.now()) return hit.ctx;
    const own = ownTokens.get(token);
    if (own && own.expires > Date.now()) return own.ctx;
    let p = this.inflight.get(token);
    if (!p) {
      p = this.fetchValidation(token).finally(() => this.inflight.delete(token));
      this.inflight.set(token, p);
    }
    return p;
  }

  /** The service's own token, also used for service-to-service calls (image, placement…). */
  async getServiceToken(): Promise<string> {
    const s = this.serviceToken;
    if (s.current && s.current.expires - 60_000 > Date.now()) return s.current.id;
    // Concurrent callers wait for the same authentication.
    s.pending ??= this.issueServiceToken().then((t) => {
      if (s.current) ownTokens.delete(s.current.id);
      s.current = t;
      ownTokens.set(t.id, t);
      return t;
    }).finally(() => { s.pending = undefined; });
    return (await s.pending).id;
  }

  /** Forgets a service token Identity refused (revoked, or its user changed), so the next call authenticates again. */
  private dropServiceToken(id: string): void {
    if (this.serviceToken.current?.id === id) this.serviceToken.current = undefined;
    ownTokens.delete(id);
  }

  private async issueServiceToken(): Promise<ServiceToken> {
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: this.opts.username, password: this.opts.password, domain: { name: this.opts.userDomainName ?? 'Default' } } } },
        scope: { project: { name: this.opts.projectName, domain: { name: this.opts.projectDomainName ?? 'Default' } } },
      },
    };
    let res: Response;
    try {
      res = await httpRequest(`${this.opts.identityUrl}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    } catch (e) {
      throw new ServiceUnavailable(`Identity service unreachable at ${this.opts.identityUrl}: ${(e as Error).message}`);
    }
    if (res.status !== 201) {
      await res.body?.cancel();
      throw new ServiceUnavailable(`Service user ${this.opts.username} could not authenticate with Identity (${res.status})`);
    }
    const data = (await res.json()) as { token: TokenBody };
    const id = res.headers.get('x-subject-token')!;
    return { id, expires: Date.parse(data.token.expires_at), ctx: authContextFromTokenBody(id, data.token) };
  }

  private async fetchValidation(token: string, retried = false): Promise<AuthContext> {
    const serviceToken = await this.getServiceToken();
    let res: Response;
    try {
      res = await httpRequest(`${this.opts.identityUrl}/auth/tokens?nocatalog`, {
        headers: { 'x-auth-token': serviceToken, 'x-subject-token': token, [ACCESS_RULES_HEADER]: ACCESS_RULES_VERSION },
      });
    } catch (e) {
      throw new ServiceUnavailable(`Identity service unreachable: ${(e as Error).message}`);
    }
    if (res.status === 401 && !retried) {
      this.dropServiceToken(serviceToken); // our own token may have been revoked: get a new one once
      await res.body?.cancel();
      return this.fetchValidation(token, true);
    }
    if (res.status === 404 || res.status === 401) {
      await res.body?.cancel();
      throw new Unauthorized(AUTH_REQUIRED);
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new ServiceUnavailable(`Identity answered ${res.status} validating a token`);
    }
    const ctx = authContextFromTokenBody(token, (await res.json() as { token: TokenBody }).token);
    if (this.cache.size >= (this.opts.maxCacheEntries ?? 10_000)) this.cache.clear();
    this.cache.set(token, { ctx, expires: Date.parse(ctx.expiresAt) });
    return ctx;
  }
}

export interface TokenBody {
  methods: string[];
  user: { id: string; name: string; domain: { id: string; name: string } };
  project?: { id: string; name: string; domain: { id: string; name: string } };
  domain?: { id: string; name: string };
  system?: { all: boolean };
  roles?: { id: string; name: string }[];
  expires_at: string;
  issued_at: string;
  audit_ids: string[];
  application_credential?: { id: string; name?: string; restricted?: boolean; access_rules?: AccessRule[] };
  'OS-TRUST:trust'?: { id: string };
  'OS-OAUTH1'?: { access_token_id: string; consumer_id: string };
}

export function authContextFromTokenBody(token: string, t: TokenBody): AuthContext {
  return {
    token,
    userId: t.user.id,
    userName: t.user.name,
    userDomainId: t.user.domain.id,
    userDomainName: t.user.domain.name,
    projectId: t.project?.id,
    projectName: t.project?.name,
    projectDomainId: t.project?.domain.id,
    projectDomainName: t.project?.domain.name,
    domainId: t.domain?.id,
    domainName: t.domain?.name,
    system: t.system?.all === true,
    roles: (t.roles ?? []).map((r) => r.name),
    roleIds: (t.roles ?? []).map((r) => r.id),
    expiresAt: t.expires_at,
    issuedAt: t.issued_at,
    methods: t.methods,
    auditIds: t.audit_ids,
    applicationCredentialId: t.application_credential?.id,
    applicationCredential: t.application_credential && {
      id: t.application_credential.id,
      name: t.application_credential.name,
      // A body without the flag is from an Identity that predates it: assume the stricter.
      restricted: t.application_credential.restricted !== false,
      accessRules: t.application_credential.access_rules?.map((r) => ({ id: r.id, service: r.service, method: r.method, path: r.path })),
    },
    trustId: t['OS-TRUST:trust']?.id,
    oauthAccessTokenId: t['OS-OAUTH1']?.access_token_id,
  };
}
