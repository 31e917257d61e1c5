// Users (incl. changing one's own password), groups and group membership.
import { BadRequest, Conflict, NotFound, Unauthorized } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { hashPassword, verifyPassword } from '../passwords.ts';
import { bool, newId, nowIso, parseExtra } from '../store/store.ts';
import type { GroupRow, UserRow } from '../store/schema.ts';
import { authorize, bodyObject, checkFields, checkName, checkQuery, filterInexact, extras, link, listLinks, queryBool, type IdentityApi, type RouteModule } from './context.ts';

const USER_FIELDS = ['id', 'name', 'domain_id', 'enabled', 'default_project_id', 'password', 'links', 'options', 'password_expires_at', 'federated'];
const GROUP_FIELDS = ['id', 'name', 'domain_id', 'description', 'links'];
const MAX_PASSWORD = 4096;

export function renderUser(api: IdentityApi, u: UserRow) {
  const out: Record<string, unknown> = {
    id: u.id, name: u.name, domain_id: u.domain_id, enabled: bool(u.enabled), password_expires_at: null, options: {},
    ...parseExtra(u.extra), links: link(api, `users/${u.id}`),
  };
  if (u.default_project_id) out.default_project_id = u.default_project_id;
  return out;
}

export function renderGroup(api: IdentityApi, g: GroupRow) {
  return { id: g.id, name: g.name, domain_id: g.domain_id, description: g.description, ...parseExtra(g.extra), links: link(api, `groups/${g.id}`) };
}

function checkPassword(pw: unknown): string {
  if (typeof pw !== 'string') throw new BadRequest(`Invalid input for field 'password': ${JSON.stringify(pw)} is not of type 'string'`);
  if (pw.length > MAX_PASSWORD) throw new BadRequest(`Invalid input for field 'password': longer than ${MAX_PASSWORD} characters`);
  return pw;
}

export const userGroupRoutes: RouteModule = (app, api) => {
  const { store } = api;
  const db = () => store.db;

  async function getUser(id: string): Promise<UserRow> {
    const u = await db().selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!u) throw new NotFound(`Could not find user: ${id}.`);
    return u;
  }
  async function getGroup(id: string): Promise<GroupRow> {
    const g = await db().selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!g) throw new NotFound(`Could not find group: ${id}.`);
    return g;
  }
  async function revokeUser(userId: string) {
    await store.revoke({ userId });
    api.onRevoke();
  }

  // ---- users ----
  app.get('/v3/users', async (req) => {
    const q = checkQuery(req, ['name', 'domain_id', 'enabled', 'idp_id', 'protocol_id', 'unique_id', 'password_expires_at']);
    await authorize(api, req, 'identity:list_users', { target: { domain_id: q.domain_id } });
    let qb = db().selectFrom('users').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    if (q.domain_id !== undefined) qb = qb.where('domain_id', '=', q.domain_id);
    const en = queryBool(q.enabled);
    if (en !== undefined) qb = qb.where('enabled', '=', en ? 1 : 0);
    // Stratus has no federation and no password expiry: those filters match nothing or everything.
    if (q.idp_id !== undefined || q.protocol_id !== undefined || q.unique_id !== undefined) return { users: [], links: listLinks(api, req) };
    const rows = await qb.orderBy('name').execute();
    return { users: filterInexact(req, ['name', 'domain_id'], rows.map((u) => renderUser(api, u))), links: listLinks(api, req) };
  });
  app.get('/v3/users/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:get_user', { target: { user: { id } } });
    return { user: renderUser(api, await getUser(id)) };
  });
  app.post('/v3/users', async (req, reply) => {
    const caller = await authorize(api, req, 'identity:create_user');
    const u = bodyObject(req, 'user');
    checkFields(u, { name: 'string', domain_id: 'string', enabled: 'boolean', default_project_id: 'nullable-string', password: 'nullable-string', description: 'nullable-string', email: 'nullable-string' }, ['name']);
    const domainId = (u.domain_id as string) ?? caller.projectDomainId ?? caller.domainId ?? 'default';
    if (!(await db().selectFrom('domains').select('id').where('id', '=', domainId).executeTakeFirst())) throw new NotFound(`Could not find domain: ${domainId}.`);
    if (u.default_project_id && !(await db().selectFrom('projects').select('id').where('id', '=', u.default_project_id as string).executeTakeFirst())) {
      throw new NotFound(`Could not find project: ${u.default_project_id}.`);
    }
    const row: UserRow = {
      id: newId(), name: checkName(u.name), domain_id: domainId, enabled: u.enabled === false ? 0 : 1,
      default_project_id: (u.default_project_id as string) ?? null,
      password_hash: typeof u.password === 'string' ? await hashPassword(checkPassword(u.password)) : null,
      password_created_at: typeof u.password === 'string' ? nowIso() : null,
      extra: JSON.stringify(extras(u, USER_FIELDS)), created_at: nowIso(),
    };
    try {
      await db().insertInto('users').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store user - Duplicate entry found with name ${row.name} at domain ID ${domainId}.`);
      throw e;
    }
    store.touch();
    reply.code(201);
    return { user: renderUser(api, row) };
  });
  app.patch('/v3/users/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_user', { target: { user: { id } } });
    const cur = await getUser(id);
    const u = bodyObject(req, 'user');
    checkFields(u, { name: 'string', enabled: 'boolean', default_project_id: 'nullable-string', password: 'nullable-string', description: 'nullable-string', email: 'nullable-string' });
    if (u.id !== undefined && u.id !== id) throw new BadRequest('Cannot change user ID');
    if (u.domain_id !== undefined && u.domain_id !== cur.domain_id) throw new BadRequest('Cannot change Domain ID');
    const upd: Partial<UserRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(u, USER_FIELDS) }) };
    if (u.name !== undefined) upd.name = checkName(u.name);
    if (u.enabled !== undefined) upd.enabled = u.enabled ? 1 : 0;
    if (u.default_project_id !== undefined) {
      if (u.default_project_id && !(await db().selectFrom('projects').select('id').where('id', '=', u.default_project_id as string).executeTakeFirst())) {
        throw new NotFound(`Could not find project: ${u.default_project_id}.`);
      }
      upd.default_project_id = (u.default_project_id as string) ?? null;
    }
    if (u.password !== undefined) {
      upd.password_hash = u.password === null ? null : await hashPassword(checkPassword(u.password));
      upd.password_created_at = nowIso();
    }
    try {
      await db().updateTable('users').set(upd).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store user - Duplicate entry found with name ${upd.name} at domain ID ${cur.domain_id}.`);
      throw e;
    }
    if ((u.enabled === false && bool(cur.enabled)) || u.password !== undefined) await revokeUser(id);
    store.touch();
    return { user: renderUser(api, await getUser(id)) };
  });
  app.delete('/v3/users/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_user', { target: { user: { id } } });
    await getUser(id);
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('assignments').where('actor_id', '=', id).execute();
      await trx.deleteFrom('user_group_membership').where('user_id', '=', id).execute();
      await trx.deleteFrom('application_credentials').where('user_id', '=', id).execute();
      await trx.deleteFrom('access_rules').where('user_id', '=', id).execute();
      await trx.deleteFrom('users').where('id', '=', id).execute();
    });
    await revokeUser(id);
    store.touch();
    reply.code(204).send();
  });
  app.post('/v3/users/:id/password', async (req, reply) => {
    const { id } = req.params as { id: string };
    const u = bodyObject(req, 'user');
    checkFields(u, { password: 'string', original_password: 'string' }, ['password', 'original_password']);
    // Keystone lets a user change its own password without a token: the original password is the proof.
    const user = await db().selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!user || !(await verifyPassword(u.original_password as string, user.password_hash))) {
      throw new Unauthorized('The request you have made requires authentication.');
    }
    // A disabled account cannot re-arm itself (Keystone's UserDisabled, a 401 that names nothing).
    if (!bool(user.enabled)) throw new Unauthorized('The request you have made requires authentication.');
    await db().updateTable('users').set({ password_hash: await hashPassword(checkPassword(u.password)), password_created_at: nowIso() }).where('id', '=', id).execute();
    await revokeUser(id);
    store.touch();
    reply.code(204).send();
  });
  app.get('/v3/users/:id/groups', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:list_groups_for_user', { user_id: id });
    await getUser(id);
    const ids = await store.groupIdsOf(id);
    const rows = ids.length ? await db().selectFrom('groups').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
    return { groups: rows.map((g) => renderGroup(api, g)), links: listLinks(api, req) };
  });

  // ---- groups ----
  app.get('/v3/groups', async (req) => {
    const q = checkQuery(req, ['name', 'domain_id']);
    await authorize(api, req, 'identity:list_groups');
    let qb = db().selectFrom('groups').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    if (q.domain_id !== undefined) qb = qb.where('domain_id', '=', q.domain_id);
    return { groups: filterInexact(req, ['name', 'domain_id'], (await qb.orderBy('name').execute()).map((g) => renderGroup(api, g))), links: listLinks(api, req) };
  });
  app.get('/v3/groups/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:get_group');
    return { group: renderGroup(api, await getGroup(id)) };
  });
  app.post('/v3/groups', async (req, reply) => {
    const caller = await authorize(api, req, 'identity:create_group');
    const g = bodyObject(req, 'group');
    checkFields(g, { name: 'string', domain_id: 'string', description: 'nullable-string' }, ['name']);
    const domainId = (g.domain_id as string) ?? caller.projectDomainId ?? caller.domainId ?? 'default';
    if (!(await db().selectFrom('domains').select('id').where('id', '=', domainId).executeTakeFirst())) throw new NotFound(`Could not find domain: ${domainId}.`);
    const row: GroupRow = { id: newId(), name: checkName(g.name, 'name', 64), domain_id: domainId, description: (g.description as string) ?? '', extra: JSON.stringify(extras(g, GROUP_FIELDS)) };
    try {
      await db().insertInto('groups').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store group - Duplicate entry found with name ${row.name}.`);
      throw e;
    }
    reply.code(201);
    return { group: renderGroup(api, row) };
  });
  app.patch('/v3/groups/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_group');
    const cur = await getGroup(id);
    const g = bodyObject(req, 'group');
    checkFields(g, { name: 'string', description: 'nullable-string' });
    if (g.domain_id !== undefined && g.domain_id !== cur.domain_id) throw new BadRequest('Cannot change Domain ID');
    const upd: Partial<GroupRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(g, GROUP_FIELDS) }) };
    if (g.name !== undefined) upd.name = checkName(g.name, 'name', 64);
    if (g.description !== undefined) upd.description = (g.description as string) ?? '';
    try {
      await db().updateTable('groups').set(upd).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store group - Duplicate entry found with name ${upd.name}.`);
      throw e;
    }
    return { group: renderGroup(api, await getGroup(id)) };
  });
  app.delete('/v3/groups/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_group');
    await getGroup(id);
    const members = (await db().selectFrom('user_group_membership').select('user_id').where('group_id', '=', id).execute()).map((m) => m.user_id);
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('assignments').where('actor_id', '=', id).execute();
      await trx.deleteFrom('user_group_membership').where('group_id', '=', id).execute();
      await trx.deleteFrom('groups').where('id', '=', id).execute();
    });
    for (const m of members) await store.revoke({ userId: m });
    if (members.length) api.onRevoke();
    store.touch();
    reply.code(204).send();
  });
  app.get('/v3/groups/:id/users', async (req) => {
    const { id } = req.params as { id: string };
    checkQuery(req, ['name', 'domain_id', 'enabled', 'password_expires_at']);
    await authorize(api, req, 'identity:list_users_in_group');
    await getGroup(id);
    const rows = await db().selectFrom('users').innerJoin('user_group_membership as m', 'm.user_id', 'users.id')
      .selectAll('users').where('m.group_id', '=', id).orderBy('users.name').execute();
    return { users: filterInexact(req, ['name', 'domain_id'], rows.map((u) => renderUser(api, u))), links: listLinks(api, req) };
  });
  app.put('/v3/groups/:gid/users/:uid', async (req, reply) => {
    const { gid, uid } = req.params as { gid: string; uid: string };
    await authorize(api, req, 'identity:add_user_to_group');
    await getGroup(gid);
    await getUser(uid);
    try {
      await db().insertInto('user_group_membership').values({ user_id: uid, group_id: gid }).execute();
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
    }
    store.touch();
    reply.code(204).send();
  });
  for (const method of ['GET', 'HEAD'] as const) {
    app.route({ method, url: '/v3/groups/:gid/users/:uid', handler: async (req, reply) => {
      const { gid, uid } = req.params as { gid: string; uid: string };
      await authorize(api, req, 'identity:check_user_in_group');
      await getGroup(gid);
      await getUser(uid);
      const m = await db().selectFrom('user_group_membership').select('user_id').where('group_id', '=', gid).where('user_id', '=', uid).executeTakeFirst();
      if (!m) throw new NotFound(`User ${uid} is not a member of group ${gid}.`);
      reply.code(204).send();
    } });
  }
  app.delete('/v3/groups/:gid/users/:uid', async (req, reply) => {
    const { gid, uid } = req.params as { gid: string; uid: string };
    await authorize(api, req, 'identity:remove_user_from_group');
    await getGroup(gid);
    await getUser(uid);
    const r = await db().deleteFrom('user_group_membership').where('group_id', '=', gid).where('user_id', '=', uid).executeTakeFirst();
    if (!Number(r.numDeletedRows)) throw new NotFound(`User ${uid} is not a member of group ${gid}.`);
    await revokeUser(uid);
    store.touch();
    reply.code(204).send();
  });
};
