// The compute API on the route kit (common/http/route-kit.ts): every route is a row of one table
// (api/routes.ts), mounted under /v2.1. The binding authenticates (keystonemiddleware's 401),
// negotiates the microversion and echoes it (OpenStack-API-Version, X-OpenStack-Nova-API-Version,
// Vary — even on a refused version, as Nova), checks the row's policy rules with the caller's own
// project as target before the body is read, words schema violations as Nova (api/validation.ts)
// and renders a handler's Result. Rules whose target is the loaded resource (a server's project,
// a keypair's user) are checked again by the handler once it has the resource.
import type { FastifyInstance } from 'fastify';
import { BadRequest } from '../../common/errors.ts';
import { authenticateRequest, credentialsOf, type TokenValidator } from '../../common/http/auth.ts';
import { registerRows, type RouteRow, type ServiceBinding } from '../../common/http/route-kit.ts';
import { contextOf, negotiateVersion, type ComputeApi, type Handler, type Result } from './context.ts';
import { computeAjv, novaSchemaMessage } from './validation.ts';

/** A compute route: a kit row whose handler returns a bare body (answered with `status`) or a Result. */
export interface ComputeRow extends RouteRow<Handler> {
  /** Success status when the handler returns a bare body. */
  status?: number;
}

const isResult = (out: unknown): out is Result =>
  !!out && typeof out === 'object' && !Array.isArray(out) && ('status' in out || 'body' in out || 'headers' in out);

export async function registerComputeRows(scope: FastifyInstance, rows: ComputeRow[], api: ComputeApi, validator: TokenValidator): Promise<void> {
  // Access rules match paths below the mount point (/compute), /v2.1 included.
  const service = { type: 'compute', mountPrefix: scope.prefix };
  const binding: ServiceBinding<Handler> = {
    onRequest: async (req, reply) => {
      await authenticateRequest(req, validator, service, `Keystone uri="${await api.identityUrl()}"`);
      req.novaVersion = negotiateVersion(req, reply);
    },
    version: (req) => req.novaVersion,
    versionNotFound: 'The resource could not be found.',
    authorize: (req, rule) => {
      const a = req.auth!;
      api.policy.enforce(rule, credentialsOf(a), { project_id: a.projectId, user_id: a.userId });
    },
    schemaError: (errors, _where, req) => new BadRequest(novaSchemaMessage(req?.routeRow?.body, req?.body, errors)),
    run: async (row, req, reply) => {
      const out = await row.handler(contextOf(req, reply, api));
      const r: Result = isResult(out) ? out : { body: out };
      const status = r.status ?? (row as ComputeRow).status ?? 200;
      for (const [h, val] of Object.entries(r.headers ?? {})) reply.header(h, val);
      reply.code(status);
      if (r.body === undefined || status === 204) return reply.send();
      return reply.type('application/json').send(r.body);
    },
  };
  await scope.register(async (v21) => registerRows(v21, rows, binding, computeAjv), { prefix: '/v2.1' });
}
