// Users (incl. changing one's own password), groups and group membership.
import { BadRequest, Conflict, NotFound, Unauthorized } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { hashPassword, verifyPassword } from '../passwords.ts';
import { bool, newId, nowIso, parseExtra } from '../store/store.ts';
import type { GroupRow, UserRow } from '../store/schema.ts';
import { checkQuery, filterInexact, extras, link, listLinks, queryBool, type IdentityApi } from './context.ts';
import { callerOf, type IdentityRow, type RowModule } from './rows.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { R } from './responses.ts';

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

/** [identity] max_password_length: the schema has the type, the length is the configuration's. */
function checkPassword(pw: string): string {
  if (pw.length > MAX_PASSWORD) throw new BadRequest(`Invalid input for field 'password': longer than ${MAX_PASSWORD} characters`);
  return pw;
}

export const userGroupRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
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
  rows.push({ method: 'GET', path: '/v3/users', response: { 200: R.users }, policy: 'identity:list_users', policyTarget: (req) => { const q = checkQuery(req, ['name', 'domain_id', 'enabled', 'idp_id', 'protocol_id', 'unique_id', 'password_expires_at']); return { target: { domain_id: q.domain_id } }; }, errors: [], handler: async (req) => {
    const q = checkQuery(req, ['name', 'domain_id', 'enabled', 'idp_id', 'protocol_id', 'unique_id', 'password_expires_at']);
    let qb = db().selectFrom('users').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    if (q.domain_id !== undefined) qb = qb.where('domain_id', '=', q.domain_id);
    const en = queryBool(q.enabled);
    if (en !== undefined) qb = qb.where('enabled', '=', en ? 1 : 0);
    // Stratus has no federation and no password expiry: those filters match nothing or everything.
    if (q.idp_id !== undefined || q.protocol_id !== undefined || q.unique_id !== undefined) return { users: [], links: listLinks(api, req) };
    const rows = await qb.orderBy('name').execute();
    return { users: filterInexact(req, ['name', 'domain_id'], rows.map((u) => renderUser(api, u))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/users/:id', response: { 200: R.user }, policy: 'identity:get_user', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { user: { id } } }; }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    return { user: renderUser(api, await getUser(id)) };
  } });
  rows.push({ method: 'POST', path: '/v3/users', policy: 'identity:create_user', body: entityBody('user', KS.user_create), response: { 201: R.user }, errors: [409], handler: async (req, reply) => {
    const caller = callerOf(req);
    const u = entityOf(req, 'user');
    const domainId = (u.domain_id as string) ?? caller.projectDomainId ?? caller.domainId ?? 'default';
    if (!(await db().selectFrom('domains').select('id').where('id', '=', domainId).executeTakeFirst())) throw new NotFound(`Could not find domain: ${domainId}.`);
    if (u.default_project_id && !(await db().selectFrom('projects').select('id').where('id', '=', u.default_project_id as string).executeTakeFirst())) {
      throw new NotFound(`Could not find project: ${u.default_project_id}.`);
    }
    const row: UserRow = {
      id: newId(), name: u.name as string, domain_id: domainId, enabled: u.enabled === false ? 0 : 1,
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
  } });
  rows.push({ method: 'PATCH', path: '/v3/users/:id', policy: 'identity:update_user', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { user: { id } } }; }, body: entityBody('user', KS.user_update), response: { 200: R.user }, errors: [409], handler: async (req) => {
    const { id } = req.params as { id: string };
    const cur = await getUser(id);
    const u = entityOf(req, 'user');
    if (u.id !== undefined && u.id !== id) throw new BadRequest('Cannot change user ID');
    if (u.domain_id !== undefined && u.domain_id !== cur.domain_id) throw new BadRequest('Cannot change Domain ID');
    const upd: Partial<UserRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(u, USER_FIELDS) }) };
    if (u.name !== undefined) upd.name = u.name as string;
    if (u.enabled !== undefined) upd.enabled = u.enabled ? 1 : 0;
    if (u.default_project_id !== undefined) {
      if (u.default_project_id && !(await db().selectFrom('projects').select('id').where('id', '=', u.default_project_id as string).executeTakeFirst())) {
        throw new NotFound(`Could not find project: ${u.default_project_id}.`);
      }
      upd.default_project_id = (u.default_project_id as string) ?? null;
    }
    if (u.password !== undefined) {
      upd.password_hash = u.password === null ? null : await hashPassword(checkPassword(u.password as string));
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
  } });
  rows.push({ method: 'DELETE', path: '/v3/users/:id', policy: 'identity:delete_user', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { user: { id } } }; }, errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
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
  } });
  rows.push({ method: 'POST', path: '/v3/users/:id/password', body: entityBody('user', KS.password_change), errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    const u = entityOf<{ password: string; original_password: string }>(req, 'user');
    // Keystone lets a user change its own password without a token: the original password is the proof.
    const user = await db().selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!user || !(await verifyPassword(u.original_password, user.password_hash))) {
      throw new Unauthorized('The request you have made requires authentication.');
    }
    // A disabled account cannot re-arm itself (Keystone's UserDisabled, a 401 that names nothing).
    if (!bool(user.enabled)) throw new Unauthorized('The request you have made requires authentication.');
    await db().updateTable('users').set({ password_hash: await hashPassword(checkPassword(u.password)), password_created_at: nowIso() }).where('id', '=', id).execute();
    await revokeUser(id);
    store.touch();
    reply.code(204).send();
  } });
  rows.push({ method: 'GET', path: '/v3/users/:id/groups', response: { 200: R.groups }, policy: 'identity:list_groups_for_user', policyTarget: (req) => { const { id } = req.params as { id: string }; return { user_id: id }; }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    await getUser(id);
    const ids = await store.groupIdsOf(id);
    const rows = ids.length ? await db().selectFrom('groups').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
    return { groups: rows.map((g) => renderGroup(api, g)), links: listLinks(api, req) };
  } });

  // ---- groups ----
  rows.push({ method: 'GET', path: '/v3/groups', response: { 200: R.groups }, policy: 'identity:list_groups', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['name', 'domain_id']);
    let qb = db().selectFrom('groups').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    if (q.domain_id !== undefined) qb = qb.where('domain_id', '=', q.domain_id);
    return { groups: filterInexact(req, ['name', 'domain_id'], (await qb.orderBy('name').execute()).map((g) => renderGroup(api, g))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/groups/:id', response: { 200: R.group }, policy: 'identity:get_group', errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    return { group: renderGroup(api, await getGroup(id)) };
  } });
  rows.push({ method: 'POST', path: '/v3/groups', policy: 'identity:create_group', body: entityBody('group', KS.group_create), response: { 201: R.group }, errors: [409], handler: async (req, reply) => {
    const caller = callerOf(req);
    const g = entityOf(req, 'group');
    const domainId = (g.domain_id as string) ?? caller.projectDomainId ?? caller.domainId ?? 'default';
    if (!(await db().selectFrom('domains').select('id').where('id', '=', domainId).executeTakeFirst())) throw new NotFound(`Could not find domain: ${domainId}.`);
    const row: GroupRow = { id: newId(), name: g.name as string, domain_id: domainId, description: (g.description as string) ?? '', extra: JSON.stringify(extras(g, GROUP_FIELDS)) };
    try {
      await db().insertInto('groups').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store group - Duplicate entry found with name ${row.name}.`);
      throw e;
    }
    reply.code(201);
    return { group: renderGroup(api, row) };
  } });
  rows.push({ method: 'PATCH', path: '/v3/groups/:id', policy: 'identity:update_group', body: entityBody('group', KS.group_update), response: { 200: R.group }, errors: [409], handler: async (req) => {
    const { id } = req.params as { id: string };
    const cur = await getGroup(id);
    const g = entityOf(req, 'group');
    if (g.domain_id !== undefined && g.domain_id !== cur.domain_id) throw new BadRequest('Cannot change Domain ID');
    const upd: Partial<GroupRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(g, GROUP_FIELDS) }) };
    if (g.name !== undefined) upd.name = g.name as string;
    if (g.description !== undefined) upd.description = (g.description as string) ?? '';
    try {
      await db().updateTable('groups').set(upd).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store group - Duplicate entry found with name ${upd.name}.`);
      throw e;
    }
    return { group: renderGroup(api, await getGroup(id)) };
  } });
  rows.push({ method: 'DELETE', path: '/v3/groups/:id', policy: 'identity:delete_group', errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
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
  } });
  rows.push({ method: 'GET', path: '/v3/groups/:id/users', response: { 200: R.users }, policy: 'identity:list_users_in_group', errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    checkQuery(req, ['name', 'domain_id', 'enabled', 'password_expires_at']);
    await getGroup(id);
    const rows = await db().selectFrom('users').innerJoin('user_group_membership as m', 'm.user_id', 'users.id')
      .selectAll('users').where('m.group_id', '=', id).orderBy('users.name').execute();
    return { users: filterInexact(req, ['name', 'domain_id'], rows.map((u) => renderUser(api, u))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'PUT', path: '/v3/groups/:gid/users/:uid', policy: 'identity:add_user_to_group', errors: [409], handler: async (req, reply) => {
    const { gid, uid } = req.params as { gid: string; uid: string };
    await getGroup(gid);
    await getUser(uid);
    try {
      await db().insertInto('user_group_membership').values({ user_id: uid, group_id: gid }).execute();
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
    }
    store.touch();
    reply.code(204).send();
  } });
  for (const method of ['GET', 'HEAD'] as const) {
    rows.push({ method, path: '/v3/groups/:gid/users/:uid', policy: 'identity:check_user_in_group', errors: [], handler: async (req, reply) => {
      const { gid, uid } = req.params as { gid: string; uid: string };
      await getGroup(gid);
      await getUser(uid);
      const m = await db().selectFrom('user_group_membership').select('user_id').where('group_id', '=', gid).where('user_id', '=', uid).executeTakeFirst();
      if (!m) throw new NotFound(`User ${uid} is not a member of group ${gid}.`);
      reply.code(204).send();
    } });
  }
  rows.push({ method: 'DELETE', path: '/v3/groups/:gid/users/:uid', policy: 'identity:remove_user_from_group', errors: [], handler: async (req, reply) => {
    const { gid, uid } = req.params as { gid: string; uid: string };
    await getGroup(gid);
    await getUser(uid);
    const r = await db().deleteFrom('user_group_membership').where('group_id', '=', gid).where('user_id', '=', uid).executeTakeFirst();
    if (!Number(r.numDeletedRows)) throw new NotFound(`User ${uid} is not a member of group ${gid}.`);
    await revokeUser(uid);
    store.touch();
    reply.code(204).send();
  } });
  return rows;
};
