// Usages: per provider (from the cached sums on inventory rows) and per project/user (summed
// over that project's consumers' allocations, optionally grouped by consumer type).
import { sql } from 'kysely';
import { PlacementStore } from './store.ts';

export async function providerUsages(store: PlacementStore, rpId: number): Promise<Record<string, number>> {
  const rows = await store.db.selectFrom('inventories').select(['resource_class_id', 'used']).where('resource_provider_id', '=', rpId).orderBy('resource_class_id').execute();
  await store.rc.names(rows.map((r) => Number(r.resource_class_id)));
  return Object.fromEntries(rows.map((r) => [store.rc.nameSync(Number(r.resource_class_id)), Number(r.used)]));
}

function projectAllocations(store: PlacementStore, projectId: string, userId?: string) {
  let q = store.db.selectFrom('allocations as a').innerJoin('consumers as c', 'c.uuid', 'a.consumer_id').where('c.project_id', '=', projectId);
  if (userId !== undefined) q = q.where('c.user_id', '=', userId);
  return q;
}

/** GET /usages before 1.38: { class: total }. */
export async function projectUsages(store: PlacementStore, projectId: string, userId?: string): Promise<Record<string, number>> {
  const rows = await projectAllocations(store, projectId, userId).select('a.resource_class_id')
    .select((eb) => eb.fn.sum<number>('a.used').as('used')).groupBy('a.resource_class_id').orderBy('a.resource_class_id').execute();
  await store.rc.names(rows.map((r) => Number(r.resource_class_id)));
  return Object.fromEntries(rows.map((r) => [store.rc.nameSync(Number(r.resource_class_id)), Number(r.used)]));
}

/**
 * GET /usages from 1.38: grouped by consumer type, each group with a consumer_count.
 * `consumerType` 'all' folds everything into one group, 'unknown' selects consumers without a
 * type; another value selects that type only.
 */
export async function projectUsagesByType(store: PlacementStore, projectId: string, userId: string | undefined, consumerType: string | undefined): Promise<Record<string, Record<string, number>>> {
  const typeExpr = sql<string>`coalesce(c.consumer_type, 'unknown')`;
  let base = projectAllocations(store, projectId, userId);
  if (consumerType === 'unknown') base = base.where('c.consumer_type', 'is', null);
  else if (consumerType !== undefined && consumerType !== 'all') base = base.where('c.consumer_type', '=', consumerType);
  const out: Record<string, Record<string, number>> = {};
  if (consumerType === 'all') {
    // One group: grouping by a constant is not portable (PostgreSQL refuses it).
    const sums = await base.select('a.resource_class_id').select((eb) => eb.fn.sum<number>('a.used').as('used')).groupBy('a.resource_class_id').execute();
    if (!sums.length) return out;
    const n = await base.select(sql<number>`count(distinct a.consumer_id)`.as('n')).executeTakeFirst();
    await store.rc.names(sums.map((r) => Number(r.resource_class_id)));
    out.all = { consumer_count: Number(n?.n ?? 0) };
    for (const s of sums) out.all[store.rc.nameSync(Number(s.resource_class_id))] = Number(s.used);
    return out;
  }
  const sums = await base.select([typeExpr.as('ctype'), 'a.resource_class_id']).select((eb) => eb.fn.sum<number>('a.used').as('used'))
    .groupBy([typeExpr, 'a.resource_class_id']).execute();
  const counts = await base.select(typeExpr.as('ctype')).select(sql<number>`count(distinct a.consumer_id)`.as('n')).groupBy(typeExpr).execute();
  await store.rc.names(sums.map((r) => Number(r.resource_class_id)));
  for (const c of counts) out[c.ctype] = { consumer_count: Number(c.n) };
  for (const s of sums) (out[s.ctype] ??= {})[store.rc.nameSync(Number(s.resource_class_id))] = Number(s.used);
  return out;
}
