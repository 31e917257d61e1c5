// Policies (/v3/policies): policy documents stored for other services to fetch, opaque to
// Identity (a blob and its MIME type). Identity's own rules come from policy.ts and policy.yaml.
import type { FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../common/errors.ts';
import { newId, parseExtra } from '../store/store.ts';
import type { PolicyRow } from '../store/schema.ts';
import { authorize, bodyObject, checkFields, checkQuery, filterInexact, extras, link, listLinks, type IdentityApi, type RouteModule } from './context.ts';

const FIELDS = ['id', 'type', 'blob', 'links'];

function render(api: IdentityApi, p: PolicyRow) {
  return { id: p.id, type: p.type, blob: p.blob, ...parseExtra(p.extra), links: link(api, `policies/${p.id}`) };
}

function checkType(v: unknown) {
  if (v !== undefined && ((v as string).length === 0 || (v as string).length > 255)) throw new BadRequest("Invalid input for field 'type': length must be 1 to 255");
}

export const policyRoutes: RouteModule = (app, api) => {
  const db = () => api.store.db;
  async function load(req: FastifyRequest): Promise<PolicyRow> {
    const { id } = req.params as { id: string };
    const p = await db().selectFrom('policies').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p) throw new NotFound(`Could not find policy: ${id}.`);
    return p;
  }

  app.post('/v3/policies', async (req, reply) => {
    await authorize(api, req, 'identity:create_policy');
    const p = bodyObject(req, 'policy');
    checkFields(p, { blob: 'string', type: 'string' }, ['blob', 'type']);
    checkType(p.type);
    const row: PolicyRow = { id: newId(), type: p.type as string, blob: p.blob as string, extra: JSON.stringify(extras(p, FIELDS)) };
    await db().insertInto('policies').values(row).execute();
    reply.code(201);
    return { policy: render(api, row) };
  });

  app.get('/v3/policies', async (req) => {
    const q = checkQuery(req, ['type']);
    await authorize(api, req, 'identity:list_policies');
    let qb = db().selectFrom('policies').selectAll();
    if (q.type !== undefined) qb = qb.where('type', '=', q.type);
    return { policies: filterInexact(req, ['type'], (await qb.orderBy('id').execute()).map((p) => render(api, p))), links: listLinks(api, req) };
  });

  app.get('/v3/policies/:id', async (req) => {
    await authorize(api, req, 'identity:get_policy');
    return { policy: render(api, await load(req)) };
  });

  app.patch('/v3/policies/:id', async (req) => {
    await authorize(api, req, 'identity:update_policy');
    const cur = await load(req);
    const p = bodyObject(req, 'policy');
    checkFields(p, { blob: 'string', type: 'string' });
    checkType(p.type);
    if (Object.keys(p).length === 0) throw new BadRequest("Invalid input for field 'policy': {} does not have enough properties");
    if (p.id !== undefined && p.id !== cur.id) throw new BadRequest('Cannot change ID');
    const next: PolicyRow = {
      ...cur, type: (p.type as string) ?? cur.type, blob: (p.blob as string) ?? cur.blob,
      extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(p, FIELDS) }),
    };
    await db().updateTable('policies').set({ type: next.type, blob: next.blob, extra: next.extra }).where('id', '=', cur.id).execute();
    return { policy: render(api, next) };
  });

  app.delete('/v3/policies/:id', async (req, reply) => {
    await authorize(api, req, 'identity:delete_policy');
    const cur = await load(req);
    await db().deleteFrom('policies').where('id', '=', cur.id).execute();
    reply.code(204).send();
  });
};
