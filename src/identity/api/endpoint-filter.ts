// Endpoint filtering (OS-EP-FILTER): endpoint groups (named filters over endpoint attributes)
// and their association with projects, plus direct project↔endpoint associations. Associations
// with a project or endpoint that has since been deleted are ignored.
import type { FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { newId, parseExtra } from '../store/store.ts';
import type { EndpointGroupRow, EndpointRow, ProjectRow } from '../store/schema.ts';
import { checkQuery, filterInexact, listLinks, type IdentityApi } from './context.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { type IdentityRow, type RowModule } from './rows.ts';
import { renderEndpoint } from './catalog.ts';
import { renderProject } from './domains-projects.ts';

const FILTER_KEYS = ['service_id', 'region_id', 'interface'];
const P = '/v3/OS-EP-FILTER';

function render(api: IdentityApi, g: EndpointGroupRow) {
  return { id: g.id, name: g.name, description: g.description || null, filters: parseExtra(g.filters), links: { self: `${api.publicUrl}${P}/endpoint_groups/${g.id}` } };
}

/** Keystone's _require_valid_filter (the schema has filters as an object only). */
function checkFilters(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length === 0) throw new BadRequest('filters field is required and cannot be empty');
  for (const [k, x] of Object.entries(v)) {
    if (!FILTER_KEYS.includes(k)) throw new BadRequest(`Expecting to find ${FILTER_KEYS.join(' or ')} in endpoint_group. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.`);
    if (typeof x !== 'string') throw new BadRequest(`Invalid input for field 'filters.${k}': ${JSON.stringify(x)} is not of type 'string'`);
  }
  return v as Record<string, string>;
}

/** Endpoints whose attributes equal every filter of the group. */
function matches(e: EndpointRow, filters: Record<string, string>): boolean {
  return Object.entries(filters).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v);
}

export const endpointFilterRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const db = () => api.store.db;
  const getGroup = async (id: string): Promise<EndpointGroupRow> => {
    const g = await db().selectFrom('endpoint_groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!g) throw new NotFound(`Could not find Endpoint Group: ${id}.`);
    return g;
  };
  const getProject = async (id: string): Promise<ProjectRow> => {
    const p = await db().selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p) throw new NotFound(`Could not find project: ${id}.`);
    return p;
  };
  const getEndpoint = async (id: string): Promise<EndpointRow> => {
    const e = await db().selectFrom('endpoints').selectAll().where('id', '=', id).executeTakeFirst();
    if (!e) throw new NotFound(`Could not find endpoint: ${id}.`);
    return e;
  };
  async function renderProjects(rows: ProjectRow[]) {
    const ids = rows.map((p) => p.id);
    const tags = ids.length ? await db().selectFrom('project_tags').selectAll().where('project_id', 'in', ids).execute() : [];
    return rows.map((p) => renderProject(api, p, tags.filter((t) => t.project_id === p.id).map((t) => t.name)));
  }
  const params = (req: FastifyRequest) => req.params as Record<string, string>;

  // ---- endpoint groups ----
  rows.push({ method: 'POST', path: `${P}/endpoint_groups`, policy: 'identity:create_endpoint_group', body: entityBody('endpoint_group', KS.endpoint_group_create), errors: [], handler: async (req, reply) => {
    const g = entityOf(req, 'endpoint_group');
    const row: EndpointGroupRow = { id: newId(), name: g.name as string, description: (g.description as string | null) ?? '', filters: JSON.stringify(checkFilters(g.filters)) };
    await db().insertInto('endpoint_groups').values(row).execute();
    reply.code(201);
    return { endpoint_group: render(api, row) };
  } });

  rows.push({ method: 'GET', path: `${P}/endpoint_groups`, policy: 'identity:list_endpoint_groups', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['name']);
    let qb = db().selectFrom('endpoint_groups').selectAll();
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    return { endpoint_groups: filterInexact(req, ['name'], (await qb.orderBy('id').execute()).map((g) => render(api, g))), links: listLinks(api, req) };
  } });

  for (const method of ['GET', 'HEAD'] as const) {
    rows.push({
      method, path: `${P}/endpoint_groups/:id`, policy: 'identity:get_endpoint_group', errors: [],
      handler: async (req, reply) => {
        const g = await getGroup(params(req).id);
        if (method === 'HEAD') return reply.code(200).send();
        return { endpoint_group: render(api, g) };
      },
    });
  }

  rows.push({ method: 'PATCH', path: `${P}/endpoint_groups/:id`, policy: 'identity:update_endpoint_group', body: entityBody('endpoint_group', KS.endpoint_group_update), errors: [], handler: async (req) => {
    const cur = await getGroup(params(req).id);
    const g = entityOf(req, 'endpoint_group');
    if (g.id !== undefined && g.id !== cur.id) throw new BadRequest('Cannot change ID');
    const next: EndpointGroupRow = {
      ...cur,
      name: g.name === undefined ? cur.name : (g.name as string),
      description: g.description === undefined ? cur.description : ((g.description as string | null) ?? ''),
      filters: g.filters === undefined ? cur.filters : JSON.stringify(checkFilters(g.filters)),
    };
    await db().updateTable('endpoint_groups').set({ name: next.name, description: next.description, filters: next.filters }).where('id', '=', cur.id).execute();
    return { endpoint_group: render(api, next) };
  } });

  rows.push({ method: 'DELETE', path: `${P}/endpoint_groups/:id`, policy: 'identity:delete_endpoint_group', errors: [], handler: async (req, reply) => {
    const g = await getGroup(params(req).id);
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('project_endpoint_groups').where('endpoint_group_id', '=', g.id).execute();
      await trx.deleteFrom('endpoint_groups').where('id', '=', g.id).execute();
    });
    reply.code(204).send();
  } });

  rows.push({ method: 'GET', path: `${P}/endpoint_groups/:id/endpoints`, policy: 'identity:list_endpoints_associated_with_endpoint_group', errors: [], handler: async (req) => {
    const g = await getGroup(params(req).id);
    const filters = parseExtra(g.filters) as Record<string, string>;
    const rows = (await db().selectFrom('endpoints').selectAll().execute()).filter((e) => matches(e, filters));
    return { endpoints: rows.map((e) => renderEndpoint(api, e)), links: listLinks(api, req) };
  } });

  rows.push({ method: 'GET', path: `${P}/endpoint_groups/:id/projects`, policy: 'identity:list_projects_associated_with_endpoint_group', errors: [], handler: async (req) => {
    const g = await getGroup(params(req).id);
    const rows = await db().selectFrom('projects').selectAll()
      .where('id', 'in', (eb) => eb.selectFrom('project_endpoint_groups').select('project_id').where('endpoint_group_id', '=', g.id))
      .orderBy('id').execute();
    return { projects: await renderProjects(rows), links: listLinks(api, req) };
  } });

  // ---- endpoint group ↔ project ----
  const assocUrl = (gid: string, pid: string) => `${api.publicUrl}${P}/endpoint_groups/${gid}/projects/${pid}`;
  for (const method of ['GET', 'HEAD'] as const) {
    rows.push({
      method, path: `${P}/endpoint_groups/:id/projects/:pid`, policy: 'identity:get_endpoint_group_in_project', errors: [],
      handler: async (req, reply) => {
        const { id, pid } = params(req);
        await getProject(pid);
        await getGroup(id);
        const a = await db().selectFrom('project_endpoint_groups').selectAll().where('endpoint_group_id', '=', id).where('project_id', '=', pid).executeTakeFirst();
        if (!a) throw new NotFound(`Could not find Endpoint Group Project Association: ${id}, ${pid}.`);
        if (method === 'HEAD') return reply.code(200).send();
        return { project_endpoint_group: { endpoint_group_id: id, project_id: pid, links: { self: assocUrl(id, pid) } } };
      },
    });
  }

  rows.push({ method: 'PUT', path: `${P}/endpoint_groups/:id/projects/:pid`, policy: 'identity:add_endpoint_group_to_project', errors: [409], handler: async (req, reply) => {
    const { id, pid } = params(req);
    await getProject(pid);
    await getGroup(id);
    try {
      await db().insertInto('project_endpoint_groups').values({ endpoint_group_id: id, project_id: pid }).execute();
    } catch (e) {
      if (!isUniqueViolation(e)) throw e; // already associated: PUT is idempotent
    }
    reply.code(204).send();
  } });

  rows.push({ method: 'DELETE', path: `${P}/endpoint_groups/:id/projects/:pid`, policy: 'identity:remove_endpoint_group_from_project', errors: [], handler: async (req, reply) => {
    const { id, pid } = params(req);
    await getProject(pid);
    await getGroup(id);
    const r = await db().deleteFrom('project_endpoint_groups').where('endpoint_group_id', '=', id).where('project_id', '=', pid).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`Could not find Endpoint Group Project Association: ${id}, ${pid}.`);
    reply.code(204).send();
  } });

  rows.push({ method: 'GET', path: `${P}/projects/:pid/endpoint_groups`, policy: 'identity:list_endpoint_groups_for_project', errors: [], handler: async (req) => {
    const { pid } = params(req);
    await getProject(pid);
    const rows = await db().selectFrom('endpoint_groups').selectAll()
      .where('id', 'in', (eb) => eb.selectFrom('project_endpoint_groups').select('endpoint_group_id').where('project_id', '=', pid))
      .orderBy('id').execute();
    return { endpoint_groups: rows.map((g) => render(api, g)), links: listLinks(api, req) };
  } });

  // ---- project ↔ endpoint ----
  for (const method of ['GET', 'HEAD'] as const) {
    rows.push({
      method, path: `${P}/projects/:pid/endpoints/:eid`, policy: 'identity:check_endpoint_in_project', errors: [],
      handler: async (req, reply) => {
        const { pid, eid } = params(req);
        await getEndpoint(eid);
        await getProject(pid);
        const a = await db().selectFrom('project_endpoints').selectAll().where('endpoint_id', '=', eid).where('project_id', '=', pid).executeTakeFirst();
        if (!a) throw new NotFound(`Could not find Project Endpoint: ${pid}, ${eid}.`);
        return reply.code(204).send();
      },
    });
  }

  rows.push({ method: 'PUT', path: `${P}/projects/:pid/endpoints/:eid`, policy: 'identity:add_endpoint_to_project', errors: [409], handler: async (req, reply) => {
    const { pid, eid } = params(req);
    await getEndpoint(eid);
    await getProject(pid);
    try {
      await db().insertInto('project_endpoints').values({ endpoint_id: eid, project_id: pid }).execute();
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
    }
    reply.code(204).send();
  } });

  rows.push({ method: 'DELETE', path: `${P}/projects/:pid/endpoints/:eid`, policy: 'identity:remove_endpoint_from_project', errors: [], handler: async (req, reply) => {
    const { pid, eid } = params(req);
    const r = await db().deleteFrom('project_endpoints').where('endpoint_id', '=', eid).where('project_id', '=', pid).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`Could not find Project Endpoint: ${pid}, ${eid}.`);
    reply.code(204).send();
  } });

  /** A project's endpoints: those associated directly plus those of its endpoint groups. */
  rows.push({ method: 'GET', path: `${P}/projects/:pid/endpoints`, policy: 'identity:list_endpoints_for_project', errors: [], handler: async (req) => {
    const { pid } = params(req);
    await getProject(pid);
    const direct = new Set((await db().selectFrom('project_endpoints').select('endpoint_id').where('project_id', '=', pid).execute()).map((r) => r.endpoint_id));
    const groups = await db().selectFrom('endpoint_groups').select('filters')
      .where('id', 'in', (eb) => eb.selectFrom('project_endpoint_groups').select('endpoint_group_id').where('project_id', '=', pid)).execute();
    const filters = groups.map((g) => parseExtra(g.filters) as Record<string, string>);
    const rows = (await db().selectFrom('endpoints').selectAll().execute()).filter((e) => direct.has(e.id) || filters.some((f) => matches(e, f)));
    return { endpoints: rows.map((e) => renderEndpoint(api, e)), links: listLinks(api, req) };
  } });

  rows.push({ method: 'GET', path: `${P}/endpoints/:eid/projects`, policy: 'identity:list_projects_for_endpoint', errors: [], handler: async (req) => {
    const { eid } = params(req);
    await getEndpoint(eid);
    const rows = await db().selectFrom('projects').selectAll()
      .where('id', 'in', (eb) => eb.selectFrom('project_endpoints').select('project_id').where('endpoint_id', '=', eid))
      .orderBy('id').execute();
    return { projects: await renderProjects(rows), links: listLinks(api, req) };
  } });
  return rows;
};
