// Allocation candidates: which providers (or combinations of providers in one tree, plus
// sharing providers) can satisfy a request made of request groups.
//
// Semantics follow upstream Placement:
// - a suffixed (granular) group is satisfied by one provider that has every resource, trait and
//   aggregate of the group;
// - the unsuffixed group may spread its resources over providers of one tree and sharing
//   providers (MISC_SHARES_VIA_AGGREGATE) associated with the tree by aggregate; its required
//   traits must be found among the providers serving it, its forbidden traits on none of them;
//   member_of matches a provider or its root;
// - the groups of one candidate share one anchor (the tree's root); group_policy=isolate makes
//   granular groups use different providers; same_subtree makes the named groups' providers sit
//   under one of them; root_required filters anchors by their own traits.
//
// Work split: the database filters providers by capacity, traits and aggregates (one query for a
// single-provider group, one per class for a spread group), using the cached `used` on inventory
// rows — allocations are never read. Combining groups happens in memory, only over the providers
// that passed, and stops at `limit` unless candidates are to be randomized.
import { sql, type SelectQueryBuilder } from 'kysely';
import type { PlacementDB } from '../db/schema.ts';
import { PlacementStore, chunks } from './store.ts';
import { capacityOk, aggregateIds } from './providers.ts';
import { badRequest } from '../errors.ts';
import { SHARES_VIA_AGGREGATE } from '../standard/traits.ts';

export interface RequestGroup {
  suffix: string;
  resources: Record<string, number>;
  /** any-of sets, AND-ed */
  requiredTraits: string[][];
  forbiddenTraits: string[];
  /** any-of sets, AND-ed */
  memberOf: string[][];
  forbiddenAggs: string[];
  inTree?: string;
}

export interface RequestWide {
  limit?: number;
  groupPolicy?: 'none' | 'isolate';
  rootRequired: string[];
  rootForbidden: string[];
  sameSubtrees: string[][];
  /** >= 1.29: candidates may combine several providers of one tree. */
  nestedAware: boolean;
  randomize: boolean;
  /** Stop generating after this many (placement max_allocation_candidates); -1 = no cap. */
  maxCandidates: number;
}

export interface ResourceRequest { rpId: number; rcId: number; amount: number }

export interface AllocationRequest {
  anchor: number;
  resources: ResourceRequest[];
  /** suffix -> provider ids */
  mappings: Map<string, Set<number>>;
}

export interface SummaryResource { rcId: number; capacity: number; used: number; maxUnit: number }
export interface ProviderSummary {
  id: number; uuid: string; generation: number; rootId: number; parentId: number | null;
  resources: SummaryResource[]; traits: readonly string[];
}

export interface CandidatesResult {
  requests: AllocationRequest[];
  summaries: ProviderSummary[];
  /** provider id -> uuid for everything referenced */
  uuids: Map<number, string>;
  requestedRcIds: Set<number>;
}

interface GroupCtx {
  g: RequestGroup;
  rcIds: Map<string, number>;
  /** rc id -> amount */
  amounts: [number, number][];
  reqTraitIds: number[][];
  forbTraitIds: number[];
  aggIds: number[][];
  forbAggIds: number[];
  treeRoot?: number;
  /** providers in the member_of aggregates (spread groups only) */
  rpsInAggs?: Set<number>;
  rpsInBadAggs?: Set<number>;
}

type Rp = { id: number; root: number };
/**
 * Providers seen in candidate queries: tree position and the inventory rows those queries
 * already read (requested classes), so summaries need not read them again.
 */
type Known = Map<number, { uuid: string; generation: number; parentId: number | null; rootId: number; inv: Map<number, SummaryResource> }>;
type ProviderRow = { id: number; uuid: string; generation: number; root_provider_id: number | null; parent_provider_id: number | null };
/** The provider columns every query naming providers selects (the generation keys the trait cache). */
const RP_COLS = ['id', 'uuid', 'generation', 'parent_provider_id', 'root_provider_id'] as const;

function remember(known: Known, row: ProviderRow): { inv: Map<number, SummaryResource> } {
  const id = Number(row.id);
  let k = known.get(id);
  if (!k) {
    k = { uuid: row.uuid, generation: Number(row.generation), rootId: Number(row.root_provider_id), parentId: row.parent_provider_id === null ? null : Number(row.parent_provider_id), inv: new Map() };
    known.set(id, k);
  }
  return k;
}

/** Inventory columns a candidate query selects for class alias `a` (suffix n). */
const invColumns = (a: string, n: number | string) => [
  sql`(${sql.ref(`${a}.total`)} - ${sql.ref(`${a}.reserved`)}) * ${sql.ref(`${a}.allocation_ratio`)}`.as(`c${n}`),
  `${a}.max_unit as m${n}`, `${a}.used as u${n}`,
];
function invFrom(row: Record<string, unknown>, n: number | string, rcId: number): SummaryResource {
  return { rcId, capacity: Math.trunc(Number(row[`c${n}`])), used: Number(row[`u${n}`]), maxUnit: Number(row[`m${n}`]) };
}

const EMPTY: CandidatesResult = { requests: [], summaries: [], uuids: new Map(), requestedRcIds: new Set() };

export async function getCandidates(store: PlacementStore, groups: RequestGroup[], wide: RequestWide): Promise<CandidatesResult> {
  const db = store.db;
  // Resolve names; unknown classes and traits are 400s, unknown aggregates match nothing.
  const allRcs = [...new Set(groups.flatMap((g) => Object.keys(g.resources)))];
  const rcIds = await store.rc.ids(allRcs);
  for (const rc of allRcs) if (!rcIds.has(rc)) throw badRequest(`Invalid resource class in resources parameter: No such resource class ${rc}.`);
  const allTraits = [...new Set([...groups.flatMap((g) => [...g.requiredTraits.flat(), ...g.forbiddenTraits]), ...wide.rootRequired, ...wide.rootForbidden])];
  const traitIds = await store.traits.ids(allTraits);
  const missingTraits = allTraits.filter((t) => !traitIds.has(t));
  if (missingTraits.length) throw badRequest(`No such trait(s): ${missingTraits.join(', ')}.`);
  const aggMap = await aggregateIds(db, groups.flatMap((g) => [...g.memberOf.flat(), ...g.forbiddenAggs]));

  const requestedRcIds = new Set(allRcs.map((r) => rcIds.get(r)!));

  // Deployment shape: trees and sharing providers switch the unsuffixed group to the spread path.
  // Independent reads run side by side (separate pool connections on MariaDB/PostgreSQL).
  const shareTrait = await store.traits.id(SHARES_VIA_AGGREGATE);
  const [treeRow, shareRows] = await Promise.all([
    db.selectFrom('resource_providers').select('id').where('parent_provider_id', 'is not', null).limit(1).executeTakeFirst(),
    shareTrait === undefined ? [] : db.selectFrom('resource_provider_traits').select('resource_provider_id').where('trait_id', '=', shareTrait).execute(),
  ]);
  const hasTrees = !!treeRow;
  const sharing = new Set(shareRows.map((r) => Number(r.resource_provider_id)));

  // root_required: the set of acceptable anchors.
  let anchors: Set<number> | undefined;
  if (wide.rootRequired.length || wide.rootForbidden.length) {
    let q = db.selectFrom('resource_providers as rp').select('rp.id').where('rp.parent_provider_id', 'is', null);
    for (const t of wide.rootRequired) {
      const tid = traitIds.get(t)!;
      q = q.where((eb) => eb.exists(eb.selectFrom('resource_provider_traits as rpt').select(sql.lit(1).as('one'))
        .whereRef('rpt.resource_provider_id', '=', 'rp.id').where('rpt.trait_id', '=', tid)));
    }
    if (wide.rootForbidden.length) {
      const tids = wide.rootForbidden.map((t) => traitIds.get(t)!);
      q = q.where((eb) => eb.not(eb.exists(eb.selectFrom('resource_provider_traits as rpt').select(sql.lit(1).as('one'))
        .whereRef('rpt.resource_provider_id', '=', 'rp.id').where('rpt.trait_id', 'in', tids))));
    }
    anchors = new Set((await q.execute()).map((r) => Number(r.id)));
    if (!anchors.size) return EMPTY;
  }

  const ctxs: GroupCtx[] = [];
  for (const g of groups) {
    const c: GroupCtx = {
      g, rcIds,
      amounts: Object.entries(g.resources).map(([rc, n]) => [rcIds.get(rc)!, n]),
      reqTraitIds: g.requiredTraits.map((s) => s.map((t) => traitIds.get(t)!)),
      forbTraitIds: g.forbiddenTraits.map((t) => traitIds.get(t)!),
      aggIds: [],
      forbAggIds: g.forbiddenAggs.map((u) => aggMap.get(u)).filter((x): x is number => x !== undefined),
    };
    for (const any of g.memberOf) {
      const ids = any.map((u) => aggMap.get(u)).filter((x): x is number => x !== undefined);
      if (!ids.length) return EMPTY; // an aggregate nobody is in
      c.aggIds.push(ids);
    }
    if (g.inTree !== undefined) {
      const t = await db.selectFrom('resource_providers').select('root_provider_id').where('uuid', '=', g.inTree).executeTakeFirst();
      if (!t) return EMPTY;
      c.treeRoot = Number(t.root_provider_id);
    }
    ctxs.push(c);
  }

  // Per-group candidates, keyed by anchor.
  const perGroup: Map<number, AllocationRequest[]>[] = [];
  const traitsById = new Map<number, Set<number>>();
  const known: Known = new Map();
  for (const c of ctxs) {
    const spread = c.g.suffix === '' && (hasTrees || sharing.size > 0);
    const reqs = spread ? await spreadGroup(store, c, sharing, anchors, traitsById, known) : await singleProviderGroup(store, c, sharing, anchors, known);
    if (!reqs.size) return EMPTY;
    perGroup.push(reqs);
  }

  // Capacity data is needed while merging only when several groups may add up on one provider.
  const merging = ctxs.length > 1;
  const summaryCache = new Map<number, ProviderSummary>();
  const loadedRoots = new Set<number>();
  if (merging) {
    const ids = new Set<number>();
    for (const m of perGroup) for (const list of m.values()) for (const r of list) for (const s of r.mappings.values()) for (const id of s) ids.add(id);
    await loadTrees(store, [...ids], summaryCache, loadedRoots, known, hasTrees, requestedRcIds);
  }

  const wanted = wide.randomize ? Infinity : (wide.limit ?? Infinity);
  const cap = wide.maxCandidates >= 0 ? wide.maxCandidates : Infinity;
  const merged = mergeGroups(ctxs, perGroup, wide, summaryCache, Math.min(wanted, cap), sharing.size > 0);
  if (!merged.length) return EMPTY;

  // Load summaries for the trees in play (all of each tree, as upstream shows).
  const rpIds = new Set<number>();
  for (const r of merged) for (const rr of r.resources) rpIds.add(rr.rpId);
  for (const r of merged) for (const s of r.mappings.values()) for (const id of s) rpIds.add(id);
  await loadTrees(store, [...rpIds], summaryCache, loadedRoots, known, hasTrees, requestedRcIds);

  let requests = merged;
  // Before 1.29, candidates spanning several providers of one tree are not shown.
  if (!wide.nestedAware && hasTrees) {
    requests = requests.filter((r) => {
      const rps = new Set(r.resources.map((x) => x.rpId));
      const roots = new Set([...rps].map((id) => summaryCache.get(id)!.rootId));
      return rps.size === roots.size;
    });
  }
  if (wide.limit !== undefined && requests.length > wide.limit) {
    requests = wide.randomize ? sample(requests, wide.limit) : requests.slice(0, wide.limit);
  } else if (wide.randomize) {
    requests = sample(requests, requests.length);
  }

  let summaries: ProviderSummary[];
  if (!wide.nestedAware && hasTrees) {
    const used = new Set(requests.flatMap((r) => r.resources.map((x) => x.rpId)));
    summaries = [...summaryCache.values()].filter((s) => used.has(s.id));
  } else {
    const roots = new Set(requests.flatMap((r) => r.resources.map((x) => summaryCache.get(x.rpId)!.rootId)));
    summaries = [...summaryCache.values()].filter((s) => roots.has(s.rootId));
  }
  summaries.sort((a, b) => a.id - b.id);
  const uuids = new Map([...summaryCache.values()].map((s) => [s.id, s.uuid]));
  return { requests, summaries, uuids, requestedRcIds };
}

/**
 * One provider serves the whole group: a single query joins one inventory row per class
 * (with its capacity predicate), restricted to the providers passing the trait and aggregate
 * filters.
 */
async function singleProviderGroup(store: PlacementStore, c: GroupCtx, sharing: Set<number>, anchors: Set<number> | undefined, known: Known): Promise<Map<number, AllocationRequest[]>> {
  let q = store.db.selectFrom('resource_providers as rp').select(RP_COLS.map((c) => `rp.${c}` as const)) as
    SelectQueryBuilder<any, any, ProviderRow & { root_provider_id: number }>;
  c.amounts.forEach(([rcId, amount], n) => {
    const a = `i${n}`;
    q = q.innerJoin(`inventories as ${a}`, (j: any) => j.onRef(`${a}.resource_provider_id`, '=', 'rp.id')
      .on(`${a}.resource_class_id`, '=', rcId).on(capacityOk(amount, a))).select(invColumns(a, n) as any) as typeof q;
  });
  const filters = await providerFilterSets(store, c);
  if (filters.allowed && !filters.allowed.size) return new Map();
  q = restrictIds(q, c.amounts.length ? 'i0.resource_provider_id' : 'rp.id', filters);
  if (c.treeRoot !== undefined) q = q.where('rp.root_provider_id', '=', c.treeRoot);
  const rows = await q.orderBy('rp.id').execute();
  const out = new Map<number, AllocationRequest[]>();
  const add = (anchor: number, r: AllocationRequest) => {
    if (anchors && !anchors.has(anchor)) return;
    if (!out.has(anchor)) out.set(anchor, []);
    out.get(anchor)!.push({ ...r, anchor });
  };
  const shared: number[] = [];
  const reqs = new Map<number, AllocationRequest>();
  for (const row of rows) {
    const id = Number(row.id);
    const k = remember(known, row);
    c.amounts.forEach(([rcId], n) => k.inv.set(rcId, invFrom(row, n, rcId)));
    const r: AllocationRequest = {
      anchor: Number(row.root_provider_id),
      resources: c.amounts.map(([rcId, amount]) => ({ rpId: id, rcId, amount })),
      mappings: new Map([[c.g.suffix, new Set([id])]]),
    };
    add(r.anchor, r);
    if (sharing.has(id)) { shared.push(id); reqs.set(id, r); }
  }
  // A sharing provider also serves every tree it shares an aggregate with.
  if (shared.length) {
    for (const { rp, anchor } of await sharingAnchors(store, shared)) {
      const r = reqs.get(rp)!;
      if (anchor !== r.anchor) add(anchor, r);
    }
  }
  return out;
}

/**
 * Provider ids satisfying the group's trait and aggregate filters, computed with one indexed
 * query per any-of set and combined here (as upstream does). `allowed` undefined means no
 * positive filter. Feeding these as id lists keeps every backend on the inventory indexes;
 * correlated EXISTS subqueries let MariaDB pick semi-join plans that rescan the trait index
 * for every provider.
 */
async function providerFilterSets(store: PlacementStore, c: GroupCtx): Promise<{ allowed?: Set<number>; forbidden: Set<number> }> {
  const db = store.db;
  let allowed: Set<number> | undefined;
  const intersect = (ids: number[]) => {
    const next = new Set(ids);
    allowed = allowed ? new Set([...allowed].filter((x) => next.has(x))) : next;
  };
  for (const tids of c.reqTraitIds) {
    intersect((await db.selectFrom('resource_provider_traits').select('resource_provider_id').distinct().where('trait_id', 'in', tids).execute())
      .map((r) => Number(r.resource_provider_id)));
    if (!allowed!.size) return { allowed, forbidden: new Set() };
  }
  for (const aids of c.aggIds) {
    intersect((await db.selectFrom('resource_provider_aggregates').select('resource_provider_id').distinct().where('aggregate_id', 'in', aids).execute())
      .map((r) => Number(r.resource_provider_id)));
    if (!allowed!.size) return { allowed, forbidden: new Set() };
  }
  const forbidden = new Set<number>();
  if (c.forbTraitIds.length) {
    for (const r of await db.selectFrom('resource_provider_traits').select('resource_provider_id').where('trait_id', 'in', c.forbTraitIds).execute()) forbidden.add(Number(r.resource_provider_id));
  }
  if (c.forbAggIds.length) {
    for (const r of await db.selectFrom('resource_provider_aggregates').select('resource_provider_id').where('aggregate_id', 'in', c.forbAggIds).execute()) forbidden.add(Number(r.resource_provider_id));
  }
  if (allowed) for (const f of forbidden) allowed.delete(f);
  return { allowed, forbidden };
}

/**
 * Restricts the providers to `allowed` and away from `forbidden` (id lists, chunked). `col` is
 * the driving column — the first inventory row's provider id when there is one, so the
 * planner can go straight to those inventory rows by their unique key whatever its row
 * estimates (a stale estimate on resource_providers led PostgreSQL to a rescanning plan).
 */
function restrictIds<Q extends SelectQueryBuilder<any, any, any>>(q: Q, col: string, f: { allowed?: Set<number>; forbidden: Set<number> }): Q {
  let out: any = q;
  if (f.allowed) {
    const parts = chunks([...f.allowed].sort((a, b) => a - b), 1000);
    out = out.where((eb: any) => eb.or(parts.map((p) => eb(col, 'in', p))));
  } else if (f.forbidden.size) {
    for (const p of chunks([...f.forbidden].sort((a, b) => a - b), 1000)) out = out.where(col, 'not in', p);
  }
  return out as Q;
}

/** (sharing provider, anchor root) for every tree sharing an aggregate with each provider. */
async function sharingAnchors(store: PlacementStore, rpIds: number[]): Promise<{ rp: number; anchor: number }[]> {
  const out: { rp: number; anchor: number }[] = [];
  for (const part of chunks(rpIds)) {
    const rows = await store.db.selectFrom('resource_provider_aggregates as sa')
      .innerJoin('resource_provider_aggregates as peer', 'peer.aggregate_id', 'sa.aggregate_id')
      .innerJoin('resource_providers as p', 'p.id', 'peer.resource_provider_id')
      .select(['sa.resource_provider_id as rp', 'p.root_provider_id as anchor']).distinct()
      .where('sa.resource_provider_id', 'in', part).execute();
    for (const r of rows) out.push({ rp: Number(r.rp), anchor: Number(r.anchor) });
  }
  return out;
}

/**
 * The unsuffixed group where trees or sharing providers exist: each class may come from a
 * different provider of the anchor's tree or from a sharing provider; traits are checked on
 * each combination.
 */
async function spreadGroup(store: PlacementStore, c: GroupCtx, sharing: Set<number>, anchors: Set<number> | undefined, traitsById: Map<number, Set<number>>, known: Known): Promise<Map<number, AllocationRequest[]>> {
  const db = store.db;
  if (c.aggIds.length) {
    c.rpsInAggs = (await providerFilterSets(store, { ...c, reqTraitIds: [], forbTraitIds: [], forbAggIds: [] })).allowed!;
    if (!c.rpsInAggs.size) return new Map();
  }
  if (c.forbAggIds.length) {
    const rows = await db.selectFrom('resource_provider_aggregates').select('resource_provider_id').where('aggregate_id', 'in', c.forbAggIds).execute();
    c.rpsInBadAggs = new Set(rows.map((r) => Number(r.resource_provider_id)));
  }
  // Quick exit: nobody has any of the required traits.
  const anyRequired = [...new Set(c.reqTraitIds.flat())];
  if (anyRequired.length) {
    const one = await db.selectFrom('resource_provider_traits').select('resource_provider_id').where('trait_id', 'in', anyRequired).limit(1).executeTakeFirst();
    if (!one) return new Map();
  }

  // byTree: anchor -> rc -> providers able to serve it
  let byTree: Map<number, Map<number, number[]>> | undefined;
  for (const [rcId, amount] of c.amounts) {
    let q = db.selectFrom('inventories as i').innerJoin('resource_providers as rp', 'rp.id', 'i.resource_provider_id')
      .select(RP_COLS.map((c) => `rp.${c}` as const)).select(invColumns('i', 0) as any)
      .where('i.resource_class_id', '=', rcId).where(capacityOk(amount, 'i'));
    if (c.treeRoot !== undefined) q = q.where('rp.root_provider_id', '=', c.treeRoot);
    const rows = (await q.orderBy('rp.id').execute()).map((r) => {
      remember(known, r).inv.set(rcId, invFrom(r as Record<string, unknown>, 0, rcId));
      return { id: Number(r.id), root: Number(r.root_provider_id) };
    });
    let cands: Rp[] = rows;
    const shareable = rows.filter((r) => sharing.has(r.id) && (!c.rpsInAggs || c.rpsInAggs.has(r.id))).map((r) => r.id);
    if (shareable.length && c.treeRoot === undefined) {
      cands = cands.concat((await sharingAnchors(store, shareable)).map(({ rp, anchor }) => ({ id: rp, root: anchor })));
    }
    if (anchors) cands = cands.filter((r) => anchors.has(r.root));
    if (c.rpsInAggs) cands = cands.filter((r) => c.rpsInAggs!.has(r.id) || c.rpsInAggs!.has(r.root));
    if (c.rpsInBadAggs) cands = cands.filter((r) => !c.rpsInBadAggs!.has(r.id) && !c.rpsInBadAggs!.has(r.root));
    const trees = new Map<number, number[]>();
    for (const r of cands) {
      if (!trees.has(r.root)) trees.set(r.root, []);
      const l = trees.get(r.root)!;
      if (!l.includes(r.id)) l.push(r.id);
    }
    if (!byTree) {
      byTree = new Map([...trees].map(([root, l]) => [root, new Map([[rcId, l]])]));
    } else {
      for (const root of [...byTree.keys()]) {
        const l = trees.get(root);
        if (!l) byTree.delete(root); else byTree.get(root)!.set(rcId, l);
      }
    }
    if (!byTree.size) return new Map();
  }
  if (!byTree) return new Map();

  // Traits of every provider that may take part, for the per-combination check.
  const needTraits = c.reqTraitIds.length > 0 || c.forbTraitIds.length > 0;
  if (needTraits) {
    const ids = new Set<number>();
    for (const m of byTree.values()) for (const l of m.values()) for (const id of l) if (!traitsById.has(id)) ids.add(id);
    for (const part of chunks([...ids])) {
      for (const id of part) traitsById.set(id, new Set());
      const rows = await db.selectFrom('resource_provider_traits').select(['resource_provider_id', 'trait_id']).where('resource_provider_id', 'in', part).execute();
      for (const r of rows) traitsById.get(Number(r.resource_provider_id))!.add(Number(r.trait_id));
    }
  }
  const forb = new Set(c.forbTraitIds);

  const out = new Map<number, AllocationRequest[]>();
  for (const [root, perRc] of byTree) {
    const lists = c.amounts.map(([rcId]) => perRc.get(rcId)!);
    const list: AllocationRequest[] = [];
    for (const combo of product(lists)) {
      if (needTraits) {
        const have = new Set<number>();
        let ok = true;
        for (const id of combo) {
          const t = traitsById.get(id)!;
          for (const x of t) { if (forb.has(x)) ok = false; have.add(x); }
        }
        if (!ok || !c.reqTraitIds.every((any) => any.some((x) => have.has(x)))) continue;
      }
      list.push({
        anchor: root,
        resources: combo.map((rpId, k) => ({ rpId, rcId: c.amounts[k][0], amount: c.amounts[k][1] })),
        mappings: new Map([[c.g.suffix, new Set(combo)]]),
      });
    }
    if (list.length) out.set(root, list);
  }
  return out;
}

function* product(lists: number[][]): Generator<number[]> {
  if (!lists.length) { yield []; return; }
  const idx = new Array(lists.length).fill(0);
  for (;;) {
    yield idx.map((i, k) => lists[k][i]);
    let k = lists.length - 1;
    while (k >= 0 && ++idx[k] === lists[k].length) { idx[k] = 0; k--; }
    if (k < 0) return;
  }
}

/** Picks one request per group for each anchor, filters by policy, folds and re-checks capacity. */
function mergeGroups(ctxs: GroupCtx[], perGroup: Map<number, AllocationRequest[]>[], wide: RequestWide, summaries: Map<number, ProviderSummary>, max: number, dedupe: boolean): AllocationRequest[] {
  const out: AllocationRequest[] = [];
  const seen = new Set<string>();
  // Anchors present in every group, in ascending order.
  const anchorsAll = [...perGroup[0].keys()].filter((a) => perGroup.every((m) => m.has(a))).sort((x, y) => x - y);
  if (ctxs.length === 1) {
    // One group: nothing to combine; only sharing providers can repeat a request under
    // several anchors.
    for (const anchor of anchorsAll) {
      for (const r of perGroup[0].get(anchor)!) {
        if (dedupe) {
          const key = keyOf(r);
          if (seen.has(key)) continue;
          seen.add(key);
        }
        out.push(r);
        if (out.length >= max) return out;
      }
    }
    return out;
  }
  const granular = ctxs.filter((c) => c.g.suffix !== '').length;
  for (const anchor of anchorsAll) {
    const lists = perGroup.map((m) => m.get(anchor)!);
    for (const pick of productOf(lists)) {
      if (wide.groupPolicy === 'isolate' && granular > 1) {
        const used = new Set<number>();
        pick.forEach((r, k) => { if (ctxs[k].g.suffix !== '') for (const id of r.mappings.values().next().value!) used.add(id); });
        if (used.size !== granular) continue;
      }
      if (wide.sameSubtrees.length && !sameSubtreeOk(pick, wide.sameSubtrees, summaries)) continue;
      const folded = fold(anchor, pick);
      if (exceedsCapacity(folded, summaries)) continue;
      const key = keyOf(folded);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(folded);
      if (out.length >= max) return out;
    }
  }
  return out;
}

function* productOf<T>(lists: T[][]): Generator<T[]> {
  for (const idx of product(lists.map((l) => l.map((_, i) => i)))) yield idx.map((i, k) => lists[k][i]);
}

function fold(anchor: number, pick: AllocationRequest[]): AllocationRequest {
  if (pick.length === 1) return pick[0];
  const byKey = new Map<string, ResourceRequest>();
  const mappings = new Map<string, Set<number>>();
  for (const r of pick) {
    for (const rr of r.resources) {
      const k = `${rr.rpId}:${rr.rcId}`;
      const cur = byKey.get(k);
      if (cur) cur.amount += rr.amount; else byKey.set(k, { ...rr });
    }
    for (const [s, ids] of r.mappings) {
      if (!mappings.has(s)) mappings.set(s, new Set());
      for (const id of ids) mappings.get(s)!.add(id);
    }
  }
  return { anchor, resources: [...byKey.values()], mappings };
}

function keyOf(r: AllocationRequest): string {
  const res = r.resources.map((x) => `${x.rpId}:${x.rcId}:${x.amount}`).sort().join(',');
  const maps = [...r.mappings].map(([s, ids]) => `${s}=${[...ids].sort((a, b) => a - b).join('.')}`).sort().join(';');
  return `${res}|${maps}`;
}

function exceedsCapacity(r: AllocationRequest, summaries: Map<number, ProviderSummary>): boolean {
  for (const rr of r.resources) {
    const s = summaries.get(rr.rpId)?.resources.find((x) => x.rcId === rr.rcId);
    if (!s) return true;
    if (s.used + rr.amount > s.capacity || rr.amount > s.maxUnit) return true;
  }
  return false;
}

/** Every group named in a same_subtree set is served under one of those groups' providers. */
function sameSubtreeOk(pick: AllocationRequest[], sets: string[][], summaries: Map<number, ProviderSummary>): boolean {
  for (const suffixes of sets) {
    const ids = new Set<number>();
    for (const r of pick) for (const s of suffixes) for (const id of r.mappings.get(s) ?? []) ids.add(id);
    if (ids.size <= 1) continue;
    const ancestors = (id: number) => {
      const out = new Set<number>();
      for (let cur: number | null = id; cur !== null; cur = summaries.get(cur)?.parentId ?? null) out.add(cur);
      return out;
    };
    let common: Set<number> | undefined;
    for (const id of ids) {
      const a = ancestors(id);
      common = common ? new Set([...common].filter((x) => a.has(x))) : a;
    }
    if (![...ids].some((id) => common!.has(id))) return false;
  }
  return true;
}

/**
 * Loads provider summaries (identity, tree position, inventory with capacity and usage,
 * traits) for every provider in the trees of `rpIds`, into `cache`. Without nested providers a
 * tree is its root alone, already known from the candidate queries.
 */
async function loadTrees(store: PlacementStore, rpIds: number[], cache: Map<number, ProviderSummary>, loadedRoots: Set<number>, known: Known, hasTrees: boolean, requested: Set<number>): Promise<void> {
  const db = store.db;
  const unknown = rpIds.filter((id) => !cache.has(id));
  if (!unknown.length) return;
  const roots = new Set<number>();
  const lookup = unknown.filter((id) => !known.has(id));
  for (const id of unknown) if (known.has(id)) roots.add(known.get(id)!.rootId);
  for (const part of chunks(lookup, 1000)) {
    const rows = await db.selectFrom('resource_providers').select([...RP_COLS]).where('id', 'in', part).execute();
    for (const r of rows) roots.add(remember(known, r) && Number(r.root_provider_id));
  }
  const newRoots = [...roots].filter((r) => !loadedRoots.has(r));
  const members: number[] = [];
  const add = (id: number, uuid: string, generation: number, rootId: number, parentId: number | null) => {
    cache.set(id, { id, uuid, generation, rootId, parentId, resources: [], traits: [] });
    members.push(id);
  };
  if (!hasTrees && newRoots.every((r) => known.has(r))) {
    for (const r of newRoots) { const k = known.get(r)!; add(r, k.uuid, k.generation, r, null); }
  } else {
    for (const part of chunks(newRoots, 1000)) {
      const rows = await db.selectFrom('resource_providers').select([...RP_COLS])
        .where('root_provider_id', 'in', part).orderBy('id').execute();
      for (const r of rows) add(Number(r.id), r.uuid, Number(r.generation), Number(r.root_provider_id), r.parent_provider_id === null ? null : Number(r.parent_provider_id));
    }
  }
  for (const r of newRoots) loadedRoots.add(r);
  // Inventory: the requested classes were mostly read by the candidate queries already; read
  // the other classes for everyone and the requested ones only for providers not seen yet.
  const req = [...requested];
  const unseen = members.filter((m) => req.some((rc) => !known.get(m)?.inv.has(rc)));
  const invCols = ['resource_provider_id', 'resource_class_id', 'total', 'reserved', 'allocation_ratio', 'max_unit', 'used'] as const;
  const addInv = (rows: { resource_provider_id: number; resource_class_id: number; total: number; reserved: number; allocation_ratio: number; max_unit: number; used: number }[], set: Set<number>) => {
    for (const i of rows) {
      const sum = cache.get(Number(i.resource_provider_id));
      if (!sum || !set.has(sum.id)) continue;
      sum.resources.push({
        rcId: Number(i.resource_class_id), capacity: Math.trunc((Number(i.total) - Number(i.reserved)) * Number(i.allocation_ratio)),
        used: Number(i.used), maxUnit: Number(i.max_unit),
      });
    }
  };
  for (const m of members) {
    const k = known.get(m);
    if (k && !unseen.includes(m)) for (const r of k.inv.values()) cache.get(m)!.resources.push(r);
  }
  // Traits: from the per-(provider, generation) cache (model/provider-trait-cache.ts), read only
  // for providers whose generation moved since (or never seen), as ids named through the store's
  // trait-name cache.
  const stale: number[] = [];
  for (const m of members) {
    const sum = cache.get(m)!;
    const t = store.providerTraits.get(m, sum.uuid, sum.generation);
    if (t) sum.traits = t; else stale.push(m);
  }
  const readTraits = async (part: IdSlice) => {
    const rows = await inIds(db.selectFrom('resource_provider_traits').select(['resource_provider_id', 'trait_id']), 'resource_provider_id', part).execute();
    await store.traits.names(rows.map((t) => Number(t.trait_id)));
    const names = new Map<number, string[]>(part.ids.map((id) => [id, []]));
    for (const t of rows) names.get(Number(t.resource_provider_id))?.push(store.traits.nameSync(Number(t.trait_id)));
    for (const [id, list] of names) {
      const sum = cache.get(id)!;
      sum.traits = store.providerTraits.set(id, sum.uuid, sum.generation, list);
    }
  };
  const readOtherInventory = async (part: IdSlice) => {
    let q = inIds(db.selectFrom('inventories').select([...invCols]), 'resource_provider_id', part);
    if (req.length) q = q.where('resource_class_id', 'not in', req);
    addInv(await q.execute(), part.set);
  };
  // Side by side: separate pool connections on MariaDB/PostgreSQL.
  await Promise.all([
    (async () => { for (const part of idSlices(members)) await readOtherInventory(part); })(),
    (async () => { for (const part of idSlices(stale)) await readTraits(part); })(),
  ]);
  if (req.length) {
    for (const part of idSlices(unseen)) {
      addInv(await inIds(db.selectFrom('inventories').select([...invCols]), 'resource_provider_id', part).where('resource_class_id', 'in', req).execute(), part.set);
    }
  }
  for (const m of members) cache.get(m)!.resources.sort((a, b) => a.rcId - b.rcId);
  await store.rc.names(members.flatMap((id) => cache.get(id)!.resources.map((r) => r.rcId)));
}

interface IdSlice { ids: number[]; set: Set<number>; range?: [number, number] }

/**
 * Splits ids for lookup. Candidate ids are mostly dense (providers created together), so a
 * dense run is fetched with a BETWEEN on the key and filtered here: far cheaper to parse and
 * plan than a thousand-item IN list. Sparse ids fall back to IN lists.
 */
function idSlices(ids: number[]): IdSlice[] {
  if (!ids.length) return [];
  const sorted = [...ids].sort((a, b) => a - b);
  const lo = sorted[0];
  const hi = sorted[sorted.length - 1];
  if (hi - lo + 1 <= sorted.length * 2) return [{ ids: sorted, set: new Set(sorted), range: [lo, hi] }];
  return chunks(sorted, 1000).map((c) => ({ ids: c, set: new Set(c) }));
}

function inIds<Q extends SelectQueryBuilder<any, any, any>>(q: Q, col: string, s: IdSlice): Q {
  return (s.range ? q.where(col as any, '>=', s.range[0]).where(col as any, '<=', s.range[1]) : q.where(col as any, 'in', s.ids)) as Q;
}

function sample<T>(items: T[], n: number): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}
