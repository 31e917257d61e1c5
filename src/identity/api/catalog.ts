// The service catalog: services, endpoints and regions.
import { BadRequest, Conflict, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { bool, newId, parseExtra } from '../store/store.ts';
import type { EndpointRow, RegionRow, ServiceRow } from '../store/schema.ts';
import { authorize, bodyObject, checkFields, checkQuery, filterInexact, extras, link, listLinks, queryBool, type IdentityApi, type RouteModule } from './context.ts';

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

function checkUrl(v: unknown): string {
  if (typeof v !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(v) || v.length > 2048) throw new BadRequest(`Invalid input for field 'url': ${JSON.stringify(v)} is not a valid URL`);
  return v;
}

export const catalogRoutes: RouteModule = (app, api) => {
  const { store } = api;
  const db = () => store.db;
  const get = async <T>(table: 'services' | 'endpoints' | 'regions', id: string, what: string): Promise<T> => {
    const r = await db().selectFrom(table).selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw new NotFound(`Could not find ${what}: ${id}.`);
    return r as T;
  };

  // ---- services ----
  app.get('/v3/services', async (req) => {
    const q = checkQuery(req, ['type', 'name']);
    await authorize(api, req, 'identity:list_services');
    let qb = db().selectFrom('services').selectAll();
    if (q.type !== undefined) qb = qb.where('type', '=', q.type);
    if (q.name !== undefined) qb = qb.where('name', '=', q.name);
    return { services: filterInexact(req, ['type', 'name'], (await qb.execute()).map((s) => renderService(api, s))), links: listLinks(api, req) };
  });
  app.get('/v3/services/:id', async (req) => {
    await authorize(api, req, 'identity:get_service');
    return { service: renderService(api, await get<ServiceRow>('services', (req.params as { id: string }).id, 'service')) };
  });
  app.post('/v3/services', async (req, reply) => {
    await authorize(api, req, 'identity:create_service');
    const s = bodyObject(req, 'service');
    checkFields(s, { type: 'string', name: 'string', description: 'nullable-string', enabled: 'boolean' }, ['type']);
    if ((s.type as string).length === 0 || (s.type as string).length > 255) throw new BadRequest("Invalid input for field 'type': length must be 1 to 255");
    const row: ServiceRow = { id: newId(), type: s.type as string, name: (s.name as string) ?? '', description: (s.description as string) ?? '', enabled: s.enabled === false ? 0 : 1, extra: JSON.stringify(extras(s, SERVICE_FIELDS)) };
    await db().insertInto('services').values(row).execute();
    store.touch();
    reply.code(201);
    return { service: renderService(api, row) };
  });
  app.patch('/v3/services/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_service');
    const cur = await get<ServiceRow>('services', id, 'service');
    const s = bodyObject(req, 'service');
    checkFields(s, { type: 'string', name: 'string', description: 'nullable-string', enabled: 'boolean' });
    const upd: Partial<ServiceRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(s, SERVICE_FIELDS) }) };
    if (s.type !== undefined) upd.type = s.type as string;
    if (s.name !== undefined) upd.name = s.name as string;
    if (s.description !== undefined) upd.description = (s.description as string) ?? '';
    if (s.enabled !== undefined) upd.enabled = s.enabled ? 1 : 0;
    await db().updateTable('services').set(upd).where('id', '=', id).execute();
    store.touch();
    return { service: renderService(api, await get<ServiceRow>('services', id, 'service')) };
  });
  app.delete('/v3/services/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_service');
    await get('services', id, 'service');
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('endpoints').where('service_id', '=', id).execute();
      await trx.deleteFrom('services').where('id', '=', id).execute();
    });
    store.touch();
    reply.code(204).send();
  });

  // ---- endpoints ----
  app.get('/v3/endpoints', async (req) => {
    const q = checkQuery(req, ['interface', 'service_id', 'region_id', 'region', 'enabled']);
    await authorize(api, req, 'identity:list_endpoints');
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
  });
  app.get('/v3/endpoints/:id', async (req) => {
    await authorize(api, req, 'identity:get_endpoint');
    return { endpoint: renderEndpoint(api, await get<EndpointRow>('endpoints', (req.params as { id: string }).id, 'endpoint')) };
  });
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
    if (e.interface !== undefined && !INTERFACES.includes(e.interface as string)) {
      throw new BadRequest(`Invalid input for field 'interface': ${JSON.stringify(e.interface)} is not one of ['admin', 'internal', 'public']`);
    }
    return region;
  }
  app.post('/v3/endpoints', async (req, reply) => {
    await authorize(api, req, 'identity:create_endpoint');
    const e = bodyObject(req, 'endpoint');
    checkFields(e, { service_id: 'string', interface: 'string', url: 'string', region_id: 'nullable-string', region: 'nullable-string', enabled: 'boolean' }, ['service_id', 'interface', 'url']);
    const region = await checkEndpointRefs(e);
    const row: EndpointRow = { id: newId(), service_id: e.service_id as string, interface: e.interface as string, url: checkUrl(e.url), region_id: region ?? null, enabled: e.enabled === false ? 0 : 1, extra: JSON.stringify(extras(e, ENDPOINT_FIELDS)) };
    await db().insertInto('endpoints').values(row).execute();
    store.touch();
    reply.code(201);
    return { endpoint: renderEndpoint(api, row) };
  });
  app.patch('/v3/endpoints/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_endpoint');
    const cur = await get<EndpointRow>('endpoints', id, 'endpoint');
    const e = bodyObject(req, 'endpoint');
    checkFields(e, { service_id: 'string', interface: 'string', url: 'string', region_id: 'nullable-string', region: 'nullable-string', enabled: 'boolean' });
    const region = await checkEndpointRefs(e);
    const upd: Partial<EndpointRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(e, ENDPOINT_FIELDS) }) };
    if (e.service_id !== undefined) upd.service_id = e.service_id as string;
    if (e.interface !== undefined) upd.interface = e.interface as string;
    if (e.url !== undefined) upd.url = checkUrl(e.url);
    if (e.region_id !== undefined || e.region !== undefined) upd.region_id = region ?? null;
    if (e.enabled !== undefined) upd.enabled = e.enabled ? 1 : 0;
    await db().updateTable('endpoints').set(upd).where('id', '=', id).execute();
    store.touch();
    return { endpoint: renderEndpoint(api, await get<EndpointRow>('endpoints', id, 'endpoint')) };
  });
  app.delete('/v3/endpoints/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_endpoint');
    await get('endpoints', id, 'endpoint');
    await db().deleteFrom('endpoints').where('id', '=', id).execute();
    store.touch();
    reply.code(204).send();
  });

  // ---- regions ----
  app.get('/v3/regions', async (req) => {
    const q = checkQuery(req, ['parent_region_id']);
    await authorize(api, req, 'identity:list_regions');
    let qb = db().selectFrom('regions').selectAll();
    if (q.parent_region_id !== undefined) qb = qb.where('parent_region_id', '=', q.parent_region_id);
    return { regions: filterInexact(req, ['parent_region_id'], (await qb.orderBy('id').execute()).map((r) => renderRegion(api, r))), links: listLinks(api, req) };
  });
  app.get('/v3/regions/:id', async (req) => {
    await authorize(api, req, 'identity:get_region');
    return { region: renderRegion(api, await get<RegionRow>('regions', (req.params as { id: string }).id, 'region')) };
  });
  async function createRegion(id: string, r: Record<string, unknown>) {
    checkFields(r, { description: 'nullable-string', parent_region_id: 'nullable-string' });
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
  app.post('/v3/regions', async (req, reply) => {
    await authorize(api, req, 'identity:create_region');
    const r = bodyObject(req, 'region');
    checkFields(r, { id: 'string' });
    const row = await createRegion((r.id as string) ?? newId(), r);
    reply.code(201);
    return { region: renderRegion(api, row) };
  });
  app.put('/v3/regions/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:create_region');
    const r = bodyObject(req, 'region');
    if (r.id !== undefined && r.id !== id) throw new BadRequest('The region id in the URL and in the body must match.');
    const row = await createRegion(id, r);
    reply.code(201);
    return { region: renderRegion(api, row) };
  });
  app.patch('/v3/regions/:id', async (req) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:update_region');
    const cur = await get<RegionRow>('regions', id, 'region');
    const r = bodyObject(req, 'region');
    checkFields(r, { description: 'nullable-string', parent_region_id: 'nullable-string' });
    const upd: Partial<RegionRow> = { extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(r, REGION_FIELDS) }) };
    if (r.description !== undefined) upd.description = (r.description as string) ?? '';
    if (r.parent_region_id !== undefined) {
      if (r.parent_region_id === id) throw new BadRequest('A region cannot be its own parent.');
      if (r.parent_region_id && !(await db().selectFrom('regions').select('id').where('id', '=', r.parent_region_id as string).executeTakeFirst())) throw new NotFound(`Could not find region: ${r.parent_region_id}.`);
      upd.parent_region_id = (r.parent_region_id as string) ?? null;
    }
    await db().updateTable('regions').set(upd).where('id', '=', id).execute();
    return { region: renderRegion(api, await get<RegionRow>('regions', id, 'region')) };
  });
  app.delete('/v3/regions/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await authorize(api, req, 'identity:delete_region');
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
  });
};
