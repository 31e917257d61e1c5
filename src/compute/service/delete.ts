// Deleting an instance (Nova's compute/api.py delete / force_delete / _local_delete): a build
// request still waiting for the conductor is deleted with its mappings; an instance no compute
// host will see again (never scheduled, in cell0, or its host's service down) is deleted here;
// any other is handed to its host (task_state deleting, then terminate_instance).
import { Conflict } from '../../common/errors.ts';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import { CELL0_UUID, type Cells } from '../cells.ts';
import type { PlacementClient } from '../clients.ts';
import type { ApiDb } from '../db/tables.ts';
import { TASK, type InstanceRow } from '../objects.ts';
import { computeRpc, type CellTransports } from '../rpc.ts';
import { findInstance, markDeleted, recordAction, serviceIsUp, updateInstance, type Located } from '../store.ts';
import type { Caller } from './actions.ts';
import { checkInstanceState } from './instance-states.ts';

/** An instance in a cell, or still a build request in the API database. */
export interface InstanceRef { located?: Located; build?: { row: InstanceRow } }

export interface DeleteDeps { cells: Cells; cellTransports: CellTransports; placement: PlacementClient; config: Config; logger: Logger }

/** The instance's API-database traces once it is being deleted. */
async function deleteMappings(db: ApiDb, uuid: string): Promise<void> {
  await db.updateTable('instance_mappings').set({ queued_for_delete: 1 }).where('instance_uuid', '=', uuid).execute();
  await db.deleteFrom('request_specs').where('instance_uuid', '=', uuid).execute();
  await db.deleteFrom('instance_group_members').where('instance_uuid', '=', uuid).execute();
}

/** Local delete: no compute host will do it. */
export async function localDelete(d: DeleteDeps, caller: Caller, l: Located): Promise<void> {
  await recordAction(l.db, l.row.uuid, 'delete', caller.ctx);
  await markDeleted(l.db, l.row.uuid);
  await d.placement.deleteAllocations(l.row.uuid)
    .catch((err) => d.logger.warn({ err, instance: l.row.uuid, requestId: caller.ctx.requestId }, 'could not delete allocations'));
  await deleteMappings(d.cells.db, l.row.uuid);
}

/** Deletes an instance the caller was authorized to delete (lock: admins only). */
export async function deleteInstance(d: DeleteDeps, caller: Caller, ref: InstanceRef): Promise<void> {
  const row = ref.located?.row ?? ref.build!.row;
  if (row.locked_by && !caller.isAdmin) throw new Conflict(`Instance ${row.uuid} is locked`);
  checkInstanceState(row, 'delete');
  if (ref.build) {
    // Still a build request: deleting it is the delete; the conductor will notice.
    const r = await d.cells.db.deleteFrom('build_requests').where('instance_uuid', '=', row.uuid).executeTakeFirst();
    if (Number(r.numDeletedRows) > 0) {
      await deleteMappings(d.cells.db, row.uuid);
      return;
    }
    const l = await findInstance(d.cells, row.uuid);
    if (!l) return;
    ref.located = l;
  }
  const l = ref.located!;
  if (l.cell.uuid === CELL0_UUID || !l.row.host) return localDelete(d, caller, l);
  const svc = await l.db.selectFrom('services').selectAll().where('host', '=', l.row.host).where('binary', '=', 'nova-compute').executeTakeFirst();
  if (!svc || !serviceIsUp(svc, d.config.get<number>('DEFAULT', 'service_down_time'))) return localDelete(d, caller, l);
  // A delete of an instance already `deleting` casts again, as Nova's does: the first cast may
  // have been lost (or its host failed half-way), and terminate_instance is idempotent.
  if (l.row.task_state !== TASK.DELETING) {
    await updateInstance(l.db, l.row.uuid, { task_state: TASK.DELETING });
    await recordAction(l.db, l.row.uuid, 'delete', caller.ctx);
    await deleteMappings(d.cells.db, l.row.uuid);
  }
  await castTerminate(d, caller.ctx, l);
}

/** terminate_instance to the instance's host (the API's delete, and the reconciler's retry of a lost one). */
export async function castTerminate(d: Pick<DeleteDeps, 'cellTransports'>, ctx: Caller['ctx'], l: Located): Promise<void> {
  await (await computeRpc(d.cellTransports, l.cell, l.row.host!)).cast(ctx, 'terminate_instance', { instance_uuid: l.row.uuid });
}
