// Trusts (OS-TRUST): a trustor delegates some of its roles on a project to a trustee, optionally
// letting the trustee act as the trustor (impersonation), until an expiry or for a number of
// tokens. Tokens scoped to a trust are issued in auth.ts and rebuilt from the trust on every
// validation, so deleting a trust, or the trustor losing a delegated role, ends them at once.
// Redelegation (trusts made from trust tokens) is off, as in Keystone's default configuration.
import type { FastifyRequest } from 'fastify';
import { BadRequest, Forbidden, NotFound } from '../../common/errors.ts';
import { bool, newId, nowIso, parseExtra } from '../store/store.ts';
import type { RoleRow, TrustRow } from '../store/schema.ts';
import { findUsableTrust } from '../tokens/provider.ts';
import { authorize, checkQuery, filterInexact, creds, extras, listLinks, type IdentityApi } from './context.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { R } from './responses.ts';
import { type IdentityRow, type RowModule } from './rows.ts';
import { renderRole } from './roles-assignments.ts';
import { refuseKeyPairTokens } from './credentials.ts';

const FIELDS = [
  'id', 'trustor_user_id', 'trustee_user_id', 'project_id', 'impersonation', 'expires_at', 'remaining_uses', 'roles',
  'allow_redelegation', 'redelegation_count', 'redelegated_trust_id', 'deleted_at', 'links', 'roles_links',
];

const trustUrl = (api: IdentityApi, id: string) => `${api.publicUrl}/v3/OS-TRUST/trusts/${id}`;

/**
 * ISO 8601 date-time; one without a zone is UTC (as Keystone reads it), not local time. Kept in
 * UTC with microseconds and a Z, as Keystone prints a trust's expiry.
 */
export function parseExpiry(v: unknown, field = 'expires_at'): string | null {
  if (v === null || v === undefined) return null;
  const bad = () => new BadRequest(`Invalid input for field '${field}': ${JSON.stringify(v)} is not a valid date-time`);
  if (typeof v !== 'string') throw bad();
  const m = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(Z|[+-]\d\d:?\d\d)?$/i.exec(v.trim());
  if (!m) throw bad();
  const t = Date.parse(`${m[1]}T${m[2]}${m[3] ?? 'Z'}`);
  if (Number.isNaN(t)) throw bad();
  if (t <= Date.now()) throw new BadRequest(`Invalid input for field '${field}': the expiration date is in the past`);
  const micros = (/\.(\d+)/.exec(m[2])?.[1] ?? '').slice(0, 6).padEnd(6, '0');
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, `.${micros}Z`);
}

function summary(api: IdentityApi, t: TrustRow) {
  return {
    id: t.id, trustor_user_id: t.trustor_user_id, trustee_user_id: t.trustee_user_id, project_id: t.project_id,
    impersonation: bool(t.impersonation), expires_at: t.expires_at, remaining_uses: t.remaining_uses,
    allow_redelegation: false, redelegation_count: 0, redelegated_trust_id: null, deleted_at: null,
    ...parseExtra(t.extra), links: { self: trustUrl(api, t.id) },
  };
}

function render(api: IdentityApi, t: TrustRow, roles: RoleRow[]) {
  return {
    ...summary(api, t),
    roles: roles.map((r) => renderRole(api, r)),
    roles_links: { self: `${trustUrl(api, t.id)}/roles`, previous: null, next: null },
  };
}

/** The trust a token acts within, if any. */
export function trustIdOfToken(api: IdentityApi, token: string): string | undefined {
  try { return api.tokens.unpack(token).t; } catch { return undefined; }
}

export const trustRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store } = api;
  const db = () => store.db;
  const rolesOf = async (trustId: string): Promise<RoleRow[]> => {
    const ids = (await db().selectFrom('trust_roles').select('role_id').where('trust_id', '=', trustId).execute()).map((r) => r.role_id);
    return ids.length ? db().selectFrom('roles').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
  };

  /** Loads the trust for a member route: 404 for a missing, expired or used-up one, before policy (as Keystone). */
  async function load(req: FastifyRequest, rule: string): Promise<TrustRow> {
    const { id } = req.params as { id: string };
    const caller = await api.authenticate(req);
    const t = await findUsableTrust(store, id, { requireUses: true });
    if (!t) throw new NotFound(`Could not find trust: ${id}.`);
    api.policy.enforce(rule, creds(caller), { target: { trust: t } });
    return t;
  }

  rows.push({ method: 'POST', path: '/v3/OS-TRUST/trusts', targetPolicy: 'identity:create_trust', body: entityBody('trust', KS.trust_create), response: { 201: R.trust }, errors: [], handler: async (req, reply) => {
    const t = entityOf(req, 'trust');
    const caller = await authorize(api, req, 'identity:create_trust', { trust: t });
    refuseKeyPairTokens(caller.methods);
    if (caller.applicationCredentialId) {
      const ac = await db().selectFrom('application_credentials').select('unrestricted').where('id', '=', caller.applicationCredentialId).executeTakeFirst();
      if (!ac || !bool(ac.unrestricted)) throw new Forbidden("You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing trusts.");
    }
    if (caller.oauthAccessTokenId) throw new Forbidden('You are not authorized to perform the requested action: Cannot create a trust with a token issued via OAuth1 delegation.');
    if (trustIdOfToken(api, caller.token) || t.allow_redelegation === true) throw new Forbidden('You are not authorized to perform the requested action: Redelegation is not enabled.');
    const roleRefs = (t.roles as { id?: string; name?: string }[] | undefined) ?? [];
    if (t.project_id && roleRefs.length === 0) throw new Forbidden('You are not authorized to perform the requested action: At least one role should be specified.');
    if (caller.userId !== t.trustor_user_id) throw new Forbidden('You are not authorized to perform the requested action: The authenticated user should match the trustor.');
    if (!(await db().selectFrom('users').select('id').where('id', '=', t.trustee_user_id as string).executeTakeFirst())) throw new NotFound(`Could not find user: ${t.trustee_user_id}.`);
    const expires = parseExpiry(t.expires_at);
    // Roles by id, or by name among the global roles; each must be the trustor's on the project
    // (directly, inherited, through a group or implied).
    const roleIds: string[] = [];
    for (const r of roleRefs) {
      const row = typeof r.id === 'string'
        ? await db().selectFrom('roles').select('id').where('id', '=', r.id).executeTakeFirst()
        : await db().selectFrom('roles').select('id').where('name', '=', r.name!).where('domain_id', '=', '').executeTakeFirst();
      if (!row) throw new NotFound(`Could not find role: ${r.id ?? r.name}.`);
      if (!roleIds.includes(row.id)) roleIds.push(row.id);
    }
    if (roleIds.length) {
      if (!t.project_id) throw new NotFound(`Could not find role: ${roleIds[0]}.`);
      const project = await db().selectFrom('projects').select('id').where('id', '=', t.project_id as string).executeTakeFirst();
      if (!project) throw new NotFound(`Could not find project: ${t.project_id}.`);
      const held = new Set(await trustorRoleIds(t.trustor_user_id as string, t.project_id as string));
      for (const id of roleIds) if (!held.has(id)) throw new NotFound(`Could not find role: ${id}.`);
    }
    const row: TrustRow = {
      id: newId(), trustor_user_id: t.trustor_user_id as string, trustee_user_id: t.trustee_user_id as string,
      project_id: (t.project_id as string | null) ?? null, impersonation: t.impersonation ? 1 : 0, expires_at: expires,
      remaining_uses: (t.remaining_uses as number | null | undefined) ?? null, extra: JSON.stringify(extras(t, FIELDS)), created_at: nowIso(),
    };
    await db().transaction().execute(async (trx) => {
      await trx.insertInto('trusts').values(row).execute();
      if (roleIds.length) await trx.insertInto('trust_roles').values(roleIds.map((role_id) => ({ trust_id: row.id, role_id }))).execute();
    });
    reply.code(201);
    return { trust: render(api, row, await rolesOf(row.id)) };
  } });

  /** Every role the trustor holds on the project, domain-specific ones included (they may be delegated). */
  async function trustorRoleIds(userId: string, projectId: string): Promise<string[]> {
    const global = (await store.effectiveRoles(userId, { projectId })).map((r) => r.id);
    const actors = [userId, ...(await store.groupIdsOf(userId))];
    const lineage = await store.projectLineage(projectId);
    if (!lineage.length) return global;
    const ancestors = lineage.slice(1).map((p) => p.id);
    const domainId = lineage[0].domain_id;
    const rows = await db().selectFrom('assignments').selectAll()
      .where('actor_id', 'in', actors).where('target_id', 'in', [projectId, domainId, ...ancestors]).execute();
    const direct = rows.filter((a) =>
      (a.type.endsWith('Project') && a.target_id === projectId && a.inherited === 0) ||
      (a.type.endsWith('Project') && ancestors.includes(a.target_id) && a.inherited === 1) ||
      (a.type.endsWith('Domain') && a.target_id === domainId && a.inherited === 1));
    return [...new Set([...global, ...(await store.expandImplied(direct.map((d) => d.role_id)))])];
  }

  rows.push({ method: 'GET', path: '/v3/OS-TRUST/trusts', targetPolicy: 'identity:list_trusts', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['trustor_user_id', 'trustee_user_id']);
    const caller = await api.authenticate(req);
    const c = creds(caller);
    if (q.trustor_user_id !== undefined) api.policy.enforce('identity:list_trusts_for_trustor', c, { target: { trust: { trustor_user_id: q.trustor_user_id } } });
    else if (q.trustee_user_id !== undefined) api.policy.enforce('identity:list_trusts_for_trustee', c, { target: { trust: { trustee_user_id: q.trustee_user_id } } });
    else api.policy.enforce('identity:list_trusts', c);
    let qb = db().selectFrom('trusts').selectAll()
      .where('trustor_user_id', 'in', (eb) => eb.selectFrom('users').select('id'))
      .where('trustee_user_id', 'in', (eb) => eb.selectFrom('users').select('id'));
    if (q.trustor_user_id !== undefined) qb = qb.where('trustor_user_id', '=', q.trustor_user_id);
    if (q.trustee_user_id !== undefined) qb = qb.where('trustee_user_id', '=', q.trustee_user_id);
    const rows = await qb.orderBy('created_at').orderBy('id').execute();
    return { trusts: filterInexact(req, ['trustor_user_id', 'trustee_user_id'], rows.map((t) => summary(api, t))), links: listLinks(api, req) };
  } });

  rows.push({ method: 'GET', path: '/v3/OS-TRUST/trusts/:id', response: { 200: R.trust }, targetPolicy: 'identity:get_trust', errors: [], handler: async (req) => {
    const t = await load(req, 'identity:get_trust');
    return { trust: render(api, t, await rolesOf(t.id)) };
  } });

  rows.push({ method: 'DELETE', path: '/v3/OS-TRUST/trusts/:id', targetPolicy: 'identity:delete_trust', errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    const caller = await api.authenticate(req);
    // Even an expired or used-up trust can be deleted by its trustor.
    const t = await db().selectFrom('trusts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t) throw new NotFound(`Could not find trust: ${id}.`);
    api.policy.enforce('identity:delete_trust', creds(caller), { target: { trust: t } });
    if (caller.applicationCredentialId) {
      const ac = await db().selectFrom('application_credentials').select('unrestricted').where('id', '=', caller.applicationCredentialId).executeTakeFirst();
      if (!ac || !bool(ac.unrestricted)) throw new Forbidden("You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing trusts.");
    }
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('trust_roles').where('trust_id', '=', id).execute();
      await trx.deleteFrom('trusts').where('id', '=', id).execute();
    });
    // Tokens of the trust fail validation from now on; other services drop their cached copies.
    store.touch();
    api.onRevoke();
    reply.code(204).send();
  } });

  rows.push({ method: 'GET', path: '/v3/OS-TRUST/trusts/:id/roles', targetPolicy: 'identity:list_roles_for_trust', errors: [], handler: async (req) => {
    const t = await load(req, 'identity:list_roles_for_trust');
    return { roles: (await rolesOf(t.id)).map((r) => renderRole(api, r)), links: listLinks(api, req) };
  } });

  for (const method of ['GET', 'HEAD'] as const) {
    rows.push({
      method, path: '/v3/OS-TRUST/trusts/:id/roles/:role_id', targetPolicy: 'identity:get_role_for_trust', errors: [],
      handler: async (req, reply) => {
        const t = await load(req, 'identity:get_role_for_trust');
        const { role_id } = req.params as { role_id: string };
        const role = (await rolesOf(t.id)).find((r) => r.id === role_id);
        if (!role) throw new NotFound(`Could not find role: ${role_id}.`);
        if (method === 'HEAD') return reply.code(200).send();
        return { role: renderRole(api, role) };
      },
    });
  }
  return rows;
};
