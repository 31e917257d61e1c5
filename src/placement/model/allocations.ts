// Consumers and their allocations. A write replaces every allocation of the consumers it names,
// all or nothing, in one transaction:
//   0. the existing consumer rows are locked (FOR UPDATE) before their allocations are read, so
//      two writers of one consumer (PUT against DELETE, say) take turns and each sees the other's
//      committed rows — every path that changes a consumer's allocations starts this way
//      (a write that says its consumers are new skips the lookup: there is nothing to lock, and
//      a consumer that exists after all fails its INSERT and sends the write down this path);
//   1. consumers are checked against the generation the caller saw (>= 1.28) and created or
//      updated (project, user, type);
//   2. their old allocation rows are removed and the new ones inserted (before step 3, so the
//      hot inventory locks are held for as few statements as possible);
//   3. each touched inventory row moves its cached `used` by the difference with a single
//      conditional UPDATE ... WHERE used + delta <= capacity. The row lock that UPDATE takes is
//      what makes racing writers safe on every backend: the loser's condition is evaluated
//      against the winner's committed value (PostgreSQL re-checks after the lock, InnoDB
//      updates read the latest version, SQLite has one writer), so capacity can never be
//      exceeded, and the loser gets a 409;
//   4. provider and consumer generations are bumped.
// Rows are touched in (provider id, class id) order so concurrent writers lock in one order
// (on PostgreSQL the growing inventory rows are locked by id first: see growInventories).
import { sql } from 'kysely';
import { PlacementStore, now, chunks, isUniqueViolation, type Tx } from './store.ts';
import { badRequest, conflict, notFound, CODES, ConcurrentUpdate } from '../errors.ts';

export interface ConsumerWrite {
  uuid: string;
  projectId: string;
  userId: string;
  /** undefined: do not check (before 1.28); null: the consumer must not exist yet. */
  generation?: number | null;
  /** undefined: leave as is (before 1.38); null: no type. */
  consumerType?: string | null;
  /** provider uuid -> class -> amount; empty means "remove this consumer's allocations". */
  allocations: Record<string, Record<string, number>>;
}

export interface WriteOptions {
  checkGenerations: boolean;
}

export interface ConsumerRecord {
  id: number; uuid: string; project_id: string; user_id: string; consumer_type: string | null; generation: number;
}

interface ExistingAlloc { id: number; consumer_id: string; resource_provider_id: number; resource_class_id: number; used: number }

const pairKey = (rp: number, rc: number) => `${rp}:${rc}`;

function capacityError(rc: string, rp: string) {
  return conflict(`Unable to allocate inventory: Unable to create allocation for '${rc}' on resource provider '${rp}'. The requested amount would exceed the capacity.`);
}

/**
 * Replaces the allocations of every consumer in `writes` atomically. Used by PUT
 * /allocations/{c}, POST /allocations and (with inventory changes first) POST /reshaper.
 */
export async function writeAllocations(store: PlacementStore, writes: ConsumerWrite[], opts: WriteOptions, before?: (trx: Tx) => Promise<Set<number>>): Promise<void> {
  // Names resolved outside the transaction (they only ever grow); unknown ones are 400s.
  const rpUuids = [...new Set(writes.flatMap((w) => Object.keys(w.allocations)))];
  const rcNames = [...new Set(writes.flatMap((w) => Object.values(w.allocations).flatMap((r) => Object.keys(r))))];
  const rcIds = await store.rc.ids(rcNames);
  for (const w of writes) {
    for (const res of Object.values(w.allocations)) {
      for (const rc of Object.keys(res)) {
        if (!rcIds.has(rc)) throw badRequest(`Unable to allocate inventory for consumer ${w.uuid}: No such resource class ${rc}.`);
      }
    }
  }
  // New consumers (generation null: "must not exist yet", as the scheduler's claims send) skip
  // the lookup of step 0: it would find nothing and lock nothing, and if one does exist after
  // all, its INSERT fails on the unique key and the write is retried the general way, which
  // reports the conflict with the generation it found.
  let assumeNew = !before && opts.checkGenerations && writes.every((w) => w.generation === null && Object.keys(w.allocations).length > 0);
  for (let attempt = 1; ; attempt++) {
    try {
      await store.tx(async (trx) => {
        const locked = assumeNew ? new Map<string, ConsumerRecord>() : await lockConsumers(store, trx, writes.map((w) => w.uuid));
        const bumped = before ? await before(trx) : new Set<number>();
        await writeInTx(store, trx, writes, opts, rpUuids, rcIds, bumped, locked);
      });
      return;
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      if (assumeNew) { assumeNew = false; attempt--; continue; }
      // Another request created one of these consumers first. With generations that is a
      // conflict the caller must resolve; before 1.28 the consumer is simply reused.
      if (opts.checkGenerations || attempt >= 3) throw new ConcurrentUpdate('consumer generation conflict - another request created this consumer first');
    }
  }
}

/**
 * Locks the existing consumers among `uuids` (in id order) and returns them at their latest
 * committed state. Missing ones are not locked: a racing creator loses on the unique key.
 */
export async function lockConsumers(store: PlacementStore, trx: Tx, uuids: string[]): Promise<Map<string, ConsumerRecord>> {
  const ids: number[] = [];
  for (const part of chunks(uuids)) {
    const rows = await trx.selectFrom('consumers').select('id').where('uuid', 'in', part).execute();
    ids.push(...rows.map((r) => Number(r.id)));
  }
  const out = new Map<string, ConsumerRecord>();
  for (const part of chunks(ids.sort((a, b) => a - b))) {
    const rows = await store.forUpdate(trx.selectFrom('consumers').selectAll().where('id', 'in', part).orderBy('id')).execute();
    for (const r of rows) out.set(r.uuid, { ...r, id: Number(r.id), generation: Number(r.generation) });
  }
  return out;
}

/** The allocation rows of `uuids`, read with a lock (call after lockConsumers). */
export async function lockedAllocations(store: PlacementStore, trx: Tx, uuids: string[]): Promise<ExistingAlloc[]> {
  const out: ExistingAlloc[] = [];
  for (const part of chunks(uuids)) {
    const rows = await store.forUpdate(trx.selectFrom('allocations').select(['id', 'consumer_id', 'resource_provider_id', 'resource_class_id', 'used'])
      .where('consumer_id', 'in', part)).execute();
    for (const r of rows) out.push({ id: Number(r.id), consumer_id: r.consumer_id, resource_provider_id: Number(r.resource_provider_id), resource_class_id: Number(r.resource_class_id), used: Number(r.used) });
  }
  return out;
}

async function writeInTx(store: PlacementStore, trx: Tx, writes: ConsumerWrite[], opts: WriteOptions, rpUuids: string[], rcIds: Map<string, number>, alreadyBumped: Set<number>, existingConsumers: Map<string, ConsumerRecord>): Promise<void> {
  const ts = now();
  // Providers named in the request with their inventory rows, in one read.
  const providers = new Map<string, { id: number; uuid: string }>();
  const inv = new Map<string, { id: number; min_unit: number; max_unit: number; step_size: number }>();
  for (const part of chunks(rpUuids)) {
    const rows = await trx.selectFrom('resource_providers as rp').leftJoin('inventories as i', 'i.resource_provider_id', 'rp.id')
      .select(['rp.id', 'rp.uuid', 'i.id as inv_id', 'i.resource_class_id', 'i.min_unit', 'i.max_unit', 'i.step_size'])
      .where('rp.uuid', 'in', part).execute();
    for (const r of rows) {
      providers.set(r.uuid, { id: Number(r.id), uuid: r.uuid });
      if (r.inv_id !== null) {
        inv.set(pairKey(Number(r.id), Number(r.resource_class_id)), { id: Number(r.inv_id), min_unit: Number(r.min_unit), max_unit: Number(r.max_unit), step_size: Number(r.step_size) });
      }
    }
  }
  for (const u of rpUuids) {
    if (!providers.has(u)) throw badRequest(`Allocation for resource provider '${u}' that does not exist.`);
  }
  const uuidById = new Map([...providers.values()].map((p) => [p.id, p.uuid]));

  // 1. Consumers (locked by the caller).
  const uuids = writes.map((w) => w.uuid);
  const consumers = new Map<string, ConsumerRecord>();
  for (const w of writes) {
    const c = existingConsumers.get(w.uuid);
    if (opts.checkGenerations) {
      if (c && c.generation !== w.generation) {
        throw conflict(`consumer generation conflict - expected ${c.generation} but got ${w.generation ?? 'None'}`, CODES.CONCURRENT_UPDATE);
      }
      if (!c && w.generation !== null && w.generation !== undefined) {
        throw conflict(`consumer generation conflict - expected null but got ${w.generation}`, CODES.CONCURRENT_UPDATE);
      }
    }
    if (c) {
      const type = w.consumerType === undefined ? c.consumer_type : w.consumerType;
      if (c.project_id !== w.projectId || c.user_id !== w.userId || c.consumer_type !== type) {
        await trx.updateTable('consumers').set({ project_id: w.projectId, user_id: w.userId, consumer_type: type, updated_at: ts })
          .where('id', '=', c.id).execute();
      }
      consumers.set(w.uuid, c);
    } else if (Object.keys(w.allocations).length) {
      // A consumer only exists while it has allocations; emptying an unknown one is a no-op.
      // Created at generation 1: what the first write leaves it at (a new row needs no guard).
      await trx.insertInto('consumers').values({
        uuid: w.uuid, project_id: w.projectId, user_id: w.userId, consumer_type: w.consumerType ?? null,
        generation: 1, created_at: ts, updated_at: null,
      }).execute();
    }
  }

  // 2. Old allocations of the consumers that existed (new consumers have none: skipping the
  // lookup also avoids InnoDB gap locks on keys that do not exist).
  const old = await lockedAllocations(store, trx, uuids.filter((u) => existingConsumers.has(u)));

  // Desired rows, and per (provider, class) old and new sums.
  const fresh: { resource_provider_id: number; resource_class_id: number; consumer_id: string; used: number; created_at: string; updated_at: null }[] = [];
  const newSum = new Map<string, number>();
  const oldSum = new Map<string, number>();
  const touchedRps = new Set<number>();
  for (const w of writes) {
    const entries = Object.entries(w.allocations);
    if (!entries.length) {
      // Emptied consumer: its providers count as touched (upstream bumps them).
      for (const a of old) if (a.consumer_id === w.uuid) touchedRps.add(a.resource_provider_id);
    }
    for (const [rpUuid, res] of entries) {
      const rpId = providers.get(rpUuid)!.id;
      touchedRps.add(rpId);
      for (const [rc, amount] of Object.entries(res)) {
        const rcId = rcIds.get(rc)!;
        fresh.push({ resource_provider_id: rpId, resource_class_id: rcId, consumer_id: w.uuid, used: amount, created_at: ts, updated_at: null });
        const k = pairKey(rpId, rcId);
        newSum.set(k, (newSum.get(k) ?? 0) + amount);
      }
    }
  }
  for (const a of old) {
    const k = pairKey(a.resource_provider_id, a.resource_class_id);
    oldSum.set(k, (oldSum.get(k) ?? 0) + a.used);
  }

  // 3. Inventory checks: the class must be inventoried, each amount within the unit limits.
  const pairs = [...new Set([...newSum.keys(), ...oldSum.keys()])].map((k) => k.split(':').map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (const row of fresh) {
    const i = inv.get(pairKey(row.resource_provider_id, row.resource_class_id));
    const rc = store.rc.nameSync(row.resource_class_id);
    const rp = uuidById.get(row.resource_provider_id)!;
    if (!i) throw conflict(`Unable to allocate inventory: Inventory for '${rc}' on resource provider '${rp}' invalid.`);
    if (row.used < i.min_unit || row.used > i.max_unit || row.used % i.step_size !== 0) {
      throw conflict(`Unable to allocate inventory: Unable to create allocation for '${rc}' on resource provider '${rp}'. The requested amount would violate inventory constraints.`);
    }
  }

  // 2b. Swap the rows, before the inventory rows are locked: every claim on a host queues for
  // those locks, so the fewer round trips left between taking them and the commit, the more
  // claims per second one host admits. A capacity failure below rolls the swap back.
  for (const part of chunks(old.map((a) => a.id))) await trx.deleteFrom('allocations').where('id', 'in', part).execute();
  for (const part of chunks(fresh, 200)) await trx.insertInto('allocations').values(part).execute();

  // Usage deltas. Growth is one conditional UPDATE over every growing row (CASE per row id):
  // it must change them all, or some inventory lacks room. Shrinking never fails; rows not read
  // above (the consumer's old providers) are addressed by provider and class.
  const grow: { id: number; delta: number; rp: number; rc: number }[] = [];
  const shrink: { rp: number; rc: number; delta: number }[] = [];
  for (const [rp, rc] of pairs) {
    const k = pairKey(rp, rc);
    const delta = (newSum.get(k) ?? 0) - (oldSum.get(k) ?? 0);
    if (delta > 0) grow.push({ id: inv.get(k)!.id, delta, rp, rc });
    else if (delta < 0) shrink.push({ rp, rc, delta });
  }
  if (grow.length) {
    const changed = await store.growInventories(trx, grow);
    if (changed !== grow.length) {
      // Name the first inventory without room (read under the locks this transaction holds).
      const full = await trx.selectFrom('inventories').select(['id', 'used', 'total', 'reserved', 'allocation_ratio']).where('id', 'in', grow.map((g) => g.id)).execute();
      const room = new Map(full.map((f) => [Number(f.id), f]));
      const bad = grow.find((g) => {
        const f = room.get(g.id);
        return !f || Number(f.used) + g.delta > (Number(f.total) - Number(f.reserved)) * Number(f.allocation_ratio);
      }) ?? grow[0];
      throw capacityError(store.rc.nameSync(bad.rc), uuidById.get(bad.rp) ?? String(bad.rp));
    }
  }
  for (const s of shrink) {
    await trx.updateTable('inventories').set((eb) => ({ used: eb('used', '+', s.delta) }))
      .where('resource_provider_id', '=', s.rp).where('resource_class_id', '=', s.rc).execute();
  }

  // 4. Generations. Providers in lock order; each once per request.
  const bump = [...touchedRps].filter((id) => !alreadyBumped.has(id)).sort((a, b) => a - b);
  if (bump.length) {
    await trx.updateTable('resource_providers').set((eb) => ({ generation: eb('generation', '+', 1), updated_at: ts })).where('id', 'in', bump).execute();
  }
  for (const w of writes) {
    const c = consumers.get(w.uuid);
    if (!c) continue;
    if (!Object.keys(w.allocations).length) {
      // No allocations left: the consumer goes away (its generation check above still held).
      await trx.deleteFrom('consumers').where('id', '=', c.id).where('generation', '=', c.generation).execute();
      continue;
    }
    const r = await trx.updateTable('consumers').set({ generation: c.generation + 1, updated_at: ts })
      .where('id', '=', c.id).where('generation', '=', c.generation).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new ConcurrentUpdate();
  }
}

/** DELETE /allocations/{consumer}: removes everything; 404 when there is nothing. */
export async function deleteAllocations(store: PlacementStore, consumerUuid: string): Promise<void> {
  await store.tx(async (trx) => {
    await lockConsumers(store, trx, [consumerUuid]);
    const rows = await lockedAllocations(store, trx, [consumerUuid]);
    if (!rows.length) throw notFound(`No allocations for consumer '${consumerUuid}'`);
    const sums = new Map<string, number>();
    for (const r of rows) {
      const k = pairKey(r.resource_provider_id, r.resource_class_id);
      sums.set(k, (sums.get(k) ?? 0) + r.used);
    }
    const pairs = [...sums.keys()].map((k) => k.split(':').map(Number) as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const [rp, rc] of pairs) {
      const amount = sums.get(pairKey(rp, rc))!;
      await trx.updateTable('inventories').set((eb) => ({ used: eb('used', '-', amount) }))
        .where('resource_provider_id', '=', rp).where('resource_class_id', '=', rc).execute();
    }
    await trx.deleteFrom('allocations').where('id', 'in', rows.map((r) => r.id)).execute();
    await trx.deleteFrom('consumers').where('uuid', '=', consumerUuid).execute();
  });
}

export interface ConsumerAllocations {
  consumer?: ConsumerRecord & { created_at: string; updated_at: string | null };
  /** provider uuid -> { generation, resources } */
  allocations: Map<string, { generation: number; resources: Record<string, number> }>;
  lastModified?: string;
}

export async function allocationsForConsumer(store: PlacementStore, consumerUuid: string): Promise<ConsumerAllocations> {
  const rows = await store.db.selectFrom('allocations as a').innerJoin('resource_providers as rp', 'rp.id', 'a.resource_provider_id')
    .select(['a.resource_class_id', 'a.used', 'a.created_at', 'a.updated_at', 'rp.uuid', 'rp.generation'])
    .where('a.consumer_id', '=', consumerUuid).orderBy('a.id').execute();
  const out: ConsumerAllocations = { allocations: new Map() };
  if (!rows.length) return out;
  await store.rc.names(rows.map((r) => Number(r.resource_class_id)));
  for (const r of rows) {
    let e = out.allocations.get(r.uuid);
    if (!e) { e = { generation: Number(r.generation), resources: {} }; out.allocations.set(r.uuid, e); }
    e.resources[store.rc.nameSync(Number(r.resource_class_id))] = Number(r.used);
    const m = r.updated_at ?? r.created_at;
    if (!out.lastModified || m > out.lastModified) out.lastModified = m;
  }
  const c = await store.db.selectFrom('consumers').selectAll().where('uuid', '=', consumerUuid).executeTakeFirst();
  if (c) out.consumer = { ...c, id: Number(c.id), generation: Number(c.generation) };
  return out;
}

export async function allocationsForProvider(store: PlacementStore, rpId: number): Promise<{ byConsumer: Map<string, { resources: Record<string, number>; generation: number | null }>; lastModified?: string }> {
  const rows = await store.db.selectFrom('allocations as a').leftJoin('consumers as c', 'c.uuid', 'a.consumer_id')
    .select(['a.consumer_id', 'a.resource_class_id', 'a.used', 'a.created_at', 'a.updated_at', 'c.generation'])
    .where('a.resource_provider_id', '=', rpId).orderBy('a.id').execute();
  await store.rc.names(rows.map((r) => Number(r.resource_class_id)));
  const byConsumer = new Map<string, { resources: Record<string, number>; generation: number | null }>();
  let lastModified: string | undefined;
  for (const r of rows) {
    let e = byConsumer.get(r.consumer_id);
    if (!e) { e = { resources: {}, generation: r.generation === null ? null : Number(r.generation) }; byConsumer.set(r.consumer_id, e); }
    e.resources[store.rc.nameSync(Number(r.resource_class_id))] = Number(r.used);
    const m = r.updated_at ?? r.created_at;
    if (!lastModified || m > lastModified) lastModified = m;
  }
  return { byConsumer, lastModified };
}

/**
 * Checks the invariant the capacity logic rests on: every inventory's cached `used` equals the
 * sum of its allocations. Returns the rows that disagree (tests and `status upgrade-check`).
 */
export async function usageMismatches(store: PlacementStore): Promise<{ resource_provider_id: number; resource_class_id: number; cached: number; actual: number }[]> {
  const sums = await store.db.selectFrom('allocations').select(['resource_provider_id', 'resource_class_id'])
    .select((eb) => eb.fn.sum<number>('used').as('total')).groupBy(['resource_provider_id', 'resource_class_id']).execute();
  const actual = new Map(sums.map((s) => [pairKey(Number(s.resource_provider_id), Number(s.resource_class_id)), Number(s.total)]));
  const invs = await store.db.selectFrom('inventories').select(['resource_provider_id', 'resource_class_id', 'used']).execute();
  const out = [];
  for (const i of invs) {
    const k = pairKey(Number(i.resource_provider_id), Number(i.resource_class_id));
    const a = actual.get(k) ?? 0;
    actual.delete(k);
    if (a !== Number(i.used)) out.push({ resource_provider_id: Number(i.resource_provider_id), resource_class_id: Number(i.resource_class_id), cached: Number(i.used), actual: a });
  }
  for (const [k, a] of actual) {
    const [rp, rc] = k.split(':').map(Number);
    out.push({ resource_provider_id: rp, resource_class_id: rc, cached: 0, actual: a });
  }
  return out;
}
