// Inventories: what a provider has of each resource class, with the limits of a single
// allocation (min_unit, max_unit, step_size) and the overcommit factor. Capacity is
// (total - reserved) * allocation_ratio. Every change bumps the provider generation, guarded by
// the generation the caller saw.
import type { Insertable } from 'kysely';
import type { InventoryRow } from '../db/schema.ts';
import { PlacementStore, now, isUniqueViolation, type Tx } from './store.ts';
import { bumpGeneration, getProvider, type Provider } from './providers.ts';
import { badRequest, conflict, notFound, CODES } from '../errors.ts';

export const MAX_INT = 2147483647;

export interface InventoryFields {
  total: number;
  reserved: number;
  min_unit: number;
  max_unit: number;
  step_size: number;
  allocation_ratio: number;
}

export interface Inventory extends InventoryFields {
  resource_class: string;
  used: number;
  created_at: string;
  updated_at: string | null;
}

export const INVENTORY_DEFAULTS: Omit<InventoryFields, 'total'> = {
  reserved: 0, min_unit: 1, max_unit: MAX_INT, step_size: 1, allocation_ratio: 1.0,
};

export const capacityOf = (i: InventoryFields) => Math.trunc((i.total - i.reserved) * i.allocation_ratio);

/**
 * Checks one inventory record. Before 1.26 reserved must be below total; from 1.26 it may
 * equal it. min_unit above max_unit is refused too (upstream accepts it, but such an inventory
 * can never be allocated).
 */
export function validateInventory(rp: string, rc: string, inv: InventoryFields, reservedMayEqualTotal: boolean): void {
  const cap = capacityOf(inv);
  if (reservedMayEqualTotal ? cap < 0 : cap <= 0) {
    const why = reservedMayEqualTotal ? 'The reserved value is greater than total.' : 'The reserved value is greater than or equal to total.';
    throw badRequest(`Unable to update inventory for resource provider ${rp}: Invalid inventory for '${rc}' on resource provider '${rp}'. ${why}`);
  }
  if (inv.min_unit > inv.max_unit) {
    throw badRequest(`Unable to update inventory for resource provider ${rp}: Invalid inventory for '${rc}' on resource provider '${rp}'. The min_unit value is greater than max_unit.`);
  }
}

export async function listInventories(store: PlacementStore, db: Tx, rpId: number): Promise<Inventory[]> {
  const rows = await db.selectFrom('inventories').selectAll().where('resource_provider_id', '=', rpId).orderBy('resource_class_id').execute();
  await store.rc.names(rows.map((r) => Number(r.resource_class_id)), db);
  return rows.map((r) => ({
    resource_class: store.rc.nameSync(Number(r.resource_class_id)),
    total: Number(r.total), reserved: Number(r.reserved), min_unit: Number(r.min_unit), max_unit: Number(r.max_unit),
    step_size: Number(r.step_size), allocation_ratio: Number(r.allocation_ratio), used: Number(r.used),
    created_at: r.created_at, updated_at: r.updated_at,
  }));
}

function inUse(rp: string, classes: string[]) {
  return conflict(`update conflict: Inventory for '${classes.join(', ')}' on resource provider '${rp}' in use.`, CODES.INVENTORY_INUSE);
}

async function classIds(store: PlacementStore, rp: string, classes: string[]): Promise<Map<string, number>> {
  const ids = await store.rc.ids(classes);
  const missing = classes.filter((c) => !ids.has(c));
  if (missing.length) {
    throw badRequest(`Unknown resource class in inventory for resource provider ${rp}: No such resource class ${missing.join(', ')}.`);
  }
  return ids;
}

/**
 * Replaces all of a provider's inventory (PUT .../inventories; DELETE with an empty set).
 * Classes that disappear must have no allocations (409 placement.inventory.inuse). Lowering a
 * total below what is allocated is accepted with a warning, as upstream does: the hardware
 * shrank, and refusing would wedge the compute agent that reports it.
 */
export async function setInventories(store: PlacementStore, uuid: string, generation: number | undefined, inventories: Record<string, InventoryFields>): Promise<{ provider: Provider; inventories: Inventory[] }> {
  const ids = await classIds(store, uuid, Object.keys(inventories));
  return store.tx(async (trx) => {
    const p = await getProvider(trx, uuid);
    const expected = generation ?? p.generation;
    if (expected !== p.generation) throw conflict('resource provider generation conflict', CODES.CONCURRENT_UPDATE);
    const ts = now();
    await applyInventories(store, trx, p, ids, inventories, ts);
    await bumpGeneration(trx, p, ts);
    return { provider: { ...p, generation: p.generation + 1 }, inventories: await listInventories(store, trx, p.id) };
  }).catch((e) => {
    if (isUniqueViolation(e)) throw conflict('update conflict: another request changed this inventory; retry', CODES.CONCURRENT_UPDATE);
    throw e;
  });
}

/** Resolves class names for an inventory set; unknown ones are a 400. */
export async function inventoryClassIds(store: PlacementStore, uuid: string, inventories: Record<string, InventoryFields>): Promise<Map<string, number>> {
  return classIds(store, uuid, Object.keys(inventories));
}

/**
 * Makes a provider's inventory exactly `inventories`, inside the caller's transaction (no
 * generation change). Shared by PUT .../inventories and the reshaper.
 */
export async function applyInventories(store: PlacementStore, trx: Tx, p: Provider, ids: Map<string, number>, inventories: Record<string, InventoryFields>, ts: string): Promise<void> {
  const uuid = p.uuid;
  const existing = await trx.selectFrom('inventories').select(['id', 'resource_class_id', 'used'])
    .where('resource_provider_id', '=', p.id).execute();
  const wanted = new Set(ids.values());
  const toDelete = existing.filter((r) => !wanted.has(Number(r.resource_class_id)));
  if (toDelete.length) {
    const delIds = toDelete.map((r) => Number(r.resource_class_id));
    // `used` is the cached sum; the allocations table is the authority for "in use".
    const busy = await trx.selectFrom('allocations').select('resource_class_id').distinct()
      .where('resource_provider_id', '=', p.id).where('resource_class_id', 'in', delIds).execute();
    if (busy.length) {
      await store.rc.names(busy.map((b) => Number(b.resource_class_id)), trx);
      throw inUse(uuid, busy.map((b) => store.rc.nameSync(Number(b.resource_class_id))));
    }
    // `used = 0` is re-evaluated on the latest row by the DELETE itself: an allocation that
    // committed after the check above keeps its inventory and turns this into a 409.
    const r = await trx.deleteFrom('inventories').where('resource_provider_id', '=', p.id).where('resource_class_id', 'in', delIds)
      .where('used', '=', 0).executeTakeFirst();
    if (Number(r.numDeletedRows) !== delIds.length) {
      await store.rc.names(delIds, trx);
      throw inUse(uuid, delIds.map((id) => store.rc.nameSync(id)));
    }
  }
  const have = new Map(existing.map((r) => [Number(r.resource_class_id), r]));
  const added: Insertable<InventoryRow>[] = [];
  for (const [rc, inv] of Object.entries(inventories)) {
    const rcId = ids.get(rc)!;
    const cur = have.get(rcId);
    if (cur) {
      if (Number(cur.used) > capacityOf(inv)) {
        store.logger?.warn({ provider: uuid, resource_class: rc }, `Resource provider ${uuid} is now over-capacity for ${rc}`);
      }
      await trx.updateTable('inventories').set({ ...inv, updated_at: ts }).where('id', '=', Number(cur.id)).execute();
    } else {
      added.push({ resource_provider_id: p.id, resource_class_id: rcId, ...inv, used: 0, created_at: ts, updated_at: null });
    }
  }
  // One statement for the new classes (a new compute node: VCPU, MEMORY_MB and DISK_GB at once).
  if (added.length) await trx.insertInto('inventories').values(added).execute();
}

/** POST .../inventories: adds one class the provider does not have yet. */
export async function createInventory(store: PlacementStore, uuid: string, rc: string, inv: InventoryFields): Promise<{ provider: Provider; inventory: Inventory }> {
  const rcId = await store.rc.id(rc);
  try {
    return await store.tx(async (trx) => {
      const p = await getProvider(trx, uuid);
      if (rcId === undefined) throw badRequest(`Unable to create inventory for resource provider ${uuid}: No such resource class ${rc}.`);
      const ts = now();
      await trx.insertInto('inventories').values({
        resource_provider_id: p.id, resource_class_id: rcId, ...inv, used: 0, created_at: ts, updated_at: null,
      }).execute();
      await bumpGeneration(trx, p, ts);
      const all = await listInventories(store, trx, p.id);
      return { provider: { ...p, generation: p.generation + 1 }, inventory: all.find((i) => i.resource_class === rc)! };
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw conflict(`Update conflict: Inventory for ${rc} on resource provider ${uuid} already exists.`, CODES.CONCURRENT_UPDATE);
    throw e;
  }
}

/** PUT .../inventories/{rc}: changes one existing class. */
export async function updateInventory(store: PlacementStore, uuid: string, rc: string, generation: number, inv: InventoryFields): Promise<{ provider: Provider; inventory: Inventory }> {
  const rcId = await store.rc.id(rc);
  return store.tx(async (trx) => {
    const p = await getProvider(trx, uuid);
    if (generation !== p.generation) throw conflict('resource provider generation conflict', CODES.CONCURRENT_UPDATE);
    if (rcId === undefined) throw notFound(`No such resource class ${rc}.`);
    const cur = await trx.selectFrom('inventories').select(['id', 'used']).where('resource_provider_id', '=', p.id)
      .where('resource_class_id', '=', rcId).executeTakeFirst();
    if (!cur) throw badRequest(`No inventory record with resource class for resource provider ${uuid}: No inventory of class ${rc} found.`);
    if (Number(cur.used) > capacityOf(inv)) {
      store.logger?.warn({ provider: uuid, resource_class: rc }, `Resource provider ${uuid} is now over-capacity for ${rc}`);
    }
    const ts = now();
    await trx.updateTable('inventories').set({ ...inv, updated_at: ts }).where('id', '=', Number(cur.id)).execute();
    await bumpGeneration(trx, p, ts);
    const all = await listInventories(store, trx, p.id);
    return { provider: { ...p, generation: p.generation + 1 }, inventory: all.find((i) => i.resource_class === rc)! };
  });
}

/** DELETE .../inventories/{rc}. */
export async function deleteInventory(store: PlacementStore, uuid: string, rc: string): Promise<void> {
  const rcId = await store.rc.id(rc);
  await store.tx(async (trx) => {
    const p = await getProvider(trx, uuid);
    if (rcId === undefined) throw notFound(`No such resource class ${rc}.`);
    const busy = await trx.selectFrom('allocations').select('id').where('resource_provider_id', '=', p.id)
      .where('resource_class_id', '=', rcId).limit(1).executeTakeFirst();
    if (busy) throw conflict(`Unable to delete inventory of class ${rc}: Inventory for '${rc}' on resource provider '${uuid}' in use.`, CODES.INVENTORY_INUSE);
    const exists = await trx.selectFrom('inventories').select('id').where('resource_provider_id', '=', p.id).where('resource_class_id', '=', rcId).executeTakeFirst();
    if (!exists) throw notFound(`No inventory of class ${rc} found for delete`);
    const r = await trx.deleteFrom('inventories').where('id', '=', Number(exists.id)).where('used', '=', 0).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw conflict(`Unable to delete inventory of class ${rc}: Inventory for '${rc}' on resource provider '${uuid}' in use.`, CODES.INVENTORY_INUSE);
    await bumpGeneration(trx, p);
  });
}
