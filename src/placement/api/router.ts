// Placement's HTTP plumbing: one declarative route table (api/routes.ts) is turned into fastify
// routes here. For every request this negotiates the microversion, authenticates, picks the
// handler whose version range matches (404 otherwise, 405 for a known path with another
// method), enforces policy, checks the media types, and adds the version headers. Errors are
// rendered in Placement's shape, with `code` only from 1.23 as upstream.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import { FormatRegistry, Type, type Static, type TSchema, type ObjectOptions } from '@sinclair/typebox';
import { negotiate, type Version } from '../../common/http/microversion.ts';
import { requireAuth, credentialsOf, type AuthContext, type TokenValidator } from '../../common/http/auth.ts';
import type { PolicyEngine } from '../../common/http/policy.ts';
import { placementShape, sendError } from '../../common/http/errors.ts';
import { jsonPreview } from '../../common/http/json.ts';
import { Forbidden, NotAcceptable, NotFound, UnsupportedMediaType } from '../../common/errors.ts';
import { registerRows, type RouteRow } from '../../common/http/route-kit.ts';
import { MAX_VERSION, MIN_VERSION } from '../microversions.ts';
import { badRequest } from '../errors.ts';
import type { PlacementStore } from '../model/store.ts';
import type { PlacementRule } from '../policy.ts';

export interface PlacementApi {
  store: PlacementStore;
  policy: PolicyEngine;
  validator: TokenValidator;
  config: { randomizeCandidates: boolean; maxCandidates: number; incompleteProjectId: string; incompleteUserId: string };
}

/** Repeated query keys keep every value (member_of, required from 1.39, …). */
export class Query {
  constructor(readonly raw: Record<string, string[]>) {}
  static from(q: unknown): Query {
    const out: Record<string, string[]> = {};
    for (const [k, v] of Object.entries((q ?? {}) as Record<string, unknown>)) {
      out[k] = (Array.isArray(v) ? v : [v]).map(String);
    }
    return new Query(out);
  }
  has(k: string): boolean { return k in this.raw; }
  /** The last value, as webob's dict(req.GET) gives. */
  get(k: string): string | undefined { const v = this.raw[k]; return v ? v[v.length - 1] : undefined; }
  all(k: string): string[] { return this.raw[k] ?? []; }
  keys(): string[] { return Object.keys(this.raw); }
}

export interface Ctx {
  req: FastifyRequest;
  version: Version;
  params: Record<string, string>;
  query: Query;
  body: unknown;
  api: PlacementApi;
  auth?: AuthContext;
  /** Mount prefix for links ('' or '/placement'). */
  prefix: string;
  /**
   * Absolute URL of a path under this service, for Location headers: clients (osc-placement)
   * follow them as given, so like webob we make them absolute from the request's host.
   */
  location(path: string): string;
}

/** A body already serialised (allocation candidates reuse the JSON of each trait set). */
export class RawJson {
  constructor(readonly text: string) {}
}

export interface Reply {
  status: number;
  /** Serialised with JSON.stringify, or sent as is when RawJson. */
  body?: unknown;
  headers?: Record<string, string>;
  /** ISO time; sent as Last-Modified (with Cache-Control: no-cache) from 1.15. */
  lastModified?: string;
}

export type Handler = (c: Ctx) => Promise<Reply>;

/** A row of Placement's route table: the kit's row, plus whether it needs a JSON body. */
export interface RouteDef extends RouteRow<Handler> {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Policy rule; absent only for the unauthenticated version document. */
  policy?: PlacementRule;
  /** Needs an application/json body. */
  json?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest { placementVersion?: Version }
}

FormatRegistry.Set('uuid', (v) => isUuidLike(v));

/** oslo's is_uuid_like: 32 hex digits, dashes/braces/urn prefix and case ignored. */
export function isUuidLike(v: string): boolean {
  return /^[0-9a-f]{32}$/.test(v.toLowerCase().replace(/^urn:uuid:/, '').replace(/[{}-]/g, ''));
}

export function normalizeUuid(v: string): string {
  const h = v.toLowerCase().replace(/^urn:uuid:/, '').replace(/[{}-]/g, '');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** An object whose keys must all match `pattern` (JSON Schema patternProperties, nothing else). */
export function keyed<T extends TSchema>(pattern: string, value: T, opts: ObjectOptions = {}) {
  return Type.Record(Type.String({ pattern }), value, { additionalProperties: false, ...opts });
}

/** Validates a JSON body against a TypeBox schema; 400 in upstream's words. */
export function validate<T extends TSchema>(schema: T, data: unknown, what = 'JSON does not validate'): Static<T> {
  if (Value.Check(schema, data)) return data as Static<T>;
  const first = Value.Errors(schema, data).First();
  const where = first?.path ? `${first.path}: ` : '';
  throw badRequest(`${what}: ${where}${first?.message ?? 'invalid'}${first && first.value !== undefined ? ` (got ${jsonPreview(first.value)})` : ''}`);
}

/** Refuses query keys the version does not know. */
export function allowQuery(q: Query, allowed: (key: string) => boolean): void {
  for (const k of q.keys()) {
    if (!allowed(k)) throw badRequest(`Invalid query string parameters: Additional properties are not allowed ('${k}' was unexpected)`);
  }
}

export async function registerRoutes(scope: FastifyInstance, table: RouteDef[], api: PlacementApi): Promise<void> {
  const prefix = scope.prefix === '/' ? '' : scope.prefix;
  const auth = requireAuth(api.validator, { type: 'placement', mountPrefix: prefix });
  const needsAuth = new Set(table.filter((d) => d.policy).map((d) => d.path));

  await scope.register(async (inner) => {
    inner.setErrorHandler((error, req, reply) => sendError(placementErrorShape, error, req, reply));
    registerRows<Handler>(inner, table, {
      // As upstream's middleware order: version (settled before the body is read, so even a
      // 413 or 415 knows it), then authentication, then routing.
      onRequest: async (req) => {
        req.placementVersion = negotiate(req.headers, { service: 'placement', min: MIN_VERSION, max: MAX_VERSION });
        if (needsAuth.has(req.routeOptions.url?.slice(prefix.length) ?? '')) await auth(req);
      },
      version: (req) => req.placementVersion,
      headAsGet: true,
      authorize: (req, rule) => {
        const a = req.auth!;
        if (!api.policy.check(rule, credentialsOf(a), { project_id: a.projectId, user_id: a.userId })) {
          throw new Forbidden(`Policy does not allow ${rule} to be performed.`);
        }
      },
      schemaError: (errors) => badRequest(`JSON does not validate: ${errors[0]?.instancePath ?? ''} ${errors[0]?.message ?? 'invalid'}`.trim()),
      run: async (row, req, reply) => {
        const def = row as RouteDef;
        const version = req.placementVersion!;
        if (def.json) {
          const ct = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
          if (ct !== 'application/json') {
            throw new UnsupportedMediaType(`The media type ${ct || 'None'} is not supported, use application/json`);
          }
        } else if (req.method === 'GET' || req.method === 'HEAD') {
          checkAccept(req);
        }
        const out = await def.handler({
          req, version, params: req.params as Record<string, string>, query: Query.from(req.query), body: req.body, api, auth: req.auth, prefix,
          location: (path) => `${req.protocol}://${req.headers.host ?? req.hostname}${prefix}${path}`,
        });
        reply.code(out.status);
        versionHeaders(reply, version);
        if (out.headers) for (const [k, v] of Object.entries(out.headers)) reply.header(k, v);
        if (out.lastModified !== undefined && version.atLeast('1.15')) {
          reply.header('last-modified', new Date(out.lastModified).toUTCString());
          reply.header('cache-control', 'no-cache');
        }
        if (out.body === undefined) return reply.send();
        return reply.type('application/json').send(out.body instanceof RawJson ? out.body.text : JSON.stringify(out.body));
      },
    });

    inner.route({
      method: ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'],
      url: '/*',
      onRequest: async (req) => { req.placementVersion = negotiate(req.headers, { service: 'placement', min: MIN_VERSION, max: MAX_VERSION }); },
      handler: async (req) => {
        await auth(req);
        throw new NotFound('');
      },
    });
  });
}

function versionHeaders(reply: FastifyReply, v: Version): void {
  reply.header('openstack-api-version', `placement ${v}`);
  reply.header('vary', 'openstack-api-version');
}

function checkAccept(req: FastifyRequest): void {
  const accept = req.headers.accept;
  if (!accept) return;
  const ok = accept.split(',').some((part) => {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q && Number(q.slice(2)) === 0) return false;
    return type === 'application/json' || type === 'application/*' || type === '*/*';
  });
  if (!ok) throw new NotAcceptable('Only application/json is provided');
}

/** Placement's error shape, with the version negotiated for the request (the code from 1.23, version headers). */
export const placementErrorShape = placementShape({
  version: (req) => (req as FastifyRequest).placementVersion, min: MIN_VERSION, max: MAX_VERSION,
});
