// The service catalog: services, endpoints and regions.
import { BadRequest, Conflict, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { bool, newId, parseExtra } from '../store/store.ts';
import type { EndpointRow, RegionRow, ServiceRow } from '../store/schema.ts';
import { checkQuery, filterInexact, extras, link, listLinks, queryBool, type IdentityApi } from './context.ts';
import { type IdentityRow, type RowModule } from './rows.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { R } from './responses.ts';

const SERVICE_FIELDS = ['id', 'type', 'name', 'description', 'enabled', 'links'];
const ENDPOINT_FIELDS = ['id', 'service_id', 'interface', 'url', 'region_id', 'region', 'enabled', 'links', 'legacy_endpoint_id'];
const REGION_FIELDS = ['id', 'description', 'parent_region_id', 'links'];
const INTERFACES = ['public', 'internal', 'admin'];

export function renderService(api: IdentityApi, s: ServiceRow) {
  return { id: s.id, type: s.type, name: s.name, description: s.description, enabled: bool(s.enabled), ...parseExtra(s.extra), links: link(api, `services/${s.id}`) };
}
export function renderEndpoint(api: IdentityApi, e: EndpointRow) {
  return { id: e.id, interface: e.interface, region_id: e.region_id, region: e.region_id, url: e.url, service_id: e.service_id, enabled: bool(e.enabled), ...parseExtra(e.extra), links: link(api, `endpoints/${e.id}`) };
}
export function renderRegion(api: IdentityApi, r: RegionRow) {
  return { id: r.id, description: r.description, parent_region_id: r.parent_region_id, ...parseExtra(r.extra), links: link(api, `regions/${r.id}`) };
}

/**
 * A service's description is no property of Keystone's service schema, so any JSON value is
 * accepted and kept, as Keystone keeps extra attributes: a string (or null) in its column, anything
 * else among the extras (which render over the column).
 */
function serviceDescription(s: Record<string, unknown>, prior: Record<string, unknown>): { description: string; extra: string } {
  const extra = { ...prior, ...extras(s, SERVICE_FIELDS) };
  const d = s.description;
  if (d === undefined || d === null || typeof d === 'string') {
    if (d !== undefined) delete extra.description;
    return { description: (d as string | null | undefined) ?? '', extra: JSON.stringify(extra) };
  }
  return { description: '', extra: JSON.stringify({ ...extra, description: d }) };
}

export const catalogRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store } = api;
  const db = () => store.db;
  const get = async <T>(table: 'services' | 'endpoints' | 'regions', id: string, what: string): Promise<T> => {
    const r = await db().selectFrom(table).selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw new NotFound(`Could not find ${what}: ${id}.`);
    return r as T;
  };

  // ---- services ----
  rows.push({ method: 'GET', path: '/v3/services', response: { 200: R.services }, policy: 'identity:list_services', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['type', 'name']);
    let qb = db().selectFrom('services').selectAll();
    if (q.type !== undefined) qb = qb.where('type', '=', q.type);
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    return { services: filterInexact(req, ['type', 'name'], (await qb.execute()).map((s) => renderService(api, s))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/services/:id', response: { 200: R.service }, policy: 'identity:get_service', errors: [], handler: async (req) => {
    return { service: renderService(api, await get<ServiceRow>('services', (req.params as { id: string }).id, 'service')) };
  } });
  // Keystone reads these entities without a default (`.get('service')`): a missing one is None.
  rows.push({ method: 'POST', path: '/v3/services', policy: 'identity:create_service', body: entityBody('service', KS.service_create, null), response: { 201: R.service }, errors: [], handler: async (req, reply) => {
    const s = entityOf(req, 'service');
    const row: ServiceRow = { id: newId(), type: s.type as string, name: (s.name as string) ?? '', ...serviceDescription(s, {}), enabled: s.enabled === false ? 0 : 1 };
    await db().insertInto('services').values(row).execute();
    store.touch();
    reply.code(201);
    return { service: renderService(api, row) };
  } });
  rows.push({ method: 'PATCH', path: '/v3/services/:id', policy: 'identity:update_service', body: entityBody('service', KS.service_update, null), response: { 200: R.service }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    const cur = await get<ServiceRow>('services', id, 'service');
    const s = entityOf(req, 'service');
    const upd: Partial<ServiceRow> = serviceDescription(s, parseExtra(cur.extra));
    if (s.description === undefined) delete upd.description;
    if (s.type !== undefined) upd.type = s.type as string;
    if (s.name !== undefined) upd.name = s.name as string;
    if (s.enabled !== undefined) upd.enabled = s.enabled ? 1 : 0;
    await db().updateTable('services').set(upd).where('id', '=', id).execute();
    store.touch();
    return { service: renderService(api, await get<ServiceRow>('services', id, 'service')) };
  } });
  rows.push({ method: 'DELETE', path: '/v3/services/:id', policy: 'identity:delete_service', errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    await get('services', id, 'service');
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('endpoints').where('service_id', '=', id).execute();
      await trx.deleteFrom('services').where('id', '=', id).execute();
    });
    store.touch();
    reply.code(204).send();
  } });

  // ---- endpoints ----
  rows.push({ method: 'GET', path: '/v3/endpoints', response: { 200: R.endpoints }, policy: 'identity:list_endpoints', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['interface', 'service_id', 'region_id', 'region', 'enabled']);
    let qb = db().selectFrom('endpoints').selectAll();
    if (q.interface !== undefined) {
      if (!INTERFACES.includes(q.interface)) throw new BadRequest(`Invalid interface '${q.interface}': must be one of public, internal, admin`);
      qb = qb.where('interface', '=', q.interface);
    }
    if (q.service_id !== undefined) qb = qb.where('service_id', '=', q.service_id);
    const region = q.region_id ?? q.region;
    if (region !== undefined) qb = qb.where('region_id', '=', region);
    const en = queryBool(q.enabled);
    if (en !== undefined) qb = qb.where('enabled', '=', en ? 1 : 0);
    return { endpoints: filterInexact(req, ['interface', 'service_id', 'region_id'], (await qb.execute()).map((e) => renderEndpoint(api, e))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/endpoints/:id', response: { 200: R.endpoint }, policy: 'identity:get_endpoint', errors: [], handler: async (req) => {
    return { endpoint: renderEndpoint(api, await get<EndpointRow>('endpoints', (req.params as { id: string }).id, 'endpoint')) };
  } });
  async function checkEndpointRefs(e: Record<string, unknown>) {
    if (e.service_id !== undefined && !(await db().selectFrom('services').select('id').where('id', '=', e.service_id as string).executeTakeFirst())) {
      throw new BadRequest(`Invalid input for field 'service_id': could not find service ${e.service_id}`);
    }
    const region = (e.region_id ?? e.region) as string | null | undefined;
    if (region && !(await db().selectFrom('regions').select('id').where('id', '=', region).executeTakeFirst())) {
      // Keystone creates a region an endpoint names but that does not exist yet.
      if (region.length > 255) throw new BadRequest("Invalid input for field 'region_id': too long");
      try {
        await db().insertInto('regions').values({ id: region, description: '', parent_region_id: null, extra: '{}' }).execute();
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
    return region;
  }
  rows.push({ method: 'POST', path: '/v3/endpoints', policy: 'identity:create_endpoint', body: entityBody('endpoint', KS.endpoint_create, null), response: { 201: R.endpoint }, errors: [], handler: async (req, reply) => {
    const e = entityOf(req, 'endpoint');
    const region = await checkEndpointRefs(e);
    const row: EndpointRow = { id: newId(), service_id: e.service_id as string, interface: e.interface as string, url: e.url as string, region_id: region ?? null, enabled: e.enabled === false ? 0 : 1, extra: JSON.stringify(extras(e, ENDPOINT_FIELDS)) };
    await db().insertInto('endpoints').values(row).execute();
    store.touch();
    reply.code(201);
    return { endpoint: renderEndpoint(api, row) };
  } });
  rows.push({ method: 'PATCH', path: '/v3/endpoints/:id', policy: 'identity:update_endpoint', body: entityBody('endpoint', KS.endpoint_update, null), response: { 200: R.endpoint }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    const cur = await get<EndpointRow>('endpoints', id, 'endpoint');
    const e = entityOf(req, 'endpoint');
    const region = await checkEndpointRefs(e);
    const upd: Partial<EndpointRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(e, ENDPOINT_FIELDS) }) };
    if (e.service_id !== undefined) upd.service_id = e.service_id as string;
    if (e.interface !== undefined) upd.interface = e.interface as string;
    if (e.url !== undefined) upd.url = e.url as string;
    if (e.region_id !== undefined || e.region !== undefined) upd.region_id = region ?? null;
    if (e.enabled !== undefined) upd.enabled = e.enabled ? 1 : 0;
    await db().updateTable('endpoints').set(upd).where('id', '=', id).execute();
    store.touch();
    return { endpoint: renderEndpoint(api, await get<EndpointRow>('endpoints', id, 'endpoint')) };
  } });
  rows.push({ method: 'DELETE', path: '/v3/endpoints/:id', policy: 'identity:delete_endpoint', errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    await get('endpoints', id, 'endpoint');
    await db().deleteFrom('endpoints').where('id', '=', id).execute();
    store.touch();
    reply.code(204).send();
  } });

  // ---- regions ----
  rows.push({ method: 'GET', path: '/v3/regions', response: { 200: R.regions }, policy: 'identity:list_regions', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['parent_region_id']);
    let qb = db().selectFrom('regions').selectAll();
    if (q.parent_region_id !== undefined) qb = qb.where('parent_region_id', '=', q.parent_region_id);
    return { regions: filterInexact(req, ['parent_region_id'], (await qb.orderBy('id').execute()).map((r) => renderRegion(api, r))), links: listLinks(api, req) };
  } });
  rows.push({ method: 'GET', path: '/v3/regions/:id', response: { 200: R.region }, policy: 'identity:get_region', errors: [], handler: async (req) => {
    return { region: renderRegion(api, await get<RegionRow>('regions', (req.params as { id: string }).id, 'region')) };
  } });
  async function createRegion(id: string, r: Record<string, unknown>) {
    if (id.length > 255) throw new BadRequest("Invalid input for field 'id': too long");
    if (r.parent_region_id && !(await db().selectFrom('regions').select('id').where('id', '=', r.parent_region_id as string).executeTakeFirst())) {
      throw new NotFound(`Could not find region: ${r.parent_region_id}.`);
    }
    const row: RegionRow = { id, description: (r.description as string) ?? '', parent_region_id: (r.parent_region_id as string) ?? null, extra: JSON.stringify(extras(r, REGION_FIELDS)) };
    try {
      await db().insertInto('regions').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store region - Duplicate ID, ${id}.`);
      throw e;
    }
    return row;
  }
  rows.push({ method: 'POST', path: '/v3/regions', policy: 'identity:create_region', body: entityBody('region', KS.region_create, null), response: { 201: R.region }, errors: [409], handler: async (req, reply) => {
    const r = entityOf(req, 'region');
    const row = await createRegion((r.id as string) ?? newId(), r);
    reply.code(201);
    return { region: renderRegion(api, row) };
  } });
  rows.push({ method: 'PUT', path: '/v3/regions/:id', policy: 'identity:create_region', body: entityBody('region', KS.region_create, null), response: { 201: R.region }, errors: [409], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    const r = entityOf(req, 'region');
    if (r.id !== undefined && r.id !== id) throw new BadRequest('The region id in the URL and in the body must match.');
    const row = await createRegion(id, r);
    reply.code(201);
    return { region: renderRegion(api, row) };
  } });
  rows.push({ method: 'PATCH', path: '/v3/regions/:id', policy: 'identity:update_region', body: entityBody('region', KS.region_update, null), response: { 200: R.region }, errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    const cur = await get<RegionRow>('regions', id, 'region');
    const r = entityOf(req, 'region');
    const upd: Partial<RegionRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(r, REGION_FIELDS) }) };
    if (r.description !== undefined) upd.description = (r.description as string) ?? '';
    if (r.parent_region_id !== undefined) {
      if (r.parent_region_id === id) throw new BadRequest('A region cannot be its own parent.');
      if (r.parent_region_id && !(await db().selectFrom('regions').select('id').where('id', '=', r.parent_region_id as string).executeTakeFirst())) throw new NotFound(`Could not find region: ${r.parent_region_id}.`);
      upd.parent_region_id = (r.parent_region_id as string) ?? null;
    }
    await db().updateTable('regions').set(upd).where('id', '=', id).execute();
    return { region: renderRegion(api, await get<RegionRow>('regions', id, 'region')) };
  } });
  rows.push({ method: 'DELETE', path: '/v3/regions/:id', policy: 'identity:delete_region', errors: [409], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    await get('regions', id, 'region');
    if (await db().selectFrom('regions').select('id').where('parent_region_id', '=', id).executeTakeFirst()) {
      throw new Conflict(`Cannot delete region ${id}: it has child regions.`);
    }
    await db().transaction().execute(async (trx) => {
      await trx.updateTable('endpoints').set({ region_id: null }).where('region_id', '=', id).execute();
      await trx.deleteFrom('regions').where('id', '=', id).execute();
    });
    store.touch();
    reply.code(204).send();
  } });
  return rows;
};
