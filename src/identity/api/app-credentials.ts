// Application credentials: a user delegates (some of) its roles on the current project to a
// secret that authenticates without the user's password.
import { randomBytes } from 'node:crypto';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { hashPassword } from '../passwords.ts';
import { bool, newId, nowIso } from '../store/store.ts';
import type { AccessRuleRow, AppCredRow } from '../store/schema.ts';

const renderRule = (r: AccessRuleRow) => ({ id: r.id, service: r.service, path: r.path, method: r.method });
import { refuseRestrictedAppCred, checkQuery, filterInexact, link, listLinks, type IdentityApi } from './context.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { R } from './responses.ts';
import { callerOf, type IdentityRow, type RowModule } from './rows.ts';

/** Keystone echoes expires_at as a naive ISO time with microseconds: 2026-11-24T18:31:53.931806 */
function normaliseExpiry(v: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]00:?00)?$/.exec(v.trim());
  if (!m) return new Date(Date.parse(v)).toISOString().replace(/\.(\d{3})Z$/, '.$1000');
  return `${m[1]}.${(m[2] ?? '').padEnd(6, '0')}`;
}

function render(api: IdentityApi, a: AppCredRow, rules: AccessRuleRow[], secret?: string) {
  const ids: string[] = JSON.parse(a.access_rules);
  const out: Record<string, unknown> = {
    id: a.id, name: a.name, description: a.description || null, expires_at: a.expires_at, project_id: a.project_id, user_id: a.user_id,
    roles: JSON.parse(a.roles), unrestricted: bool(a.unrestricted),
    access_rules: rules.filter((r) => ids.includes(r.id)).map(renderRule),
    links: link(api, `users/${a.user_id}/application_credentials/${a.id}`),
  };
  if (secret !== undefined) out.secret = secret;
  return out;
}

export const appCredentialRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store } = api;
  const db = () => store.db;

  rows.push({ method: 'POST', path: '/v3/users/:uid/application_credentials', policy: 'identity:create_application_credential', policyTarget: (req) => { const { uid } = req.params as { uid: string }; return { user_id: uid }; }, body: entityBody('application_credential', KS.application_credential_create), response: { 201: R.applicationCredentialCreated }, errors: [409], handler: async (req, reply) => {
    const { uid } = req.params as { uid: string };
    const caller = callerOf(req);
    const a = entityOf(req, 'application_credential');
    if (!caller.projectId) throw new Forbidden('Application credentials need a project-scoped token.');
    refuseRestrictedAppCred(caller, 'application credentials');
    // A trust's delegation must not be turned into a credential that outlives it.
    if (caller.trustId || caller.oauthAccessTokenId) throw new Forbidden('Cannot manage application credentials with a token issued via delegation.');
    let expires: string | null = null;
    if (a.expires_at) {
      const t = Date.parse(a.expires_at as string);
      if (Number.isNaN(t)) throw new BadRequest(`Invalid input for field 'expires_at': ${JSON.stringify(a.expires_at)} is not a date-time`);
      if (t <= Date.now()) throw new BadRequest("Invalid input for field 'expires_at': the expiration time is in the past");
      expires = normaliseExpiry(a.expires_at as string);
    }
    const tokenRoles = await store.effectiveRoles(uid, { projectId: caller.projectId });
    let roles = tokenRoles;
    if (a.roles !== undefined) {
      roles = [];
      for (const r of a.roles as { id?: string; name?: string }[]) {
        const match = tokenRoles.find((t) => (r.id !== undefined && t.id === r.id) || (r.name !== undefined && t.name === r.name));
        if (!match) throw new Forbidden(`Cannot delegate role ${JSON.stringify(r.id ?? r.name)}: the user does not have it on the project.`);
        roles.push(match);
      }
    }
    const ruleIds: string[] = [];
    for (const r of (a.access_rules as Record<string, string | undefined>[]) ?? []) {
      if (r.id !== undefined && r.service === undefined) {
        if (!(await db().selectFrom('access_rules').select('id').where('id', '=', r.id).where('user_id', '=', uid).executeTakeFirst())) throw new NotFound(`Could not find Access Rule: ${r.id}.`);
        ruleIds.push(r.id);
        continue;
      }
      // The schema types the fields; a new rule needs all three (Keystone's ApplicationCredentialValidationError).
      for (const f of ['service', 'path', 'method']) if (r[f] === undefined) throw new BadRequest(`Invalid application credential: Access rule requires ${f}.`);
      const key = { user_id: uid, service: r.service as string, path: r.path as string, method: r.method as string };
      let row = await db().selectFrom('access_rules').select('id').where('user_id', '=', uid).where('service', '=', key.service).where('path', '=', key.path).where('method', '=', key.method).executeTakeFirst();
      if (!row) {
        row = { id: newId() };
        try { await db().insertInto('access_rules').values({ id: row.id, ...key }).execute(); } catch (e) { if (!isUniqueViolation(e)) throw e; }
      }
      ruleIds.push(row.id);
    }
    const secret = (a.secret as string) ?? randomBytes(64).toString('base64url');
    const row: AppCredRow = {
      id: newId(), name: a.name as string, user_id: uid, project_id: caller.projectId, secret_hash: await hashPassword(secret),
      description: (a.description as string) ?? '', expires_at: expires, unrestricted: a.unrestricted === true ? 1 : 0,
      roles: JSON.stringify(roles.map((r) => ({ id: r.id, name: r.name, domain_id: r.domain_id || null }))),
      access_rules: JSON.stringify(ruleIds), created_at: nowIso(),
    };
    try {
      await db().insertInto('application_credentials').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store application_credential - Duplicate entry found with name ${row.name}.`);
      throw e;
    }
    reply.code(201);
    return { application_credential: render(api, row, await rulesOf(uid), secret) };
  } });

  rows.push({ method: 'GET', path: '/v3/users/:uid/application_credentials', response: { 200: R.applicationCredentials }, policy: 'identity:list_application_credentials', policyTarget: (req) => { const { uid } = req.params as { uid: string }; const q = checkQuery(req, ['name']); return { user_id: uid }; }, errors: [], handler: async (req) => {
    const { uid } = req.params as { uid: string };
    const q = checkQuery(req, ['name']);
    let qb = db().selectFrom('application_credentials').selectAll().where('user_id', '=', uid);
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    const rules = await rulesOf(uid);
    return { application_credentials: filterInexact(req, ['name'], (await qb.orderBy('name').execute()).map((a) => render(api, a, rules))), links: listLinks(api, req) };
  } });

  async function getOwned(uid: string, id: string) {
    const a = await db().selectFrom('application_credentials').selectAll().where('id', '=', id).where('user_id', '=', uid).executeTakeFirst();
    if (!a) throw new NotFound(`Could not find Application Credential: ${id}.`);
    return a;
  }
  rows.push({ method: 'GET', path: '/v3/users/:uid/application_credentials/:id', response: { 200: R.applicationCredential }, policy: 'identity:get_application_credential', policyTarget: (req) => { const { uid, id } = req.params as { uid: string; id: string }; return { user_id: uid }; }, errors: [], handler: async (req) => {
    const { uid, id } = req.params as { uid: string; id: string };
    return { application_credential: render(api, await getOwned(uid, id), await rulesOf(uid)) };
  } });
  rows.push({ method: 'DELETE', path: '/v3/users/:uid/application_credentials/:id', policy: 'identity:delete_application_credential', policyTarget: (req) => { const { uid, id } = req.params as { uid: string; id: string }; return { user_id: uid }; }, errors: [], handler: async (req, reply) => {
    const { uid, id } = req.params as { uid: string; id: string };
    const caller = callerOf(req);
    refuseRestrictedAppCred(caller, 'application credentials');
    await getOwned(uid, id);
    await db().deleteFrom('application_credentials').where('id', '=', id).execute();
    store.touch();
    api.onRevoke();
    reply.code(204).send();
  } });
  const rulesOf = (uid: string) => db().selectFrom('access_rules').selectAll().where('user_id', '=', uid).execute();
  rows.push({ method: 'GET', path: '/v3/users/:uid/access_rules', policy: 'identity:list_application_credentials', policyTarget: (req) => { const { uid } = req.params as { uid: string }; const q = checkQuery(req, ['service', 'path', 'method']); return { user_id: uid }; }, errors: [], handler: async (req) => {
    const { uid } = req.params as { uid: string };
    const q = checkQuery(req, ['service', 'path', 'method']);
    const rules = (await rulesOf(uid)).filter((r) => (!q.service || r.service === q.service) && (!q.path || r.path === q.path) && (!q.method || r.method === q.method));
    return { access_rules: rules.map(renderRule), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/users/:uid/access_rules/:id', policy: 'identity:get_application_credential', policyTarget: (req) => { const { uid, id } = req.params as { uid: string; id: string }; return { user_id: uid }; }, errors: [], handler: async (req) => {
    const { uid, id } = req.params as { uid: string; id: string };
    const r = (await rulesOf(uid)).find((x) => x.id === id);
    if (!r) throw new NotFound(`Could not find Access Rule: ${id}.`);
    return { access_rule: renderRule(r) };
  } });
  rows.push({ method: 'DELETE', path: '/v3/users/:uid/access_rules/:id', policy: 'identity:delete_application_credential', policyTarget: (req) => { const { uid, id } = req.params as { uid: string; id: string }; return { user_id: uid }; }, errors: [], handler: async (req, reply) => {
    const { uid, id } = req.params as { uid: string; id: string };
    if (!(await rulesOf(uid)).some((x) => x.id === id)) throw new NotFound(`Could not find Access Rule: ${id}.`);
    const creds = await db().selectFrom('application_credentials').select('access_rules').where('user_id', '=', uid).execute();
    if (creds.some((c) => (JSON.parse(c.access_rules) as string[]).includes(id))) throw new Forbidden(`Access rule ${id} is in use by an application credential.`);
    await db().deleteFrom('access_rules').where('id', '=', id).execute();
    reply.code(204).send();
  } });
  return rows;
};
