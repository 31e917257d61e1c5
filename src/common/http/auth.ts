// Who is calling: the token-validation middleware every API uses. Identity validates its own
// tokens in process; the other services ask Identity over HTTP (as keystonemiddleware does) and
// cache the answer until the token expires or a revocation event arrives on the bus.
import type { FastifyRequest } from 'fastify';
import { Unauthorized, ServiceUnavailable } from '../errors.ts';
import type { Credentials } from './policy.ts';

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
}

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

/** A fastify preHandler: refuses requests without a valid X-Auth-Token. */
export function requireAuth(validator: TokenValidator) {
  return async (req: FastifyRequest): Promise<void> => {
    const headers = validator.challenge ? { 'WWW-Authenticate': validator.challenge } : undefined;
    const token = req.headers['x-auth-token'];
    if (typeof token !== 'string' || token === '') throw new Unauthorized(AUTH_REQUIRED, { headers });
    try {
      req.auth = await validator.validate(token);
    } catch (e) {
      if (e instanceof Unauthorized) throw new Unauthorized(AUTH_REQUIRED, { headers });
      throw e;
    }
  };
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

/**
 * Validates tokens through Identity's `GET /v3/auth/tokens`, authenticated with the service's own
 * token (from [keystone_authtoken]). Results are cached until the token expires; `flush()` is
 * called on revocation events so a revoked token stops working at once.
 */
export class RemoteTokenValidator implements TokenValidator {
  private cache = new Map<string, CacheEntry>();
  private serviceToken?: { id: string; expires: number };
  private inflight = new Map<string, Promise<AuthContext>>();

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
  }

  flush(): void {
    this.cache.clear();
  }

  async validate(token: string): Promise<AuthContext> {
    const hit = this.cache.get(token);
    if (hit && hit.expires > Date.now()) return hit.ctx;
    let p = this.inflight.get(token);
    if (!p) {
      p = this.fetchValidation(token).finally(() => this.inflight.delete(token));
      this.inflight.set(token, p);
    }
    return p;
  }

  /** The service's own token, also used for service-to-service calls (image, placement…). */
  async getServiceToken(): Promise<string> {
    if (this.serviceToken && this.serviceToken.expires - 60_000 > Date.now()) return this.serviceToken.id;
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: this.opts.username, password: this.opts.password, domain: { name: this.opts.userDomainName ?? 'Default' } } } },
        scope: { project: { name: this.opts.projectName, domain: { name: this.opts.projectDomainName ?? 'Default' } } },
      },
    };
    let res: Response;
    try {
      res = await fetch(`${this.opts.identityUrl}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    } catch (e) {
      throw new ServiceUnavailable(`Identity service unreachable at ${this.opts.identityUrl}: ${(e as Error).message}`);
    }
    if (res.status !== 201) throw new ServiceUnavailable(`Service user ${this.opts.username} could not authenticate with Identity (${res.status})`);
    const data = (await res.json()) as { token: { expires_at: string } };
    const id = res.headers.get('x-subject-token')!;
    this.serviceToken = { id, expires: Date.parse(data.token.expires_at) };
    return id;
  }

  private async fetchValidation(token: string, retried = false): Promise<AuthContext> {
    const serviceToken = await this.getServiceToken();
    let res: Response;
    try {
      res = await fetch(`${this.opts.identityUrl}/auth/tokens?nocatalog`, { headers: { 'x-auth-token': serviceToken, 'x-subject-token': token } });
    } catch (e) {
      throw new ServiceUnavailable(`Identity service unreachable: ${(e as Error).message}`);
    }
    if (res.status === 401 && !retried) {
      this.serviceToken = undefined; // our own token may have been revoked: get a new one once
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
  application_credential?: { id: string };
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
  };
}
