// /servers/{id}/migrations (Nova's server_migrations.py): the server's live migrations in
// progress (2.23), force complete (2.22) and abort (2.24; 2.65 also while queued or preparing).
// Force complete and abort are cast to the source host, whose driver acts on the running migration.
import { BadRequest, NotFound } from '../../common/errors.ts';
import { computeRpc } from '../rpc.ts';
import { TASK, VM } from '../objects.ts';
import { updateMigration } from '../service/moves.ts';
import type { MigrationRow } from '../db/tables.ts';
import type { Located } from '../store.ts';
import { isoMicro } from '../util.ts';
import type { Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { getLiveServer } from './servers.ts';
import { Conflict } from '../../common/errors.ts';

/** Statuses a migration never leaves (Nova's migration_get_in_progress_by_instance excludes them). */
const DONE = ['confirmed', 'reverted', 'error', 'failed', 'completed', 'cancelled', 'done'];

function view(c: Ctx, m: MigrationRow) {
  const o: Record<string, unknown> = {
    created_at: isoMicro(m.created_at), dest_compute: m.dest_compute, dest_host: m.dest_host, dest_node: m.dest_node,
    disk_processed_bytes: m.disk_processed, disk_remaining_bytes: m.disk_remaining, disk_total_bytes: m.disk_total, id: m.id,
    memory_processed_bytes: m.memory_processed, memory_remaining_bytes: m.memory_remaining, memory_total_bytes: m.memory_total,
    server_uuid: m.instance_uuid, source_compute: m.source_compute, source_node: m.source_node, status: m.status, updated_at: isoMicro(m.updated_at),
  };
  if (c.v.atLeast('2.59')) o.uuid = m.uuid;
  if (c.v.atLeast('2.80')) { o.user_id = m.user_id; o.project_id = m.project_id; }
  return o;
}

async function target(c: Ctx, rule: string): Promise<Located> {
  const l = await getLiveServer(c, c.params.id);
  c.enforce(rule, { project_id: l.row.project_id });
  return l;
}

function inProgress(l: Located) {
  return l.db.selectFrom('migrations').selectAll().where('instance_uuid', '=', l.row.uuid).where('migration_type', '=', 'live-migration')
    .where('deleted', '=', 0).where('status', 'not in', DONE);
}

/** The migration by its integer id, of this server; 404 (or 400 where Nova's API says so). */
async function migrationById(c: Ctx, l: Located, notFound: 400 | 404 = 404): Promise<MigrationRow> {
  const id = Number(c.params.mid);
  const m = Number.isSafeInteger(id) && /^\d+$/.test(String(c.params.mid))
    ? await l.db.selectFrom('migrations').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst() : undefined;
  if (!m || m.instance_uuid !== l.row.uuid) {
    const msg = `Instance ${l.row.uuid} does not have migration ${c.params.mid}.`;
    throw notFound === 400 ? new BadRequest(msg) : new NotFound(msg);
  }
  return m;
}

/** Nova's @check_instance_state(vm_state=[ACTIVE], task_state=[MIGRATING]) on force_complete and abort. */
function liveMigrating(l: Located, method: string): void {
  if (l.row.vm_state !== VM.ACTIVE && l.row.vm_state !== VM.PAUSED) throw new Conflict(`Cannot '${method}' instance ${l.row.uuid} while it is in vm_state ${l.row.vm_state}`);
  if (l.row.task_state !== TASK.MIGRATING) throw new Conflict(`Cannot '${method}' instance ${l.row.uuid} while it is in task_state ${l.row.task_state}`);
}

function invalidState(m: MigrationRow, method: string): BadRequest {
  return new BadRequest(`Migration ${m.id} state of instance ${m.instance_uuid} is ${m.status}. Cannot ${method} while the migration is in this state.`);
}

export const serverMigrationRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers/:id/migrations', policy: 'os_compute_api:servers:migrations:index', errors: [409], since: '2.23', handler: async (c) => {
    const l = await target(c, 'os_compute_api:servers:migrations:index');
    return { migrations: (await inProgress(l).orderBy('id', 'asc').execute()).map((m) => view(c, m)) };
  } },
  { method: 'GET', path: '/servers/:id/migrations/:mid', policy: 'os_compute_api:servers:migrations:show', errors: [409], since: '2.23', handler: async (c) => {
    const l = await target(c, 'os_compute_api:servers:migrations:show');
    const m = await migrationById(c, l);
    if (m.migration_type !== 'live-migration' || DONE.includes(m.status)) throw new NotFound(`In-progress live migration ${m.id} is not found for server ${l.row.uuid}.`);
    return { migration: view(c, m) };
  } },
  { method: 'POST', path: '/servers/:id/migrations/:mid/action', policy: 'os_compute_api:servers:migrations:force_complete', errors: [409], since: '2.22', handler: async (c) => {
    const body = c.body as Record<string, unknown> | null;
    if (!body || typeof body !== 'object' || !('force_complete' in body) || Object.keys(body).length !== 1 || body.force_complete !== null) {
      throw new BadRequest("Invalid input for field/attribute force_complete. Value: None. 'force_complete' is a required property");
    }
    const l = await target(c, 'os_compute_api:servers:migrations:force_complete');
    liveMigrating(l, 'force_complete');
    const m = await migrationById(c, l, 400);
    if (m.migration_type !== 'live-migration' || m.status !== 'running') throw invalidState(m, 'force_complete');
    const rpc = await computeRpc(c.api.cellTransports, l.cell, m.source_compute!);
    await rpc.cast(c.rpcContext(), 'live_migration_force_complete', { instance_uuid: l.row.uuid, migration_uuid: m.uuid });
    return { status: 202 };
  } },
  { method: 'DELETE', path: '/servers/:id/migrations/:mid', policy: 'os_compute_api:servers:migrations:delete', errors: [409], since: '2.24', handler: async (c) => {
    const l = await target(c, 'os_compute_api:servers:migrations:delete');
    liveMigrating(l, 'abort live migration');
    const m = await migrationById(c, l);
    if (m.migration_type !== 'live-migration') throw invalidState(m, 'abort live migration');
    // 2.65: a migration that has not started moving the guest is cancelled where it stands.
    if (c.v.atLeast('2.65') && ['accepted', 'queued', 'preparing'].includes(m.status)) {
      await updateMigration(l.db, m.uuid, { status: 'cancelled' }, ['accepted', 'queued', 'preparing']).catch(() => { throw invalidState(m, 'abort live migration'); });
      return { status: 202 };
    }
    if (m.status !== 'running') throw invalidState(m, 'abort live migration');
    const rpc = await computeRpc(c.api.cellTransports, l.cell, m.source_compute!);
    await rpc.cast(c.rpcContext(), 'live_migration_abort', { instance_uuid: l.row.uuid, migration_uuid: m.uuid });
    return { status: 202 };
  } },
];
