// Resource providers: create, read, rename, re-parent, delete, and the filtered list.
// Providers form trees: root_provider_id points at the top of the tree (itself for a root) and
// is kept for every member, so "the whole tree" is one indexed lookup.
import { sql, type ExpressionBuilder, type Expression, type SqlBool } from 'kysely';
import type { PlacementDB } from '../db/schema.ts';
import { PlacementStore, now, isUniqueViolation, type Tx } from './store.ts';
import { badRequest, conflict, notFound, CODES } from '../errors.ts';
import { BadRequest } from '../../common/errors.ts';

export interface Provider {
  id: number;
  uuid: string;
  name: string;
  generation: number;
  parent_provider_uuid: string | null;
  root_provider_uuid: string;
  parent_provider_id: number | null;
  root_provider_id: number;
  created_at: string;
  updated_at: string | null;
}

/** A list of any-of sets: [[a], [b, c]] means a AND (b OR c). */
export type AnyOf<T> = T[][];

export interface ProviderFilters {
  name?: string;
  uuid?: string;
  inTree?: string;
  memberOf?: AnyOf<string>;
  forbiddenAggs?: string[];
  resources?: Record<string, number>;
  requiredTraits?: AnyOf<string>;
  forbiddenTraits?: string[];
}

type RpEb = ExpressionBuilder<PlacementDB & { rp: PlacementDB['resource_providers'] }, 'rp'>;

function providerQuery(db: Tx) {
  return db.selectFrom('resource_providers as rp')
    .innerJoin('resource_providers as root', 'root.id', 'rp.root_provider_id')
    .leftJoin('resource_providers as parent', 'parent.id', 'rp.parent_provider_id')
    .select([
      'rp.id', 'rp.uuid', 'rp.name', 'rp.generation', 'rp.parent_provider_id', 'rp.root_provider_id',
      'rp.created_at', 'rp.updated_at', 'root.uuid as root_provider_uuid', 'parent.uuid as parent_provider_uuid',
    ]);
}

function toProvider(r: Record<string, unknown>): Provider {
  return {
    id: Number(r.id), uuid: r.uuid as string, name: r.name as string, generation: Number(r.generation),
    parent_provider_uuid: (r.parent_provider_uuid as string | null) ?? null,
    root_provider_uuid: r.root_provider_uuid as string,
    parent_provider_id: r.parent_provider_id === null ? null : Number(r.parent_provider_id),
    root_provider_id: Number(r.root_provider_id),
    created_at: r.created_at as string, updated_at: (r.updated_at as string | null) ?? null,
  };
}

export async function findProvider(db: Tx, uuid: string): Promise<Provider | undefined> {
  const r = await providerQuery(db).where('rp.uuid', '=', uuid).executeTakeFirst();
  return r ? toProvider(r) : undefined;
}

const providerNotFound = (uuid: string) => notFound(`No resource provider with uuid ${uuid} found`);

export async function getProvider(db: Tx, uuid: string): Promise<Provider> {
  const p = await findProvider(db, uuid);
  if (!p) throw providerNotFound(uuid);
  return p;
}

/** A provider and the ids of its traits, in one statement (the first read of a traits write). */
export async function getProviderWithTraitIds(db: Tx, uuid: string): Promise<{ provider: Provider; traitIds: number[] }> {
  const rows = await providerQuery(db).leftJoin('resource_provider_traits as rpt', 'rpt.resource_provider_id', 'rp.id')
    .select('rpt.trait_id').where('rp.uuid', '=', uuid).execute();
  if (!rows.length) throw providerNotFound(uuid);
  return { provider: toProvider(rows[0]), traitIds: rows.filter((r) => r.trait_id !== null).map((r) => Number(r.trait_id)) };
}

/**
 * Runs a write addressed to provider `uuid` whose transaction reads the provider first (404).
 * A request that fails earlier, on its body (400), answers 404 all the same when the provider
 * does not exist, as it did when handlers read the provider before validating: only a good
 * body now saves that read.
 */
export async function forExistingProvider<T>(db: Tx, uuid: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BadRequest) await getProvider(db, uuid);
    throw e;
  }
}

/** Capacity predicate for `amount` of one class on inventory alias `i` (amount is a validated integer). */
export function capacityOk(amount: number, i = 'i') {
  const a = sql.lit(Math.trunc(amount));
  return sql<SqlBool>`(${sql.ref(`${i}.used`)} + ${a} <= (${sql.ref(`${i}.total`)} - ${sql.ref(`${i}.reserved`)}) * ${sql.ref(`${i}.allocation_ratio`)}
    and ${sql.ref(`${i}.min_unit`)} <= ${a} and ${sql.ref(`${i}.max_unit`)} >= ${a} and ${a} % ${sql.ref(`${i}.step_size`)} = 0)`;
}

/** rp.id has every trait of one any-of set (EXISTS on the trait index). */
export function hasAnyTrait(eb: RpEb, traitIds: number[]): Expression<SqlBool> {
  return eb.exists(eb.selectFrom('resource_provider_traits as rpt').select(sql.lit(1).as('one'))
    .whereRef('rpt.resource_provider_id', '=', 'rp.id').where('rpt.trait_id', 'in', traitIds));
}

export function inAnyAggregate(eb: RpEb, aggIds: number[]): Expression<SqlBool> {
  return eb.exists(eb.selectFrom('resource_provider_aggregates as rpa').select(sql.lit(1).as('one'))
    .whereRef('rpa.resource_provider_id', '=', 'rp.id').where('rpa.aggregate_id', 'in', aggIds));
}

export async function aggregateIds(db: Tx, uuids: Iterable<string>): Promise<Map<string, number>> {
  const list = [...new Set(uuids)];
  if (!list.length) return new Map();
  const rows = await db.selectFrom('placement_aggregates').select(['id', 'uuid']).where('uuid', 'in', list).execute();
  return new Map(rows.map((r) => [r.uuid, Number(r.id)]));
}

/**
 * GET /resource_providers. Unknown resource classes and traits are 400s, as upstream; unknown
 * aggregates or in_tree providers simply match nothing.
 */
export async function listProviders(store: PlacementStore, f: ProviderFilters): Promise<Provider[]> {
  const db = store.db;
  let q = providerQuery(db);
  if (f.name !== undefined) q = q.where('rp.name', '=', f.name);
  if (f.uuid !== undefined) q = q.where('rp.uuid', '=', f.uuid);
  if (f.inTree !== undefined) {
    const t = await findProvider(db, f.inTree);
    if (!t) return [];
    q = q.where('rp.root_provider_id', '=', t.root_provider_id);
  }
  if (f.resources && Object.keys(f.resources).length) {
    const ids = await store.rc.ids(Object.keys(f.resources));
    for (const [rc, amount] of Object.entries(f.resources)) {
      const rcId = ids.get(rc);
      if (rcId === undefined) throw badRequest(`Invalid resource class in resources parameter: No such resource class ${rc}.`);
      q = q.where((eb) => eb.exists(eb.selectFrom('inventories as i').select(sql.lit(1).as('one'))
        .whereRef('i.resource_provider_id', '=', 'rp.id').where('i.resource_class_id', '=', rcId).where(capacityOk(amount))));
    }
  }
  const traitNames = [...(f.requiredTraits ?? []).flat(), ...(f.forbiddenTraits ?? [])];
  if (traitNames.length) {
    const ids = await store.traits.ids(traitNames);
    const missing = [...new Set(traitNames)].filter((n) => !ids.has(n));
    if (missing.length) throw badRequest(`Invalid trait(s) in "required" parameter: No such trait(s): ${missing.join(', ')}.`);
    for (const any of f.requiredTraits ?? []) {
      const tids = any.map((n) => ids.get(n)!);
      q = q.where((eb) => hasAnyTrait(eb as unknown as RpEb, tids));
    }
    if (f.forbiddenTraits?.length) {
      const tids = f.forbiddenTraits.map((n) => ids.get(n)!);
      q = q.where((eb) => eb.not(hasAnyTrait(eb as unknown as RpEb, tids)));
    }
  }
  if (f.memberOf?.length || f.forbiddenAggs?.length) {
    const ids = await aggregateIds(db, [...(f.memberOf ?? []).flat(), ...(f.forbiddenAggs ?? [])]);
    for (const any of f.memberOf ?? []) {
      const aids = any.map((u) => ids.get(u)).filter((x): x is number => x !== undefined);
      if (!aids.length) return [];
      q = q.where((eb) => inAnyAggregate(eb as unknown as RpEb, aids));
    }
    const bad = (f.forbiddenAggs ?? []).map((u) => ids.get(u)).filter((x): x is number => x !== undefined);
    if (bad.length) q = q.where((eb) => eb.not(inAnyAggregate(eb as unknown as RpEb, bad)));
  }
  const rows = await q.orderBy('rp.id').execute();
  return rows.map(toProvider);
}

export async function createProvider(store: PlacementStore, input: { uuid: string; name: string; parentUuid?: string | null }): Promise<Provider> {
  const { uuid, name } = input;
  const parentUuid = input.parentUuid ?? null;
  const fail = (why: string) => badRequest(`Unable to create resource provider "${name}", ${uuid}: Object action create failed because: ${why}`);
  if (parentUuid !== null && parentUuid === uuid) {
    throw fail('parent provider UUID cannot be same as UUID. Please set parent provider UUID to None if there is no parent.');
  }
  let created: Provider | undefined;
  try {
    await store.tx(async (trx) => {
      let rootId: number | null = null;
      let parentId: number | null = null;
      let parent: Provider | undefined;
      if (parentUuid !== null) {
        parent = await findProvider(trx, parentUuid);
        if (!parent) throw fail('parent provider UUID does not exist.');
        parentId = parent.id;
        rootId = parent.root_provider_id;
      }
      const ts = now();
      const id = await store.insertId(trx, 'resource_providers', {
        uuid, name, generation: 0, parent_provider_id: parentId, root_provider_id: rootId, created_at: ts, updated_at: null,
      });
      if (rootId === null) await trx.updateTable('resource_providers').set({ root_provider_id: id }).where('id', '=', id).execute();
      // What was just written, as getProvider would read it back (timestamps are stored as text).
      created = {
        id, uuid, name, generation: 0, parent_provider_id: parentId, root_provider_id: rootId ?? id,
        parent_provider_uuid: parent?.uuid ?? null, root_provider_uuid: parent?.root_provider_uuid ?? uuid, created_at: ts, updated_at: null,
      };
    });
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    const byName = await store.db.selectFrom('resource_providers').select('id').where('name', '=', name).executeTakeFirst();
    const dup = byName ? `name: ${name}` : `uuid: ${uuid}`;
    throw conflict(`Conflicting resource provider ${dup} already exists.`, CODES.DUPLICATE_NAME);
  }
  return created!;
}

/** Ids of the provider and every provider below it. */
async function subtreeIds(db: Tx, p: Provider): Promise<number[]> {
  const tree = await db.selectFrom('resource_providers').select(['id', 'parent_provider_id'])
    .where('root_provider_id', '=', p.root_provider_id).execute();
  const children = new Map<number, number[]>();
  for (const r of tree) {
    if (r.parent_provider_id === null) continue;
    const k = Number(r.parent_provider_id);
    if (!children.has(k)) children.set(k, []);
    children.get(k)!.push(Number(r.id));
  }
  const out: number[] = [];
  const stack = [p.id];
  while (stack.length) {
    const id = stack.pop()!;
    out.push(id);
    stack.push(...(children.get(id) ?? []));
  }
  return out;
}

/**
 * PUT /resource_providers/{uuid}: rename and (re)parent. Before 1.37 a parent may only be set
 * where there was none; from 1.37 a provider may move to another parent or become a root, and
 * its whole subtree follows. The generation does not change (upstream behaviour).
 */
export async function updateProvider(store: PlacementStore, uuid: string, input: { name: string; parentUuid?: string | null }, allowReparenting: boolean): Promise<Provider> {
  const fail = (why: string) => badRequest(`Unable to save resource provider ${uuid}: Object action update failed because: ${why}`);
  try {
    await store.tx(async (trx) => {
      const me = await getProvider(trx, uuid);
      const ts = now();
      let newRoot: number | null = null;
      let newParent: number | null | undefined;
      if (input.parentUuid !== undefined) {
        const parentUuid = input.parentUuid;
        if (parentUuid !== null) {
          const parent = await findProvider(trx, parentUuid);
          if (!parent) throw badRequest(`Unable to save resource provider ${uuid}: Object action create failed because: parent provider UUID does not exist.`);
          if (parent.id !== me.parent_provider_id) {
            if (me.parent_provider_id !== null && !allowReparenting) throw fail('re-parenting a provider is not currently allowed.');
            const sub = await subtreeIds(trx, me);
            if (sub.includes(parent.id)) throw fail('creating loop in the provider tree is not allowed.');
            newParent = parent.id;
            newRoot = parent.root_provider_id;
          }
        } else if (me.parent_provider_id !== null) {
          if (!allowReparenting) throw fail('un-parenting a provider is not currently allowed.');
          newParent = null;
          newRoot = me.id;
        }
      }
      if (newParent !== undefined && newRoot !== null) {
        const sub = await subtreeIds(trx, me);
        await trx.updateTable('resource_providers').set({ root_provider_id: newRoot }).where('id', 'in', sub).execute();
        await trx.updateTable('resource_providers').set({ parent_provider_id: newParent, name: input.name, updated_at: ts })
          .where('id', '=', me.id).execute();
      } else if (input.name !== me.name) {
        await trx.updateTable('resource_providers').set({ name: input.name, updated_at: ts }).where('id', '=', me.id).execute();
      }
    });
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    throw conflict(`Conflicting resource provider ${input.name} already exists.`, CODES.DUPLICATE_NAME);
  }
  return getProvider(store.db, uuid);
}

export async function deleteProvider(store: PlacementStore, uuid: string): Promise<void> {
  await store.tx(async (trx) => {
    const p = await findProvider(trx, uuid);
    if (!p) throw notFound(`No resource provider with uuid ${uuid} found for delete`);
    const child = await trx.selectFrom('resource_providers').select('id').where('parent_provider_id', '=', p.id).limit(1).executeTakeFirst();
    if (child) throw conflict(`Unable to delete parent resource provider ${uuid}: It has child resource providers.`, CODES.PROVIDER_CANNOT_DELETE_PARENT);
    const alloc = await trx.selectFrom('allocations').select('id').where('resource_provider_id', '=', p.id).limit(1).executeTakeFirst();
    if (alloc) throw conflict(`Unable to delete resource provider ${uuid}: Resource provider has allocations.`, CODES.PROVIDER_IN_USE);
    // Guard against an allocation committed after the check above (see setInventories).
    const invs = await trx.selectFrom('inventories').select('id').where('resource_provider_id', '=', p.id).execute();
    const del = await trx.deleteFrom('inventories').where('resource_provider_id', '=', p.id).where('used', '=', 0).executeTakeFirst();
    if (Number(del.numDeletedRows) < invs.length) throw conflict(`Unable to delete resource provider ${uuid}: Resource provider has allocations.`, CODES.PROVIDER_IN_USE);
    await trx.deleteFrom('resource_provider_traits').where('resource_provider_id', '=', p.id).execute();
    await trx.deleteFrom('resource_provider_aggregates').where('resource_provider_id', '=', p.id).execute();
    await trx.deleteFrom('resource_providers').where('id', '=', p.id).execute();
  });
}

/**
 * Bumps a provider's generation if it is still `expected`; throws the concurrent-update 409
 * otherwise. Every generation-guarded write ends with this, inside its transaction.
 */
export async function bumpGeneration(trx: Tx, p: { id: number; generation: number }, ts = now()): Promise<number> {
  const r = await trx.updateTable('resource_providers').set({ generation: p.generation + 1, updated_at: ts })
    .where('id', '=', p.id).where('generation', '=', p.generation).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) {
    throw conflict('resource provider generation conflict', CODES.CONCURRENT_UPDATE);
  }
  return p.generation + 1;
}

/** Last-modified time of a row (updated_at, else created_at). */
export function modified(r: { created_at: string; updated_at: string | null }): string {
  return r.updated_at ?? r.created_at;
}
