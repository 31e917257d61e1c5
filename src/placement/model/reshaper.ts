// POST /reshaper: moves inventory and the allocations against it between providers of a tree
// in one transaction (e.g. VGPU inventory moving from a compute node to new child providers).
// Order inside the transaction: check every provider generation, take the named consumers'
// allocations off, replace the inventories (so a class may disappear from the old provider),
// then write the new allocations with the usual capacity and consumer generation checks.
import { PlacementStore, now } from './store.ts';
import { getProvider } from './providers.ts';
import { applyInventories, inventoryClassIds, type InventoryFields } from './inventories.ts';
import { lockedAllocations, writeAllocations, type ConsumerWrite, type WriteOptions } from './allocations.ts';
import { badRequest, conflict, CODES } from '../errors.ts';

export interface ReshapeInventory { generation: number; inventories: Record<string, InventoryFields> }

export async function reshape(store: PlacementStore, inventories: Record<string, ReshapeInventory>, writes: ConsumerWrite[], opts: WriteOptions): Promise<void> {
  const classIds = new Map<string, Map<string, number>>();
  for (const [uuid, inv] of Object.entries(inventories)) classIds.set(uuid, await inventoryClassIds(store, uuid, inv.inventories));
  await writeAllocations(store, writes, opts, async (trx) => {
    const ts = now();
    const providers = [];
    for (const [uuid, inv] of Object.entries(inventories)) {
      const p = await getProvider(trx, uuid).catch(() => {
        throw badRequest(`Resource provider ${uuid} in inventories not found.`, CODES.RESOURCE_PROVIDER_NOT_FOUND);
      });
      if (p.generation !== inv.generation) {
        throw conflict(`Resource provider's generation already changed. Please update the generation and try again.`, CODES.CONCURRENT_UPDATE);
      }
      providers.push(p);
    }
    // Take the consumers' current allocations off so their classes can move.
    const uuids = writes.map((w) => w.uuid);
    if (uuids.length) {
      const rows = await lockedAllocations(store, trx, uuids);
      const sums = new Map<string, number>();
      for (const r of rows) {
        const k = `${Number(r.resource_provider_id)}:${Number(r.resource_class_id)}`;
        sums.set(k, (sums.get(k) ?? 0) + Number(r.used));
      }
      const order = (k: string) => k.split(':').map(Number);
      for (const k of [...sums.keys()].sort((a, b) => order(a)[0] - order(b)[0] || order(a)[1] - order(b)[1])) {
        const [rp, rc] = k.split(':').map(Number);
        const amount = sums.get(k)!;
        await trx.updateTable('inventories').set((eb) => ({ used: eb('used', '-', amount) }))
          .where('resource_provider_id', '=', rp).where('resource_class_id', '=', rc).execute();
      }
      if (rows.length) await trx.deleteFrom('allocations').where('id', 'in', rows.map((r) => Number(r.id))).execute();
    }
    const bumped = new Set<number>();
    for (const p of providers.sort((a, b) => a.id - b.id)) {
      await applyInventories(store, trx, p, classIds.get(p.uuid)!, inventories[p.uuid].inventories, ts);
      const r = await trx.updateTable('resource_providers').set({ generation: p.generation + 1, updated_at: ts })
        .where('id', '=', p.id).where('generation', '=', p.generation).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw conflict('resource provider generation conflict', CODES.CONCURRENT_UPDATE);
      bumped.add(p.id);
    }
    return bumped;
  });
}
