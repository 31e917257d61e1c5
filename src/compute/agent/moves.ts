// The compute agent's side of moves (Nova's compute/manager.py prep_resize … finish_revert_resize,
// the live migration methods, the evacuation rebuild and _destroy_evacuated_instances). Each host
// does only what happens on it, through its driver, and hands over to the other host over RPC;
// the database is reached through the conductor, placement directly (allocations).
//
// Allocations (Nova's migration-based allocations): during a move the migration uuid holds the
// source's allocation and the instance holds the destination's. Confirm and a finished live
// migration delete the migration's; revert and every rollback move it back onto the instance
// (replacing the destination's in one write).
import type { RequestContext } from '../../common/rpc/transport.ts';
import type { ArgsOf, CallNames, Handlers, ResultOf, RpcClient } from '../../common/rpc/typed.ts';
import type { conductorApi, InstanceWithMetadata } from '../rpcapi/conductor.ts';
import type { computeApi } from '../rpcapi/compute.ts';
import { POWER, TASK, VM, type EmbeddedFlavor, type InstanceRow } from '../objects.ts';
import type { PlacementClient } from '../clients.ts';
import type { ComputeDriver, FlavorSpec, GuestSpec, InjectedFile } from '../virt/driver.ts';
import { InstanceNotFound as GuestNotFound, MigrationAborted, NotSupported } from '../virt/errors.ts';
import { flavorColumns, moveStateOf, withMoveState } from '../service/moves.ts';
import type { MigrationRow } from '../db/tables.ts';
import { now } from '../util.ts';

type ConductorMethods = typeof conductorApi.methods;
type ComputeMethods = typeof computeApi.methods;
type MoveMethods = 'prep_resize' | 'resize_instance' | 'finish_resize' | 'confirm_resize' | 'revert_resize' | 'finish_revert_resize'
  | 'check_can_live_migrate_destination' | 'check_can_live_migrate_source' | 'pre_live_migration' | 'live_migration' | 'post_live_migration_at_destination'
  | 'rollback_live_migration_at_destination' | 'rollback_live_migration_at_source' | 'live_migration_force_complete' | 'live_migration_abort';

/** What the move handlers use of their agent (agent/manager.ts). */
export interface AgentPort {
  host: string;
  /** [DEFAULT] my_ip: the address other agents reach this one at. */
  myIp: string;
  driver: ComputeDriver;
  placement: PlacementClient;
  conductor<K extends CallNames<ConductorMethods>>(method: K, args: ArgsOf<ConductorMethods[K]>, ctx: RequestContext): Promise<ResultOf<ConductorMethods[K]>>;
  instance(ctx: RequestContext, uuid: string): Promise<InstanceWithMetadata | null>;
  specOf(row: InstanceWithMetadata, secrets?: { adminPassword?: string | null; injectedFiles?: InjectedFile[] }): GuestSpec;
  compute(host: string): RpcClient<ComputeMethods>;
  powerState(uuid: string): Promise<number>;
  logged(ctx: RequestContext, what: string, uuid?: string): (err: unknown) => void;
  markUsageDirty(): void;
  /** Records the instance action event around fn (start, then Success or Error). */
  wrap<A extends { instance_uuid: string }>(event: string, fn: (ctx: RequestContext, a: A) => Promise<unknown>): (ctx: RequestContext, a: A) => Promise<unknown>;
}

function flavorSpecOf(f: EmbeddedFlavor): FlavorSpec {
  return { id: f.flavorid, name: f.name, vcpus: f.vcpus, memoryMb: f.memory_mb, rootGb: f.root_gb, ephemeralGb: f.ephemeral_gb, swapMb: f.swap ?? 0, extraSpecs: { ...(f.extra_specs ?? {}) } };
}

function need<K extends keyof ComputeDriver>(drv: ComputeDriver, name: K): NonNullable<ComputeDriver[K]> {
  const fn = drv[name];
  if (typeof fn !== 'function') throw new NotSupported(`The ${drv.type} driver cannot ${String(name)}.`);
  return (fn as (...a: unknown[]) => unknown).bind(drv) as NonNullable<ComputeDriver[K]>;
}

type M = { instance_uuid: string; migration_uuid: string };

/** What both the move handlers and the restart recovery use. */
function moveCore(p: AgentPort) {
  const drv = p.driver;
  const mig = async (ctx: RequestContext, uuid: string): Promise<MigrationRow> => {
    const m = await p.conductor('migration_get', { uuid }, ctx);
    if (!m) throw new GuestNotFound(`Migration ${uuid} could not be found.`);
    return m;
  };
  const setMig = (ctx: RequestContext, uuid: string, updates: Partial<MigrationRow>, expect?: string[]) =>
    p.conductor('migration_update', { uuid, updates, expect_status: expect }, ctx);
  const update = (ctx: RequestContext, uuid: string, updates: Partial<InstanceRow>, expectTask?: (string | null)[]) =>
    p.conductor('instance_update', { uuid, updates, expect: expectTask ? { task_state: expectTask } : undefined }, ctx);
  const fault = (ctx: RequestContext, uuid: string, e: unknown) =>
    p.conductor('add_fault', { uuid, code: (e as { status?: number }).status ?? 500, message: (e as Error).message, host: p.host }, ctx).catch(p.logged(ctx, 'record a fault', uuid));
  const live = async (ctx: RequestContext, a: M) => {
    const row = await p.instance(ctx, a.instance_uuid);
    if (!row || row.deleted) throw new GuestNotFound(`Instance ${a.instance_uuid} could not be found.`);
    return row;
  };

  /** The source takes the guest back after a failed or reverted cold move (finish_revert_resize). */
  const revertOnSource = async (ctx: RequestContext, a: M & { failed?: string }) => {
    const row = await live(ctx, a);
    const m = await mig(ctx, a.migration_uuid);
    const st = moveStateOf(row);
    const old = st.old_flavor ?? JSON.parse(row.flavor) as EmbeddedFlavor;
    const back = await update(ctx, row.uuid, { host: p.host, node: m.source_node, ...flavorColumns(old) });
    await p.placement.moveAllocations(m.uuid, row.uuid);
    const powerOn = st.old_vm_state !== VM.STOPPED;
    // The guest comes back from the disks the source kept once they were handed over (the
    // migration got past `migrating`); a failure before that left the guest here, at most off.
    const spec = p.specOf({ ...back, metadata: row.metadata });
    const handedOver = m.status !== 'pre-migrating' && (m.status !== 'migrating' || await p.powerState(row.uuid) === POWER.NOSTATE);
    if (handedOver) await need(drv, 'finishRevertMigration')(spec, { powerOn });
    else if (powerOn && await p.powerState(row.uuid) !== POWER.RUNNING) await drv.powerOn(spec);
    // The migration ends before the instance leaves its task (as after finish_resize): whoever
    // sees the server settled sees the migration settled too.
    await setMig(ctx, m.uuid, { status: a.failed ? 'error' : 'reverted' });
    await update(ctx, row.uuid, {
      vm_state: powerOn ? VM.ACTIVE : VM.STOPPED, task_state: null, power_state: await p.powerState(row.uuid), system_metadata: withMoveState(back, null),
    });
    if (a.failed) await fault(ctx, row.uuid, new Error(a.failed));
    p.markUsageDirty();
  };

  /** Source: the kept disks go, and so does the source's allocation (held by the migration). */
  const confirmOnSource = async (ctx: RequestContext, a: M) => {
    const row = await live(ctx, a);
    const m = await mig(ctx, a.migration_uuid);
    await need(drv, 'confirmMigration')(row.uuid);
    await p.placement.deleteAllocations(m.uuid);
    const st = moveStateOf(row);
    await setMig(ctx, m.uuid, { status: 'confirmed' }, ['confirming']);
    await update(ctx, row.uuid, { vm_state: st.old_vm_state === VM.STOPPED ? VM.STOPPED : VM.ACTIVE, task_state: null, system_metadata: withMoveState(row, null) });
    p.markUsageDirty();
  };
  return { drv, mig, setMig, update, fault, live, revertOnSource, confirmOnSource };
}

export function moveHandlers(p: AgentPort): Pick<Handlers<ComputeMethods>, MoveMethods> {
  const { drv, mig, setMig, update, fault, live, revertOnSource, confirmOnSource } = moveCore(p);
  return {
    // Destination: the claim is made (the scheduler's); hand over to the source.
    prep_resize: p.wrap<M & { new_flavor: EmbeddedFlavor }>('compute_prep_resize', async (ctx, a) => {
      const row = await live(ctx, a);
      if (row.task_state !== TASK.RESIZE_PREP) return;
      const m = await mig(ctx, a.migration_uuid);
      try {
        await p.compute(m.source_compute!).cast(ctx, 'resize_instance', { instance_uuid: row.uuid, migration_uuid: m.uuid, dest_address: p.myIp });
      } catch (e) {
        await p.compute(m.source_compute!).cast(ctx, 'finish_revert_resize', { ...a, failed: (e as Error).message }).catch(p.logged(ctx, 'roll the move back', row.uuid));
        throw e;
      }
    }),
    // Source: the guest off, its disks offered to the destination.
    resize_instance: p.wrap<M & { dest_address: string }>('compute_resize_instance', async (ctx, a) => {
      const row = await live(ctx, a);
      const m = await mig(ctx, a.migration_uuid);
      await setMig(ctx, m.uuid, { status: 'migrating' }, ['pre-migrating']);
      await update(ctx, row.uuid, { task_state: TASK.RESIZE_MIGRATING }, [TASK.RESIZE_PREP]);
      const st = moveStateOf(row);
      let disks;
      try {
        disks = await need(drv, 'migrateDiskAndPowerOff')(p.specOf(row), { host: m.dest_compute!, address: a.dest_address }, flavorSpecOf(st.new_flavor ?? JSON.parse(row.flavor)));
      } catch (e) {
        await revertOnSource(ctx, { ...a, failed: `Migration of instance ${row.uuid} failed on ${p.host}: ${(e as Error).message}` }).catch(p.logged(ctx, 'roll the move back', row.uuid));
        throw e;
      }
      await setMig(ctx, m.uuid, { status: 'post-migrating' });
      await update(ctx, row.uuid, { task_state: TASK.RESIZE_MIGRATED, power_state: POWER.SHUTDOWN });
      p.markUsageDirty();
      await p.compute(m.dest_compute!).cast(ctx, 'finish_resize', { instance_uuid: row.uuid, migration_uuid: m.uuid, disks });
    }),
    // Destination: the instance is ours with its new flavor; the guest starts from the moved disks.
    finish_resize: p.wrap<M & { disks: Record<string, unknown> }>('compute_finish_resize', async (ctx, a) => {
      const row = await live(ctx, a);
      const m = await mig(ctx, a.migration_uuid);
      const st = moveStateOf(row);
      const flavor = st.new_flavor ?? JSON.parse(row.flavor) as EmbeddedFlavor;
      const moved = await update(ctx, row.uuid, { host: p.host, node: m.dest_node, ...flavorColumns(flavor), task_state: TASK.RESIZE_FINISH }, [TASK.RESIZE_MIGRATED]);
      const powerOn = st.old_vm_state !== VM.STOPPED;
      try {
        await need(drv, 'finishMigration')(p.specOf({ ...moved, metadata: row.metadata }), a.disks, { resize: st.old_flavor?.flavorid !== flavor.flavorid, powerOn });
      } catch (e) {
        // The destination refused: nothing of the guest stays here; the source takes it back.
        await drv.destroy(row.uuid).catch(p.logged(ctx, 'clean up the refused guest', row.uuid));
        await p.compute(m.source_compute!).cast(ctx, 'finish_revert_resize', { ...a, failed: `Migration of instance ${row.uuid} to ${p.host} failed: ${(e as Error).message}` });
        throw e;
      }
      // The migration is `finished` before the instance shows VERIFY_RESIZE (Nova's order): a
      // confirm or revert sent the moment the server reads VERIFY_RESIZE must find it.
      await setMig(ctx, m.uuid, { status: 'finished' });
      await update(ctx, row.uuid, { vm_state: VM.RESIZED, task_state: null, power_state: await p.powerState(row.uuid), launched_at: now() }, [TASK.RESIZE_FINISH]);
      p.markUsageDirty();
    }),
    confirm_resize: p.wrap<M>('compute_confirm_resize', confirmOnSource),
    // Destination: its copy goes; the source finishes the revert.
    revert_resize: p.wrap<M>('compute_revert_resize', async (ctx, a) => {
      const row = await live(ctx, a);
      const m = await mig(ctx, a.migration_uuid);
      await drv.destroy(row.uuid);
      p.markUsageDirty();
      await p.compute(m.source_compute!).cast(ctx, 'finish_revert_resize', { instance_uuid: row.uuid, migration_uuid: m.uuid });
    }),
    finish_revert_resize: p.wrap<M & { failed?: string }>('compute_finish_revert_resize', revertOnSource),

    // ---- live migration
    check_can_live_migrate_destination: async (ctx, a) => {
      if (!drv.preLiveMigration || !drv.liveMigrate) throw new NotSupported(`The ${drv.type} driver cannot live-migrate.`);
      await live(ctx, a);
      // No shared storage between hosts here: "auto" (null) means a block migration.
      if (a.block_migration === false) throw new NotSupported(`Live migration without block migration needs shared storage, which host ${p.host} does not have.`);
      return { block_migration: true, address: p.myIp };
    },
    // Source: what the destination must take from here before it starts (the config drive).
    check_can_live_migrate_source: async (ctx, a) => {
      const row = await live(ctx, a);
      return drv.checkCanLiveMigrateSource ? drv.checkCanLiveMigrateSource(p.specOf(row), { host: a.dest, address: a.dest_address }) : {};
    },
    pre_live_migration: async (ctx, a) => {
      const row = await live(ctx, a);
      const m = await mig(ctx, a.migration_uuid);
      return need(drv, 'preLiveMigration')(p.specOf(row), { host: m.source_compute!, address: a.source_address }, { block: a.block_migration, source: a.migrate_data });
    },
    // Source: runs in the background so that force-complete and abort reach this agent meanwhile.
    live_migration: (ctx, a) => {
      void p.wrap<typeof a>('compute_live_migration', async (ctx2, b) => {
        const row = await live(ctx2, b);
        const m = await mig(ctx2, b.migration_uuid);
        let progress = Promise.resolve();
        let consoleTail: Buffer | undefined;
        try {
          await setMig(ctx2, m.uuid, { status: 'running' }, ['preparing']);
          ({ consoleTail } = await need(drv, 'liveMigrate')(p.specOf(row), { host: b.dest, address: b.dest_address }, b.target, {
            block: b.block_migration,
            onProgress: (x) => {
              const disk = b.block_migration ? { disk_total: row.root_gb * 1024 ** 3, disk_processed: Math.round(row.root_gb * 1024 ** 3 * (x.processedBytes / Math.max(1, x.totalBytes))), disk_remaining: 0 } : {};
              if (b.block_migration) disk.disk_remaining = disk.disk_total! - disk.disk_processed!;
              progress = progress.then(() => setMig(ctx2, m.uuid, { memory_total: x.totalBytes, memory_processed: x.processedBytes, memory_remaining: x.remainingBytes, ...disk })).then(() => undefined, () => undefined);
            },
          }));
        } catch (e) {
          await progress;
          // Cancelled before liveMigrate ran, the offer made for it is still open: revoke it now.
          await drv.rollbackLiveMigrationAtSource?.(row.uuid).catch(p.logged(ctx2, 'revoke the offer to the destination', row.uuid));
          const aborted = e instanceof MigrationAborted || (await mig(ctx2, m.uuid).catch(() => m)).status === 'cancelled';
          await p.compute(b.dest).cast(ctx2, 'rollback_live_migration_at_destination', { instance_uuid: row.uuid, migration_uuid: m.uuid }).catch(p.logged(ctx2, 'roll back the destination', row.uuid));
          await p.placement.moveAllocations(m.uuid, row.uuid).catch(p.logged(ctx2, 'put the allocation back on the instance', row.uuid));
          await update(ctx2, row.uuid, { task_state: null, power_state: await p.powerState(row.uuid) }).catch(p.logged(ctx2, 'clear the task state', row.uuid));
          await setMig(ctx2, m.uuid, { status: aborted ? 'cancelled' : 'error' }).catch(p.logged(ctx2, 'record the migration failure', row.uuid));
          if (!aborted) await fault(ctx2, row.uuid, e);
          if (aborted) return;
          throw e;
        }
        await progress;
        await setMig(ctx2, m.uuid, { status: 'post-migrating' });
        await p.compute(b.dest).call(ctx2, 'post_live_migration_at_destination', {
          instance_uuid: row.uuid, migration_uuid: m.uuid, source: p.host, console_tail: consoleTail?.length ? consoleTail.toString('base64') : undefined,
        }, { timeoutMs: 60_000 });
        // The source's copy is gone (liveMigrate resolved); destroy() of nothing succeeds.
        await drv.destroy(row.uuid).catch(p.logged(ctx2, 'clean up the source', row.uuid));
        await p.placement.deleteAllocations(m.uuid);
        await setMig(ctx2, m.uuid, { status: 'completed' });
        p.markUsageDirty();
      })(ctx, a).catch(p.logged(ctx, 'live-migrate', a.instance_uuid));
      return Promise.resolve();
    },
    post_live_migration_at_destination: async (ctx, a) => {
      const row = await live(ctx, a);
      const m = await mig(ctx, a.migration_uuid);
      await need(drv, 'postLiveMigrationAtDestination')(p.specOf(row), { consoleTail: a.console_tail ? Buffer.from(a.console_tail, 'base64') : undefined });
      await update(ctx, row.uuid, { host: p.host, node: m.dest_node, task_state: null, power_state: await p.powerState(row.uuid) });
      p.markUsageDirty();
    },
    rollback_live_migration_at_destination: p.wrap<M>('compute_rollback_live_migration_at_destination', async (_ctx, a) => {
      if (drv.rollbackLiveMigrationAtDestination) await drv.rollbackLiveMigrationAtDestination(a.instance_uuid);
      else await drv.destroy(a.instance_uuid);
    }),
    // Source: the move failed or was cancelled before (or without) its live_migration here.
    rollback_live_migration_at_source: async (_ctx, a) => { await drv.rollbackLiveMigrationAtSource?.(a.instance_uuid, a.migrate_data); },
    live_migration_force_complete: p.wrap<M>('compute_live_migration_force_complete', async (_ctx, a) => need(drv, 'liveMigrationForceComplete')(a.instance_uuid)),
    live_migration_abort: p.wrap<M>('compute_live_migration_abort', async (_ctx, a) => need(drv, 'liveMigrationAbort')(a.instance_uuid)),
  };
}

/**
 * At agent start (Nova's _init_instance for moves): the moves this host was part of when its
 * agent stopped are ended, so that none stays in progress forever and the instance's host and
 * its allocations agree. The source of a live migration decides it: a guest still here runs on
 * here (the hypervisor's migration cancelled, the destination rolled back, `error`); a guest
 * gone from here was handed over (the destination adopts it, `completed`). A cold move not yet
 * handed over goes back to the source (`error`); one interrupted on the destination is given
 * back to the source; a confirm that was under way is done again. Returns the instances it
 * dealt with (their task state is its business, not the generic reset's).
 */
export async function recoverMoves(p: AgentPort, ctx: RequestContext): Promise<Set<string>> {
  const { drv, setMig, update, fault, revertOnSource, confirmOnSource } = moveCore(p);
  const dealt = new Set<string>();
  for (const m of await p.conductor('migrations_in_progress', { host: p.host }, ctx)) {
    const src = m.source_compute === p.host;
    const why = `The compute service of ${p.host} restarted during the ${m.migration_type} ${m.uuid}`;
    try {
      const row = await p.instance(ctx, m.instance_uuid);
      if (!row || row.deleted) continue;
      dealt.add(row.uuid);
      const a = { instance_uuid: row.uuid, migration_uuid: m.uuid };
      if (m.migration_type === 'live-migration') {
        // The source's agent sees a live migration to its end; the destination's leaves it to it.
        if (!src) { dealt.delete(row.uuid); continue; }
        if (row.host !== p.host) {
          // The destination adopted the guest already: only the source's clean-up was left.
          await p.placement.deleteAllocations(m.uuid);
          await setMig(ctx, m.uuid, { status: 'completed' });
        } else if (await p.powerState(row.uuid) !== POWER.NOSTATE) {
          await drv.cleanupLiveMigration?.(row.uuid, { running: row.vm_state === VM.ACTIVE });
          await drv.rollbackLiveMigrationAtSource?.(row.uuid);
          if (m.dest_compute) await p.compute(m.dest_compute).cast(ctx, 'rollback_live_migration_at_destination', a);
          await p.placement.moveAllocations(m.uuid, row.uuid);
          await setMig(ctx, m.uuid, { status: 'error' });
          await update(ctx, row.uuid, { task_state: null, power_state: await p.powerState(row.uuid) });
          await fault(ctx, row.uuid, new Error(`${why}; the guest runs on at ${p.host}.`));
        } else {
          // The guest left this host: the switch-over happened, the destination takes it.
          await p.compute(m.dest_compute!).call(ctx, 'post_live_migration_at_destination', { ...a, source: p.host }, { timeoutMs: 60_000 });
          await p.placement.deleteAllocations(m.uuid);
          await setMig(ctx, m.uuid, { status: 'completed' });
        }
      } else if (src && (m.status === 'pre-migrating' || m.status === 'migrating')) {
        await revertOnSource(ctx, { ...a, failed: `${why}.` });
      } else if (src && m.status === 'confirming') {
        await confirmOnSource(ctx, a);
      } else if (!src && m.status === 'pre-migrating') {
        // Not begun here: the task goes first, so that a prep_resize still queued for this host
        // finds nothing to do; then the source takes the move back (its guest never left).
        await update(ctx, row.uuid, { task_state: null }, [TASK.RESIZE_PREP]);
        await p.compute(m.source_compute!).cast(ctx, 'finish_revert_resize', { ...a, failed: `${why}.` });
      } else if (!src && (m.status === 'post-migrating' || m.status === 'reverting')) {
        // The destination's part (prep, finish or revert) was cut: its copy goes, the source takes the guest back.
        await drv.destroy(row.uuid);
        await p.compute(m.source_compute!).cast(ctx, 'finish_revert_resize', { ...a, failed: m.status === 'reverting' ? undefined : `${why}.` });
      } else {
        // The source waits for the destination's finish_resize (post-migrating): not ours to end.
        dealt.delete(row.uuid);
        continue;
      }
    } catch (e) {
      p.logged(ctx, `recover the ${m.migration_type} ${m.uuid} after the restart`, m.instance_uuid)(e);
    }
  }
  return dealt;
}

/**
 * Nova's _destroy_evacuated_instances, at agent start: guests this host still has although they
 * were evacuated elsewhere while it was down are destroyed, and the source allocation their
 * migration held is deleted.
 */
export async function destroyEvacuatedInstances(p: AgentPort, ctx: RequestContext): Promise<number> {
  const migs = await p.conductor('evacuations_from_host', { host: p.host }, ctx);
  let n = 0;
  for (const m of migs) {
    try {
      const row = await p.conductor('instance_get', { uuid: m.instance_uuid }, ctx);
      // Still ours (the evacuation never got anywhere): leave the guest alone.
      if (row && !row.deleted && row.host === p.host) continue;
      await p.driver.destroy(m.instance_uuid);
      await p.placement.deleteAllocations(m.uuid);
      await p.conductor('migration_update', { uuid: m.uuid, updates: { status: 'completed' } }, ctx);
      n++;
    } catch (e) {
      p.logged(ctx, 'clean up an evacuated instance', m.instance_uuid)(e);
    }
  }
  return n;
}
