// Policies (/v3/policies): policy documents stored for other services to fetch, opaque to
// Identity (a blob and its MIME type). Identity's own rules come from policy.ts and policy.yaml.
import type { FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../common/errors.ts';
import { newId, parseExtra } from '../store/store.ts';
import type { PolicyRow } from '../store/schema.ts';
import { checkQuery, filterInexact, extras, link, listLinks, type IdentityApi } from './context.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import type { IdentityRow, RowModule } from './rows.ts';

const FIELDS = ['id', 'type', 'blob', 'links'];

function render(api: IdentityApi, p: PolicyRow) {
  return { id: p.id, type: p.type, blob: p.blob, ...parseExtra(p.extra), links: link(api, `policies/${p.id}`) };
}

export const policyRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const db = () => api.store.db;
  async function load(req: FastifyRequest): Promise<PolicyRow> {
    const { id } = req.params as { id: string };
    const p = await db().selectFrom('policies').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p) throw new NotFound(`Could not find policy: ${id}.`);
    return p;
  }

  rows.push({ method: 'POST', path: '/v3/policies', policy: 'identity:create_policy', body: entityBody('policy', KS.policy_create), errors: [], handler: async (req, reply) => {
    const p = entityOf(req, 'policy');
    const row: PolicyRow = { id: newId(), type: p.type as string, blob: p.blob as string, extra: JSON.stringify(extras(p, FIELDS)) };
    await db().insertInto('policies').values(row).execute();
    reply.code(201);
    return { policy: render(api, row) };
  } });

  rows.push({ method: 'GET', path: '/v3/policies', policy: 'identity:list_policies', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['type']);
    let qb = db().selectFrom('policies').selectAll();
    if (q.type !== undefined) qb = qb.where('type', '=', q.type);
    return { policies: filterInexact(req, ['type'], (await qb.orderBy('id').execute()).map((p) => render(api, p))), links: listLinks(api, req) };
  } });

  rows.push({ method: 'GET', path: '/v3/policies/:id', policy: 'identity:get_policy', errors: [], handler: async (req) => {
    return { policy: render(api, await load(req)) };
  } });

  rows.push({ method: 'PATCH', path: '/v3/policies/:id', policy: 'identity:update_policy', body: entityBody('policy', KS.policy_update), errors: [], handler: async (req) => {
    const cur = await load(req);
    const p = entityOf(req, 'policy');
    if (p.id !== undefined && p.id !== cur.id) throw new BadRequest('Cannot change ID');
    const next: PolicyRow = {
      ...cur, type: (p.type as string) ?? cur.type, blob: (p.blob as string) ?? cur.blob,
      extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(p, FIELDS) }),
    };
    await db().updateTable('policies').set({ type: next.type, blob: next.blob, extra: next.extra }).where('id', '=', cur.id).execute();
    return { policy: render(api, next) };
  } });

  rows.push({ method: 'DELETE', path: '/v3/policies/:id', policy: 'identity:delete_policy', errors: [], handler: async (req, reply) => {
    const cur = await load(req);
    await db().deleteFrom('policies').where('id', '=', cur.id).execute();
    reply.code(204).send();
  } });
  return rows;
};
