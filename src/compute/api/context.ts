// What a compute handler sees: the request context (caller, microversion, policy, links) built
// by the route kit binding (api/rows.ts) for every request, Nova's microversion negotiation and
// its query parameter helpers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { negotiate, Version } from '../../common/http/microversion.ts';
import { credentialsOf, type AuthContext } from '../../common/http/auth.ts';
import type { Credentials, PolicyEngine } from '../../common/http/policy.ts';
import { BadRequest } from '../../common/errors.ts';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import type { RequestContext } from '../../common/rpc/transport.ts';
import { MAX_VERSION, MIN_VERSION } from '../microversions.ts';
import type { Cells } from '../cells.ts';
import type { CellTransports } from '../rpc.ts';
import type { ImageClient, PlacementClient } from '../clients.ts';
import type { Transport } from '../../common/rpc/transport.ts';

export interface ComputeApi {
  cells: Cells;
  policy: PolicyEngine;
  config: Config;
  logger: Logger;
  /** Base for links: http://host:port[/compute] */
  publicUrl: string;
  transport(): Promise<Transport>;
  cellTransports: CellTransports;
  images: ImageClient;
  placement: PlacementClient;
  identityUrl(): Promise<string>;
}

export interface Ctx {
  req: FastifyRequest;
  reply: FastifyReply;
  v: Version;
  auth: AuthContext;
  creds: Credentials;
  isAdmin: boolean;
  params: Record<string, string>;
  query: Record<string, string | string[]>;
  body: any;
  api: ComputeApi;
  rpcContext(): RequestContext;
  /** Enforces a policy rule, target project defaulting to the caller's. */
  enforce(rule: string, target?: Record<string, unknown>): void;
  link(path: string): { rel: 'self' | 'bookmark'; href: string }[];
  bookmark(path: string): string;
}

export interface Result { status?: number; body?: unknown; headers?: Record<string, string> }
export type Handler = (c: Ctx) => Promise<Result | unknown>;

declare module 'fastify' {
  interface FastifyRequest { novaVersion?: Version }
}

const SPEC = { service: 'compute', min: MIN_VERSION, max: MAX_VERSION, legacyHeader: 'X-OpenStack-Nova-API-Version' };

function requestedVersion(req: FastifyRequest): string | undefined {
  const g = req.headers['openstack-api-version'];
  if (g) {
    for (const part of (Array.isArray(g) ? g.join(',') : g).split(',')) {
      const [svc, ver] = part.trim().split(/\s+/);
      if (svc?.toLowerCase() === 'compute' && ver) return ver;
    }
  }
  const l = req.headers['x-openstack-nova-api-version'];
  return l ? (Array.isArray(l) ? l[0] : l).trim() : undefined;
}

export function versionHeaders(reply: FastifyReply, v: string): void {
  reply.header('OpenStack-API-Version', `compute ${v}`);
  reply.header('X-OpenStack-Nova-API-Version', v);
  reply.header('Vary', ['OpenStack-API-Version', 'X-OpenStack-Nova-API-Version']);
}

/** Negotiates the version, echoing it (even a refused one, as Nova does). */
export function negotiateVersion(req: FastifyRequest, reply: FastifyReply): Version {
  const asked = requestedVersion(req);
  versionHeaders(reply, asked && asked.toLowerCase() !== 'latest' ? asked : asked ? MAX_VERSION : MIN_VERSION);
  const v = negotiate(req.headers, SPEC);
  versionHeaders(reply, v.toString());
  return v;
}

/** The handler's view of an authenticated request whose microversion has been negotiated. */
export function contextOf(req: FastifyRequest, reply: FastifyReply, api: ComputeApi): Ctx {
  const auth = req.auth!;
  const creds = credentialsOf(auth);
  const isAdmin = api.policy.check('context_is_admin', creds, {});
  return {
    req, reply, v: req.novaVersion!, auth, creds, isAdmin, api,
    params: req.params as Record<string, string>,
    query: (req.query ?? {}) as Record<string, string | string[]>,
    body: req.body,
    rpcContext: () => ({
      requestId: req.id, userId: auth.userId, projectId: auth.projectId, roles: auth.roles, isAdmin,
      authToken: auth.token, userName: auth.userName, projectName: auth.projectName,
    }),
    enforce: (rule, target) => api.policy.enforce(rule, creds, { project_id: auth.projectId, user_id: auth.userId, ...target }),
    link: (p) => [
      { rel: 'self', href: `${api.publicUrl}/v2.1${p}` },
      { rel: 'bookmark', href: `${api.publicUrl}${p}` },
    ],
    bookmark: (p) => `${api.publicUrl}${p}`,
  };
}

/** Query parameter as one string (the last when repeated, as webob's GET.get does not; Nova takes the last). */
export function q1(query: Record<string, string | string[]>, k: string): string | undefined {
  const v = query[k];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export function qAll(query: Record<string, string | string[]>, k: string): string[] {
  const v = query[k];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Nova's limit/marker parameters. */
export function pageParams(query: Record<string, string | string[]>, maxLimit = 1000): { limit: number; marker?: string } {
  const l = q1(query, 'limit');
  let limit = maxLimit;
  if (l !== undefined) {
    if (!/^-?\d+$/.test(l)) throw new BadRequest(`Invalid input for query parameters limit. Value: ${l}. '${l}' does not match '^[0-9]*$'`);
    const n = Number(l);
    if (n < 0) throw new BadRequest(`Invalid input for query parameters limit. Value: ${l}. '${l}' does not match '^[0-9]*$'`);
    limit = Math.min(n, maxLimit);
  }
  const marker = q1(query, 'marker');
  return { limit, marker };
}
