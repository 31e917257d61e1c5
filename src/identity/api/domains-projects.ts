// Domains and projects (with tags and hierarchy).
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { bool, newId, nowIso, parseExtra } from '../store/store.ts';
import type { DomainRow, ProjectRow } from '../store/schema.ts';
import { authorize, bodyObject, checkFields, checkName, checkQuery, filterInexact, extras, link, listLinks, queryBool, type IdentityApi, type RouteModule } from './context.ts';

const DOMAIN_FIELDS = ['id', 'name', 'description', 'enabled', 'tags', 'options', 'links', 'explicit_domain_id'];
const PROJECT_FIELDS = ['id', 'name', 'description', 'enabled', 'domain_id', 'parent_id', 'is_domain', 'tags', 'options', 'links'];
const TAG_RE = /^[^,/]{1,255}$/;

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

function checkTags(tags: unknown): string[] {
  if (!Array.isArray(tags)) throw new BadRequest("Invalid input for field 'tags': expected a list of strings");
  if (tags.length > 80) throw new BadRequest("Invalid input for field 'tags': a project may have at most 80 tags");
  for (const t of tags) if (typeof t !== 'string' || !TAG_RE.test(t)) throw new BadRequest(`Invalid input for field 'tags': ${JSON.stringify(t)} is not a valid tag (1-255 characters, no ',' or '/')`);
  return [...new Set(tags as string[])];
}

export const domainProjectRoutes: RouteModule = (app, api) => {
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
  app.get('/v3/domains', async (req) => {
    const q = checkQuery(req, ['name', 'enabled']);
    await authorize(api, req, 'identity:list_domains');
    let qb = db().selectFrom('domains').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    const en = queryBool(q.enabled);
    if (en !== undefined) qb = qb.where('enabled', '=', en ? 1 : 0);
    const rows = await qb.orderBy('name').execute();
    return { domains: filterInexact(req, ['name'], rows.map((d) => renderDomain(api, d))), links: listLinks(api, req) };
  });
  app.get('/v3/domains/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:get_domain', { target: { domain: { id } } });
    return { domain: renderDomain(api, await getDomain(id)) };
  });
  app.post('/v3/domains', async (req, reply) => {
    await authorize(api, req, 'identity:create_domain');
    const d = bodyObject(req, 'domain');
    checkFields(d, { name: 'string', description: 'nullable-string', enabled: 'boolean', explicit_domain_id: 'id' }, ['name']);
    const row: DomainRow = {
      id: (d.explicit_domain_id as string) ?? newId(), name: checkName(d.name, 'name', 64), description: (d.description as string) ?? '',
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
  });
  async function updateDomain(id: string, d: Record<string, unknown>): Promise<DomainRow> {
    const cur = await getDomain(id);
    checkFields(d, { name: 'string', description: 'nullable-string', enabled: 'boolean' });
    if (d.id !== undefined && d.id !== id) throw new BadRequest('Cannot change domain ID');
    const upd: Partial<DomainRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(d, [...DOMAIN_FIELDS, ...PROJECT_FIELDS]) }) };
    if (d.name !== undefined) upd.name = checkName(d.name, 'name', 64);
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
  app.patch('/v3/domains/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_domain', { target: { domain: { id } } });
    return { domain: renderDomain(api, await updateDomain(id, bodyObject(req, 'domain'))) };
  });
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
  app.delete('/v3/domains/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_domain', { target: { domain: { id } } });
    await deleteDomain(id);
    reply.code(204).send();
  });

  /** A domain seen through the projects API (Keystone models domains as projects). */
  const domainAsProject = (d: DomainRow) => ({ ...renderDomain(api, d), domain_id: null, parent_id: null, is_domain: true, links: link(api, `projects/${d.id}`) });
  async function findDomain(id: string): Promise<DomainRow | undefined> {
    return db().selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
  }

  // ---- projects ----
  app.get('/v3/projects', async (req) => {
    const q = checkQuery(req, ['name', 'domain_id', 'enabled', 'parent_id', 'is_domain', 'tags', 'tags-any', 'not-tags', 'not-tags-any']);
    const caller = await authorize(api, req, 'identity:list_projects', { target: { domain_id: q.domain_id } });
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
  });

  app.get('/v3/projects/:id', async (req) => {
    const { id } = req.params as { id: string };
    const q = checkQuery(req, ['parents_as_list', 'subtree_as_list', 'parents_as_ids', 'subtree_as_ids', 'include_limits']);
    await authorize(api, req, 'identity:get_project', { target: { project: { id } } });
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
  });

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

  app.post('/v3/projects', async (req, reply) => {
    const caller = await authorize(api, req, 'identity:create_project');
    const p = bodyObject(req, 'project');
    checkFields(p, { name: 'string', description: 'nullable-string', enabled: 'boolean', domain_id: 'nullable-string', parent_id: 'nullable-string', is_domain: 'boolean' }, ['name']);
    const name = checkName(p.name, 'name', 64);
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
    const tags = p.tags === undefined ? [] : checkTags(p.tags);
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
  });

  app.patch('/v3/projects/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_project', { target: { project: { id } } });
    const p = bodyObject(req, 'project');
    if (await findDomain(id)) return { project: domainAsProject(await updateDomain(id, { ...p, is_domain: undefined, domain_id: undefined, parent_id: undefined })) };
    const cur = await getProject(id);
    checkFields(p, { name: 'string', description: 'nullable-string', enabled: 'boolean' });
    if (p.domain_id !== undefined && p.domain_id !== cur.domain_id) throw new BadRequest('Cannot change Domain ID');
    if (p.parent_id !== undefined && p.parent_id !== (cur.parent_id ?? cur.domain_id)) throw new Forbidden('Update of `parent_id` is not allowed.');
    if (p.is_domain !== undefined && p.is_domain !== false) throw new BadRequest('Update of `is_domain` is not allowed.');
    if (p.id !== undefined && p.id !== id) throw new BadRequest('Cannot change project ID');
    const upd: Partial<ProjectRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(p, PROJECT_FIELDS) }) };
    if (p.name !== undefined) upd.name = checkName(p.name, 'name', 64);
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
    if (p.tags !== undefined) await setTags(id, checkTags(p.tags));
    if (p.enabled === false && bool(cur.enabled)) { await store.revoke({ projectId: id }); api.onRevoke(); }
    store.touch();
    return { project: renderProject(api, await getProject(id), (await tagsOf([id])).get(id)!) };
  });

  app.delete('/v3/projects/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_project', { target: { project: { id } } });
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
  });

  // ---- project tags ----
  app.get('/v3/projects/:id/tags', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:list_project_tags', { target: { project: { id } } });
    await getProject(id);
    return { tags: (await tagsOf([id])).get(id) };
  });
  app.put('/v3/projects/:id/tags', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_project_tags', { target: { project: { id } } });
    await getProject(id);
    const tags = checkTags((req.body as { tags?: unknown } | undefined)?.tags);
    await setTags(id, tags);
    return { tags };
  });
  app.delete('/v3/projects/:id/tags', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_project_tags', { target: { project: { id } } });
    await getProject(id);
    await setTags(id, []);
    reply.code(204).send();
  });
  for (const method of ['GET', 'HEAD'] as const) {
    app.route({ method, url: '/v3/projects/:id/tags/:tag', handler: async (req, reply) => {
      const { id, tag } = req.params as { id: string; tag: string };
      await authorize(api, req, 'identity:get_project_tag', { target: { project: { id } } });
      await getProject(id);
      if (!(await tagsOf([id])).get(id)!.includes(tag)) throw new NotFound(`Could not find project tag: ${tag}.`);
      reply.code(204).send();
    } });
  }
  app.put('/v3/projects/:id/tags/:tag', async (req, reply) => {
    const { id, tag } = req.params as { id: string; tag: string };
    await authorize(api, req, 'identity:create_project_tag', { target: { project: { id } } });
    await getProject(id);
    const tags = (await tagsOf([id])).get(id)!;
    checkTags([...tags, tag]);
    if (!tags.includes(tag)) await db().insertInto('project_tags').values({ project_id: id, name: tag }).execute();
    reply.code(201).header('location', `${api.publicUrl}/v3/projects/${id}/tags/${encodeURIComponent(tag)}`).send();
  });
  app.delete('/v3/projects/:id/tags/:tag', async (req, reply) => {
    const { id, tag } = req.params as { id: string; tag: string };
    await authorize(api, req, 'identity:delete_project_tag', { target: { project: { id } } });
    await getProject(id);
    const r = await db().deleteFrom('project_tags').where('project_id', '=', id).where('name', '=', tag).executeTakeFirst();
    if (!Number(r.numDeletedRows)) throw new NotFound(`Could not find project tag: ${tag}.`);
    reply.code(204).send();
  });
};
