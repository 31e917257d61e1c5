// Domains and projects (with tags and hierarchy).
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { bool, newId, nowIso, parseExtra } from '../store/store.ts';
import type { DomainRow, ProjectRow } from '../store/schema.ts';
import { checkQuery, filterInexact, extras, link, listLinks, queryBool, type IdentityApi } from './context.ts';
import { callerOf, type IdentityRow, type RowModule } from './rows.ts';
import { entityBody, entityOf, KS, lazyValidate } from './validation.ts';
import { R } from './responses.ts';

const DOMAIN_FIELDS = ['id', 'name', 'description', 'enabled', 'tags', 'options', 'links', 'explicit_domain_id'];
const PROJECT_FIELDS = ['id', 'name', 'description', 'enabled', 'domain_id', 'parent_id', 'is_domain', 'tags', 'options', 'links'];

export function renderDomain(api: IdentityApi, d: DomainRow) {
  return { id: d.id, name: d.name, description: d.description, enabled: bool(d.enabled), tags: [], options: {}, ...parseExtra(d.extra), links: link(api, `domains/${d.id}`) };
}

export function renderProject(api: IdentityApi, p: ProjectRow, tags: string[]) {
  return {
    id: p.id, name: p.name, domain_id: p.domain_id, description: p.description, enabled: bool(p.enabled),
    parent_id: p.parent_id ?? p.domain_id, is_domain: false, tags, options: {}, ...parseExtra(p.extra),
    links: link(api, `projects/${p.id}`),
  };
}


export const domainProjectRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store } = api;
  const db = () => store.db;

  async function getDomain(id: string): Promise<DomainRow> {
    const d = await db().selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
    if (!d) throw new NotFound(`Could not find domain: ${id}.`);
    return d;
  }
  async function getProject(id: string): Promise<ProjectRow> {
    const p = await db().selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p) throw new NotFound(`Could not find project: ${id}.`);
    return p;
  }
  async function tagsOf(ids: string[]): Promise<Map<string, string[]>> {
    const m = new Map<string, string[]>(ids.map((i) => [i, []]));
    if (!ids.length) return m;
    for (const t of await db().selectFrom('project_tags').selectAll().where('project_id', 'in', ids).execute()) m.get(t.project_id)?.push(t.name);
    return m;
  }
  async function setTags(projectId: string, tags: string[]) {
    await db().deleteFrom('project_tags').where('project_id', '=', projectId).execute();
    if (tags.length) await db().insertInto('project_tags').values(tags.map((name) => ({ project_id: projectId, name }))).execute();
  }

  // ---- domains ----
  rows.push({ method: 'GET', path: '/v3/domains', response: { 200: R.domains }, policy: 'identity:list_domains', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['name', 'enabled']);
    let qb = db().selectFrom('domains').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    const en = queryBool(q.enabled);
    if (en !== undefined) qb = qb.where('enabled', '=', en ? 1 : 0);
    const rows = await qb.orderBy('name').execute();
    return { domains: filterInexact(req, ['name'], rows.map((d) => renderDomain(api, d))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/domains/:id', response: { 200: R.domain }, policy: 'identity:get_domain', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { domain: { id } } }; }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    return { domain: renderDomain(api, await getDomain(id)) };
  } });
  rows.push({ method: 'POST', path: '/v3/domains', policy: 'identity:create_domain', body: entityBody('domain', KS.domain_create), response: { 201: R.domain }, errors: [409], handler: async (req, reply) => {
    const d = entityOf(req, 'domain');
    const explicitId = d.explicit_domain_id;
    // No schema covers it: Keystone's _validate_id_format wants uuid.UUID(id).hex, 32 lowercase hex digits (DomainIdInvalid).
    if (explicitId != null && (typeof explicitId !== 'string' || !/^[0-9a-f]{32}$/.test(explicitId))) {
      throw new BadRequest('Domain ID does not conform to required UUID format.');
    }
    const row: DomainRow = {
      id: (explicitId as string | null | undefined) ?? newId(), name: d.name as string, description: (d.description as string) ?? '',
      enabled: d.enabled === false ? 0 : 1, extra: JSON.stringify(extras(d, DOMAIN_FIELDS)), created_at: nowIso(),
    };
    try {
      await db().insertInto('domains').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store domain - Duplicate entry found with name ${row.name}.`);
      throw e;
    }
    store.touch();
    reply.code(201);
    return { domain: renderDomain(api, row) };
  } });
  async function updateDomain(id: string, d: Record<string, unknown>): Promise<DomainRow> {
    const cur = await getDomain(id);
    if (d.id !== undefined && d.id !== id) throw new BadRequest('Cannot change domain ID');
    const upd: Partial<DomainRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(d, [...DOMAIN_FIELDS, ...PROJECT_FIELDS]) }) };
    if (d.name !== undefined) upd.name = d.name as string;
    if (d.description !== undefined) upd.description = (d.description as string) ?? '';
    if (d.enabled !== undefined) upd.enabled = d.enabled ? 1 : 0;
    try {
      await db().updateTable('domains').set(upd).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store domain - Duplicate entry found with name ${upd.name}.`);
      throw e;
    }
    if (d.enabled === false && bool(cur.enabled)) { await store.revoke({ domainId: id }); api.onRevoke(); }
    store.touch();
    return getDomain(id);
  }
  rows.push({ method: 'PATCH', path: '/v3/domains/:id', policy: 'identity:update_domain', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { domain: { id } } }; }, body: entityBody('domain', KS.domain_update), response: { 200: R.domain }, errors: [409], handler: async (req) => {
    const { id } = req.params as { id: string };
    return { domain: renderDomain(api, await updateDomain(id, entityOf(req, 'domain'))) };
  } });
  async function deleteDomain(id: string): Promise<void> {
    const d = await getDomain(id);
    if (bool(d.enabled)) throw new Forbidden('Cannot delete a domain that is enabled, please disable it first.');
    await db().transaction().execute(async (trx) => {
      const projects = (await trx.selectFrom('projects').select('id').where('domain_id', '=', id).execute()).map((p) => p.id);
      const users = (await trx.selectFrom('users').select('id').where('domain_id', '=', id).execute()).map((u) => u.id);
      const groups = (await trx.selectFrom('groups').select('id').where('domain_id', '=', id).execute()).map((g) => g.id);
      const targets = [id, ...projects];
      await trx.deleteFrom('assignments').where('target_id', 'in', targets).execute();
      if (users.length || groups.length) await trx.deleteFrom('assignments').where('actor_id', 'in', [...users, ...groups]).execute();
      if (projects.length) await trx.deleteFrom('project_tags').where('project_id', 'in', projects).execute();
      if (users.length) await trx.deleteFrom('user_group_membership').where('user_id', 'in', users).execute();
      if (groups.length) await trx.deleteFrom('user_group_membership').where('group_id', 'in', groups).execute();
      if (users.length) await trx.deleteFrom('application_credentials').where('user_id', 'in', users).execute();
      if (users.length) await trx.deleteFrom('access_rules').where('user_id', 'in', users).execute();
      await trx.deleteFrom('projects').where('domain_id', '=', id).execute();
      await trx.deleteFrom('users').where('domain_id', '=', id).execute();
      await trx.deleteFrom('groups').where('domain_id', '=', id).execute();
      await trx.deleteFrom('roles').where('domain_id', '=', id).execute();
      await trx.deleteFrom('domains').where('id', '=', id).execute();
    });
    store.touch();
  }
  rows.push({ method: 'DELETE', path: '/v3/domains/:id', policy: 'identity:delete_domain', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { domain: { id } } }; }, errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    await deleteDomain(id);
    reply.code(204).send();
  } });

  /** A domain seen through the projects API (Keystone models domains as projects). */
  const domainAsProject = (d: DomainRow) => ({ ...renderDomain(api, d), domain_id: null, parent_id: null, is_domain: true, links: link(api, `projects/${d.id}`) });
  async function findDomain(id: string): Promise<DomainRow | undefined> {
    return db().selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
  }

  // ---- projects ----
  rows.push({ method: 'GET', path: '/v3/projects', response: { 200: R.projects }, policy: 'identity:list_projects', policyTarget: (req) => { const q = checkQuery(req, ['name', 'domain_id', 'enabled', 'parent_id', 'is_domain', 'tags', 'tags-any', 'not-tags', 'not-tags-any']); return { target: { domain_id: q.domain_id } }; }, errors: [], handler: async (req) => {
    const q = checkQuery(req, ['name', 'domain_id', 'enabled', 'parent_id', 'is_domain', 'tags', 'tags-any', 'not-tags', 'not-tags-any']);
    const caller = callerOf(req);
    if (queryBool(q.is_domain) === true) {
      const doms = await db().selectFrom('domains').selectAll().execute();
      return { projects: filterInexact(req, ['name', 'domain_id', 'parent_id'], doms.map(domainAsProject)), links: listLinks(api, req) };
    }
    let qb = db().selectFrom('projects').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    if (q.domain_id !== undefined) qb = qb.where('domain_id', '=', q.domain_id);
    if (q.parent_id !== undefined) {
      const isDomain = await db().selectFrom('domains').select('id').where('id', '=', q.parent_id).executeTakeFirst();
      qb = isDomain ? qb.where('domain_id', '=', q.parent_id).where('parent_id', 'is', null) : qb.where('parent_id', '=', q.parent_id);
    }
    const en = queryBool(q.enabled);
    if (en !== undefined) qb = qb.where('enabled', '=', en ? 1 : 0);
    let rows = await qb.orderBy('name').execute();
    const tags = await tagsOf(rows.map((r) => r.id));
    const split = (s?: string) => (s === undefined ? undefined : s.split(',').filter(Boolean));
    const all = split(q.tags), any = split(q['tags-any']), notAll = split(q['not-tags']), notAny = split(q['not-tags-any']);
    rows = rows.filter((r) => {
      const t = tags.get(r.id) ?? [];
      if (all && !all.every((x) => t.includes(x))) return false;
      if (any && !any.some((x) => t.includes(x))) return false;
      if (notAll && notAll.every((x) => t.includes(x))) return false;
      if (notAny && notAny.some((x) => t.includes(x))) return false;
      return true;
    });
    void caller;
    return { projects: filterInexact(req, ['name', 'domain_id', 'parent_id'], rows.map((p) => renderProject(api, p, tags.get(p.id) ?? []))), links: listLinks(api, req) };
  } });

  rows.push({ method: 'GET', path: '/v3/projects/:id', response: { 200: R.project }, policy: 'identity:get_project', policyTarget: (req) => { const { id } = req.params as { id: string }; const q = checkQuery(req, ['parents_as_list', 'subtree_as_list', 'parents_as_ids', 'subtree_as_ids', 'include_limits']); return { target: { project: { id } } }; }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    const q = checkQuery(req, ['parents_as_list', 'subtree_as_list', 'parents_as_ids', 'subtree_as_ids', 'include_limits']);
    const dom = await findDomain(id);
    if (dom) return { project: domainAsProject(dom) };
    const p = await getProject(id);
    const out: Record<string, unknown> = renderProject(api, p, (await tagsOf([id])).get(id)!);
    if (q.parents_as_list !== undefined) {
      const lineage = (await store.projectLineage(id)).slice(1);
      const t = await tagsOf(lineage.map((x) => x.id));
      out.parents = lineage.map((x) => ({ project: renderProject(api, x, t.get(x.id)!) }));
    }
    if (q.subtree_as_list !== undefined) {
      const kids = await descendants(id);
      const t = await tagsOf(kids.map((x) => x.id));
      out.subtree = kids.map((x) => ({ project: renderProject(api, x, t.get(x.id)!) }));
    }
    if (q.parents_as_ids !== undefined) {
      const lineage = (await store.projectLineage(id)).slice(1);
      let nested: Record<string, unknown> | null = null;
      for (const x of [...lineage].reverse()) nested = { [x.id]: nested };
      out.parents = nested;
    }
    if (q.subtree_as_ids !== undefined) {
      const build = async (pid: string): Promise<Record<string, unknown> | null> => {
        const kids = await db().selectFrom('projects').select('id').where('parent_id', '=', pid).execute();
        if (!kids.length) return null;
        const o: Record<string, unknown> = {};
        for (const k of kids) o[k.id] = await build(k.id);
        return o;
      };
      out.subtree = await build(id);
    }
    return { project: out };
  } });

  async function descendants(id: string): Promise<ProjectRow[]> {
    const out: ProjectRow[] = [];
    let frontier = [id];
    while (frontier.length) {
      const kids = await db().selectFrom('projects').selectAll().where('parent_id', 'in', frontier).execute();
      out.push(...kids);
      frontier = kids.map((k) => k.id);
    }
    return out;
  }

  rows.push({ method: 'POST', path: '/v3/projects', policy: 'identity:create_project', body: entityBody('project', KS.project_create), response: { 201: R.project }, errors: [409], handler: async (req, reply) => {
    const caller = callerOf(req);
    const p = entityOf(req, 'project');
    const name = p.name as string;
    if (p.is_domain === true) {
      // A project acting as a domain is a domain; Keystone shows it in both shapes.
      if (p.parent_id || p.domain_id) throw new BadRequest('A project acting as a domain cannot have a parent or a domain.');
      const row: DomainRow = { id: newId(), name, description: (p.description as string) ?? '', enabled: p.enabled === false ? 0 : 1, extra: '{}', created_at: nowIso() };
      try {
        await db().insertInto('domains').values(row).execute();
      } catch (e) {
        if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store project - Duplicate entry found with name ${name}.`);
        throw e;
      }
      store.touch();
      reply.code(201);
      return { project: domainAsProject(row) };
    }
    let domainId = (p.domain_id as string | null | undefined) ?? undefined;
    let parentId: string | null = null;
    if (p.parent_id) {
      const parentDomain = await db().selectFrom('domains').select('id').where('id', '=', p.parent_id as string).executeTakeFirst();
      if (parentDomain) domainId ??= parentDomain.id;
      else {
        const parent = await db().selectFrom('projects').selectAll().where('id', '=', p.parent_id as string).executeTakeFirst();
        if (!parent) throw new NotFound(`Could not find project: ${p.parent_id}.`);
        if (domainId && domainId !== parent.domain_id) throw new BadRequest('Cannot create project, the parent is in a different domain.');
        domainId = parent.domain_id;
        parentId = parent.id;
        if ((await store.projectLineage(parent.id)).length >= 10) throw new Forbidden('Max hierarchy depth reached for project.');
      }
    }
    domainId ??= caller.projectDomainId ?? caller.domainId ?? 'default';
    const dom = await db().selectFrom('domains').select('id').where('id', '=', domainId).executeTakeFirst();
    if (!dom) throw new NotFound(`Could not find domain: ${domainId}.`);
    const tags = (p.tags as string[] | undefined) ?? [];
    const row: ProjectRow = {
      id: newId(), name, domain_id: domainId, parent_id: parentId, description: (p.description as string) ?? '',
      enabled: p.enabled === false ? 0 : 1, extra: JSON.stringify(extras(p, PROJECT_FIELDS)), created_at: nowIso(),
    };
    try {
      await db().insertInto('projects').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${name}.`);
      throw e;
    }
    await setTags(row.id, tags);
    store.touch();
    reply.code(201);
    return { project: renderProject(api, row, tags) };
  } });

  rows.push({ method: 'PATCH', path: '/v3/projects/:id', policy: 'identity:update_project', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { project: { id } } }; }, body: entityBody('project', KS.project_update), response: { 200: R.project }, errors: [409], handler: async (req) => {
    const { id } = req.params as { id: string };
    const p = entityOf(req, 'project');
    if (await findDomain(id)) return { project: domainAsProject(await updateDomain(id, { ...p, is_domain: undefined, domain_id: undefined, parent_id: undefined })) };
    const cur = await getProject(id);
    if (p.domain_id !== undefined && p.domain_id !== cur.domain_id) throw new BadRequest('Cannot change Domain ID');
    if (p.parent_id !== undefined && p.parent_id !== (cur.parent_id ?? cur.domain_id)) throw new Forbidden('Update of `parent_id` is not allowed.');
    if (p.is_domain !== undefined && p.is_domain !== false) throw new BadRequest('Update of `is_domain` is not allowed.');
    if (p.id !== undefined && p.id !== id) throw new BadRequest('Cannot change project ID');
    const upd: Partial<ProjectRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(p, PROJECT_FIELDS) }) };
    if (p.name !== undefined) upd.name = p.name as string;
    if (p.description !== undefined) upd.description = (p.description as string) ?? '';
    if (p.enabled !== undefined) {
      if (p.enabled === false) {
        const kids = await db().selectFrom('projects').select('id').where('parent_id', '=', id).where('enabled', '=', 1).executeTakeFirst();
        if (kids) throw new Forbidden(`Cannot disable project ${id} since its subtree contains enabled projects.`);
      } else {
        const parent = cur.parent_id ? await getProject(cur.parent_id) : undefined;
        if (parent && !bool(parent.enabled)) throw new Forbidden(`Cannot enable project ${id} since it has disabled parents.`);
      }
      upd.enabled = p.enabled ? 1 : 0;
    }
    try {
      await db().updateTable('projects').set(upd).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${upd.name}.`);
      throw e;
    }
    if (p.tags !== undefined) await setTags(id, p.tags as string[]);
    if (p.enabled === false && bool(cur.enabled)) { await store.revoke({ projectId: id }); api.onRevoke(); }
    store.touch();
    return { project: renderProject(api, await getProject(id), (await tagsOf([id])).get(id)!) };
  } });

  rows.push({ method: 'DELETE', path: '/v3/projects/:id', policy: 'identity:delete_project', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { project: { id } } }; }, errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    if (await findDomain(id)) {
      await deleteDomain(id);
      return reply.code(204).send();
    }
    await getProject(id);
    const kid = await db().selectFrom('projects').select('id').where('parent_id', '=', id).executeTakeFirst();
    if (kid) throw new Forbidden(`Cannot delete the project ${id} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree.`);
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('assignments').where('target_id', '=', id).execute();
      await trx.deleteFrom('project_tags').where('project_id', '=', id).execute();
      await trx.updateTable('users').set({ default_project_id: null }).where('default_project_id', '=', id).execute();
      await trx.deleteFrom('projects').where('id', '=', id).execute();
    });
    store.touch();
    api.onRevoke();
    reply.code(204).send();
  } });

  // ---- project tags ----
  rows.push({ method: 'GET', path: '/v3/projects/:id/tags', policy: 'identity:list_project_tags', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { project: { id } } }; }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    await getProject(id);
    return { tags: (await tagsOf([id])).get(id) };
  } });
  rows.push({ method: 'PUT', path: '/v3/projects/:id/tags', policy: 'identity:update_project_tags', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { project: { id } } }; }, body: entityBody('tags', KS.project_tags_update), errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    await getProject(id);
    const tags = entityOf<string[]>(req, 'tags');
    await setTags(id, tags);
    return { tags };
  } });
  rows.push({ method: 'DELETE', path: '/v3/projects/:id/tags', policy: 'identity:delete_project_tags', policyTarget: (req) => { const { id } = req.params as { id: string }; return { target: { project: { id } } }; }, errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    await getProject(id);
    await setTags(id, []);
    reply.code(204).send();
  } });
  for (const method of ['GET', 'HEAD'] as const) {
    rows.push({ method, path: '/v3/projects/:id/tags/:tag', policy: 'identity:get_project_tag', policyTarget: (req) => { const { id, tag } = req.params as { id: string; tag: string }; return { target: { project: { id } } }; }, errors: [], handler: async (req, reply) => {
      const { id, tag } = req.params as { id: string; tag: string };
      await getProject(id);
      if (!(await tagsOf([id])).get(id)!.includes(tag)) throw new NotFound(`Could not find project tag: ${tag}.`);
      reply.code(204).send();
    } });
  }
  rows.push({ method: 'PUT', path: '/v3/projects/:id/tags/:tag', policy: 'identity:create_project_tag', policyTarget: (req) => { const { id, tag } = req.params as { id: string; tag: string }; return { target: { project: { id } } }; }, errors: [], handler: async (req, reply) => {
    const { id, tag } = req.params as { id: string; tag: string };
    await getProject(id);
    const tags = (await tagsOf([id])).get(id)!;
    // Keystone validates the path's tag, then the list it would make.
    lazyValidate(KS.project_tag_create, tag);
    lazyValidate(KS.project_tags_update, [...tags, tag]);
    if (!tags.includes(tag)) await db().insertInto('project_tags').values({ project_id: id, name: tag }).execute();
    reply.code(201).header('location', `${api.publicUrl}/v3/projects/${id}/tags/${encodeURIComponent(tag)}`).send();
  } });
  rows.push({ method: 'DELETE', path: '/v3/projects/:id/tags/:tag', policy: 'identity:delete_project_tag', policyTarget: (req) => { const { id, tag } = req.params as { id: string; tag: string }; return { target: { project: { id } } }; }, errors: [], handler: async (req, reply) => {
    const { id, tag } = req.params as { id: string; tag: string };
    await getProject(id);
    const r = await db().deleteFrom('project_tags').where('project_id', '=', id).where('name', '=', tag).executeTakeFirst();
    if (!Number(r.numDeletedRows)) throw new NotFound(`Could not find project tag: ${tag}.`);
    reply.code(204).send();
  } });
  return rows;
};
