// Moves (resize, cold and live migration, evacuation) as records: the cell's `migrations` rows
// (Nova's objects.Migration) and what an instance keeps while it moves, in its system_metadata:
// `old_vm_state` (what confirm/revert go back to) and the old and new flavors (Nova's
// instance.old_flavor / new_flavor). The API, the conductor and its periodic tasks share these.
import { randomUUID } from 'node:crypto';
import { Conflict, NotFound } from '../../common/errors.ts';
import type { CellDb, MigrationRow, MigrationsTable } from '../db/tables.ts';
import type { EmbeddedFlavor, InstanceRow } from '../objects.ts';
import { now, parseJson } from '../util.ts';
import type { Insertable } from 'kysely';

export type MigrationType = 'resize' | 'migration' | 'live-migration' | 'evacuation';

/** Nova's migration statuses, per kind of move (the order they are passed through). */
export const MIGRATION_STATUS = {
  cold: ['pre-migrating', 'migrating', 'post-migrating', 'finished', 'confirming', 'confirmed', 'reverting', 'reverted', 'error'],
  live: ['accepted', 'queued', 'preparing', 'running', 'post-migrating', 'completed', 'failed', 'cancelled', 'error'],
  evacuation: ['accepted', 'pre-migrating', 'done', 'failed', 'error'],
} as const;

/** Live migrations the API can force to complete or abort (Nova's in-progress statuses). */
export const LIVE_IN_PROGRESS = ['queued', 'preparing', 'running', 'post-migrating'];

/** Moves not ended yet: an agent that restarts during one of these puts it right (agent/moves.ts recoverMoves). 'finished' (VERIFY_RESIZE) is a resting state. */
export const MOVES_IN_PROGRESS = ['accepted', ...LIVE_IN_PROGRESS, 'pre-migrating', 'migrating', 'confirming', 'reverting'];

export interface NewMigration {
  instance: Pick<InstanceRow, 'uuid' | 'host' | 'node' | 'project_id' | 'user_id'>;
  type: MigrationType;
  status: string;
  oldFlavorId?: number | null;
  newFlavorId?: number | null;
  dest?: { host: string | null; node?: string | null; address?: string | null };
}

export async function createMigration(db: CellDb, m: NewMigration): Promise<MigrationRow> {
  const t = now();
  const row: Insertable<MigrationsTable> = {
    uuid: randomUUID(), instance_uuid: m.instance.uuid, source_compute: m.instance.host, source_node: m.instance.node,
    dest_compute: m.dest?.host ?? null, dest_node: m.dest?.node ?? null, dest_host: m.dest?.address ?? null,
    old_instance_type_id: m.oldFlavorId ?? null, new_instance_type_id: m.newFlavorId ?? null,
    status: m.status, migration_type: m.type, hidden: 0, cross_cell_move: 0,
    memory_total: null, memory_processed: null, memory_remaining: null, disk_total: null, disk_processed: null, disk_remaining: null,
    user_id: m.instance.user_id, project_id: m.instance.project_id, created_at: t, updated_at: t, deleted_at: null, deleted: 0,
  };
  await db.insertInto('migrations').values(row).execute();
  return db.selectFrom('migrations').selectAll().where('uuid', '=', row.uuid).executeTakeFirstOrThrow();
}

export async function getMigration(db: CellDb, uuid: string): Promise<MigrationRow | undefined> {
  return db.selectFrom('migrations').selectAll().where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
}

/** Updates a migration; with `expectStatus` only from those statuses (Conflict otherwise), so two movers cannot both win. */
export async function updateMigration(db: CellDb, uuid: string, updates: Partial<MigrationRow>, expectStatus?: string[]): Promise<MigrationRow> {
  const { id: _id, uuid: _u, ...rest } = updates;
  let q = db.updateTable('migrations').set({ ...rest, updated_at: now() }).where('uuid', '=', uuid).where('deleted', '=', 0);
  if (expectStatus?.length) q = q.where('status', 'in', expectStatus);
  const r = await q.executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) {
    const m = await getMigration(db, uuid);
    if (!m) throw new NotFound(`Migration ${uuid} could not be found.`);
    throw new Conflict(`Migration ${uuid} is ${m.status}, not ${expectStatus?.join(' or ')}`);
  }
  return (await getMigration(db, uuid))!;
}

/** The instance's migration of one of these types in one of these statuses (the newest). */
export async function migrationOf(db: CellDb, instanceUuid: string, types: MigrationType[], statuses: string[]): Promise<MigrationRow | undefined> {
  return db.selectFrom('migrations').selectAll().where('instance_uuid', '=', instanceUuid).where('deleted', '=', 0)
    .where('migration_type', 'in', types).where('status', 'in', statuses).orderBy('id', 'desc').executeTakeFirst();
}

/** What a moving instance keeps in system_metadata. */
export interface MoveState { old_vm_state?: string; old_flavor?: EmbeddedFlavor; new_flavor?: EmbeddedFlavor }

export function moveStateOf(row: Pick<InstanceRow, 'system_metadata'>): MoveState {
  const sm = parseJson<Record<string, unknown>>(row.system_metadata, {});
  const fl = (k: string) => (typeof sm[k] === 'string' ? parseJson<EmbeddedFlavor | undefined>(sm[k] as string, undefined) : undefined);
  return { old_vm_state: typeof sm.old_vm_state === 'string' ? sm.old_vm_state : undefined, old_flavor: fl('old_flavor'), new_flavor: fl('new_flavor') };
}

/** system_metadata with the move state set (undefined values removed). */
export function withMoveState(row: Pick<InstanceRow, 'system_metadata'>, s: MoveState | null): string {
  const sm = parseJson<Record<string, unknown>>(row.system_metadata, {});
  delete sm.old_vm_state; delete sm.old_flavor; delete sm.new_flavor;
  if (s?.old_vm_state) sm.old_vm_state = s.old_vm_state;
  if (s?.old_flavor) sm.old_flavor = JSON.stringify(s.old_flavor);
  if (s?.new_flavor) sm.new_flavor = JSON.stringify(s.new_flavor);
  return JSON.stringify(sm);
}

/** The instance columns that follow its flavor (the embedded flavor and its sizes). */
export function flavorColumns(f: EmbeddedFlavor): Pick<InstanceRow, 'flavor' | 'instance_type_id' | 'vcpus' | 'memory_mb' | 'root_gb' | 'ephemeral_gb'> {
  return { flavor: JSON.stringify(f), instance_type_id: f.flavorid, vcpus: f.vcpus, memory_mb: f.memory_mb, root_gb: f.root_gb, ephemeral_gb: f.ephemeral_gb };
}
