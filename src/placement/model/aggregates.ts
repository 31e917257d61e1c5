// Provider aggregates: plain uuid groupings (Nova host aggregates, sharing providers).
// Aggregate rows are created on first use and never deleted, as upstream.
import { PlacementStore, now } from './store.ts';
import { aggregateIds, bumpGeneration, getProvider, type Provider } from './providers.ts';
import { conflict, CODES } from '../errors.ts';

export async function providerAggregates(store: PlacementStore, rpId: number): Promise<string[]> {
  const rows = await store.db.selectFrom('resource_provider_aggregates as rpa').innerJoin('placement_aggregates as a', 'a.id', 'rpa.aggregate_id')
    .select('a.uuid').where('rpa.resource_provider_id', '=', rpId).orderBy('a.uuid').execute();
  return rows.map((r) => r.uuid);
}

/**
 * PUT /resource_providers/{uuid}/aggregates. From 1.19 the caller's generation is checked and
 * the generation bumped; before, neither (upstream behaviour).
 */
export async function setProviderAggregates(store: PlacementStore, uuid: string, uuids: string[], generation: number | undefined): Promise<{ provider: Provider; aggregates: string[] }> {
  const want = [...new Set(uuids)];
  return store.tx(async (trx) => {
    const p = await getProvider(trx, uuid);
    if (generation !== undefined && generation !== p.generation) {
      throw conflict(`Resource provider's generation already changed. Please update the generation and try again.`, CODES.CONCURRENT_UPDATE);
    }
    const ts = now();
    await store.insertIgnore(trx, 'placement_aggregates', want.map((u) => ({ uuid: u, created_at: ts })));
    const ids = await aggregateIds(trx, want);
    const current = new Set((await trx.selectFrom('resource_provider_aggregates').select('aggregate_id').where('resource_provider_id', '=', p.id).execute())
      .map((r) => Number(r.aggregate_id)));
    const wantIds = new Set(ids.values());
    const del = [...current].filter((x) => !wantIds.has(x));
    const add = [...wantIds].filter((x) => !current.has(x));
    if (del.length) await trx.deleteFrom('resource_provider_aggregates').where('resource_provider_id', '=', p.id).where('aggregate_id', 'in', del).execute();
    await store.insertIgnore(trx, 'resource_provider_aggregates', add.map((aggregate_id) => ({ resource_provider_id: p.id, aggregate_id })));
    let gen = p.generation;
    if (generation !== undefined) gen = await bumpGeneration(trx, p, ts);
    const aggregates = (await trx.selectFrom('resource_provider_aggregates as rpa').innerJoin('placement_aggregates as a', 'a.id', 'rpa.aggregate_id')
      .select('a.uuid').where('rpa.resource_provider_id', '=', p.id).orderBy('a.uuid').execute()).map((r) => r.uuid);
    return { provider: { ...p, generation: gen }, aggregates };
  });
}
