// Roles, implied roles, grants (user/group on project/domain/system, OS-INHERIT) and the
// /v3/role_assignments report with effective, include_names and include_subtree.
import type { FastifyRequest } from 'fastify';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { newId, parseExtra } from '../store/store.ts';
import type { AssignmentRow, RoleRow } from '../store/schema.ts';
import { subtree } from './auth.ts';
import { authorize, checkQuery, filterInexact, extras, link, listLinks, queryBool, type IdentityApi } from './context.ts';
import { type IdentityRow, type RowModule } from './rows.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { R } from './responses.ts';

const ROLE_FIELDS = ['id', 'name', 'domain_id', 'description', 'options', 'links'];

export function renderRole(api: IdentityApi, r: RoleRow) {
  return { id: r.id, name: r.name, domain_id: r.domain_id || null, description: r.description || null, options: {}, ...parseExtra(r.extra), links: link(api, `roles/${r.id}`) };
}

type ActorKind = 'users' | 'groups';
type TargetKind = 'projects' | 'domains' | 'system';

function assignmentType(actor: ActorKind, target: TargetKind): string {
  return `${actor === 'users' ? 'User' : 'Group'}${target === 'projects' ? 'Project' : target === 'domains' ? 'Domain' : 'System'}`;
}

export const roleAssignmentRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store } = api;
  const db = () => store.db;

  async function getRole(id: string): Promise<RoleRow> {
    const r = await db().selectFrom('roles').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw new NotFound(`Could not find role: ${id}.`);
    return r;
  }

  // ---- roles ----
  rows.push({ method: 'GET', path: '/v3/roles', response: { 200: R.roles }, policy: 'identity:list_roles', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['name', 'domain_id']);
    let qb = db().selectFrom('roles').selectAll().where('domain_id', '=', q.domain_id ?? '');
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    return { roles: filterInexact(req, ['name', 'domain_id'], (await qb.orderBy('name').execute()).map((r) => renderRole(api, r))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/roles/:id', response: { 200: R.role }, policy: 'identity:get_role', errors: [], handler: async (req) => {
    return { role: renderRole(api, await getRole((req.params as { id: string }).id)) };
  } });
  rows.push({ method: 'POST', path: '/v3/roles', policy: 'identity:create_role', body: entityBody('role', KS.role_create), response: { 201: R.role }, errors: [409], handler: async (req, reply) => {
    const r = entityOf(req, 'role');
    // domain_id is no property of role_create: whatever it is, it names a domain or nothing.
    if (r.domain_id != null && (typeof r.domain_id !== 'string' || !(await db().selectFrom('domains').select('id').where('id', '=', r.domain_id).executeTakeFirst()))) {
      throw new NotFound(`Could not find domain: ${r.domain_id}.`);
    }
    const row: RoleRow = { id: newId(), name: r.name as string, domain_id: (r.domain_id as string) ?? '', description: (r.description as string) ?? '', extra: JSON.stringify(extras(r, ROLE_FIELDS)) };
    try {
      await db().insertInto('roles').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store role - Duplicate entry found with name ${row.name}.`);
      throw e;
    }
    store.touch();
    reply.code(201);
    return { role: renderRole(api, row) };
  } });
  rows.push({ method: 'PATCH', path: '/v3/roles/:id', policy: 'identity:update_role', body: entityBody('role', KS.role_update), response: { 200: R.role }, errors: [409], handler: async (req) => {
    const { id } = req.params as { id: string };
    const cur = await getRole(id);
    const r = entityOf(req, 'role');
    if (r.domain_id !== undefined && (r.domain_id ?? '') !== cur.domain_id) throw new BadRequest('Cannot change Domain ID');
    const upd: Partial<RoleRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(r, ROLE_FIELDS) }) };
    if (r.name !== undefined) upd.name = r.name as string;
    if (r.description !== undefined) upd.description = (r.description as string) ?? '';
    try {
      await db().updateTable('roles').set(upd).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store role - Duplicate entry found with name ${upd.name}.`);
      throw e;
    }
    store.touch();
    return { role: renderRole(api, await getRole(id)) };
  } });
  rows.push({ method: 'DELETE', path: '/v3/roles/:id', policy: 'identity:delete_role', errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    await getRole(id);
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('assignments').where('role_id', '=', id).execute();
      await trx.deleteFrom('implied_roles').where((eb) => eb.or([eb('prior_role_id', '=', id), eb('implied_role_id', '=', id)])).execute();
      await trx.deleteFrom('roles').where('id', '=', id).execute();
    });
    store.touch();
    api.onRevoke();
    reply.code(204).send();
  } });

  // ---- implied roles ----
  const ref = (r: RoleRow) => ({ id: r.id, name: r.name, links: link(api, `roles/${r.id}`) });
  rows.push({ method: 'PUT', path: '/v3/roles/:prior/implies/:implied', policy: 'identity:create_implied_role', errors: [409], handler: async (req, reply) => {
    const { prior, implied } = req.params as { prior: string; implied: string };
    const p = await getRole(prior);
    const i = await getRole(implied);
    if (i.domain_id && !p.domain_id) throw new Forbidden(`A global role cannot imply a domain-specific role (${implied}).`);
    // Refuse cycles: the implied role must not (transitively) imply the prior one.
    if ((await store.expandImplied([implied])).includes(prior)) throw new Forbidden(`Creating an implied role ${implied} from ${prior} would create a cycle.`);
    try {
      await db().insertInto('implied_roles').values({ prior_role_id: prior, implied_role_id: implied }).execute();
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
    }
    store.touch();
    reply.code(201);
    return { role_inference: { prior_role: ref(p), implies: ref(i) }, links: link(api, `roles/${prior}/implies/${implied}`) };
  } });
  for (const method of ['GET', 'HEAD'] as const) {
    rows.push({ method, path: '/v3/roles/:prior/implies/:implied', policy: 'identity:get_implied_role', errors: [], handler: async (req, reply) => {
      const { prior, implied } = req.params as { prior: string; implied: string };
      const p = await getRole(prior);
      const i = await getRole(implied);
      const row = await db().selectFrom('implied_roles').selectAll().where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).executeTakeFirst();
      if (!row) throw new NotFound(`Could not find implied role: ${prior} implies ${implied}.`);
      if (method === 'HEAD') return reply.code(204).send();
      return { role_inference: { prior_role: ref(p), implies: ref(i) }, links: link(api, `roles/${prior}/implies/${implied}`) };
    } });
  }
  rows.push({ method: 'DELETE', path: '/v3/roles/:prior/implies/:implied', policy: 'identity:delete_implied_role', errors: [], handler: async (req, reply) => {
    const { prior, implied } = req.params as { prior: string; implied: string };
    await getRole(prior);
    await getRole(implied);
    const r = await db().deleteFrom('implied_roles').where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).executeTakeFirst();
    if (!Number(r.numDeletedRows)) throw new NotFound(`Could not find implied role: ${prior} implies ${implied}.`);
    store.touch();
    api.onRevoke();
    reply.code(204).send();
  } });
  rows.push({ method: 'GET', path: '/v3/roles/:prior/implies', policy: 'identity:list_implied_roles', errors: [], handler: async (req) => {
    const { prior } = req.params as { prior: string };
    const p = await getRole(prior);
    const rows = await db().selectFrom('implied_roles').innerJoin('roles', 'roles.id', 'implied_roles.implied_role_id').selectAll('roles').where('prior_role_id', '=', prior).execute();
    return { role_inference: { prior_role: ref(p), implies: rows.map(ref) }, links: link(api, `roles/${prior}/implies`) };
  } });
  rows.push({ method: 'GET', path: '/v3/role_inferences', policy: 'identity:list_role_inference_rules', errors: [], handler: async (req) => {
    const roles = new Map((await db().selectFrom('roles').selectAll().execute()).map((r) => [r.id, r]));
    const byPrior = new Map<string, RoleRow[]>();
    for (const ir of await db().selectFrom('implied_roles').selectAll().execute()) {
      const i = roles.get(ir.implied_role_id);
      if (!i) continue;
      if (!byPrior.has(ir.prior_role_id)) byPrior.set(ir.prior_role_id, []);
      byPrior.get(ir.prior_role_id)!.push(i);
    }
    return {
      role_inferences: [...byPrior].filter(([p]) => roles.has(p)).map(([p, is]) => ({ prior_role: ref(roles.get(p)!), implies: is.map(ref) })),
      links: listLinks(api, req),
    };
  } });

  // ---- grants ----
  async function checkGrantParts(actor: ActorKind, actorId: string, target: TargetKind, targetId: string, roleId: string, inherited: boolean) {
    const role = await getRole(roleId);
    if (actor === 'users') {
      if (!(await db().selectFrom('users').select('id').where('id', '=', actorId).executeTakeFirst())) throw new NotFound(`Could not find user: ${actorId}.`);
    } else if (!(await db().selectFrom('groups').select('id').where('id', '=', actorId).executeTakeFirst())) throw new NotFound(`Could not find group: ${actorId}.`);
    let targetDomain: string | undefined;
    if (target === 'projects') {
      const p = await db().selectFrom('projects').select(['id', 'domain_id']).where('id', '=', targetId).executeTakeFirst();
      if (!p) throw new NotFound(`Could not find project: ${targetId}.`);
      targetDomain = p.domain_id;
    } else if (target === 'domains') {
      if (!(await db().selectFrom('domains').select('id').where('id', '=', targetId).executeTakeFirst())) throw new NotFound(`Could not find domain: ${targetId}.`);
      targetDomain = targetId;
    } else if (inherited) throw new BadRequest('System role assignments cannot be inherited.');
    // Keystone's rule: a domain-specific role may be granted on any domain, but on a project only
    // of its own domain; never on the system.
    if (role.domain_id && target === 'projects' && role.domain_id !== targetDomain) {
      throw new Forbidden(`Project ${targetId} must be in the same domain as the role ${roleId} being assigned.`);
    }
    if (role.domain_id && target === 'system') {
      throw new BadRequest(`Role ${roleId} is a domain-specific role. Unable to use a domain-specific role in a system assignment.`);
    }
  }

  function grantRoutes(prefix: string, target: TargetKind, actor: ActorKind, inherited: boolean) {
    const targetParam = target === 'system' ? undefined : 'tid';
    const base = target === 'system' ? `${prefix}/system/${actor}/:aid/roles` : `${prefix}/${target}/:tid/${actor}/:aid/roles`;
    const suffix = inherited ? '/inherited_to_projects' : '';
    const parts = (req: FastifyRequest) => {
      const p = req.params as Record<string, string>;
      return { aid: p.aid, tid: targetParam ? p.tid : 'system', rid: p.rid };
    };
    const type = assignmentType(actor, target);
    rows.push({ method: 'PUT', path: `${base}/:rid${suffix}`, policy: 'identity:create_grant', errors: [409], handler: async (req, reply) => {
      const { aid, tid, rid } = parts(req);
      await checkGrantParts(actor, aid, target, tid, rid, inherited);
      try {
        await db().insertInto('assignments').values({ type, actor_id: aid, target_id: tid, role_id: rid, inherited: inherited ? 1 : 0 }).execute();
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
      }
      store.touch();
      reply.code(204).send();
    } });
    for (const method of ['GET', 'HEAD'] as const) {
      rows.push({ method, path: `${base}/:rid${suffix}`, policy: 'identity:check_grant', errors: [], handler: async (req, reply) => {
        const { aid, tid, rid } = parts(req);
        await checkGrantParts(actor, aid, target, tid, rid, inherited);
        const row = await db().selectFrom('assignments').select('role_id').where('type', '=', type).where('actor_id', '=', aid)
          .where('target_id', '=', tid).where('role_id', '=', rid).where('inherited', '=', inherited ? 1 : 0).executeTakeFirst();
        if (!row) throw new NotFound(`Could not find role assignment with role: ${rid}, ${actor === 'users' ? 'user' : 'group'}: ${aid}, ${target === 'projects' ? 'project' : target === 'domains' ? 'domain' : 'system'}: ${tid}.`);
        reply.code(204).send();
      } });
    }
    rows.push({ method: 'DELETE', path: `${base}/:rid${suffix}`, policy: 'identity:revoke_grant', errors: [], handler: async (req, reply) => {
      const { aid, tid, rid } = parts(req);
      await checkGrantParts(actor, aid, target, tid, rid, inherited);
      const r = await db().deleteFrom('assignments').where('type', '=', type).where('actor_id', '=', aid)
        .where('target_id', '=', tid).where('role_id', '=', rid).where('inherited', '=', inherited ? 1 : 0).executeTakeFirst();
      if (!Number(r.numDeletedRows)) throw new NotFound(`Could not find role assignment with role: ${rid}, ${actor === 'users' ? 'user' : 'group'}: ${aid}.`);
      // Tokens that carried this role must stop working: revoke the user's (or the group
      // members') tokens on that scope, as Keystone does.
      const users = actor === 'users' ? [aid] : (await db().selectFrom('user_group_membership').select('user_id').where('group_id', '=', aid).execute()).map((m) => m.user_id);
      for (const u of users) await store.revoke({ userId: u, projectId: target === 'projects' ? tid : undefined, domainId: target === 'domains' ? tid : undefined });
      store.touch();
      api.onRevoke();
      reply.code(204).send();
    } });
    rows.push({ method: 'GET', path: `${base}${suffix}`, policy: 'identity:list_grants', errors: [], handler: async (req) => {
      const p = req.params as Record<string, string>;
      const tid = targetParam ? p.tid : 'system';
      const rows = await db().selectFrom('assignments').innerJoin('roles', 'roles.id', 'assignments.role_id').selectAll('roles')
        .where('type', '=', type).where('actor_id', '=', p.aid).where('target_id', '=', tid).where('inherited', '=', inherited ? 1 : 0).execute();
      return { roles: rows.map((r) => renderRole(api, r)), links: listLinks(api, req) };
    } });
  }
  for (const actor of ['users', 'groups'] as ActorKind[]) {
    for (const target of ['projects', 'domains', 'system'] as TargetKind[]) grantRoutes('/v3', target, actor, false);
    grantRoutes('/v3/OS-INHERIT', 'domains', actor, true);
    grantRoutes('/v3/OS-INHERIT', 'projects', actor, true);
  }

  // ---- role assignment report ----
  rows.push({ method: 'GET', path: '/v3/role_assignments', response: { 200: R.roleAssignments }, errors: [], handler: async (req) => {
    const q = checkQuery(req, ['user.id', 'group.id', 'role.id', 'scope.project.id', 'scope.domain.id', 'scope.system', 'scope.OS-INHERIT:inherited_to', 'effective', 'include_names', 'include_subtree']);
    const effective = q.effective !== undefined && queryBool(q.effective) !== false;
    const includeNames = q.include_names !== undefined && queryBool(q.include_names) !== false;
    const includeSubtree = q.include_subtree !== undefined && queryBool(q.include_subtree) !== false;
    if (q['user.id'] && q['group.id']) throw new BadRequest('Specify a user or group, not both');
    if (effective && q['group.id']) throw new BadRequest('Combining effective and group filter will always result in an empty list.');
    if ([q['scope.project.id'], q['scope.domain.id'], q['scope.system']].filter((x) => x !== undefined).length > 1) throw new BadRequest('Specify one of domain, project or system');
    if (includeSubtree && !q['scope.project.id']) throw new BadRequest('scope.project.id must be specified if include_subtree is also specified');
    await authorize(api, req, includeSubtree ? 'identity:list_role_assignments_for_tree' : 'identity:list_role_assignments', { target: { project: { id: q['scope.project.id'] } } });

    interface Out { type: string; actor: string; target: string; role: string; inherited: boolean; via?: { group?: string; prior?: string } }
    let rows: Out[] = (await db().selectFrom('assignments').selectAll().execute() as AssignmentRow[])
      .map((a) => ({ type: a.type, actor: a.actor_id, target: a.target_id, role: a.role_id, inherited: a.inherited === 1 }));

    if (effective) {
      // Groups → their members; inherited grants → the projects below; implied roles → added.
      const members = new Map<string, string[]>();
      for (const m of await db().selectFrom('user_group_membership').selectAll().execute()) {
        if (!members.has(m.group_id)) members.set(m.group_id, []);
        members.get(m.group_id)!.push(m.user_id);
      }
      const expanded: Out[] = [];
      for (const a of rows) {
        const users = a.type.startsWith('Group') ? (members.get(a.actor) ?? []).map((u) => ({ u, g: a.actor })) : [{ u: a.actor, g: undefined }];
        const kind = a.type.replace(/^(User|Group)/, '');
        const targets: { t: string; kind: string }[] = [];
        if (a.inherited) for (const t of await subtree(store, a.target, kind === 'Domain')) targets.push({ t, kind: 'Project' });
        else targets.push({ t: a.target, kind });
        for (const { u, g } of users) for (const { t, kind: k } of targets) {
          expanded.push({ type: `User${k}`, actor: u, target: t, role: a.role, inherited: false, via: g ? { group: g } : undefined });
        }
      }
      const implied = await store.impliedMap();
      const withImplied: Out[] = [];
      for (const a of expanded) {
        withImplied.push(a);
        const stack = [...(implied.get(a.role) ?? [])];
        const seen = new Set<string>();
        while (stack.length) {
          const r = stack.pop()!;
          if (seen.has(r)) continue;
          seen.add(r);
          withImplied.push({ ...a, role: r, via: { ...a.via, prior: a.role } });
          stack.push(...(implied.get(r) ?? []));
        }
      }
      const seen = new Set<string>();
      const allRoles = await store.allRoles();
      rows = withImplied.filter((a) => {
        if (allRoles.get(a.role)?.domain_id) return false; // domain roles never show as effective
        const k = `${a.type}|${a.actor}|${a.target}|${a.role}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    }

    let projectScope: string[] | undefined;
    if (q['scope.project.id']) projectScope = includeSubtree ? [q['scope.project.id'], ...(await subtree(store, q['scope.project.id'], false))] : [q['scope.project.id']];
    rows = rows.filter((a) => {
      if (q['user.id'] && !(a.type.startsWith('User') && a.actor === q['user.id'])) return false;
      if (q['group.id'] && !(a.type.startsWith('Group') && a.actor === q['group.id'])) return false;
      if (q['role.id'] && a.role !== q['role.id']) return false;
      if (projectScope && !(a.type.endsWith('Project') && projectScope.includes(a.target))) return false;
      if (q['scope.domain.id'] && !(a.type.endsWith('Domain') && a.target === q['scope.domain.id'])) return false;
      if (q['scope.system'] !== undefined && !a.type.endsWith('System')) return false;
      if (q['scope.OS-INHERIT:inherited_to'] !== undefined && !a.inherited) return false;
      return true;
    });

    const names = includeNames ? await nameLookup() : undefined;
    const out = rows.map((a) => {
      const isUser = a.type.startsWith('User');
      const kind = a.type.replace(/^(User|Group)/, '');
      const actorObj: Record<string, unknown> = { id: a.actor };
      const roleObj: Record<string, unknown> = { id: a.role };
      let scope: Record<string, unknown>;
      if (kind === 'System') scope = { system: { all: true } };
      else {
        const t: Record<string, unknown> = { id: a.target };
        if (names) Object.assign(t, names.target(kind, a.target));
        scope = { [kind === 'Project' ? 'project' : 'domain']: t };
      }
      if (a.inherited) scope['OS-INHERIT:inherited_to'] = 'projects';
      if (names) {
        Object.assign(actorObj, names.actor(isUser, a.actor));
        Object.assign(roleObj, names.role(a.role));
      }
      const linkTarget = kind === 'System' ? 'system' : `${kind === 'Project' ? 'projects' : 'domains'}/${a.target}`;
      const links: Record<string, string> = {
        assignment: `${api.publicUrl}/v3/${a.inherited ? 'OS-INHERIT/' : ''}${linkTarget}/${isUser ? 'users' : 'groups'}/${a.actor}/roles/${a.role}${a.inherited ? '/inherited_to_projects' : ''}`,
      };
      if (a.via?.group) links.membership = `${api.publicUrl}/v3/groups/${a.via.group}/users/${a.actor}`;
      if (a.via?.prior) links.prior_role = `${api.publicUrl}/v3/roles/${a.via.prior}`;
      return { role: roleObj, [isUser ? 'user' : 'group']: actorObj, scope, links };
    });
    return { role_assignments: out, links: listLinks(api, req) };
  } });

  async function nameLookup() {
    const domains = new Map((await db().selectFrom('domains').select(['id', 'name']).execute()).map((d) => [d.id, d.name]));
    const projects = new Map((await db().selectFrom('projects').select(['id', 'name', 'domain_id']).execute()).map((p) => [p.id, p]));
    const users = new Map((await db().selectFrom('users').select(['id', 'name', 'domain_id']).execute()).map((u) => [u.id, u]));
    const groups = new Map((await db().selectFrom('groups').select(['id', 'name', 'domain_id']).execute()).map((g) => [g.id, g]));
    const roles = new Map((await db().selectFrom('roles').select(['id', 'name', 'domain_id']).execute()).map((r) => [r.id, r]));
    const dom = (id: string) => ({ id, name: domains.get(id) });
    return {
      actor: (isUser: boolean, id: string) => {
        const a = (isUser ? users : groups).get(id);
        return a ? { name: a.name, domain: dom(a.domain_id) } : {};
      },
      target: (kind: string, id: string) => {
        if (kind === 'Domain') return { name: domains.get(id) };
        const p = projects.get(id);
        return p ? { name: p.name, domain: dom(p.domain_id) } : {};
      },
      role: (id: string) => {
        const r = roles.get(id);
        return r ? { name: r.name, ...(r.domain_id ? { domain: dom(r.domain_id) } : {}) } : {};
      },
    };
  }
  return rows;
};
