// The fixes of the audit's findings, shared by the operator commands (nova-manage's placement
// heal_allocations / audit --delete, db online_data_migrations) and the conductor's reconciler.
import type { Cells } from '../cells.ts';
import type { PlacementClient } from '../clients.ts';
import type { InstanceRow } from '../objects.ts';
import { VM, TASK } from '../objects.ts';
import { expectedResources, type Finding } from './invariants.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { now } from '../util.ts';

/** Removes the allocations the findings name as orphaned (or on a host the instance is not on). */
export async function deleteOrphanAllocations(placement: PlacementClient, findings: Finding[], log: (f: Finding) => void = () => {}): Promise<number> {
  let n = 0;
  for (const f of findings) {
    if (f.kind === 'orphan_allocation') {
      // The whole consumer is gone: every provider's part goes at once.
      await placement.deleteAllocations(f.subject);
    } else if (f.kind === 'allocation_wrong_host' && f.provider) {
      const cur = await placement.getAllocations(f.subject);
      if (!cur[f.provider]) continue;
      const { [f.provider]: _gone, ...rest } = cur;
      const r = await placement.request('GET', `/allocations/${f.subject}`);
      if (Object.keys(rest).length === 0) await placement.deleteAllocations(f.subject);
      else await placement.claim(f.subject, rest, r.body.project_id, r.body.user_id);
    } else continue;
    n++;
    log(f);
  }
  return n;
}

export interface HealResult { healed: string[]; failed: { uuid: string; reason: string }[]; noNode: string[]; more: boolean }

/**
 * nova-manage placement heal_allocations: every live instance on a host gets its flavor's
 * allocation on its compute node provider when it has none there (or, with `force`, when it
 * holds something else).
 */
export async function healAllocations(cells: Cells, placement: PlacementClient, o: { instance?: string; force?: boolean; dryRun?: boolean; maxCount?: number } = {}): Promise<HealResult> {
  const out: HealResult = { healed: [], failed: [], noNode: [], more: false };
  for (const { db } of await cells.all({ includeCell0: false })) {
    let q = db.selectFrom('instances').selectAll().where('deleted', '=', 0).where('host', 'is not', null);
    if (o.instance) q = q.where('uuid', '=', o.instance);
    const nodes = new Map((await db.selectFrom('compute_nodes').select(['uuid', 'host', 'hypervisor_hostname']).execute()).map((n) => [`${n.host}/${n.hypervisor_hostname}`, n.uuid]));
    for (const r of await q.execute() as InstanceRow[]) {
      if (r.vm_state === VM.SHELVED_OFFLOADED || (r.vm_state === VM.BUILDING && r.task_state === TASK.SCHEDULING) || r.task_state === TASK.DELETING) continue;
      const node = nodes.get(`${r.host}/${r.node}`);
      if (!node) { out.noNode.push(r.uuid); continue; }
      const want = expectedResources(r);
      const cur = await placement.getAllocations(r.uuid);
      const have = cur[node]?.resources;
      const same = have && Object.keys({ ...want, ...have }).every((k) => (want[k] ?? 0) === (have[k] ?? 0));
      if (have && (same || !o.force)) continue;
      if (o.maxCount !== undefined && out.healed.length >= o.maxCount) { out.more = true; return out; }
      if (o.dryRun) { out.healed.push(r.uuid); continue; }
      // Other providers' parts (a move in progress) are kept; this host's part is (re)written.
      const ok = await placement.claim(r.uuid, { ...cur, [node]: { resources: want } }, r.project_id, r.user_id);
      if (ok) out.healed.push(r.uuid); else out.failed.push({ uuid: r.uuid, reason: `placement refused ${JSON.stringify(want)} on ${r.node}` });
    }
  }
  return out;
}

/**
 * Nova's online data migration populate_queued_for_delete, run for drift: instance mappings of
 * instances deleted in their cell are marked queued_for_delete, so quota stops counting them
 * (and mappings of live instances not being deleted are counted again).
 */
export async function fixQueuedForDelete(cells: Cells): Promise<string[]> {
  const fixed: string[] = [];
  for (const { cell, db } of await cells.all()) {
    const cellId = (await cells.db.selectFrom('cell_mappings').select('id').where('uuid', '=', cell.uuid).executeTakeFirst())?.id;
    if (cellId === undefined) continue;
    const live = await cells.db.selectFrom('instance_mappings').select('instance_uuid').where('cell_id', '=', cellId).where('queued_for_delete', '=', 0).execute();
    for (let i = 0; i < live.length; i += 500) {
      const uuids = live.slice(i, i + 500).map((m) => m.instance_uuid);
      const gone = await db.selectFrom('instances').select('uuid').where('uuid', 'in', uuids).where('deleted', '!=', 0).execute();
      if (!gone.length) continue;
      await cells.db.updateTable('instance_mappings').set({ queued_for_delete: 1 }).where('instance_uuid', 'in', gone.map((g) => g.uuid)).execute();
      fixed.push(...gone.map((g) => g.uuid));
    }
    // The other direction: live instances, not being deleted, that quota no longer counts (but
    // not builds: one of those was deleted by its user while the conductor created it — see
    // racedBuildDeletes).
    const queued = await cells.db.selectFrom('instance_mappings').select('instance_uuid').where('cell_id', '=', cellId).where('queued_for_delete', '=', 1).execute();
    for (let i = 0; i < queued.length; i += 500) {
      const uuids = queued.slice(i, i + 500).map((m) => m.instance_uuid);
      const alive = await db.selectFrom('instances').select('uuid').where('uuid', 'in', uuids).where('deleted', '=', 0)
        .where('vm_state', 'not in', [VM.SOFT_DELETED, VM.BUILDING]).where((eb) => eb.or([eb('task_state', 'is', null), eb('task_state', '!=', TASK.DELETING)])).execute();
      if (!alive.length) continue;
      await cells.db.updateTable('instance_mappings').set({ queued_for_delete: 0 }).where('instance_uuid', 'in', alive.map((g) => g.uuid)).execute();
      fixed.push(...alive.map((g) => g.uuid));
    }
  }
  return fixed;
}

/**
 * Builds whose user deleted them (their build request, the mapping queued for delete) while the
 * conductor was writing them into their cell, and that the conductor could not undo: live, still
 * BUILDING, not `deleting`. The reconciler finishes their delete.
 */
export async function racedBuildDeletes(cells: Cells): Promise<string[]> {
  const out: string[] = [];
  for (const { cell, db } of await cells.all({ includeCell0: false })) {
    const cellId = (await cells.db.selectFrom('cell_mappings').select('id').where('uuid', '=', cell.uuid).executeTakeFirst())?.id;
    if (cellId === undefined) continue;
    const queued = await cells.db.selectFrom('instance_mappings').select('instance_uuid').where('cell_id', '=', cellId).where('queued_for_delete', '=', 1).execute();
    for (let i = 0; i < queued.length; i += 500) {
      const uuids = queued.slice(i, i + 500).map((m) => m.instance_uuid);
      const rows = await db.selectFrom('instances').select('uuid').where('uuid', 'in', uuids).where('deleted', '=', 0).where('vm_state', '=', VM.BUILDING)
        .where((eb) => eb.or([eb('task_state', 'is', null), eb('task_state', '!=', TASK.DELETING)])).execute();
      out.push(...rows.map((r) => r.uuid));
    }
  }
  return out;
}

/**
 * nova-manage cell_v2 map_instances: live instances of a cell (of every cell) that have no
 * instance mapping get one pointing at their cell, so the API can find, show and delete them
 * again (`only`: just these, as the reconciler maps what two passes found). Returns the instances mapped.
 */
export async function mapInstances(cells: Cells, o: { cellUuid?: string; only?: Set<string> } = {}): Promise<string[]> {
  const out: string[] = [];
  for (const { cell, db } of await cells.all()) {
    if (o.cellUuid && cell.uuid !== o.cellUuid) continue;
    const cellId = (await cells.db.selectFrom('cell_mappings').select('id').where('uuid', '=', cell.uuid).executeTakeFirst())?.id;
    if (cellId === undefined) continue;
    const live = await db.selectFrom('instances').select(['uuid', 'project_id', 'user_id']).where('deleted', '=', 0).execute();
    for (let i = 0; i < live.length; i += 500) {
      const batch = live.slice(i, i + 500);
      const have = new Set((await cells.db.selectFrom('instance_mappings').select('instance_uuid').where('instance_uuid', 'in', batch.map((r) => r.uuid)).execute()).map((m) => m.instance_uuid));
      for (const r of batch.filter((x) => !have.has(x.uuid) && (!o.only || o.only.has(x.uuid)))) {
        try {
          await cells.db.insertInto('instance_mappings').values({ instance_uuid: r.uuid, cell_id: cellId, project_id: r.project_id, user_id: r.user_id, queued_for_delete: 0, created_at: now() }).execute();
          out.push(r.uuid);
        } catch (e) {
          if (!isUniqueViolation(e)) throw e; // mapped meanwhile
        }
      }
    }
  }
  return out;
}
