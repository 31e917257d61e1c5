// Traits: the standard os-traits names (synced at start) and CUSTOM_* ones, and the set of
// traits on each provider (guarded by the provider generation).
import { sql } from 'kysely';
import { PlacementStore, now, isUniqueViolation } from './store.ts';
import { bumpGeneration, getProviderWithTraitIds, type Provider } from './providers.ts';
import { badRequest, conflict, notFound, CODES } from '../errors.ts';

export interface TraitFilter { names?: string[]; prefix?: string; associated?: boolean }

export async function listTraits(store: PlacementStore, f: TraitFilter): Promise<string[]> {
  let q = store.db.selectFrom('traits as t').select('t.name');
  if (f.names) q = q.where('t.name', 'in', f.names.length ? f.names : ['']);
  // substr() rather than LIKE: '_' is a LIKE wildcard and escaping it differs per dialect.
  if (f.prefix !== undefined) q = q.where(sql<boolean>`substr(t.name, 1, ${sql.lit(f.prefix.length)}) = ${f.prefix}`);
  if (f.associated !== undefined) {
    const assoc = (eb: any) => eb.exists(eb.selectFrom('resource_provider_traits as rpt').select(sql.lit(1).as('one')).whereRef('rpt.trait_id', '=', 't.id'));
    q = q.where((eb) => (f.associated ? assoc(eb) : eb.not(assoc(eb))));
  }
  return (await q.orderBy('t.name').execute()).map((r) => r.name);
}

export async function findTrait(store: PlacementStore, name: string) {
  return store.db.selectFrom('traits').select(['id', 'name', 'created_at', 'updated_at']).where('name', '=', name).executeTakeFirst();
}

/** PUT /traits/{name}: true when created. */
export async function ensureTrait(store: PlacementStore, name: string): Promise<{ created: boolean; modified: string }> {
  const existing = await findTrait(store, name);
  if (existing) return { created: false, modified: existing.updated_at ?? existing.created_at };
  const ts = now();
  try {
    await store.db.insertInto('traits').values({ name, created_at: ts, updated_at: null }).execute();
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    return { created: false, modified: ts };
  }
  await store.traits.reload();
  return { created: true, modified: ts };
}

export async function deleteTrait(store: PlacementStore, name: string): Promise<void> {
  await store.tx(async (trx) => {
    const t = await trx.selectFrom('traits').select('id').where('name', '=', name).executeTakeFirst();
    if (!t) throw notFound(`The trait ${name} does not exist.`);
    if (!name.startsWith('CUSTOM_')) throw badRequest(`Cannot delete standard trait ${name}.`);
    const used = await trx.selectFrom('resource_provider_traits').select('trait_id').where('trait_id', '=', Number(t.id)).limit(1).executeTakeFirst();
    if (used) throw conflict(`The trait ${name} is in use by a resource provider.`);
    await trx.deleteFrom('traits').where('id', '=', Number(t.id)).execute();
  });
  store.traits.forget(name);
}

export async function providerTraits(store: PlacementStore, rpId: number): Promise<string[]> {
  const rows = await store.db.selectFrom('resource_provider_traits as rpt').innerJoin('traits as t', 't.id', 'rpt.trait_id')
    .select('t.name').where('rpt.resource_provider_id', '=', rpId).orderBy('t.name').execute();
  return rows.map((r) => r.name);
}

/**
 * PUT /resource_providers/{uuid}/traits (and DELETE with an empty list). The generation is
 * checked always and bumped only when the set changes, as upstream.
 */
export async function setProviderTraits(store: PlacementStore, uuid: string, generation: number | undefined, names: string[]): Promise<{ provider: Provider; traits: string[] }> {
  const ids = await store.traits.ids(names);
  const missing = [...new Set(names)].filter((n) => !ids.has(n));
  return store.tx(async (trx) => {
    const { provider: p, traitIds } = await getProviderWithTraitIds(trx, uuid);
    if (generation !== undefined && generation !== p.generation) {
      throw conflict(`Resource provider's generation already changed. Please update the generation and try again.`, CODES.CONCURRENT_UPDATE);
    }
    if (missing.length) throw badRequest(`No such trait(s): ${missing.join(', ')}.`);
    const current = new Set(traitIds);
    const want = new Set(ids.values());
    const add = [...want].filter((x) => !current.has(x));
    const del = [...current].filter((x) => !want.has(x));
    let gen = p.generation;
    if (add.length || del.length) {
      if (del.length) await trx.deleteFrom('resource_provider_traits').where('resource_provider_id', '=', p.id).where('trait_id', 'in', del).execute();
      await store.insertIgnore(trx, 'resource_provider_traits', add.map((trait_id) => ({ resource_provider_id: p.id, trait_id })));
      gen = await bumpGeneration(trx, p);
    }
    // The provider now has exactly the names asked for (no read needed to say which).
    return { provider: { ...p, generation: gen }, traits: [...ids.keys()].sort() };
  });
}
