// /v3/auth/*: issue, validate, check and revoke tokens; what the caller may scope to.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, Forbidden, NotFound, Unauthorized } from '../../common/errors.ts';
import { ACCESS_RULES_HEADER, AUTH_REQUIRED } from '../../common/http/auth.ts';
import { verifyPassword } from '../passwords.ts';
import { bool } from '../store/store.ts';
import type { IdentityStore } from '../store/store.ts';
import { TokenInvalid, delegatedRoles, findUsableTrust, type TokenScope } from '../tokens/provider.ts';
import { creds, link, type IdentityApi } from './context.ts';
import type { IdentityRow, RowModule } from './rows.ts';
import { entityBody, KS, UNVALIDATED } from './validation.ts';
import { R } from './responses.ts';
import { oauthParams, verifyOAuth } from './oauth1-flow.ts';
import type { UserRow } from '../store/schema.ts';

const unauthorized = () => new Unauthorized(AUTH_REQUIRED);
/** keystone.exception.ValidationError's default message. */
const expecting = (attribute: string, target: string) =>
  new BadRequest(`Expecting to find ${attribute} in ${target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.`);

/**
 * What validate_issue_token_auth (keystone/auth/schema.py) checks after the schema: a user,
 * project or domain named by id or name.
 */
function checkIdOrName(auth: Obj): void {
  const need = (ref: unknown, field: string) => {
    const o = obj(ref);
    if (o && !('id' in o) && !('name' in o)) throw new BadRequest(`Invalid input for field ${field}: id or name must be present.`);
  };
  const user = obj(obj(obj(auth.identity)?.password)?.user);
  need(user, 'identity/password/user');
  need(user?.domain, 'identity/password/user/domain');
  const scope = obj(auth.scope);
  need(scope?.project, 'scope/project');
  need(obj(scope?.project)?.domain, 'scope/project/domain');
  need(scope?.domain, 'scope/domain');
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);

async function findDomain(store: IdentityStore, ref: Obj | undefined): Promise<{ id: string; enabled: number } | undefined> {
  if (!ref) return undefined;
  if (typeof ref.id === 'string') return store.db.selectFrom('domains').select(['id', 'enabled']).where('id', '=', ref.id).executeTakeFirst();
  if (typeof ref.name === 'string') return store.db.selectFrom('domains').select(['id', 'enabled']).where('name', '=', ref.name).executeTakeFirst();
  throw new BadRequest('Expecting to find domain id or name in request body.');
}

/** A user named by id, or by name plus domain (id or name). */
async function findUser(store: IdentityStore, u: Obj): Promise<UserRow | undefined> {
  if (typeof u.id === 'string') return store.db.selectFrom('users').selectAll().where('id', '=', u.id).executeTakeFirst();
  if (typeof u.name !== 'string') throw new BadRequest('Expecting to find user id or name in request body.');
  const dom = await findDomain(store, obj(u.domain));
  if (!obj(u.domain)) throw new BadRequest('Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect.');
  if (!dom) return undefined;
  return store.db.selectFrom('users').selectAll().where('domain_id', '=', dom.id).where('name', '=', u.name).executeTakeFirst();
}

async function checkUserUsable(store: IdentityStore, user: UserRow | undefined): Promise<UserRow> {
  if (!user || !bool(user.enabled)) throw unauthorized();
  const dom = await store.db.selectFrom('domains').select('enabled').where('id', '=', user.domain_id).executeTakeFirst();
  if (!dom || !bool(dom.enabled)) throw unauthorized();
  return user;
}

async function resolveScope(api: IdentityApi, scope: unknown, user: UserRow): Promise<TokenScope> {
  const store = api.store;
  if (scope === undefined) {
    // Keystone scopes to the default project when the user has a role there; else unscoped.
    if (user.default_project_id) {
      const roles = await store.effectiveRoles(user.id, { projectId: user.default_project_id });
      const p = await store.db.selectFrom('projects').select('enabled').where('id', '=', user.default_project_id).executeTakeFirst();
      if (roles.length && p && bool(p.enabled)) return { projectId: user.default_project_id };
    }
    return {};
  }
  if (scope === 'unscoped') return {};
  const s = obj(scope);
  if (!s) throw new BadRequest("Invalid input for field 'scope': expected an object or 'unscoped'.");
  let target: TokenScope;
  if (s.project !== undefined) {
    const p = obj(s.project);
    if (!p) throw new BadRequest("Invalid input for field 'scope.project'.");
    let project;
    if (typeof p.id === 'string') project = await store.db.selectFrom('projects').selectAll().where('id', '=', p.id).executeTakeFirst();
    else if (typeof p.name === 'string') {
      if (!obj(p.domain)) throw new BadRequest('Expecting to find domain in project. The server could not comply with the request since it is either malformed or otherwise incorrect.');
      const dom = await findDomain(store, obj(p.domain));
      project = dom && (await store.db.selectFrom('projects').selectAll().where('domain_id', '=', dom.id).where('name', '=', p.name).executeTakeFirst());
    } else throw new BadRequest('Expecting to find project id or name in request body.');
    if (!project) throw unauthorized();
    if (!bool(project.enabled)) throw unauthorized();
    const dom = await store.db.selectFrom('domains').select('enabled').where('id', '=', project.domain_id).executeTakeFirst();
    if (!dom || !bool(dom.enabled)) throw unauthorized();
    target = { projectId: project.id };
  } else if (s.domain !== undefined) {
    const dom = await findDomain(store, obj(s.domain));
    if (!dom || !bool(dom.enabled)) throw unauthorized();
    target = { domainId: dom.id };
  } else if (s.system !== undefined) {
    if (obj(s.system)?.all !== true) throw new BadRequest("Invalid input for field 'scope.system': expected {\"all\": true}.");
    target = { system: true };
  } else throw new BadRequest("Invalid input for field 'scope': expected project, domain or system.");
  const roles = await store.effectiveRoles(user.id, target);
  if (!roles.length) throw unauthorized();
  return target;
}

/** The trust named by `scope: {"OS-TRUST:trust": {"id": …}}`, or undefined for other scopes. */
function trustScopeRef(scope: unknown): Obj | undefined {
  const s = obj(scope);
  if (!s || s['OS-TRUST:trust'] === undefined) return undefined;
  if (Object.keys(s).length > 1) throw new BadRequest("Invalid input for field 'scope': give exactly one of project, domain, system, OS-TRUST:trust or unscoped.");
  const t = obj(s['OS-TRUST:trust']);
  if (!t || typeof t.id !== 'string' || t.id === '') throw new BadRequest('Expecting to find trust_id in trust. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
  return t;
}

/**
 * Scoping to a trust: only its trustee may, the trustor must still be usable and still hold the
 * delegated roles, and each token spends one of the trust's remaining uses. The token acts as the
 * trustor when the trust impersonates, else as the trustee; it never outlives the trust.
 */
export async function scopeToTrust(store: IdentityStore, ref: Obj, user: UserRow): Promise<{ scope: TokenScope; userId: string; trustId: string; expiresAt?: number }> {
  const trust = await findUsableTrust(store, ref.id as string, { requireUses: true });
  if (!trust) throw new NotFound(`Could not find trust: ${ref.id}.`);
  if (trust.trustee_user_id !== user.id) throw new Forbidden('User is not a trustee.');
  const trustor = await store.db.selectFrom('users').selectAll().where('id', '=', trust.trustor_user_id).executeTakeFirst();
  try { await checkUserUsable(store, trustor); } catch { throw new Forbidden('Trustor is disabled.'); }
  const scope: TokenScope = {};
  if (trust.project_id) {
    const project = await store.db.selectFrom('projects').select(['id', 'enabled', 'domain_id']).where('id', '=', trust.project_id).executeTakeFirst();
    if (!project || !bool(project.enabled)) throw unauthorized();
    const dom = await store.db.selectFrom('domains').select('enabled').where('id', '=', project.domain_id).executeTakeFirst();
    if (!dom || !bool(dom.enabled)) throw unauthorized();
    scope.projectId = project.id;
    await delegatedRoles(store, trust);
  }
  if (trust.remaining_uses !== null) {
    const r = await store.db.updateTable('trusts').set((eb) => ({ remaining_uses: eb('remaining_uses', '-', 1) }))
      .where('id', '=', trust.id).where('remaining_uses', '>', 0).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw new Forbidden(`No remaining uses for trust: ${trust.id}.`);
  }
  return {
    scope, trustId: trust.id,
    userId: bool(trust.impersonation) ? trust.trustor_user_id : trust.trustee_user_id,
    expiresAt: trust.expires_at ? Date.parse(trust.expires_at) : undefined,
  };
}

function tokenFromHeader(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export const authRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store, tokens } = api;

  // `auth` itself is optional to the schema: Keystone validates it only when present.
  rows.push({ method: 'POST', path: '/v3/auth/tokens', body: entityBody('auth', KS.token_issue, UNVALIDATED), response: { 201: R.token }, errors: [], handler: async (req, reply) => {
    const auth = obj(obj(req.body)?.auth);
    if (!auth) throw expecting('auth', 'request body');
    checkIdOrName(auth);
    const identity = auth.identity as Obj;
    const methods = identity.methods as string[];
    // AuthInfo._validate_auth_methods: every method named has its payload.
    for (const m of methods) if (!(m in identity)) throw expecting(m, 'identity');
    if (methods.length === 0) throw expecting('methods', 'identity');
    let user: UserRow;
    let scope: TokenScope;
    let parentAudit: string[] | undefined;
    let expiresAt: number | undefined;
    let appCredId: string | undefined;
    let trust: Awaited<ReturnType<typeof scopeToTrust>> | undefined;
    let accessTokenId: string | undefined;
    let outMethods = [...methods] as string[];
    if (methods.includes('application_credential')) {
      const ac = obj(identity.application_credential);
      if (!ac || typeof ac.secret !== 'string') throw new BadRequest("Invalid input for field 'application_credential': 'secret' is a required property");
      let row;
      if (typeof ac.id === 'string') row = await store.db.selectFrom('application_credentials').selectAll().where('id', '=', ac.id).executeTakeFirst();
      else if (typeof ac.name === 'string' && obj(ac.user)) {
        const u = await findUser(store, obj(ac.user)!);
        row = u && (await store.db.selectFrom('application_credentials').selectAll().where('user_id', '=', u.id).where('name', '=', ac.name).executeTakeFirst());
      } else throw new BadRequest('Expecting to find application credential id, or name and user, in request body.');
      if (!row || !(await verifyPassword(ac.secret, row.secret_hash))) throw unauthorized();
      if (row.expires_at && Date.parse(row.expires_at) <= Date.now()) throw unauthorized();
      if (auth.scope !== undefined) throw new Unauthorized('Application credentials cannot request a scope.');
      user = await checkUserUsable(store, await store.db.selectFrom('users').selectAll().where('id', '=', row.user_id).executeTakeFirst());
      scope = { projectId: row.project_id };
      const roles = await store.effectiveRoles(user.id, scope);
      const allowed = new Set(await store.expandImplied((JSON.parse(row.roles) as { id: string }[]).map((r) => r.id)));
      if (!roles.some((r) => allowed.has(r.id))) throw unauthorized();
      appCredId = row.id;
      if (row.expires_at) expiresAt = Date.parse(row.expires_at);
    } else if (methods.includes('oauth1')) {
      // A consumer acting for a user: the access token names user, project and roles.
      const op = oauthParams(req);
      if (!op.oauth_token) throw new BadRequest('Expecting to find oauth_token in request. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
      const at = await store.db.selectFrom('oauth1_access_tokens').selectAll().where('id', '=', op.oauth_token).executeTakeFirst();
      if (!at) throw new NotFound(`Could not find access token: ${op.oauth_token}.`);
      if (at.expires_at && Date.parse(at.expires_at) <= Date.now()) throw new Unauthorized('Access token is expired');
      const consumer = await store.db.selectFrom('oauth1_consumers').select(['id', 'secret']).where('id', '=', at.consumer_id).executeTakeFirst();
      if (!consumer || op.oauth_consumer_key !== consumer.id) throw new Unauthorized('Could not validate the access token');
      verifyOAuth(api, req, op, ['oauth_token'], consumer.secret, at.access_secret, 'Could not validate the access token');
      user = await checkUserUsable(store, await store.db.selectFrom('users').selectAll().where('id', '=', at.authorizing_user_id).executeTakeFirst());
      scope = { projectId: at.project_id };
      const project = await store.db.selectFrom('projects').select(['enabled', 'domain_id']).where('id', '=', at.project_id).executeTakeFirst();
      if (!project || !bool(project.enabled)) throw unauthorized();
      const delegated = new Set(await store.expandImplied(JSON.parse(at.role_ids) as string[]));
      if (!(await store.effectiveRoles(user.id, scope)).some((r) => delegated.has(r.id))) throw unauthorized();
      accessTokenId = at.id;
      if (at.expires_at) expiresAt = Date.parse(at.expires_at);
      outMethods = ['oauth1'];
    } else if (methods.includes('password')) {
      const pw = obj(identity.password);
      const u = obj(pw?.user);
      if (!u) throw expecting('user', 'password');
      // The schema types it; Keystone lets a missing one fail as a wrong password would.
      if (typeof u.password !== 'string') throw unauthorized();
      const found = await findUser(store, u);
      // Always run the KDF so a wrong user name costs as much time as a wrong password.
      const ok = await verifyPassword(u.password, found?.password_hash);
      if (!ok) throw unauthorized();
      user = await checkUserUsable(store, found);
      const trustRef = trustScopeRef(auth.scope);
      if (trustRef) trust = await scopeToTrust(store, trustRef, user);
      scope = trust ? trust.scope : await resolveScope(api, auth.scope, user);
    } else if (methods.includes('token')) {
      const t = obj(identity.token);
      if (!t) throw expecting('token', 'identity');
      const tokenId = t.id as string;
      let p;
      try {
        p = tokens.unpack(tokenId);
        await tokens.validate(tokenId);
      } catch (e) {
        if (e instanceof TokenInvalid) throw unauthorized();
        throw e;
      }
      if (p.ac) throw new Forbidden('Application credential tokens cannot be rescoped.');
      if (p.o) throw new Forbidden('You are not authorized to perform the requested action: Cannot rescope an OAuth1 token.');
      if (p.t) throw new Forbidden('You are not authorized to perform the requested action: Using trust-scoped token to create another token. Create a new trust-scoped token instead.');
      user = await checkUserUsable(store, await store.db.selectFrom('users').selectAll().where('id', '=', p.u).executeTakeFirst());
      const trustRef = trustScopeRef(auth.scope);
      if (trustRef) trust = await scopeToTrust(store, trustRef, user);
      scope = trust ? trust.scope : await resolveScope(api, auth.scope ?? (p.p ? { project: { id: p.p } } : p.d ? { domain: { id: p.d } } : p.s ? { system: { all: true } } : undefined), user);
      parentAudit = p.a;
      expiresAt = p.e;
      outMethods = ['token', ...p.m.filter((m) => m !== 'token')];
    } else {
      throw new Unauthorized(`Attempted to authenticate with an unsupported method: ${methods.join(', ')}.`);
    }
    if (trust?.expiresAt !== undefined) expiresAt = Math.min(expiresAt ?? Infinity, trust.expiresAt);
    const issued = tokens.issue({ userId: trust?.userId ?? user.id, methods: outMethods, scope, parentAuditIds: parentAudit, expiresAt, appCredId, trustId: trust?.trustId, trusteeId: user.id, accessTokenId });
    const nocatalog = (req.query as Obj)?.nocatalog !== undefined;
    const { body } = await tokens.validate(issued.id, { catalog: !nocatalog });
    if (!nocatalog && !body.catalog && (body.project || body.domain || body.system)) body.catalog = [];
    reply.code(201).header('x-subject-token', issued.id).header('vary', 'X-Auth-Token');
    return { token: body };
  } });

  async function subject(req: FastifyRequest, validating = true) {
    const caller = await api.authenticate(req);
    const token = tokenFromHeader(req, 'x-subject-token');
    if (!token) throw new BadRequest('Expecting to find X-Subject-Token in request headers.');
    const q = (req.query ?? {}) as Obj;
    let validated;
    try {
      validated = await tokens.validate(token, { catalog: q.nocatalog === undefined });
    } catch (e) {
      if (e instanceof TokenInvalid) {
        // Keystone checks policy before it knows whether the subject exists, for non-admins.
        api.policy.enforce('identity:validate_token', creds(caller), { target: { token: { user_id: caller.userId } } });
        throw new NotFound(`Could not find token: ${token.slice(0, 16)}…`);
      }
      throw e;
    }
    // A middleware that does not say it enforces access rules must not be handed a token that
    // has some: it would let the token do anything (Keystone's _validate_token_access_rules).
    const support = Number.parseFloat(tokenFromHeader(req, ACCESS_RULES_HEADER) ?? '');
    if (validating && validated.body.application_credential?.access_rules && !(support >= 1.0)) {
      api.policy.enforce('identity:validate_token', creds(caller), { target: { token: { user_id: caller.userId } } });
      throw new NotFound('Failed to validate token');
    }
    return { caller, token, validated };
  }

  rows.push({ method: 'GET', path: '/v3/auth/tokens', response: { 200: R.token }, errors: [], handler: async (req, reply) => {
    const { caller, token, validated } = await subject(req);
    api.policy.enforce('identity:validate_token', creds(caller), { target: { token: { user_id: validated.body.user.id } } });
    reply.header('x-subject-token', token).header('vary', 'X-Auth-Token');
    const body = { ...validated.body };
    if ((req.query as Obj)?.nocatalog === undefined && (body.project || body.domain || body.system) && !body.catalog) body.catalog = [];
    return { token: body };
  } });

  rows.push({ method: 'HEAD', path: '/v3/auth/tokens', errors: [], handler: async (req, reply) => {
    const { caller, token, validated } = await subject(req);
    api.policy.enforce('identity:check_token', creds(caller), { target: { token: { user_id: validated.body.user.id } } });
    reply.header('x-subject-token', token).code(200).send();
  } });

  rows.push({ method: 'DELETE', path: '/v3/auth/tokens', errors: [], handler: async (req, reply) => {
    const { caller, validated } = await subject(req, false);
    api.policy.enforce('identity:revoke_token', creds(caller), { target: { token: { user_id: validated.body.user.id } } });
    await store.revoke({ auditId: validated.payload.a[0], expiresAt: new Date(validated.payload.e).toISOString() });
    api.onRevoke();
    reply.code(204).send();
  } });

  rows.push({ method: 'GET', path: '/v3/auth/catalog', response: { 200: R.catalog }, errors: [], handler: async (req, reply: FastifyReply) => {
    const caller = await api.authenticate(req);
    if (!caller.projectId && !caller.domainId && !caller.system) throw new Forbidden('The authenticated token is not scoped; no catalog is available.');
    return { catalog: await store.catalog(), links: { self: `${api.publicUrl}/v3/auth/catalog`, previous: null, next: null } };
  } });

  rows.push({ method: 'GET', path: '/v3/auth/projects', response: { 200: R.authProjects }, errors: [], handler: async (req) => {
    const caller = await api.authenticate(req);
    const ids = await projectsWithRoles(store, caller.userId);
    const rows = ids.length ? await store.db.selectFrom('projects').selectAll().where('id', 'in', ids).where('enabled', '=', 1).execute() : [];
    return {
      projects: rows.map((p) => ({ id: p.id, name: p.name, domain_id: p.domain_id, description: p.description, enabled: true, parent_id: p.parent_id ?? p.domain_id, is_domain: false, links: link(api, `projects/${p.id}`) })),
      links: { self: `${api.publicUrl}/v3/auth/projects`, previous: null, next: null },
    };
  } });

  rows.push({ method: 'GET', path: '/v3/auth/domains', response: { 200: R.authDomains }, errors: [], handler: async (req) => {
    const caller = await api.authenticate(req);
    const actors = [caller.userId, ...(await store.groupIdsOf(caller.userId))];
    const rows = await store.db.selectFrom('assignments').select('target_id').distinct()
      .where('type', 'in', ['UserDomain', 'GroupDomain']).where('actor_id', 'in', actors).where('inherited', '=', 0).execute();
    const ids = rows.map((r) => r.target_id);
    const doms = ids.length ? await store.db.selectFrom('domains').selectAll().where('id', 'in', ids).where('enabled', '=', 1).execute() : [];
    return {
      domains: doms.map((d) => ({ id: d.id, name: d.name, description: d.description, enabled: true, links: link(api, `domains/${d.id}`) })),
      links: { self: `${api.publicUrl}/v3/auth/domains`, previous: null, next: null },
    };
  } });

  rows.push({ method: 'GET', path: '/v3/auth/system', errors: [], handler: async (req) => {
    const caller = await api.authenticate(req);
    const roles = await store.effectiveRoles(caller.userId, { system: true });
    return { system: roles.length ? [{ all: true }] : [], links: { self: `${api.publicUrl}/v3/auth/system`, previous: null, next: null } };
  } });

  // Kept for clients that still look for it; the answer is the same as /v3/auth/projects.
  rows.push({ method: 'GET', path: '/v3/users/:user_id/projects', policy: 'identity:list_user_projects', policyTarget: (req) => { const { user_id } = req.params as { user_id: string }; return { target: { user: { id: user_id } } }; }, errors: [], handler: async (req) => {
    const { user_id } = req.params as { user_id: string };
    const user = await store.db.selectFrom('users').select('id').where('id', '=', user_id).executeTakeFirst();
    if (!user) throw new NotFound(`Could not find user: ${user_id}.`);
    const ids = await projectsWithRoles(store, user_id);
    const rows = ids.length ? await store.db.selectFrom('projects').selectAll().where('id', 'in', ids).execute() : [];
    return {
      projects: rows.map((p) => ({ id: p.id, name: p.name, domain_id: p.domain_id, description: p.description, enabled: bool(p.enabled), parent_id: p.parent_id ?? p.domain_id, is_domain: false, tags: [], options: {}, links: link(api, `projects/${p.id}`) })),
      links: { self: `${api.publicUrl}/v3/users/${user_id}/projects`, previous: null, next: null },
    };
  } });
  return rows;
};

/** Projects on which the user (directly, via groups, or by inheritance) has any role. */
export async function projectsWithRoles(store: IdentityStore, userId: string): Promise<string[]> {
  const actors = [userId, ...(await store.groupIdsOf(userId))];
  const rows = await store.db.selectFrom('assignments').selectAll().where('actor_id', 'in', actors).execute();
  const ids = new Set<string>();
  for (const a of rows) {
    if ((a.type === 'UserProject' || a.type === 'GroupProject') && a.inherited === 0) ids.add(a.target_id);
    if (a.inherited === 1) {
      // Inherited grants reach every project below the target (domain or project).
      const below = await subtree(store, a.target_id, a.type.endsWith('Domain'));
      for (const id of below) ids.add(id);
    }
  }
  return [...ids];
}

/** Ids of the projects under a domain (all of them) or under a project (descendants). */
export async function subtree(store: IdentityStore, rootId: string, isDomain: boolean): Promise<string[]> {
  if (isDomain) return (await store.db.selectFrom('projects').select('id').where('domain_id', '=', rootId).execute()).map((r) => r.id);
  const out: string[] = [];
  let frontier = [rootId];
  while (frontier.length && out.length < 10_000) {
    const kids = await store.db.selectFrom('projects').select('id').where('parent_id', 'in', frontier).execute();
    frontier = kids.map((k) => k.id);
    out.push(...frontier);
  }
  return out;
}
