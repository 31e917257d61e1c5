// os-aggregates: host aggregates in the API database (aggregates, aggregate_hosts,
// aggregate_metadata), Nova's shapes, messages and status codes (200 for create/delete/actions as
// Nova keeps for compatibility), 2.41's uuid. An `availability_zone` metadata key puts the
// aggregate's hosts in that zone (servers.ts hostAzMap, os-availability-zone, os-services, the
// scheduler and the conductor read it); a host may sit in one zone only. As Nova does, adding or
// removing a host mirrors the aggregate's uuid onto the aggregates of the host's compute-node
// resource providers in placement (a placement failure is logged, never returned to the caller).
import { randomUUID } from 'node:crypto';
import { BadRequest, Conflict, NotFound } from '../../common/errors.ts';
import { isoMicro, now, pyRepr } from '../util.ts';
import { insertId } from '../store.ts';
import { validate, P } from './validation.ts';
import type { Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import type { ApiDb } from '../db/tables.ts';
import { hostZones } from '../availability-zones.ts';

interface AggRow { id: number; uuid: string; name: string; created_at: string; updated_at: string | null }
interface Agg extends AggRow { hosts: string[]; metadata: Record<string, string> }

const AZ = { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^:]*$' };
const AZ_OR_NULL = { oneOf: [AZ, { type: 'null' }] };
const HOST = { type: 'string', minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-._]*$' };
const METADATA_WITH_NULL = {
  type: 'object',
  patternProperties: { '^[a-zA-Z0-9-_:. ]{1,255}$': { type: ['string', 'null'], maxLength: 255 } },
  additionalProperties: false,
};

function wrap(key: string, inner: Record<string, unknown>) {
  return { type: 'object', properties: { [key]: inner }, required: [key], additionalProperties: false };
}

const CREATE = wrap('aggregate', { type: 'object', properties: { name: P.name, availability_zone: AZ_OR_NULL }, required: ['name'], additionalProperties: false });
const UPDATE = wrap('aggregate', {
  type: 'object', properties: { name: P.nameWithSpaces, availability_zone: AZ_OR_NULL }, additionalProperties: false,
  anyOf: [{ required: ['name'] }, { required: ['availability_zone'] }],
});
const ADD_HOST = wrap('add_host', { type: 'object', properties: { host: HOST }, required: ['host'], additionalProperties: false });
const REMOVE_HOST = wrap('remove_host', { type: 'object', properties: { host: HOST }, required: ['host'], additionalProperties: false });
const SET_METADATA = wrap('set_metadata', { type: 'object', properties: { metadata: METADATA_WITH_NULL }, required: ['metadata'], additionalProperties: false });

const db = (c: Ctx): ApiDb => c.api.cells.db;

async function load(c: Ctx, rows: AggRow[]): Promise<Agg[]> {
  if (!rows.length) return [];
  const ids = rows.map((r) => r.id);
  const hosts = await db(c).selectFrom('aggregate_hosts').select(['aggregate_id', 'host']).where('aggregate_id', 'in', ids).orderBy('id').execute();
  const meta = await db(c).selectFrom('aggregate_metadata').select(['aggregate_id', 'key', 'value']).where('aggregate_id', 'in', ids).orderBy('id').execute();
  return rows.map((r) => ({
    ...r, id: Number(r.id),
    hosts: hosts.filter((h) => Number(h.aggregate_id) === Number(r.id)).map((h) => h.host),
    metadata: Object.fromEntries(meta.filter((m) => Number(m.aggregate_id) === Number(r.id)).map((m) => [m.key, m.value])),
  }));
}

/** The aggregate of a path id; a non-integer id is a 400 as Nova's validate_integer. */
async function getAgg(c: Ctx, id: string): Promise<Agg> {
  if (!/^\s*-?\d+\s*$/.test(id)) throw new BadRequest(`Invalid input received: id must be an integer`);
  const n = Number(id);
  const row = Number.isSafeInteger(n) && n >= -2147483648 && n <= 2147483647
    ? await db(c).selectFrom('aggregates').selectAll().where('id', '=', n).executeTakeFirst() as AggRow | undefined
    : undefined;
  if (!row) throw new NotFound(`Aggregate ${id.trim()} could not be found.`);
  return (await load(c, [row]))[0];
}

function view(c: Ctx, a: Agg, forCreate = false): Record<string, unknown> {
  const o: Record<string, unknown> = {
    availability_zone: a.metadata.availability_zone ?? null,
    created_at: isoMicro(a.created_at),
    deleted: false,
    deleted_at: null,
    id: a.id,
    name: a.name,
    updated_at: isoMicro(a.updated_at),
  };
  if (!forCreate) { o.hosts = a.hosts; o.metadata = a.metadata; }
  if (c.v.atLeast('2.41')) o.uuid = a.uuid;
  return { aggregate: o };
}

async function nameTaken(c: Ctx, name: string, exceptId?: number): Promise<boolean> {
  let q = db(c).selectFrom('aggregates').select('id').where('name', '=', name);
  if (exceptId !== undefined) q = q.where('id', '!=', exceptId);
  return (await q.execute()).length > 0;
}

/** Nova's is_safe_to_update_az: a non-empty zone, and no host of the aggregate in another zone. */
async function checkAz(c: Ctx, agg: Agg, metadata: Record<string, unknown>, hosts: string[], fail: (reason: string) => Error): Promise<void> {
  if (!('availability_zone' in metadata)) return;
  const az = metadata.availability_zone;
  if (!az) throw fail(`Aggregate ${agg.name} does not support empty named availability zone`);
  if (typeof az === 'string' && az.includes(':')) throw fail(`Availability zone name ${az} may not contain ':'`);
  if (!hosts.length) return;
  const rows = await hostZones(db(c), hosts);
  // One entry per (aggregate, zone), as a DISTINCT over both gave before.
  const pairs = new Map(rows.map((r) => [`${r.aggregateId}\0${r.zone}`, r]));
  const conflicting = [...pairs.values()].filter((r) => r.aggregateId !== agg.id && r.zone !== az).map((r) => r.zone);
  if (conflicting.length) throw fail(`One or more hosts already in availability zone(s) ${pyRepr(conflicting)}`);
}

/** Changing the zone of hosts that run instances would strand them (Nova refuses too). */
async function checkNoInstances(c: Ctx, agg: Agg, metadata: Record<string, unknown>, fail: (reason: string) => Error): Promise<void> {
  if (!('availability_zone' in metadata) || metadata.availability_zone === (agg.metadata.availability_zone ?? undefined) || !agg.hosts.length) return;
  for (const { db: cdb } of await c.api.cells.all({ includeCell0: false })) {
    const r = await cdb.selectFrom('instances').select('id').where('host', 'in', agg.hosts).where('deleted', '=', 0).limit(1).execute();
    if (r.length) throw fail(`The availability zone of aggregate ${agg.name} can not be changed while its hosts run instances`);
  }
}

/** The compute-node provider uuids of a nova-compute host; undefined when no cell knows the host. */
async function computeHost(c: Ctx, host: string): Promise<string[] | undefined> {
  for (const { db: cdb } of await c.api.cells.all({ includeCell0: false })) {
    const svc = await cdb.selectFrom('services').select(['id', 'host']).where('host', '=', host).where('binary', '=', 'nova-compute').executeTakeFirst();
    // An exact match: MariaDB's default collation compares case-insensitively.
    if (!svc || svc.host !== host) continue;
    const nodes = await cdb.selectFrom('compute_nodes').select('uuid').where('host', '=', host).execute();
    return nodes.map((n) => n.uuid as string);
  }
  return undefined;
}

async function mirrorToPlacement(c: Ctx, agg: Agg, host: string, providers: string[], add: boolean): Promise<void> {
  for (const rp of providers) {
    try {
      const found = await c.api.placement.updateProviderAggregates(rp, add ? [agg.uuid] : [], add ? [] : [agg.uuid]);
      if (!found) c.api.logger.warn({ host, rp, aggregate: agg.uuid }, 'compute node resource provider not found in placement; aggregate not mirrored');
    } catch (e) {
      c.api.logger.warn({ err: e, host, rp, aggregate: agg.uuid }, `failed to ${add ? 'add' : 'remove'} aggregate ${agg.uuid} ${add ? 'to' : 'from'} the provider of host ${host} in placement`);
    }
  }
}

async function setMeta(c: Ctx, aggId: number, metadata: Record<string, string | null>): Promise<void> {
  for (const [k, v] of Object.entries(metadata)) {
    if (v === null) {
      await db(c).deleteFrom('aggregate_metadata').where('aggregate_id', '=', aggId).where('key', '=', k).execute();
      continue;
    }
    const r = await db(c).updateTable('aggregate_metadata').set({ value: v }).where('aggregate_id', '=', aggId).where('key', '=', k).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      const exists = await db(c).selectFrom('aggregate_metadata').select('id').where('aggregate_id', '=', aggId).where('key', '=', k).executeTakeFirst();
      if (!exists) await db(c).insertInto('aggregate_metadata').values({ aggregate_id: aggId, key: k, value: v }).execute();
    }
  }
}

const strip = (s: string) => s.trim();

async function list(c: Ctx) {
  c.enforce('os_compute_api:os-aggregates:index', {});
  const rows = await db(c).selectFrom('aggregates').selectAll().orderBy('id').execute() as AggRow[];
  return { aggregates: (await load(c, rows)).map((a) => view(c, a).aggregate) };
}

async function create(c: Ctx) {
  c.enforce('os_compute_api:os-aggregates:create', {});
  const b = validate(CREATE, c.body).aggregate;
  const name = strip(b.name);
  const az: string | undefined = b.availability_zone ? strip(b.availability_zone) : undefined;
  if (await nameTaken(c, name)) throw new Conflict(`Aggregate ${name} already exists.`);
  const uuid = randomUUID();
  const id = await insertId(db(c), 'aggregates', { uuid, name, created_at: now(), updated_at: null });
  if (az) await db(c).insertInto('aggregate_metadata').values({ aggregate_id: id, key: 'availability_zone', value: az }).execute();
  return view(c, await getAgg(c, String(id)), true);
}

async function show(c: Ctx) {
  c.enforce('os_compute_api:os-aggregates:show', {});
  return view(c, await getAgg(c, c.params.id));
}

async function update(c: Ctx) {
  c.enforce('os_compute_api:os-aggregates:update', {});
  const b = validate(UPDATE, c.body).aggregate;
  const agg = await getAgg(c, c.params.id);
  const fail = (reason: string) => new BadRequest(`Cannot update aggregate ${agg.id}. Reason: ${reason}.`);
  if (b.name !== undefined) {
    const name = strip(b.name);
    if (await nameTaken(c, name, agg.id)) throw new Conflict(`Aggregate ${name} already exists.`);
    await db(c).updateTable('aggregates').set({ name, updated_at: now() }).where('id', '=', agg.id).execute();
    agg.name = name;
  }
  if ('availability_zone' in b) {
    const md = { availability_zone: b.availability_zone === null ? null : strip(b.availability_zone) };
    await checkAz(c, agg, md, agg.hosts, fail);
    await checkNoInstances(c, agg, md, fail);
    await setMeta(c, agg.id, md);
    await db(c).updateTable('aggregates').set({ updated_at: now() }).where('id', '=', agg.id).execute();
  }
  return view(c, await getAgg(c, String(agg.id)));
}

async function remove(c: Ctx) {
  c.enforce('os_compute_api:os-aggregates:delete', {});
  const agg = await getAgg(c, c.params.id);
  if (agg.hosts.length) throw new BadRequest(`Cannot remove host from aggregate ${agg.id}. Reason: Host aggregate is not empty.`);
  await db(c).deleteFrom('aggregate_metadata').where('aggregate_id', '=', agg.id).execute();
  await db(c).deleteFrom('aggregates').where('id', '=', agg.id).execute();
  return { status: 200 };
}

async function action(c: Ctx) {
  const body = c.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('Malformed request body');
  const keys = Object.keys(body);
  const name = keys.find((k) => k === 'add_host' || k === 'remove_host' || k === 'set_metadata');
  if (!name) throw new BadRequest(keys.length ? `There is no such action: ${keys[0]}` : 'Malformed request body');

  if (name === 'add_host') {
    const host: string = validate(ADD_HOST, body).add_host.host;
    c.enforce('os_compute_api:os-aggregates:add_host', {});
    const providers = await computeHost(c, host);
    if (!providers) throw new NotFound(`Compute host ${host} could not be found.`);
    const agg = await getAgg(c, c.params.id);
    const fail = (reason: string) => new Conflict(`Cannot add host to aggregate ${agg.id}. Reason: ${reason}.`);
    await checkAz(c, agg, agg.metadata, [host], fail);
    if (agg.hosts.includes(host)) throw new Conflict(`Aggregate ${agg.id} already has host ${host}.`);
    try {
      await db(c).insertInto('aggregate_hosts').values({ aggregate_id: agg.id, host }).execute();
    } catch (e) {
      if ((await db(c).selectFrom('aggregate_hosts').select('id').where('aggregate_id', '=', agg.id).where('host', '=', host).execute()).length) {
        throw new Conflict(`Aggregate ${agg.id} already has host ${host}.`);
      }
      throw e;
    }
    await mirrorToPlacement(c, agg, host, providers, true);
    return view(c, await getAgg(c, String(agg.id)));
  }

  if (name === 'remove_host') {
    const host: string = validate(REMOVE_HOST, body).remove_host.host;
    c.enforce('os_compute_api:os-aggregates:remove_host', {});
    const notFound = () => new NotFound(`Cannot remove host ${host} in aggregate ${c.params.id}`);
    const providers = await computeHost(c, host);
    if (!providers) throw notFound();
    let agg: Agg;
    try { agg = await getAgg(c, c.params.id); } catch (e) { if (e instanceof NotFound) throw notFound(); throw e; }
    if (!agg.hosts.includes(host)) throw notFound();
    await db(c).deleteFrom('aggregate_hosts').where('aggregate_id', '=', agg.id).where('host', '=', host).execute();
    await mirrorToPlacement(c, agg, host, providers, false);
    return view(c, await getAgg(c, String(agg.id)));
  }

  const metadata: Record<string, string | null> = validate(SET_METADATA, body).set_metadata.metadata;
  c.enforce('os_compute_api:os-aggregates:set_metadata', {});
  const agg = await getAgg(c, c.params.id);
  const fail = (reason: string) => new BadRequest(`Cannot update metadata of aggregate ${agg.id}. Reason: ${reason}.`);
  await checkAz(c, agg, metadata, agg.hosts, fail);
  await checkNoInstances(c, agg, metadata, fail);
  await setMeta(c, agg.id, metadata);
  await db(c).updateTable('aggregates').set({ updated_at: now() }).where('id', '=', agg.id).execute();
  return view(c, await getAgg(c, String(agg.id)));
}

export const aggregateRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-aggregates', policy: 'os_compute_api:os-aggregates:index', errors: [], handler: list },
  { method: 'POST', path: '/os-aggregates', policy: 'os_compute_api:os-aggregates:create', errors: [409], handler: create },
  { method: 'GET', path: '/os-aggregates/:id', policy: 'os_compute_api:os-aggregates:show', errors: [], handler: show },
  { method: 'PUT', path: '/os-aggregates/:id', policy: 'os_compute_api:os-aggregates:update', errors: [409], handler: update },
  { method: 'DELETE', path: '/os-aggregates/:id', policy: 'os_compute_api:os-aggregates:delete', errors: [409], handler: remove },
  { method: 'POST', path: '/os-aggregates/:id/action', errors: [409], handler: action },
];
