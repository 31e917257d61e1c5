// The route kit: one row format for every service's routes, and one way of turning a table of
// rows into fastify routes. A row declares its method and path, its microversion range, the
// policy rule checked before anything else runs (before the body is even parsed: a reader with a
// malformed body gets 403, and an unbuilt action a 403 before its 501), its request/query
// schemas (validated by one ajv engine, shared with fastify's own validator compiler, and worded
// by the service's formatter so Nova's and Glance's messages stay exact), its response schemas
// (checked in tests against the captured Zed responses) and the error statuses it can answer.
//
// Per request, in this order: the service's onRequest (authentication, microversion) → the row
// for the method and version (405 with Allow for a method the path does not have; 404, or 405,
// outside the row's version range) → the row's policy → body parsing → schema validation → the
// handler. Errors from every step are typed and rendered by the service's error shape.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { MethodNotAllowed, NotFound, NotImplementedYet, StratusError } from '../errors.ts';
import type { Version } from './microversion.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type JsonSchema = Record<string, unknown>;

export interface RouteRow<H> {
  method: HttpMethod;
  /** fastify path syntax (`/images/:id`), relative to the service's scope. */
  path: string;
  /** Microversion range (inclusive); requests outside it get `outOfRange`. */
  since?: string;
  until?: string;
  outOfRange?: 404 | 405;
  /**
   * Policy rule, checked before the body is read and before the handler runs. Rules whose target
   * is the resource itself (Glance's image rules need the loaded image) are named in
   * `targetPolicy` instead and checked by the handler once it has the resource.
   */
  policy?: string | string[];
  targetPolicy?: string;
  /** Checks that need only the headers (a media type), run after the policy, before the body is read. */
  beforeBody?(req: FastifyRequest): Promise<void> | void;
  /** JSON body and query string schemas (JSON Schema, TypeBox schemas included). */
  body?: JsonSchema;
  query?: JsonSchema;
  /** Response body schema per success status, checked in tests (checkResponse). */
  response?: Record<number, JsonSchema>;
  /** The error statuses the handler itself may answer (the kit's own are in KIT_ERRORS). */
  errors: number[];
  /** An unbuilt action: answers 501 with this message, after its policy check. */
  notImplemented?: string;
  handler: H;
}

/** Statuses the kit and the shared HTTP layer answer for any row (503: its database is unreachable). */
export const KIT_ERRORS = [400, 401, 403, 404, 405, 406, 413, 414, 415, 431, 503];

/** What a service plugs into the kit. */
export interface ServiceBinding<H> {
  /** Authentication, microversion negotiation… run for every request on these paths. */
  onRequest?(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** HEAD is served by the GET row (Placement, Glance, Keystone) unless the path has a HEAD row of its own. */
  headAsGet?: boolean;
  /** The negotiated microversion, for services that have them. */
  version?(req: FastifyRequest): Version | undefined;
  /**
   * Throws the service's 403 unless the caller passes `rule` (caller-scoped target). May be
   * async: Identity authenticates here, as its unauthenticated routes (token issue) have no policy.
   */
  authorize(req: FastifyRequest, rule: string): Promise<void> | void;
  /** Runs the selected row's handler and sends its answer. */
  run(row: RouteRow<H>, req: FastifyRequest, reply: FastifyReply): Promise<unknown>;
  /** Words a schema violation as the service does (a typed 400); `req` carries the row and the data. */
  schemaError(errors: ErrorObject[], where: 'body' | 'query', req: FastifyRequest): StratusError;
  /** The message of a 404 for a version outside every row's range (Nova: 'The resource could not be found.'). */
  versionNotFound?: string;
  /**
   * What a row with a body schema reads when the request has no body (Keystone reads it as `{}`,
   * so `POST /v3/users` without one is "'name' is a required property"). Unset: not validated.
   */
  absentBody?(): unknown;
  /** The message of a 405 (Placement's and Glance's differ). */
  methodNotAllowed?(req: FastifyRequest): string;
}

declare module 'fastify' {
  interface FastifyRequest { routeRow?: RouteRow<unknown> }
}

/**
 * The one validation engine. fastify's validator compiler is set to the same instance, so a
 * schema given to fastify directly and one given to a row are checked alike: no coercion, no
 * stripping, no defaults (OpenStack refuses wrong types instead of coercing them).
 */
export function validationEngine(): Ajv {
  return new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, strict: false });
}

/**
 * Statuses answered that the route's row does not declare, by "METHOD path" (logged too): tests
 * drive the routes and require this to stay empty, so the declarations stay true.
 */
export const undeclaredStatuses = new Map<string, Set<number>>();

const ALL = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

function inRange<H>(row: RouteRow<H>, v: Version | undefined): boolean {
  if (!v) return true;
  return (!row.since || v.atLeast(row.since)) && (!row.until || v.atMost(row.until));
}

/** Every table registered in this process, by scope prefix (tests drive every row of them). */
export const registeredTables = new Map<string, RouteRow<unknown>[]>();

/** Registers a table of rows on `scope`. */
export function registerRows<H>(scope: FastifyInstance, rows: RouteRow<H>[], svc: ServiceBinding<H>, ajv: Ajv = validationEngine()): void {
  registeredTables.set(scope.prefix, rows as RouteRow<unknown>[]);
  scope.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  const compiled = new Map<JsonSchema, ValidateFunction>();
  const compile = (s: JsonSchema) => {
    let f = compiled.get(s);
    if (!f) { f = ajv.compile(s); compiled.set(s, f); }
    return f;
  };
  const byPath = new Map<string, RouteRow<H>[]>();
  for (const r of rows) {
    if (!byPath.has(r.path)) byPath.set(r.path, []);
    byPath.get(r.path)!.push(r);
    if (r.body) compile(r.body);
    if (r.query) compile(r.query);
  }
  for (const [path, defs] of byPath) {
    const methods = [...new Set(defs.map((d) => d.method))];
    const hasHead = methods.includes('HEAD');
    const allow = [...methods].sort().join(', ');
    const notAllowed = (req: FastifyRequest) =>
      new MethodNotAllowed(svc.methodNotAllowed?.(req) ?? 'The method specified is not allowed for this resource.', { headers: { allow } });
    scope.route({
      method: [...ALL],
      url: path,
      ...(svc.onRequest ? { onRequest: (req: FastifyRequest, reply: FastifyReply) => svc.onRequest!(req, reply) } : {}),
      // Row selection and policy run before the body is parsed.
      preParsing: async (req, _reply, payload) => {
        const method = svc.headAsGet && req.method === 'HEAD' && !hasHead ? 'GET' : req.method;
        const forMethod = defs.filter((d) => d.method === method);
        if (!forMethod.length) throw notAllowed(req);
        const v = svc.version?.(req);
        const row = forMethod.find((d) => inRange(d, v));
        if (!row) {
          if ((forMethod[0].outOfRange ?? 404) === 405) throw notAllowed(req);
          throw new NotFound(svc.versionNotFound ?? '');
        }
        req.routeRow = row as RouteRow<unknown>;
        for (const rule of [row.policy ?? []].flat()) await svc.authorize(req, rule);
        if (row.notImplemented) throw new NotImplementedYet(row.notImplemented);
        await row.beforeBody?.(req);
        return payload;
      },
      preValidation: async (req) => {
        const row = req.routeRow as RouteRow<H>;
        if (row.body && req.body === undefined && svc.absentBody) req.body = svc.absentBody();
        if (row.body && req.body !== undefined) {
          const check = compile(row.body);
          if (!check(req.body)) throw svc.schemaError(check.errors ?? [], 'body', req);
        }
        if (row.query) {
          const check = compile(row.query);
          if (!check(req.query ?? {})) throw svc.schemaError(check.errors ?? [], 'query', req);
        }
      },
      handler: async (req, reply) => svc.run(req.routeRow as RouteRow<H>, req, reply),
      onResponse: async (req, reply) => {
        const row = req.routeRow as RouteRow<H> | undefined;
        if (!row || reply.statusCode < 400 || allowedStatuses(row).has(reply.statusCode)) return;
        const key = `${row.method} ${row.path}`;
        if (!undeclaredStatuses.has(key)) undeclaredStatuses.set(key, new Set());
        undeclaredStatuses.get(key)!.add(reply.statusCode);
        req.log.warn({ route: key, status: reply.statusCode }, 'status not declared by its route row');
      },
    });
  }
}

/** For tests: the violations of a row's response schema by a body, worded by ajv (empty: valid). */
export function checkResponse<H>(row: RouteRow<H>, status: number, body: unknown, ajv: Ajv = validationEngine()): string[] {
  const schema = row.response?.[status];
  if (!schema) return [`${row.method} ${row.path} declares no response schema for ${status}`];
  const check = ajv.compile(schema);
  if (check(body)) return [];
  return (check.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`);
}

/** For tests: statuses a row may answer (its own and the kit's). */
export function allowedStatuses<H>(row: RouteRow<H>): Set<number> {
  return new Set([...row.errors, ...KIT_ERRORS, ...(row.notImplemented ? [501] : [])]);
}
