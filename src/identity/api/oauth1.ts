// OAuth1 consumers (OS-OAUTH1): third-party applications registered by an admin. The consumer's
// secret is shown once, at creation, and can never be changed afterwards (Keystone's rule).
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../common/errors.ts';
import { newId, parseExtra } from '../store/store.ts';
import type { ConsumerRow } from '../store/schema.ts';
import { checkQuery, extras, link, listLinks, type IdentityApi } from './context.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { type IdentityRow, type RowModule } from './rows.ts';

const FIELDS = ['id', 'description', 'secret', 'links'];

function render(api: IdentityApi, c: ConsumerRow, withSecret = false) {
  const out: Record<string, unknown> = { id: c.id, description: c.description || null, ...parseExtra(c.extra), links: link(api, `OS-OAUTH1/consumers/${c.id}`) };
  if (withSecret) out.secret = c.secret;
  return out;
}

export const oauth1Routes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const db = () => api.store.db;
  async function load(req: FastifyRequest): Promise<ConsumerRow> {
    const { id } = req.params as { id: string };
    const c = await db().selectFrom('oauth1_consumers').selectAll().where('id', '=', id).executeTakeFirst();
    if (!c) throw new NotFound(`Could not find consumer: ${id}.`);
    return c;
  }

  rows.push({ method: 'POST', path: '/v3/OS-OAUTH1/consumers', policy: 'identity:create_consumer', body: entityBody('consumer', KS.consumer_create), errors: [], handler: async (req, reply) => {
    // A secret in the body is replaced by a generated one, as Keystone's create_consumer does.
    const c = entityOf(req, 'consumer');
    const row: ConsumerRow = { id: newId(), description: (c.description as string | null) ?? '', secret: randomBytes(32).toString('hex'), extra: JSON.stringify(extras(c, FIELDS)) };
    await db().insertInto('oauth1_consumers').values(row).execute();
    reply.code(201);
    return { consumer: render(api, row, true) };
  } });

  rows.push({ method: 'GET', path: '/v3/OS-OAUTH1/consumers', policy: 'identity:list_consumers', errors: [], handler: async (req) => {
    checkQuery(req, []);
    const rows = await db().selectFrom('oauth1_consumers').selectAll().orderBy('id').execute();
    return { consumers: rows.map((c) => render(api, c)), links: listLinks(api, req) };
  } });

  rows.push({ method: 'GET', path: '/v3/OS-OAUTH1/consumers/:id', policy: 'identity:get_consumer', errors: [], handler: async (req) => {
    return { consumer: render(api, await load(req)) };
  } });

  rows.push({ method: 'PATCH', path: '/v3/OS-OAUTH1/consumers/:id', policy: 'identity:update_consumer', body: entityBody('consumer', KS.consumer_update), errors: [], handler: async (req) => {
    const cur = await load(req);
    const c = entityOf(req, 'consumer');
    if (c.id !== undefined && c.id !== cur.id) throw new BadRequest('Cannot change ID');
    const next: ConsumerRow = {
      ...cur,
      description: c.description === undefined ? cur.description : ((c.description as string | null) ?? ''),
      extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(c, FIELDS) }),
    };
    await db().updateTable('oauth1_consumers').set({ description: next.description, extra: next.extra }).where('id', '=', cur.id).execute();
    return { consumer: render(api, next) };
  } });

  rows.push({ method: 'DELETE', path: '/v3/OS-OAUTH1/consumers/:id', policy: 'identity:delete_consumer', errors: [], handler: async (req, reply) => {
    const cur = await load(req);
    // Its request and access tokens go with it, and so do the tokens issued from them.
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('oauth1_request_tokens').where('consumer_id', '=', cur.id).execute();
      await trx.deleteFrom('oauth1_access_tokens').where('consumer_id', '=', cur.id).execute();
      await trx.deleteFrom('oauth1_consumers').where('id', '=', cur.id).execute();
    });
    api.store.touch();
    api.onRevoke();
    reply.code(204).send();
  } });
  return rows;
};
