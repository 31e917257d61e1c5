// The Identity API on the route kit (common/http/route-kit.ts): every route is a row in one
// table, assembled in ../index.ts from the per-resource modules. A row's `policy` is checked
// before the body is read, against a target built from the request alone (`policyTarget`: the
// path's ids, the query's domain); rules whose target is the loaded resource or the request body
// (a credential's owner, a trust's trustor) are named in `targetPolicy` and checked by the
// handler once it has what the rule needs.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../common/http/auth.ts';
import { registerRows, type RouteRow, type ServiceBinding } from '../../common/http/route-kit.ts';
import { creds, type IdentityApi } from './context.ts';
import { schemaError } from './validation.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each handler narrows its own params
export type IdentityHandler = (req: FastifyRequest<any>, reply: FastifyReply) => Promise<unknown>;
export type IdentityRow = RouteRow<IdentityHandler> & {
  /** The policy target of the row's `policy`, from the path and query only (the body is not read yet). */
  policyTarget?(req: FastifyRequest): Record<string, unknown>;
};
/** A resource module: its rows. */
export type RowModule = (api: IdentityApi) => IdentityRow[];

/** The caller of a row with a policy (authenticated by the kit before the handler runs). */
export function callerOf(req: FastifyRequest): AuthContext {
  if (!req.auth) throw new Error(`${req.method} ${req.url}: the row has no policy, so nothing authenticated the caller`);
  return req.auth;
}

/** werkzeug's wording: Keystone's flask app does not reword its MethodNotAllowed. */
export const METHOD_NOT_ALLOWED = 'The method is not allowed for the requested URL.';

export function registerIdentityRows(scope: Parameters<typeof registerRows>[0], api: IdentityApi, rows: IdentityRow[]): void {
  const binding: ServiceBinding<IdentityHandler> = {
    // Keystone (flask) answers HEAD for every GET route.
    headAsGet: true,
    authorize: async (req, rule) => {
      const auth = req.auth ?? await api.authenticate(req);
      const row = req.routeRow as IdentityRow;
      api.policy.enforce(rule, creds(auth), row.policyTarget?.(req) ?? {});
    },
    // Rows' bodies are Keystone's schema.py schemas, worded as Keystone words them (validation.ts).
    schemaError,
    // Keystone reads a missing body as {} (request_body_json), so its schema still decides.
    absentBody: () => ({}),
    methodNotAllowed: () => METHOD_NOT_ALLOWED,
    run: (row, req, reply) => row.handler(req, reply),
  };
  // A row whose rule needs the body (a credential's owner, a trust's trustor) authenticates
  // before its body schema runs: without a token the answer is 401, whatever the body.
  const withAuth = rows.map((r): IdentityRow => (r.body && !r.policy && r.targetPolicy
    ? { ...r, beforeBody: async (req) => { await r.beforeBody?.(req); req.auth ??= await api.authenticate(req); } }
    : r));
  registerRows(scope, withAuth, binding);
}
