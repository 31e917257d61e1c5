// What every identity route module gets: the store, the token provider, policy, and helpers
// for links, authentication and query filters shared by all of them (request bodies are the
// rows' schemas, validation.ts).
import type { FastifyRequest } from 'fastify';
import type { PolicyEngine, Credentials } from '../../common/http/policy.ts';
import type { AuthContext } from '../../common/http/auth.ts';
import { credentialsOf } from '../../common/http/auth.ts';
import { BadRequest, Forbidden } from '../../common/errors.ts';
import type { IdentityStore } from '../store/store.ts';
import type { TokenProvider } from '../tokens/provider.ts';
import type { CredentialCipher } from '../credential-keys.ts';
import type { Logger } from '../../common/logging.ts';

export interface IdentityApi {
  store: IdentityStore;
  tokens: TokenProvider;
  policy: PolicyEngine;
  logger: Logger;
  /** e.g. http://127.0.0.1:5000 or http://127.0.0.1:8080/identity (no trailing slash) */
  publicUrl: string;
  /** Called after a revocation so other services flush their token caches (bus fanout). */
  onRevoke(): void;
  /** [oauth1] request_token_duration / access_token_duration, in seconds (0: no expiry). */
  oauth1: { requestTtl: number; accessTtl: number };
  /** Seals and opens credential blobs with the current credential keys. */
  credentialCipher(): CredentialCipher;
  /** Validates X-Auth-Token locally. */
  authenticate(req: FastifyRequest): Promise<AuthContext>;
}

export function link(api: IdentityApi, path: string): { self: string } {
  return { self: `${api.publicUrl}/v3/${path}` };
}

export function listLinks(api: IdentityApi, req: FastifyRequest) {
  return { self: `${api.publicUrl}${req.url.replace(/^.*?\/v3/, '/v3')}`, previous: null, next: null };
}

/** Policy credentials plus the token's scope (`token.project.domain.id` style checks). */
export function creds(auth: AuthContext): Credentials {
  return {
    ...credentialsOf(auth),
    token: {
      user_id: auth.userId,
      project: auth.projectId ? { id: auth.projectId, domain: { id: auth.projectDomainId } } : undefined,
      domain: auth.domainId ? { id: auth.domainId } : undefined,
    },
  };
}

/** Authenticates and enforces `rule` against `target`; returns the caller. */
export async function authorize(api: IdentityApi, req: FastifyRequest, rule: string, target: Record<string, unknown> = {}): Promise<AuthContext> {
  const auth = await api.authenticate(req);
  api.policy.enforce(rule, creds(auth), target);
  return auth;
}

/**
 * A token from a restricted application credential (one made without `unrestricted: true`)
 * cannot mint lasting secrets — credentials, EC2 key pairs, application credentials — nor delete
 * application credentials: a leaked credential must not be turned into more (Keystone's rule).
 */
export function refuseRestrictedAppCred(auth: AuthContext, what: 'credentials' | 'application credentials'): void {
  if (auth.methods.includes('application_credential') && auth.applicationCredential?.restricted !== false) {
    throw new Forbidden(`You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing additional ${what}.`);
  }
}

/**
 * The exact filters of a list among those it supports. Anything else in the query is ignored,
 * as Keystone ignores parameters it does not support (clients send `limit`, `sort_key`…); the
 * inexact forms (`name__contains`) are applied by `filterInexact`.
 */
export function checkQuery(req: FastifyRequest, allowed: string[]): Record<string, string> {
  const q = (req.query ?? {}) as Record<string, string | string[]>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (!allowed.includes(k)) continue;
    out[k] = Array.isArray(v) ? v[v.length - 1] : v;
  }
  return out;
}

const COMPARATORS = ['contains', 'startswith', 'endswith', 'equals'] as const;
interface InexactFilter { attr: string; comparator: typeof COMPARATORS[number]; value: string; caseSensitive: boolean }

/** `attr__[i]contains|startswith|endswith|equals=value` for the attributes a list supports. */
export function inexactFilters(req: FastifyRequest, supported: string[]): InexactFilter[] {
  const q = (req.query ?? {}) as Record<string, string | string[]>;
  const out: InexactFilter[] = [];
  for (const [k, v] of Object.entries(q)) {
    const m = /^(.+?)__(i?)(contains|startswith|endswith|equals)$/.exec(k);
    if (!m || !supported.includes(m[1])) continue;
    for (const value of [v].flat()) out.push({ attr: m[1], comparator: m[3] as InexactFilter['comparator'], value, caseSensitive: m[2] === '' });
  }
  return out;
}

/**
 * Keeps the rendered entities every inexact filter matches (Keystone's filter_by_attributes):
 * an entity without the attribute, or with a non-string one, never matches.
 */
export function filterInexact<T>(req: FastifyRequest, supported: string[], entities: T[]): T[] {
  const filters = inexactFilters(req, supported);
  if (!filters.length) return entities;
  return entities.filter((e) => filters.every((f) => {
    let target = (e as Record<string, unknown>)[f.attr];
    if (typeof target !== 'string') return false;
    let value = f.value;
    if (!f.caseSensitive) { target = target.toLowerCase(); value = value.toLowerCase(); }
    const t = target as string;
    switch (f.comparator) {
      case 'contains': return t.includes(value);
      case 'startswith': return t.startsWith(value);
      case 'endswith': return t.endsWith(value);
      case 'equals': return t === value;
    }
  }));
}

export function queryBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const l = v.toLowerCase();
  if (['true', '1', 'yes', ''].includes(l)) return true;
  if (['false', '0', 'no'].includes(l)) return false;
  throw new BadRequest(`Invalid boolean value: ${v}`);
}

/** Fields Keystone keeps as extra attributes: everything not in `known`. */
export function extras(obj: Record<string, unknown>, known: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !known.includes(k)));
}
