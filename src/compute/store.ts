// Reads and writes of instances and what hangs off them (metadata, tags, faults, actions and
// events) in a cell database. Used by the API and the conductor; compute agents reach these only
// through the conductor.
import { isUniqueViolation } from '../common/db/database.ts';
import { Conflict, NotFound } from '../common/errors.ts';
import type { Cells, CellMapping } from './cells.ts';
import type { InstanceRow } from './objects.ts';
import { now } from './util.ts';

import { InstanceNotFound, UnexpectedState } from './errors.ts';
import type { Generated, Insertable, Kysely } from 'kysely';
import type { CellDb } from './db/tables.ts';

export { InstanceNotFound, UnexpectedState };

export interface Located { cell: CellMapping; db: CellDb; row: InstanceRow }

export async function findInstance(cells: Cells, uuid: string, opts: { readDeleted?: boolean } = {}): Promise<Located | undefined> {
  const where = await cells.cellOfInstance(uuid);
  if (!where) return undefined;
  let q = where.db.selectFrom('instances').selectAll().where('uuid', '=', uuid);
  if (!opts.readDeleted) q = q.where('deleted', '=', 0);
  const row = await q.executeTakeFirst() as InstanceRow | undefined;
  return row ? { ...where, row } : undefined;
}

export interface Expect { task_state?: (string | null)[]; vm_state?: string[] }

/** Updates a live instance; with `expect`, only if it is still in one of those states. */
export async function updateInstance(db: CellDb, uuid: string, updates: Partial<InstanceRow>, expect?: Expect): Promise<InstanceRow> {
  let q = db.updateTable('instances').set({ ...updates, updated_at: now() }).where('uuid', '=', uuid).where('deleted', '=', 0);
  if (expect?.vm_state) q = q.where('vm_state', 'in', expect.vm_state);
  if (expect?.task_state) {
    const nonNull = expect.task_state.filter((t): t is string => t !== null);
    const allowNull = expect.task_state.includes(null);
    q = q.where((eb) => {
      const parts = [];
      if (nonNull.length) parts.push(eb('task_state', 'in', nonNull));
      if (allowNull) parts.push(eb('task_state', 'is', null));
      return eb.or(parts);
    });
  }
  const r = await q.executeTakeFirst();
  const row = await db.selectFrom('instances').selectAll().where('uuid', '=', uuid).executeTakeFirst() as InstanceRow | undefined;
  if (!row || row.deleted) throw new InstanceNotFound(`Instance ${uuid} could not be found.`);
  if (Number(r.numUpdatedRows) === 0) {
    throw new UnexpectedState(`Conflict updating instance ${uuid}. Expected: ${JSON.stringify(expect)}. Actual: vm_state=${row.vm_state}, task_state=${row.task_state}`);
  }
  return row;
}

export async function metadataOf(db: CellDb, uuids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for (let i = 0; i < uuids.length; i += 500) {
    const chunk = uuids.slice(i, i + 500);
    if (!chunk.length) continue;
    const rows = await db.selectFrom('instance_metadata').select(['instance_uuid', 'key', 'value']).where('instance_uuid', 'in', chunk).orderBy('id').execute();
    for (const r of rows) {
      if (!out.has(r.instance_uuid)) out.set(r.instance_uuid, {});
      out.get(r.instance_uuid)![r.key] = r.value;
    }
  }
  return out;
}

export async function tagsOf(db: CellDb, uuids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < uuids.length; i += 500) {
    const chunk = uuids.slice(i, i + 500);
    if (!chunk.length) continue;
    const rows = await db.selectFrom('instance_tags').select(['instance_uuid', 'tag']).where('instance_uuid', 'in', chunk).orderBy('tag').execute();
    for (const r of rows) {
      if (!out.has(r.instance_uuid)) out.set(r.instance_uuid, []);
      out.get(r.instance_uuid)!.push(r.tag);
    }
  }
  return out;
}

export interface FaultRow { instance_uuid: string; code: number; message: string; details: string | null; host: string | null; created_at: string }

/** The latest fault of each instance. */
export async function faultsOf(db: CellDb, uuids: string[]): Promise<Map<string, FaultRow>> {
  const out = new Map<string, FaultRow>();
  for (let i = 0; i < uuids.length; i += 500) {
    const chunk = uuids.slice(i, i + 500);
    if (!chunk.length) continue;
    const rows = await db.selectFrom('instance_faults').selectAll().where('instance_uuid', 'in', chunk).orderBy('id').execute() as FaultRow[];
    for (const r of rows) out.set(r.instance_uuid, r);
  }
  return out;
}

export async function setMetadata(db: CellDb, uuid: string, md: Record<string, string>, replace: boolean): Promise<void> {
  if (replace) await db.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).execute();
  for (const [key, value] of Object.entries(md)) {
    const r = await db.updateTable('instance_metadata').set({ value }).where('instance_uuid', '=', uuid).where('key', '=', key).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      try { await db.insertInto('instance_metadata').values({ instance_uuid: uuid, key, value }).execute(); } catch (e) {
        if (!isUniqueViolation(e)) throw e;
      }
    }
  }
}

export async function addFault(db: CellDb, uuid: string, f: { code: number; message: string; details?: string; host?: string | null }): Promise<void> {
  await db.insertInto('instance_faults').values({ instance_uuid: uuid, code: f.code, message: f.message.slice(0, 65000), details: f.details ?? null, host: f.host ?? null, created_at: now() }).execute();
}

export interface ActionCtx { requestId: string; userId?: string; projectId?: string }

export async function recordAction(db: CellDb, uuid: string, action: string, ctx: ActionCtx): Promise<number> {
  return insertId(db, 'instance_actions', {
    action, instance_uuid: uuid, request_id: ctx.requestId, user_id: ctx.userId ?? null, project_id: ctx.projectId ?? null,
    start_time: now(), finish_time: null, message: null, updated_at: now(),
  });
}

/** INSERT returning the new row's id on every dialect (PostgreSQL needs RETURNING, the others report it). */
export async function insertId<DB, T extends keyof DB & string>(db: Kysely<DB>, table: T, values: Insertable<DB[T]>): Promise<number> {
  // Any table with an integer `id`: the generic table cannot be expressed to Kysely's builder
  // otherwise; the caller's `values` were checked against the real table above.
  type WithId = Record<T, { id: Generated<number> } & Record<string, unknown>>;
  const k = db as unknown as Kysely<WithId>;
  const v = values as unknown as Insertable<WithId[T]>;
  if ((db.getExecutor().adapter as object).constructor.name.startsWith('Postgres')) {
    const r = await k.insertInto(table).values(v).returning('id' as never).executeTakeFirstOrThrow() as { id: number };
    return Number(r.id);
  }
  const r = await k.insertInto(table).values(v).executeTakeFirstOrThrow();
  return Number(r.insertId);
}

async function actionFor(db: CellDb, uuid: string, requestId: string): Promise<number | undefined> {
  const row = await db.selectFrom('instance_actions').select('id').where('instance_uuid', '=', uuid).where('request_id', '=', requestId).orderBy('id', 'desc').executeTakeFirst();
  return row?.id;
}

export async function eventStart(db: CellDb, uuid: string, requestId: string, event: string, host: string | null): Promise<void> {
  const id = await actionFor(db, uuid, requestId);
  if (!id) return;
  await db.insertInto('instance_actions_events').values({ action_id: id, event, start_time: now(), finish_time: null, result: null, traceback: null, host, details: null }).execute();
  await db.updateTable('instance_actions').set({ updated_at: now() }).where('id', '=', id).execute();
}

export async function eventFinish(db: CellDb, uuid: string, requestId: string, event: string, result: 'Success' | 'Error', opts: { traceback?: string; details?: string; host?: string | null } = {}): Promise<void> {
  const id = await actionFor(db, uuid, requestId);
  if (!id) return;
  const ev = await db.selectFrom('instance_actions_events').select('id').where('action_id', '=', id).where('event', '=', event).where('finish_time', 'is', null).orderBy('id', 'desc').executeTakeFirst();
  const t = now();
  if (ev) {
    await db.updateTable('instance_actions_events').set({ finish_time: t, result, traceback: opts.traceback ?? null, details: opts.details ?? null }).where('id', '=', ev.id).execute();
  } else {
    await db.insertInto('instance_actions_events').values({ action_id: id, event, start_time: t, finish_time: t, result, traceback: opts.traceback ?? null, host: opts.host ?? null, details: opts.details ?? null }).execute();
  }
  const upd: Record<string, unknown> = { updated_at: t };
  if (result === 'Error') upd.message = 'Error';
  await db.updateTable('instance_actions').set(upd).where('id', '=', id).execute();
}

export async function finishAction(db: CellDb, uuid: string, requestId: string): Promise<void> {
  const id = await actionFor(db, uuid, requestId);
  if (id) await db.updateTable('instance_actions').set({ finish_time: now(), updated_at: now() }).where('id', '=', id).execute();
}

/** Soft-deletes an instance row (deleted = 1) as Nova keeps deleted instances readable. */
export async function markDeleted(db: CellDb, uuid: string): Promise<boolean> {
  const t = now();
  const r = await db.updateTable('instances').set({ deleted: 1, deleted_at: t, terminated_at: t, vm_state: 'deleted', task_state: null, power_state: 0, updated_at: t })
    .where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
  await db.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).execute();
  await db.deleteFrom('instance_tags').where('instance_uuid', '=', uuid).execute();
  return Number(r.numUpdatedRows) > 0;
}

/** Services and whether they are up (last heartbeat within service_down_time). */
export function serviceIsUp(svc: any, downTimeSec: number): boolean {
  if (svc.forced_down) return false;
  const last = svc.last_seen_up ?? svc.updated_at ?? svc.created_at;
  return Date.now() - Date.parse(last) <= downTimeSec * 1000;
}
