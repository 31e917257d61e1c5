// Flavors: list/detail/show for everyone (private ones only with access), admin create/update/
// delete, extra specs and private flavor access. Seeded with the classic m1.* sizes.
import { BadRequest, Conflict, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { now } from '../util.ts';
import { validate, P, toBool } from './validation.ts';
import { pageParams, q1, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { RESPONSES } from './response-schemas.ts';
import type { EmbeddedFlavor } from '../objects.ts';
import type { ApiDb } from '../db/tables.ts';

export interface FlavorRow {
  id: number; flavorid: string; name: string; memory_mb: number; vcpus: number; root_gb: number; ephemeral_gb: number;
  swap: number; rxtx_factor: number; disabled: number; is_public: number; description: string | null; created_at: string;
}

export const DEFAULT_FLAVORS = [
  { flavorid: '1', name: 'm1.tiny', memory_mb: 512, vcpus: 1, root_gb: 1 },
  { flavorid: '2', name: 'm1.small', memory_mb: 2048, vcpus: 1, root_gb: 20 },
  { flavorid: '3', name: 'm1.medium', memory_mb: 4096, vcpus: 2, root_gb: 40 },
  { flavorid: '4', name: 'm1.large', memory_mb: 8192, vcpus: 4, root_gb: 80 },
  { flavorid: '5', name: 'm1.xlarge', memory_mb: 16384, vcpus: 8, root_gb: 160 },
];

/** Seeds the m1.* flavors once (when the API database has never had a flavor). */
export async function seedFlavors(db: ApiDb): Promise<void> {
  const any = await db.selectFrom('flavors').select('id').limit(1).executeTakeFirst();
  if (any) return;
  for (const f of DEFAULT_FLAVORS) {
    try {
      await db.insertInto('flavors').values({ ...f, ephemeral_gb: 0, swap: 0, rxtx_factor: 1, disabled: 0, is_public: 1, description: null, created_at: now() }).execute();
    } catch (e) { if (!isUniqueViolation(e)) throw e; }
  }
}

export async function extraSpecsOf(db: ApiDb, ids: number[]): Promise<Map<number, Record<string, string>>> {
  const out = new Map<number, Record<string, string>>();
  if (!ids.length) return out;
  const rows = await db.selectFrom('flavor_extra_specs').select(['flavor_id', 'key', 'value']).where('flavor_id', 'in', ids).execute();
  for (const r of rows) {
    if (!out.has(r.flavor_id)) out.set(r.flavor_id, {});
    out.get(r.flavor_id)![r.key] = r.value;
  }
  return out;
}

/** A flavor the caller may see (private ones need access unless admin); 404 otherwise. */
export async function getFlavor(c: Ctx, flavorid: string, opts: { forBoot?: boolean } = {}): Promise<FlavorRow> {
  const db = c.api.cells.db;
  const f = await db.selectFrom('flavors').selectAll().where('flavorid', '=', flavorid).executeTakeFirst() as FlavorRow | undefined;
  if (f && (f.is_public || c.isAdmin || await hasAccess(db, f.id, c.auth.projectId))) return f;
  if (opts.forBoot) throw new BadRequest('Invalid flavorRef provided.');
  throw new NotFound(`Flavor ${flavorid} could not be found.`);
}

async function hasAccess(db: ApiDb, flavorId: number, projectId?: string): Promise<boolean> {
  if (!projectId) return false;
  return !!await db.selectFrom('flavor_projects').select('id').where('flavor_id', '=', flavorId).where('project_id', '=', projectId).executeTakeFirst();
}

export function embedFlavor(f: FlavorRow, extraSpecs: Record<string, string>): EmbeddedFlavor {
  return {
    flavorid: f.flavorid, name: f.name, memory_mb: f.memory_mb, vcpus: f.vcpus, root_gb: f.root_gb, ephemeral_gb: f.ephemeral_gb,
    swap: f.swap, rxtx_factor: f.rxtx_factor, extra_specs: extraSpecs, is_public: !!f.is_public, description: f.description,
  };
}

function view(c: Ctx, f: FlavorRow, specs: Record<string, string> | undefined, detail: boolean) {
  const links = c.link(`/flavors/${f.flavorid}`);
  if (!detail) {
    const o: Record<string, unknown> = { id: f.flavorid, name: f.name, links };
    if (c.v.atLeast('2.55')) o.description = f.description;
    return o;
  }
  const o: Record<string, unknown> = {
    id: f.flavorid, name: f.name, ram: f.memory_mb, disk: f.root_gb,
    swap: c.v.atLeast('2.75') ? f.swap : (f.swap || ''),
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeral_gb, 'OS-FLV-DISABLED:disabled': !!f.disabled, vcpus: f.vcpus,
    'os-flavor-access:is_public': !!f.is_public, rxtx_factor: f.rxtx_factor, links,
  };
  if (c.v.atLeast('2.55')) o.description = f.description;
  if (c.v.atLeast('2.61') && specs && c.api.policy.check('os_compute_api:os-flavor-extra-specs:index', c.creds, { project_id: c.auth.projectId })) o.extra_specs = specs;
  return o;
}

async function list(c: Ctx, detail: boolean) {
  const db = c.api.cells.db;
  const { limit, marker } = pageParams(c.query);
  const isPublicQ = q1(c.query, 'is_public');
  let qb = db.selectFrom('flavors').selectAll();
  // is_public: admins choose (default public only... Nova: None = all for admins when 'none');
  // others see public flavors plus private ones shared with their project.
  let pub: boolean | undefined = true;
  if (isPublicQ !== undefined) {
    const l = isPublicQ.toLowerCase();
    if (l === 'none') pub = undefined;
    else if (['true', 't', '1', 'yes', 'y', 'on', 'false', 'f', '0', 'no', 'n', 'off'].includes(l)) pub = toBool(l);
    else throw new BadRequest(`Invalid is_public filter [${isPublicQ}]`);
  }
  if (c.isAdmin) {
    if (pub !== undefined) qb = qb.where('is_public', '=', pub ? 1 : 0);
  } else {
    const pid = c.auth.projectId ?? '';
    qb = qb.where((eb) => eb.or([
      eb('is_public', '=', 1),
      eb('id', 'in', eb.selectFrom('flavor_projects').select('flavor_id').where('project_id', '=', pid)),
    ]));
  }
  const minRam = q1(c.query, 'minRam');
  const minDisk = q1(c.query, 'minDisk');
  for (const [k, v, col] of [['minRam', minRam, 'memory_mb'], ['minDisk', minDisk, 'root_gb']] as const) {
    if (v === undefined) continue;
    if (!/^\d+$/.test(v)) throw new BadRequest(`Invalid ${k} filter [${v}]`);
    qb = qb.where(col, '>=', Number(v));
  }
  const sortKey = q1(c.query, 'sort_key') ?? 'flavorid';
  const sortDir = (q1(c.query, 'sort_dir') ?? 'asc').toLowerCase();
  const cols: Record<string, string> = { flavorid: 'flavorid', id: 'flavorid', name: 'name', memory_mb: 'memory_mb', vcpus: 'vcpus', root_gb: 'root_gb', ephemeral_gb: 'ephemeral_gb', swap: 'swap', rxtx_factor: 'rxtx_factor', disabled: 'disabled', is_public: 'is_public', created_at: 'created_at', description: 'description' };
  if (!cols[sortKey]) throw new BadRequest(`Invalid input for query parameters sort_key. Value: ${sortKey}.`);
  if (sortDir !== 'asc' && sortDir !== 'desc') throw new BadRequest(`Invalid input for query parameters sort_dir. Value: ${sortDir}.`);
  let rows = await qb.orderBy(cols[sortKey] as any, sortDir as 'asc' | 'desc').orderBy('id', sortDir as 'asc' | 'desc').execute() as FlavorRow[];
  if (marker !== undefined) {
    const i = rows.findIndex((r) => r.flavorid === marker);
    if (i < 0) throw new BadRequest(`marker [${marker}] not found`);
    rows = rows.slice(i + 1);
  }
  const page = rows.slice(0, limit);
  const specs = detail && c.v.atLeast('2.61') ? await extraSpecsOf(db, page.map((r) => r.id)) : undefined;
  const body: Record<string, unknown> = { flavors: page.map((f) => view(c, f, specs ? (specs.get(f.id) ?? {}) : undefined, detail)) };
  if (page.length && page.length === limit && rows.length > limit) {
    body.flavors_links = [{ rel: 'next', href: `${c.api.publicUrl}/v2.1/flavors${detail ? '/detail' : ''}?limit=${limit}&marker=${page[page.length - 1].flavorid}` }];
  }
  return body;
}

const intField = (min: number) => ({ type: ['integer', 'string'], pattern: '^[0-9]*$', minimum: min, maximum: 2147483647 });
const createSchema = (v255: boolean) => ({
  type: 'object',
  properties: {
    flavor: {
      type: 'object',
      properties: {
        name: P.name,
        id: { type: ['string', 'number', 'null'], minLength: 1, maxLength: 255, pattern: '^(?! )[a-zA-Z0-9. _-]+(?<! )$' },
        ram: intField(1), vcpus: intField(1), disk: intField(0),
        'OS-FLV-EXT-DATA:ephemeral': intField(0), swap: intField(0),
        rxtx_factor: { type: ['number', 'string'], pattern: '^[0-9]+(\\.[0-9]+)?$', minimum: 0, maximum: 3.40282e38 },
        'os-flavor-access:is_public': P.bool,
        ...(v255 ? { description: P.description } : {}),
      },
      required: ['name', 'ram', 'vcpus', 'disk'],
      additionalProperties: false,
    },
  },
  required: ['flavor'],
  additionalProperties: false,
});

async function create(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-manage:create');
  const body = validate(createSchema(c.v.atLeast('2.55')), c.body).flavor;
  const db = c.api.cells.db;
  const num = (x: unknown, d = 0) => (x === undefined || x === '' ? d : Number(x));
  if (body.rxtx_factor !== undefined && Number(body.rxtx_factor) <= 0) throw new BadRequest(`Invalid input for field/attribute rxtx_factor. Value: ${body.rxtx_factor}. ${body.rxtx_factor} is less than or equal to the minimum of 0`);
  const flavorid = body.id === undefined || body.id === null ? crypto.randomUUID() : String(body.id);
  const name = String(body.name);
  if (await db.selectFrom('flavors').select('id').where('name', '=', name).executeTakeFirst()) throw new Conflict(`Flavor with name ${name} already exists.`);
  if (await db.selectFrom('flavors').select('id').where('flavorid', '=', flavorid).executeTakeFirst()) throw new Conflict(`Flavor with ID ${flavorid} already exists.`);
  try {
    await db.insertInto('flavors').values({
      flavorid, name, memory_mb: num(body.ram), vcpus: num(body.vcpus), root_gb: num(body.disk), ephemeral_gb: num(body['OS-FLV-EXT-DATA:ephemeral']),
      swap: num(body.swap), rxtx_factor: num(body.rxtx_factor, 1), disabled: 0, is_public: body['os-flavor-access:is_public'] === undefined ? 1 : toBool(body['os-flavor-access:is_public']) ? 1 : 0,
      description: body.description ?? null, created_at: now(),
    }).execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw new Conflict(`Flavor with ID ${flavorid} already exists.`);
    throw e;
  }
  const f = await getFlavor(c, flavorid);
  return { flavor: view(c, f, {}, true) };
}

async function update(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-manage:update');
  const body = validate({
    type: 'object', properties: { flavor: { type: 'object', properties: { description: P.description }, required: ['description'], additionalProperties: false } },
    required: ['flavor'], additionalProperties: false,
  }, c.body).flavor;
  const f = await getFlavor(c, c.params.id);
  await c.api.cells.db.updateTable('flavors').set({ description: body.description, updated_at: now() }).where('id', '=', f.id).execute();
  const specs = await extraSpecsOf(c.api.cells.db, [f.id]);
  return { flavor: view(c, { ...f, description: body.description }, specs.get(f.id) ?? {}, true) };
}

async function remove(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-manage:delete');
  const db = c.api.cells.db;
  const f = await db.selectFrom('flavors').selectAll().where('flavorid', '=', c.params.id).executeTakeFirst();
  if (!f) throw new NotFound(`Flavor ${c.params.id} could not be found.`);
  await db.deleteFrom('flavor_extra_specs').where('flavor_id', '=', f.id).execute();
  await db.deleteFrom('flavor_projects').where('flavor_id', '=', f.id).execute();
  await db.deleteFrom('flavors').where('id', '=', f.id).execute();
  return { status: 202 };
}

// --- extra specs ---
const specValue = { type: ['string', 'number', 'boolean'], minLength: 1, maxLength: 255 };
const specsSchema = {
  type: 'object',
  properties: { extra_specs: { type: 'object', patternProperties: { '^[a-zA-Z0-9-_:. ]{1,255}$': specValue }, additionalProperties: false } },
  required: ['extra_specs'], additionalProperties: false,
};
const specStr = (v: unknown) => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v));

async function specsIndex(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-extra-specs:index');
  const f = await getFlavor(c, c.params.id);
  return { extra_specs: (await extraSpecsOf(c.api.cells.db, [f.id])).get(f.id) ?? {} };
}

async function putSpecs(c: Ctx, f: FlavorRow, specs: Record<string, unknown>) {
  const db = c.api.cells.db;
  for (const [key, v] of Object.entries(specs)) {
    const value = specStr(v);
    if (typeof v === 'string' && (v.length < 1 || v.length > 255)) throw new BadRequest(`Invalid input for field/attribute ${key}. Value: ${v}.`);
    const r = await db.updateTable('flavor_extra_specs').set({ value }).where('flavor_id', '=', f.id).where('key', '=', key).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      try { await db.insertInto('flavor_extra_specs').values({ flavor_id: f.id, key, value }).execute(); } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        await db.updateTable('flavor_extra_specs').set({ value }).where('flavor_id', '=', f.id).where('key', '=', key).execute();
      }
    }
  }
}

async function specsCreate(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-extra-specs:create');
  const body = validate(specsSchema, c.body).extra_specs as Record<string, unknown>;
  const f = await getFlavor(c, c.params.id);
  await putSpecs(c, f, body);
  return { extra_specs: Object.fromEntries(Object.entries(body).map(([k, v]) => [k, specStr(v)])) };
}

async function specShow(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-extra-specs:show');
  const f = await getFlavor(c, c.params.id);
  const r = await c.api.cells.db.selectFrom('flavor_extra_specs').select(['key', 'value']).where('flavor_id', '=', f.id).where('key', '=', c.params.key).executeTakeFirst();
  if (!r) throw new NotFound(`Flavor ${f.flavorid} has no extra specs with key ${c.params.key}.`);
  return { [r.key]: r.value };
}

async function specUpdate(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-extra-specs:update');
  const body = validate({ type: 'object', patternProperties: { '^[a-zA-Z0-9-_:. ]{1,255}$': specValue }, additionalProperties: false }, c.body) as Record<string, unknown>;
  if (!body || !(c.params.key in body)) throw new BadRequest('Request body and URI mismatch');
  if (Object.keys(body).length > 1) throw new BadRequest('Request body contains too many items');
  const f = await getFlavor(c, c.params.id);
  await putSpecs(c, f, body);
  return { [c.params.key]: specStr(body[c.params.key]) };
}

async function specDelete(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-extra-specs:delete');
  const f = await getFlavor(c, c.params.id);
  const r = await c.api.cells.db.deleteFrom('flavor_extra_specs').where('flavor_id', '=', f.id).where('key', '=', c.params.key).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw new NotFound(`Flavor ${f.flavorid} has no extra specs with key ${c.params.key}.`);
  return { status: 200 };
}

// --- access ---
async function accessList(c: Ctx, f: FlavorRow) {
  const rows = await c.api.cells.db.selectFrom('flavor_projects').select('project_id').where('flavor_id', '=', f.id).orderBy('id').execute();
  return { flavor_access: rows.map((r) => ({ flavor_id: f.flavorid, tenant_id: r.project_id })) };
}

async function accessIndex(c: Ctx) {
  c.enforce('os_compute_api:os-flavor-access');
  const f = await getFlavor(c, c.params.id);
  if (f.is_public) throw new NotFound('Access list not available for public flavors.');
  return accessList(c, f);
}

async function action(c: Ctx) {
  const body = c.body ?? {};
  const db = c.api.cells.db;
  if (body && typeof body === 'object' && 'addTenantAccess' in body) {
    c.enforce('os_compute_api:os-flavor-access:add_tenant_access');
    const b = validate({ type: 'object', properties: { addTenantAccess: { type: 'object', properties: { tenant: { type: 'string', minLength: 1, maxLength: 255 } }, required: ['tenant'], additionalProperties: false } }, required: ['addTenantAccess'], additionalProperties: false }, body);
    const f = await getFlavor(c, c.params.id);
    if (f.is_public) throw new Conflict('Can not add access to a public flavor.');
    try {
      await db.insertInto('flavor_projects').values({ flavor_id: f.id, project_id: b.addTenantAccess.tenant }).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Flavor access already exists for flavor ${f.flavorid} and project ${b.addTenantAccess.tenant} combination.`);
      throw e;
    }
    return accessList(c, f);
  }
  if (body && typeof body === 'object' && 'removeTenantAccess' in body) {
    c.enforce('os_compute_api:os-flavor-access:remove_tenant_access');
    const b = validate({ type: 'object', properties: { removeTenantAccess: { type: 'object', properties: { tenant: { type: 'string', minLength: 1, maxLength: 255 } }, required: ['tenant'], additionalProperties: false } }, required: ['removeTenantAccess'], additionalProperties: false }, body);
    const f = await getFlavor(c, c.params.id);
    const r = await db.deleteFrom('flavor_projects').where('flavor_id', '=', f.id).where('project_id', '=', b.removeTenantAccess.tenant).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`Flavor access not found for ${f.flavorid} / ${b.removeTenantAccess.tenant} combination.`);
    return accessList(c, f);
  }
  throw new BadRequest('There is no such action: ' + Object.keys(body ?? {}).join(','));
}

export const flavorRoutes: ComputeRow[] = [
  { method: 'GET', path: '/flavors', errors: [], response: RESPONSES.flavorList, handler: (c) => list(c, false) },
  { method: 'GET', path: '/flavors/detail', errors: [], response: RESPONSES.flavorDetail, handler: (c) => list(c, true) },
  { method: 'GET', path: '/flavors/:id', errors: [], response: RESPONSES.flavorShow, handler: async (c) => {
    const f = await getFlavor(c, c.params.id);
    const specs = c.v.atLeast('2.61') ? (await extraSpecsOf(c.api.cells.db, [f.id])).get(f.id) ?? {} : undefined;
    return { flavor: view(c, f, specs, true) };
  } },
  { method: 'POST', path: '/flavors', policy: 'os_compute_api:os-flavor-manage:create', errors: [409], handler: create },
  { method: 'PUT', path: '/flavors/:id', policy: 'os_compute_api:os-flavor-manage:update', errors: [], handler: update, since: '2.55' },
  { method: 'DELETE', path: '/flavors/:id', policy: 'os_compute_api:os-flavor-manage:delete', errors: [], handler: remove },
  { method: 'GET', path: '/flavors/:id/os-extra_specs', policy: 'os_compute_api:os-flavor-extra-specs:index', errors: [], handler: specsIndex },
  { method: 'POST', path: '/flavors/:id/os-extra_specs', policy: 'os_compute_api:os-flavor-extra-specs:create', errors: [409], handler: specsCreate },
  { method: 'GET', path: '/flavors/:id/os-extra_specs/:key', policy: 'os_compute_api:os-flavor-extra-specs:show', errors: [], handler: specShow },
  { method: 'PUT', path: '/flavors/:id/os-extra_specs/:key', policy: 'os_compute_api:os-flavor-extra-specs:update', errors: [409], handler: specUpdate },
  { method: 'DELETE', path: '/flavors/:id/os-extra_specs/:key', policy: 'os_compute_api:os-flavor-extra-specs:delete', errors: [], handler: specDelete },
  { method: 'GET', path: '/flavors/:id/os-flavor-access', policy: 'os_compute_api:os-flavor-access', errors: [], handler: accessIndex },
  { method: 'POST', path: '/flavors/:id/action', errors: [409], handler: action },
];
