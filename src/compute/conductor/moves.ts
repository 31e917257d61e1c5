// The conductor's move tasks (Nova's conductor/tasks/migrate.py, live_migrate.py and the
// evacuate half of rebuild_instance): the instance's allocation moves to its migration record
// (the migration uuid becomes the consumer on the source), the scheduler claims the instance on
// the destination, then the destination's agent takes over. Any failure before the guest has
// left its host puts the allocation back on the instance, the migration in `error` and the
// instance back as it was, with a fault.
import type { RequestContext, Transport } from '../../common/rpc/transport.ts';
import { RpcClient } from '../../common/rpc/typed.ts';
import { computeApi, type BuildSecrets } from '../rpcapi/compute.ts';
import type { Selection } from '../rpcapi/scheduler.ts';
import { loadRequestSpec, type RequestSpec } from '../request-spec.ts';
import { TASK, VM, type EmbeddedFlavor, type InstanceRow } from '../objects.ts';
import { addFault, eventFinish, eventStart, finishAction, recordAction, updateInstance } from '../store.ts';
import { getMigration, updateMigration, withMoveState, moveStateOf } from '../service/moves.ts';
import { MigrationPreCheckError } from '../virt/errors.ts';
import type { ConductorDeps } from './conductor.ts';
import type { CellMapping } from '../cells.ts';
import type { CellDb, MigrationRow } from '../db/tables.ts';
import { systemContext } from '../rpc.ts';
import { randomUUID } from 'node:crypto';

type Compute = RpcClient<typeof computeApi.methods>;

interface Moving { db: CellDb; cell: CellMapping; row: InstanceRow; mig: MigrationRow; compute: (host: string) => Compute }

export class MoveTasks {
  constructor(
    private readonly d: ConductorDeps,
    private readonly select: (ctx: RequestContext, spec: RequestSpec, uuids: string[]) => Promise<Selection[]>,
  ) {}

  private logged(ctx: RequestContext, what: string, uuid?: string) {
    return (err: unknown): undefined => { this.d.logger.warn({ err, instance: uuid, requestId: ctx.requestId }, `could not ${what}`); return undefined; };
  }

  private async load(instanceUuid: string, migrationUuid: string): Promise<Moving | undefined> {
    const where = await this.d.cells.cellOfInstance(instanceUuid);
    if (!where) return undefined;
    const row = await where.db.selectFrom('instances').selectAll().where('uuid', '=', instanceUuid).where('deleted', '=', 0).executeTakeFirst() as InstanceRow | undefined;
    const mig = await getMigration(where.db, migrationUuid);
    if (!row || !mig) return undefined;
    const t: Transport = await this.d.cellTransports.forCell(where.cell);
    return { ...where, row, mig, compute: (host) => new RpcClient(t, computeApi, host) };
  }

  private async spec(m: Moving): Promise<RequestSpec> {
    const r = await this.d.cells.db.selectFrom('request_specs').select('spec').where('instance_uuid', '=', m.row.uuid).executeTakeFirst();
    if (!r) throw new MigrationPreCheckError(`No request spec for instance ${m.row.uuid}: cannot move it`);
    return { ...loadRequestSpec(r.spec), num_instances: 1, num_attempts: 0, force_hosts: [], force_nodes: [], cell_uuid: m.cell.uuid };
  }

  /** The destination's address (its compute node's host_ip, the agent's [DEFAULT] my_ip) and node. */
  private async node(db: CellDb, host: string) {
    return db.selectFrom('compute_nodes').select(['uuid', 'hypervisor_hostname', 'host_ip']).where('host', '=', host).executeTakeFirst();
  }

  /**
   * A move that failed before the guest left its host: the allocation back on the instance (it
   * replaces whatever the destination claimed), the migration `status`, the instance without
   * task or move state, a fault.
   */
  private async undo(ctx: RequestContext, m: Moving, event: string, err: unknown, status = 'error'): Promise<void> {
    const message = (err as Error).message;
    this.d.logger.warn({ instance: m.row.uuid, migration: m.mig.uuid, err, requestId: ctx.requestId }, `${m.mig.migration_type} failed before the guest moved; rolled back`);
    await this.d.placement.moveAllocations(m.mig.uuid, m.row.uuid).catch(this.logged(ctx, 'put the allocation back on the instance', m.row.uuid));
    await updateMigration(m.db, m.mig.uuid, { status }).catch(this.logged(ctx, 'mark the migration failed', m.row.uuid));
    const fresh = await m.db.selectFrom('instances').select('system_metadata').where('uuid', '=', m.row.uuid).executeTakeFirst();
    await updateInstance(m.db, m.row.uuid, { task_state: null, system_metadata: withMoveState(fresh ?? m.row, null) }).catch(this.logged(ctx, 'clear the task state', m.row.uuid));
    if (status !== 'cancelled') await addFault(m.db, m.row.uuid, { code: (err as { status?: number }).status ?? 500, message }).catch(this.logged(ctx, 'record a fault', m.row.uuid));
    await eventFinish(m.db, m.row.uuid, ctx.requestId, event, 'Error', { traceback: message }).catch(this.logged(ctx, 'record the event', m.row.uuid));
    await finishAction(m.db, m.row.uuid, ctx.requestId).catch(this.logged(ctx, 'finish the instance action', m.row.uuid));
  }

  /**
   * The destination claim of a move: the scheduler (the source ignored unless a resize may stay;
   * a requested host is the only candidate, still filtered), or, when the host is forced, the
   * migration's allocation copied onto that host's provider.
   */
  private async claimDestination(ctx: RequestContext, m: Moving, o: { flavor: EmbeddedFlavor | null; host: string | null; force: boolean; sameHost: boolean }): Promise<{ host: string; node: string }> {
    if (o.host && o.force) {
      const n = await this.node(m.db, o.host);
      if (!n) throw new MigrationPreCheckError(`Compute host ${o.host} could not be found.`);
      const held = await this.d.placement.getAllocations(m.mig.uuid);
      const resources = Object.values(held).reduce<Record<string, number>>((acc, a) => ({ ...acc, ...a.resources }), {});
      if (!await this.d.placement.claim(m.row.uuid, { [n.uuid]: { resources } }, m.row.project_id, m.row.user_id)) {
        throw new MigrationPreCheckError(`Unable to migrate instance ${m.row.uuid} to host ${o.host}: there is not enough capacity on the host for the instance.`);
      }
      return { host: o.host, node: n.hypervisor_hostname };
    }
    const spec = await this.spec(m);
    if (o.flavor) spec.flavor = o.flavor;
    spec.ignore_hosts = o.sameHost ? [] : [m.row.host!];
    if (o.host) spec.force_hosts = [o.host];
    const [sel] = await this.select(ctx, spec, [m.row.uuid]);
    return { host: sel.host, node: sel.nodename };
  }

  /** Resize (new_flavor) or cold migration: claim the destination, then its prep_resize. */
  async migrateServer(ctx: RequestContext, a: { instance_uuid: string; migration_uuid: string; new_flavor: EmbeddedFlavor | null; host: string | null }): Promise<void> {
    const m = await this.load(a.instance_uuid, a.migration_uuid);
    if (!m || m.row.task_state !== TASK.RESIZE_PREP) return;
    const event = 'conductor_migrate_server';
    await eventStart(m.db, m.row.uuid, ctx.requestId, event, null).catch(this.logged(ctx, 'record the event', m.row.uuid));
    try {
      await this.d.placement.moveAllocations(m.row.uuid, m.mig.uuid);
      const resize = !!a.new_flavor;
      const dest = await this.claimDestination(ctx, m, {
        flavor: a.new_flavor, host: a.host, force: false, sameHost: resize && this.d.config.get<boolean>('DEFAULT', 'allow_resize_to_same_host'),
      });
      const n = await this.node(m.db, dest.host);
      await updateMigration(m.db, m.mig.uuid, { dest_compute: dest.host, dest_node: dest.node, dest_host: n?.host_ip ?? null });
      const flavor = moveStateOf(m.row).new_flavor ?? JSON.parse(m.row.flavor);
      await eventFinish(m.db, m.row.uuid, ctx.requestId, event, 'Success').catch(this.logged(ctx, 'record the event', m.row.uuid));
      await m.compute(dest.host).cast(ctx, 'prep_resize', { instance_uuid: m.row.uuid, migration_uuid: m.mig.uuid, new_flavor: flavor });
    } catch (e) {
      await this.undo(ctx, m, event, e);
    }
  }

  /** Live migration: destination chosen (or forced) and checked, prepared, then the source moves the guest. */
  async liveMigrate(ctx: RequestContext, a: { instance_uuid: string; migration_uuid: string; host: string | null; force: boolean; block_migration: boolean | null }): Promise<void> {
    const m = await this.load(a.instance_uuid, a.migration_uuid);
    if (!m || m.row.task_state !== TASK.MIGRATING) return;
    const event = 'conductor_live_migrate_instance';
    await eventStart(m.db, m.row.uuid, ctx.requestId, event, null).catch(this.logged(ctx, 'record the event', m.row.uuid));
    let dest: { host: string; node: string } | undefined;
    let migrateData: Record<string, unknown> | undefined;
    try {
      await updateMigration(m.db, m.mig.uuid, { status: 'preparing' }, ['accepted', 'queued']);
      await this.d.placement.moveAllocations(m.row.uuid, m.mig.uuid);
      dest = await this.claimDestination(ctx, m, { flavor: null, host: a.host, force: a.force, sameHost: false });
      if (dest.host === m.row.host) throw new MigrationPreCheckError(`Unable to migrate instance (${m.row.uuid}) to current host (${dest.host}).`);
      const n = await this.node(m.db, dest.host);
      const check = await m.compute(dest.host).call(ctx, 'check_can_live_migrate_destination', { instance_uuid: m.row.uuid, migration_uuid: m.mig.uuid, block_migration: a.block_migration }, { timeoutMs: 60_000 });
      await updateMigration(m.db, m.mig.uuid, { dest_compute: dest.host, dest_node: dest.node, dest_host: n?.host_ip ?? check.address }, ['preparing']);
      const src = await this.node(m.db, m.row.host!);
      const destAddress = n?.host_ip ?? check.address;
      migrateData = await m.compute(m.row.host!).call(ctx, 'check_can_live_migrate_source', {
        instance_uuid: m.row.uuid, migration_uuid: m.mig.uuid, dest: dest.host, dest_address: destAddress,
      }, { timeoutMs: 60_000 });
      const target = await m.compute(dest.host).call(ctx, 'pre_live_migration', {
        instance_uuid: m.row.uuid, migration_uuid: m.mig.uuid, block_migration: check.block_migration, source_address: src?.host_ip ?? '127.0.0.1', migrate_data: migrateData,
      }, { timeoutMs: 120_000 });
      await eventFinish(m.db, m.row.uuid, ctx.requestId, event, 'Success').catch(this.logged(ctx, 'record the event', m.row.uuid));
      await m.compute(m.row.host!).cast(ctx, 'live_migration', {
        instance_uuid: m.row.uuid, migration_uuid: m.mig.uuid, dest: dest.host, dest_address: destAddress, target, block_migration: check.block_migration,
      });
    } catch (e) {
      // An abort of a migration still preparing (2.65) is a cancellation, not an error.
      const now = await getMigration(m.db, m.mig.uuid);
      const cancelled = now?.status === 'cancelled';
      if (dest && dest.host !== m.row.host) await m.compute(dest.host).cast(ctx, 'rollback_live_migration_at_destination', { instance_uuid: m.row.uuid, migration_uuid: m.mig.uuid }).catch(this.logged(ctx, 'roll back the destination', m.row.uuid));
      // What the source offered the destination (its disk channel token) is revoked now, not at its TTL.
      if (migrateData) await m.compute(m.row.host!).cast(ctx, 'rollback_live_migration_at_source', { instance_uuid: m.row.uuid, migration_uuid: m.mig.uuid, migrate_data: migrateData }).catch(this.logged(ctx, 'revoke the source\'s offer', m.row.uuid));
      await this.undo(ctx, m, event, e, cancelled ? 'cancelled' : 'error');
    }
  }

  /** Evacuation off a dead host: claim elsewhere, then the destination rebuilds the guest from its image. */
  async evacuate(ctx: RequestContext, a: { instance_uuid: string; migration_uuid: string; host: string | null; force: boolean; orig_vm_state?: string } & BuildSecrets): Promise<void> {
    const m = await this.load(a.instance_uuid, a.migration_uuid);
    if (!m || m.row.task_state !== TASK.REBUILDING) return;
    const event = 'conductor_rebuild_server';
    await eventStart(m.db, m.row.uuid, ctx.requestId, event, null).catch(this.logged(ctx, 'record the event', m.row.uuid));
    try {
      await this.d.placement.moveAllocations(m.row.uuid, m.mig.uuid);
      const dest = await this.claimDestination(ctx, m, { flavor: null, host: a.host, force: a.force, sameHost: false });
      const n = await this.node(m.db, dest.host);
      await updateMigration(m.db, m.mig.uuid, { status: 'pre-migrating', dest_compute: dest.host, dest_node: dest.node, dest_host: n?.host_ip ?? null }, ['accepted']);
      await updateInstance(m.db, m.row.uuid, { host: dest.host, node: dest.node }, { task_state: [TASK.REBUILDING] });
      await eventFinish(m.db, m.row.uuid, ctx.requestId, event, 'Success').catch(this.logged(ctx, 'record the event', m.row.uuid));
      await m.compute(dest.host).cast(ctx, 'rebuild_instance', {
        instance_uuid: m.row.uuid, image_ref: m.row.image_ref ?? '', orig_vm_state: a.orig_vm_state ?? m.row.vm_state,
        evacuate: { migration_uuid: m.mig.uuid, source_host: m.row.host! }, admin_password: a.admin_password ?? null,
      });
    } catch (e) {
      await this.undo(ctx, m, event, e, 'error');
    }
  }

  /**
   * Nova's _poll_unconfirmed_resizes: resizes and cold migrations waiting in VERIFY_RESIZE for
   * longer than resize_confirm_window are confirmed (cast to their source as the API does).
   */
  async confirmOldResizes(): Promise<number> {
    const window = this.d.config.get<number>('DEFAULT', 'resize_confirm_window');
    if (window <= 0) return 0;
    const before = new Date(Date.now() - window * 1000).toISOString();
    let n = 0;
    for (const { db, cell } of await this.d.cells.all({ includeCell0: false })) {
      const migs = await db.selectFrom('migrations').selectAll().where('status', '=', 'finished').where('migration_type', 'in', ['resize', 'migration'])
        .where('deleted', '=', 0).where('updated_at', '<', before).execute();
      for (const mig of migs) {
        const ctx = systemContext({ requestId: `req-${randomUUID()}` });
        try {
          const row = await db.selectFrom('instances').selectAll().where('uuid', '=', mig.instance_uuid).where('deleted', '=', 0).executeTakeFirst();
          if (!row || row.vm_state !== VM.RESIZED || row.task_state !== null) continue;
          await updateMigration(db, mig.uuid, { status: 'confirming' }, ['finished']);
          await recordAction(db, row.uuid, 'confirmResize', { requestId: ctx.requestId, userId: row.user_id, projectId: row.project_id });
          const t = await this.d.cellTransports.forCell(cell);
          await new RpcClient(t, computeApi, mig.source_compute!).cast(ctx, 'confirm_resize', { instance_uuid: row.uuid, migration_uuid: mig.uuid });
          n++;
        } catch (e) {
          this.logged(ctx, 'confirm a resize automatically', mig.instance_uuid)(e);
        }
      }
    }
    return n;
  }
}
