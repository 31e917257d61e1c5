// The conductor (nova-conductor): build orchestration from build request to an instance in a
// cell, reschedules, the periodic rescue of builds stuck on dead hosts, and the only database
// path of compute agents (their service records, compute nodes, instance updates, actions and
// faults). Served on topic 'conductor'.
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import { MessagingTimeout, NotFound, ServiceUnavailable } from '../../common/errors.ts';
import type { RequestContext, RpcServer, Transport } from '../../common/rpc/transport.ts';
import { isUniqueViolation, retryOnConnectionError } from '../../common/db/database.ts';
import { CELL0_UUID, Cells, type CellMapping } from '../cells.ts';
import { SERVICE_VERSION, systemContext, type CellTransports } from '../rpc.ts';
import { RpcClient, serveApi, type Handlers } from '../../common/rpc/typed.ts';
import { conductorApi, type ComputeNodeUpdate } from '../rpcapi/conductor.ts';
import { schedulerApi, type Selection } from '../rpcapi/scheduler.ts';
import { computeApi, type BuildSecrets } from '../rpcapi/compute.ts';
import { loadRequestSpec, type RequestSpec } from '../request-spec.ts';
import { VM, TASK, type InstanceRow } from '../objects.ts';
import { addFault, eventFinish, eventStart, finishAction, markDeleted, metadataOf, recordAction, serviceIsUp, setMetadata, updateInstance, InstanceNotFound } from '../store.ts';
import { NoValidHost } from '../errors.ts';
import type { PlacementClient } from '../clients.ts';
import { now, sleep, parseJson } from '../util.ts';
import { randomUUID } from 'node:crypto';
import type { CellDb } from '../db/tables.ts';
import { hostZones } from '../availability-zones.ts';
import { MoveTasks } from './moves.ts';
import { getMigration, MOVES_IN_PROGRESS, updateMigration } from '../service/moves.ts';
import { Reconciler } from './reconcile.ts';

export type { Selection };

export interface ConductorDeps {
  config: Config;
  logger: Logger;
  cells: Cells;
  /** The cell database agents of this conductor's cell register in ([database] connection). */
  localCell: CellDb;
  transport: Transport;
  cellTransports: CellTransports;
  placement: PlacementClient;
}

export class Conductor {
  private server?: RpcServer;
  private timer?: NodeJS.Timeout;
  private healing = false;
  /** The periodic consistency pass (started by start() when reconcile_interval > 0; tests run it by hand). */
  readonly reconciler: Reconciler;
  private readonly scheduler: RpcClient<typeof schedulerApi.methods>;
  readonly moves: MoveTasks;
  constructor(private readonly d: ConductorDeps) {
    this.scheduler = new RpcClient(d.transport, schedulerApi);
    this.moves = new MoveTasks(d, (ctx, spec, uuids) => this.selectDestinations(ctx, spec, uuids));
    this.reconciler = new Reconciler(d, (ctx, uuid, message) => this.buryStaleBuild(ctx, uuid, message));
  }

  /** Logs a failure that must not stop what it accompanies (cleanup, bookkeeping), with the request id. */
  private logged(ctx: RequestContext, what: string, uuid?: string) {
    return (err: unknown): undefined => { this.d.logger.warn({ err, instance: uuid, requestId: ctx.requestId }, `could not ${what}`); return undefined; };
  }

  /** The compute API of one host, on its cell's bus. */
  private compute(host: string, t: Transport): RpcClient<typeof computeApi.methods> {
    return new RpcClient(t, computeApi, host);
  }

  async start(host: string): Promise<void> {
    await registerOwnService(this.d.localCell, host, 'nova-conductor', 'conductor');
    this.server = await serveApi(this.d.transport, conductorApi, { server: host }, this.endpoints());
    const interval = Math.max(5, Math.min(30, this.d.config.get<number>('DEFAULT', 'service_down_time') / 2)) * 1000;
    this.timer = setInterval(() => {
      heartbeat(this.d.localCell, host, 'nova-conductor').catch((err) => this.d.logger.warn({ err, host }, 'conductor heartbeat failed'));
      this.healStuckBuilds().catch((e) => this.d.logger.warn({ err: e }, 'healing stuck builds failed'));
      this.moves.confirmOldResizes().catch((e) => this.d.logger.warn({ err: e }, 'confirming old resizes failed'));
    }, interval);
    this.timer.unref();
    this.reconciler.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.reconciler.stop();
    await this.server?.stop();
  }

  private endpoints(): Handlers<typeof conductorApi.methods> {
    const d = this.d;
    return {
      // --- build orchestration ---
      schedule_and_build_instances: (ctx, a) => this.scheduleAndBuild(ctx, a.instance_uuids, secretsOf(a)),
      unshelve_instance: (ctx, a) => this.unshelve(ctx, a.instance_uuid),
      migrate_server: (ctx, a) => this.moves.migrateServer(ctx, a),
      live_migrate_instance: (ctx, a) => this.moves.liveMigrate(ctx, a),
      evacuate_instance: (ctx, a) => this.moves.evacuate(ctx, a),
      reschedule: (ctx, a) => this.reschedule(ctx, a.instance_uuid, a.failed_host, a.reason, secretsOf(a)),
      // --- agents' database access ---
      service_update: (_ctx, a) => registerOwnService(d.localCell, a.host, a.binary, a.topic),
      service_heartbeat: (_ctx, a) => heartbeat(d.localCell, a.host, a.binary),
      compute_node_update: (_ctx, a) => computeNodeUpdate(d.localCell, a),
      host_usage: (_ctx, a) => hostUsage(d.localCell, a.host),
      instances_on_host: (_ctx, a) =>
        d.localCell.selectFrom('instances').select(['uuid', 'vm_state', 'task_state', 'power_state']).where('host', '=', a.host).where('deleted', '=', 0).execute(),
      // expected_attrs (as Nova's): 'metadata' adds the instance's metadata as `metadata`.
      instance_get: async (_ctx, a) => {
        const where = await this.cellDbOf(a.uuid);
        const row = await where.selectFrom('instances').selectAll().where('uuid', '=', a.uuid).executeTakeFirst() as InstanceRow | undefined;
        if (!row) return null;
        if (a.expected_attrs?.includes('metadata')) return { ...row, metadata: (await metadataOf(where, [a.uuid])).get(a.uuid) ?? {} };
        return row;
      },
      instance_update: async (_ctx, a) => {
        const db = await this.cellDbOf(a.uuid);
        const row = await updateInstance(db, a.uuid, a.updates, a.expect);
        if (a.host && row.host !== a.host) throw new InstanceNotFound(`Instance ${a.uuid} is no longer on host ${a.host}.`);
        return row;
      },
      instance_destroy: async (_ctx, a) => {
        const db = await this.cellDbOf(a.uuid);
        await markDeleted(db, a.uuid);
        await d.cells.db.updateTable('instance_mappings').set({ queued_for_delete: 1 }).where('instance_uuid', '=', a.uuid).execute();
        await d.cells.db.deleteFrom('request_specs').where('instance_uuid', '=', a.uuid).execute();
        await d.cells.db.deleteFrom('instance_group_members').where('instance_uuid', '=', a.uuid).execute();
        return true;
      },
      set_password: async (_ctx, a) => {
        const db = await this.cellDbOf(a.uuid);
        await db.deleteFrom('instance_passwords').where('instance_uuid', '=', a.uuid).execute();
        await db.insertInto('instance_passwords').values({ instance_uuid: a.uuid, password: a.password }).execute();
      },
      event_start: async (_ctx, a) => eventStart(await this.cellDbOf(a.uuid), a.uuid, a.request_id, a.event, a.host),
      event_finish: async (_ctx, a) => {
        const db = await this.cellDbOf(a.uuid);
        await eventFinish(db, a.uuid, a.request_id, a.event, a.result, { traceback: a.traceback, details: a.details, host: a.host });
        await finishAction(db, a.uuid, a.request_id);
      },
      migration_get: async (_ctx, a) => {
        const db = await this.migrationCell(a.uuid);
        return (db && await getMigration(db, a.uuid)) || null;
      },
      migration_update: async (_ctx, a) => {
        const db = await this.migrationCell(a.uuid);
        if (!db) throw new NotFound(`Migration ${a.uuid} could not be found.`);
        return updateMigration(db, a.uuid, a.updates, a.expect_status);
      },
      evacuations_from_host: async (_ctx, a) => {
        const out = [];
        for (const { db } of await d.cells.all({ includeCell0: false })) {
          out.push(...await db.selectFrom('migrations').selectAll().where('migration_type', '=', 'evacuation').where('source_compute', '=', a.host)
            .where('status', 'in', ['accepted', 'pre-migrating', 'done']).where('deleted', '=', 0).execute());
        }
        return out;
      },
      migrations_in_progress: async (_ctx, a) => {
        const out = [];
        for (const { db } of await d.cells.all({ includeCell0: false })) {
          out.push(...await db.selectFrom('migrations').selectAll().where('migration_type', 'in', ['resize', 'migration', 'live-migration'])
            .where((w) => w.or([w('source_compute', '=', a.host), w('dest_compute', '=', a.host)]))
            .where('status', 'in', MOVES_IN_PROGRESS).where('deleted', '=', 0).execute());
        }
        return out;
      },
      add_fault: async (_ctx, a) => addFault(await this.cellDbOf(a.uuid), a.uuid, a),
    };
  }

  /** The cell database holding a migration (the local cell first: agents live in it). */
  private async migrationCell(uuid: string): Promise<CellDb | undefined> {
    if (await getMigration(this.d.localCell, uuid)) return this.d.localCell;
    for (const { db } of await this.d.cells.all({ includeCell0: false })) if (await getMigration(db, uuid)) return db;
    return undefined;
  }

  private async cellDbOf(uuid: string): Promise<CellDb> {
    const where = await this.d.cells.cellOfInstance(uuid);
    return where?.db ?? this.d.localCell;
  }

  /**
   * select_destinations, retried while no scheduler answers in time. `stillWanted` (builds) is
   * asked before each retry which instances are still to be scheduled: the timed-out call may
   * still be claiming for builds the user deleted meanwhile, and asking again for those would
   * only claim for them again. The selections returned are for the last list it gave.
   */
  private async selectDestinations(ctx: RequestContext, spec: RequestSpec, uuids: string[], stillWanted?: (uuids: string[]) => Promise<string[]>): Promise<Selection[]> {
    const deadline = Date.now() + Math.max(60, this.d.config.get<number>('DEFAULT', 'instance_build_timeout') || 600) * 1000;
    for (let attempt = 0; ; attempt++) {
      if (!uuids.length) return [];
      try {
        return await this.scheduler.call(ctx, 'select_destinations', { spec, instance_uuids: uuids }, { timeoutMs: 60_000 });
      } catch (e) {
        // No scheduler answering, or one that could not reach its database or placement (a
        // restart): builds wait for it to come back rather than fail.
        if (!(e instanceof MessagingTimeout || e instanceof ServiceUnavailable) || Date.now() > deadline) throw e;
        this.d.logger.warn({ instances: uuids.length, requestId: ctx.requestId }, 'no scheduler answered select_destinations; retrying');
        await sleep(Math.min(5000, 500 * (attempt + 1)));
        if (stillWanted) uuids = await stillWanted(uuids);
      }
    }
  }

  /** The builds of `uuids` whose build request is still there; the others' claims (if any) are released. */
  private async pendingBuilds(ctx: RequestContext, uuids: string[]): Promise<string[]> {
    const left = new Set((await this.d.cells.db.selectFrom('build_requests').select('instance_uuid').where('instance_uuid', 'in', uuids).execute()).map((r) => r.instance_uuid));
    for (const u of uuids.filter((x) => !left.has(x))) {
      await this.d.placement.deleteAllocations(u).catch(this.logged(ctx, 'release the claim of a build deleted while it was scheduled', u));
    }
    return uuids.filter((u) => left.has(u));
  }

  async scheduleAndBuild(ctx: RequestContext, uuids: string[], secrets: BuildSecrets = {}): Promise<void> {
    const d = this.d;
    d.logger.debug({ instances: uuids }, 'scheduling the build');
    const api = d.cells.db;
    // Waits out a database restart: a cast is acknowledged once handled, so giving up here would
    // lose the build (its build request waiting forever).
    const reqs = await retryOnConnectionError(() => api.selectFrom('build_requests').selectAll().where('instance_uuid', 'in', uuids).execute());
    const specs = await retryOnConnectionError(() => api.selectFrom('request_specs').selectAll().where('instance_uuid', 'in', uuids).execute());
    let live = uuids.filter((u) => reqs.some((r) => r.instance_uuid === u));
    if (!live.length) return;
    const spec = loadRequestSpec(specs.find((s) => s.instance_uuid === live[0])!.spec);
    let selections: Selection[];
    try {
      selections = await this.selectDestinations(ctx, spec, live, async (u) => (live = await this.pendingBuilds(ctx, u)));
    } catch (e) {
      const msg = e instanceof NoValidHost ? e.message : `Build of the instance failed: ${(e as Error).message}`;
      for (const u of live) {
        // A call that timed out may have claimed anyway (NoValidHost released its own claims).
        if (!(e instanceof NoValidHost)) await d.placement.deleteAllocations(u).catch(this.logged(ctx, 'release the claim of a build that could not be scheduled', u));
        await retryOnConnectionError(() => this.buryInCell0(ctx, u, msg, (e as Error).name)).catch((err) => d.logger.error({ err, instance: u }, 'could not bury instance in cell0'));
      }
      return;
    }
    await Promise.all(live.map(async (u, i) => {
      try {
        await this.createInCell(ctx, u, selections[i], reqs.find((r) => r.instance_uuid === u)!, secrets);
      } catch (err) {
        d.logger.error({ err, instance: u, requestId: ctx.requestId }, 'could not create the instance in its cell');
        await d.placement.deleteAllocations(u).catch(this.logged(ctx, 'remove the allocation of an instance that could not be created', u));
        await retryOnConnectionError(() => this.undoCreate(ctx, u, (err as Error).message, selections[i].cell_uuid)).catch(this.logged(ctx, 'undo the half-created instance', u));
      }
    }));
  }

  /**
   * createInCell failed half-way (its database restarted, the cast could not be sent): the
   * instance must not stay in BUILD with no host working on it. Deleted by the user meanwhile
   * (its mapping queued for delete): it is deleted; otherwise it is put in ERROR with a fault
   * (in cell0 when its row could not even be written into its cell).
   */
  private async undoCreate(ctx: RequestContext, uuid: string, reason: string, cellUuid: string): Promise<void> {
    const d = this.d;
    const message = `Build of instance ${uuid} could not be handed to its host: ${reason}`;
    const where = await d.cells.cellOfInstance(uuid);
    if (!where || !(await where.db.selectFrom('instances').select('uuid').where('uuid', '=', uuid).executeTakeFirst())) {
      // The row may have been written into the selected cell before the failure, its mapping not
      // yet pointed there: once the build is in cell0 that row goes, else it stays live in BUILD,
      // never built — a duplicate (seen in the PostgreSQL slow-placement scenario when the shared
      // server refused connections: "too many clients already").
      const selected = await d.cells.cellDb(await d.cells.byUuid(cellUuid));
      if (await this.buryInCell0(ctx, uuid, message, 'Error')) await markDeleted(selected, uuid);
      return;
    }
    const mapping = await d.cells.db.selectFrom('instance_mappings').select('queued_for_delete').where('instance_uuid', '=', uuid).executeTakeFirst();
    if (!mapping || mapping.queued_for_delete) {
      await markDeleted(where.db, uuid);
      return;
    }
    const failed = await updateInstance(where.db, uuid, { vm_state: VM.ERROR, task_state: null }, { vm_state: [VM.BUILDING], task_state: [TASK.SCHEDULING] }).then(() => true, () => false);
    if (failed) await addFault(where.db, uuid, { code: 500, message });
    await d.cells.db.deleteFrom('build_requests').where('instance_uuid', '=', uuid).execute();
  }

  /**
   * A build request nobody schedules (the reconciler saw it twice, older than the build timeout:
   * its conductor died before writing the instance anywhere, or its cast was lost): buried in
   * cell0 in ERROR with the reason as its fault, its claim (if any) released. A copy of the build
   * still alive somewhere loses the race for the instance mapping and stands down. True when
   * this call buried it.
   */
  async buryStaleBuild(ctx: RequestContext, uuid: string, message: string): Promise<boolean> {
    const owned = await retryOnConnectionError(() => this.buryInCell0(ctx, uuid, message, 'Error'));
    if (owned) await this.d.placement.deleteAllocations(uuid).catch(this.logged(ctx, 'release the claim of a build that was never scheduled', uuid));
    return owned;
  }

  /** True when this call put the build in cell0 (false: deleted meanwhile, or another copy owns it). */
  private async buryInCell0(ctx: RequestContext, uuid: string, message: string, errName: string): Promise<boolean> {
    const d = this.d;
    const br = await d.cells.db.selectFrom('build_requests').selectAll().where('instance_uuid', '=', uuid).executeTakeFirst();
    if (!br) return false; // deleted while scheduling
    const cell0 = (await d.cells.list(true)).find((c) => c.uuid === CELL0_UUID);
    if (!cell0) throw new NotFound('cell0 is not mapped; run `stratus manage cell_v2 map_cell0`.');
    const db = await d.cells.cellDb(cell0);
    const inst = JSON.parse(br.instance);
    await this.insertInstance(db, inst, { vm_state: VM.ERROR, task_state: null, host: null, node: null });
    await addFault(db, uuid, { code: 500, message, details: errName === 'NoValidHost' ? undefined : message });
    await recordAction(db, uuid, 'create', { requestId: ctx.requestId, userId: inst.user_id, projectId: inst.project_id });
    await eventStart(db, uuid, ctx.requestId, 'conductor_schedule_and_build_instances', null);
    await eventFinish(db, uuid, ctx.requestId, 'conductor_schedule_and_build_instances', 'Error', { traceback: message });
    await finishAction(db, uuid, ctx.requestId);
    if (!(await this.claimMapping(uuid, cell0.id))) {
      // Another copy of the same build (a redelivered cast) scheduled it meanwhile: it owns it.
      d.logger.warn({ instance: uuid, requestId: ctx.requestId }, 'instance handled twice: this copy stands down');
      await markDeleted(db, uuid);
      return false;
    }
    const r = await d.cells.db.deleteFrom('build_requests').where('instance_uuid', '=', uuid).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) { await markDeleted(db, uuid); return false; } // deleted meanwhile
    return true;
  }

  /**
   * Points the instance's mapping at the cell its row was written in, unless another copy of the
   * same build already pointed it at another cell (first writer owns the instance): false then.
   */
  private async claimMapping(uuid: string, cellId: number): Promise<boolean> {
    const api = this.d.cells.db;
    await api.updateTable('instance_mappings').set({ cell_id: cellId }).where('instance_uuid', '=', uuid).where('cell_id', 'is', null).execute();
    // Set now, or by an earlier copy of this build in the same cell: this cell owns it.
    const m = await api.selectFrom('instance_mappings').select('cell_id').where('instance_uuid', '=', uuid).executeTakeFirst();
    return m?.cell_id === cellId;
  }

  /** False when the row was there already (the same message handled twice). */
  private async insertInstance(db: CellDb, inst: any, over: Partial<InstanceRow>): Promise<boolean> {
    const { id: _id, metadata_json, tags_list, server_groups: _g, ...row } = inst;
    try {
      await db.insertInto('instances').values({ ...row, ...over, updated_at: now() }).execute();
    } catch (e) {
      if (!isUniqueViolation(e)) throw e; // a retried message: the row is there already
      return false;
    }
    const md = parseJson<Record<string, string>>(metadata_json, {});
    if (Object.keys(md).length) await setMetadata(db, inst.uuid, md, false);
    for (const t of (tags_list ?? []) as string[]) {
      // A retried message finds its tags there already; anything else is worth a log line.
      await db.insertInto('instance_tags').values({ instance_uuid: inst.uuid, tag: t }).execute()
        .catch((e) => { if (!isUniqueViolation(e)) this.d.logger.warn({ err: e, instance: inst.uuid, tag: t }, 'could not tag the instance'); });
    }
    return true;
  }

  private async createInCell(ctx: RequestContext, uuid: string, sel: Selection, br: any, secrets: BuildSecrets): Promise<void> {
    const d = this.d;
    const cell = await d.cells.byUuid(sel.cell_uuid);
    const db = await d.cells.cellDb(cell);
    const inst = JSON.parse(br.instance);
    const [azs] = await hostZones(d.cells.db, [sel.host]);
    // Retried while the database restarts: nothing is written before it, and without the row
    // the build would go nowhere.
    const inserted = await retryOnConnectionError(() => this.insertInstance(db, inst, {
      host: sel.host, node: sel.nodename, vm_state: VM.BUILDING, task_state: TASK.SCHEDULING,
      availability_zone: inst.availability_zone ?? azs?.zone ?? d.config.get<string>('DEFAULT', 'default_availability_zone'),
    }));
    if (!inserted) {
      // Another copy of this build wrote the row first (a cast redelivered after a broker cut or
      // a conductor crash; that copy may have died right after). Its host stands: this copy's
      // claim is put back there, and the copy that deletes the build request casts the build.
      const row = await db.selectFrom('instances').select(['host', 'node', 'vm_state']).where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
      await settleLostClaim(ctx, d, db, uuid, sel, inst);
      if (!row?.host || !row.node || row.vm_state !== VM.BUILDING) return;
      sel = { ...sel, host: row.host, nodename: row.node };
    } else {
      await recordAction(db, uuid, 'create', { requestId: ctx.requestId, userId: inst.user_id, projectId: inst.project_id });
      await eventStart(db, uuid, ctx.requestId, 'conductor_schedule_and_build_instances', null);
      await eventFinish(db, uuid, ctx.requestId, 'conductor_schedule_and_build_instances', 'Success');
    }
    if (!(await this.claimMapping(uuid, cell.id))) {
      // Another copy of the same build put it in another cell first (cell0, having found no
      // host while this copy found one): that copy owns it; this one's row and claim go.
      await markDeleted(db, uuid);
      return settleLostClaim(ctx, d, db, uuid, sel, inst);
    }
    const r = await d.cells.db.deleteFrom('build_requests').where('instance_uuid', '=', uuid).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) {
      // The first copy of a duplicate took it (or the user deleted it: the first copy, or the
      // reconciler if that copy died, finishes that delete).
      if (!inserted) return;
      // Deleted by the user while we scheduled: undo what we did.
      await markDeleted(db, uuid);
      await d.placement.deleteAllocations(uuid).catch(this.logged(ctx, 'remove the allocation of an instance deleted while scheduling', uuid));
      return;
    }
    const t = await d.cellTransports.forCell(cell);
    d.logger.info({ instance: uuid, host: sel.host, cell: cell.name }, 'instance scheduled; casting the build to its host');
    await this.compute(sel.host, t).cast(ctx, 'build_and_run_instance', { instance_uuid: uuid, node: sel.nodename, ...secrets });
  }

  /** Unshelve: a shelved server still on its host is started there; an offloaded one is scheduled again in its cell and spawned. */
  async unshelve(ctx: RequestContext, uuid: string): Promise<void> {
    const d = this.d;
    const where = await d.cells.cellOfInstance(uuid);
    if (!where) return;
    const row = await where.db.selectFrom('instances').select(['vm_state', 'host']).where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
    if (row?.vm_state === VM.SHELVED && row.host) {
      await this.compute(row.host, await d.cellTransports.forCell(where.cell)).cast(ctx, 'unshelve_instance', { instance_uuid: uuid });
      return;
    }
    const specRow = await d.cells.db.selectFrom('request_specs').select('spec').where('instance_uuid', '=', uuid).executeTakeFirst();
    const fail = async (message: string) => {
      await updateInstance(where.db, uuid, { task_state: null }, { task_state: ['unshelving'] }).catch(this.logged(ctx, 'clear the unshelving task', uuid));
      await addFault(where.db, uuid, { code: 500, message });
    };
    if (!specRow) return fail(`No request spec for instance ${uuid}: cannot unshelve`);
    const spec: RequestSpec = { ...loadRequestSpec(specRow.spec), num_instances: 1, ignore_hosts: [], cell_uuid: where.cell.uuid };
    let sel: Selection[];
    try {
      sel = await this.selectDestinations(ctx, spec, [uuid]);
    } catch (e) {
      return fail((e as Error).message);
    }
    await updateInstance(where.db, uuid, { host: sel[0].host, node: sel[0].nodename, task_state: 'spawning' }, { task_state: ['unshelving'] }).catch(async () => {
      await d.placement.deleteAllocations(uuid).catch(this.logged(ctx, 'remove the allocation of an unshelve that lost its instance', uuid));
    });
    const t = await d.cellTransports.forCell(where.cell);
    await this.compute(sel[0].host, t).cast(ctx, 'unshelve_instance', { instance_uuid: uuid });
  }

  /** A build failed on `failedHost`: try another host of the same cell, or give up with a fault. */
  /** (A build rescheduled because its host went down has lost its secrets: nothing stores them.) */
  async reschedule(ctx: RequestContext, uuid: string, failedHost: string, reason: string, secrets: BuildSecrets = {}): Promise<void> {
    const d = this.d;
    const where = await d.cells.cellOfInstance(uuid);
    if (!where) return;
    const { db, cell } = where;
    const row = await db.selectFrom('instances').selectAll().where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst() as InstanceRow | undefined;
    if (!row || row.vm_state !== VM.BUILDING || row.host !== failedHost) return; // deleted, done, or already moved
    const specRow = await d.cells.db.selectFrom('request_specs').select('spec').where('instance_uuid', '=', uuid).executeTakeFirst();
    const spec = specRow ? loadRequestSpec(specRow.spec) : undefined;
    const maxAttempts = d.config.get<number>('scheduler', 'max_attempts');
    const fail = async (message: string) => {
      // Not building any more (deleted meanwhile): nothing to put in ERROR.
      // As Nova's _nil_out_instance_obj_host_and_node: a build that failed belongs to no host, so
      // nothing expects its (deleted) allocation and a late report from that host is refused.
      await updateInstance(db, uuid, { vm_state: VM.ERROR, task_state: null, host: null, node: null }, { vm_state: [VM.BUILDING] }).catch(this.logged(ctx, 'put a failed build in ERROR', uuid));
      await addFault(db, uuid, { code: 500, message, details: reason, host: failedHost });
      await d.placement.deleteAllocations(uuid).catch(this.logged(ctx, 'remove the allocation of a failed build', uuid));
      await eventFinish(db, uuid, ctx.requestId, 'conductor_reschedule', 'Error', { traceback: message }).catch(this.logged(ctx, 'record the reschedule failure', uuid));
    };
    if (!spec) return fail(`Build of instance ${uuid} was re-scheduled: ${reason}`);
    spec.num_attempts = (spec.num_attempts ?? 0) + 1;
    spec.ignore_hosts = [...new Set([...(spec.ignore_hosts ?? []), failedHost])];
    spec.cell_uuid = cell.uuid;
    spec.num_instances = 1;
    await d.cells.db.updateTable('request_specs').set({ spec: JSON.stringify(spec) }).where('instance_uuid', '=', uuid).execute();
    if (spec.num_attempts >= maxAttempts) {
      return fail(`Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance ${uuid}. Last failure on ${failedHost}: ${reason}`);
    }
    let sel: Selection[];
    try {
      sel = await this.selectDestinations(ctx, spec, [uuid]);
    } catch (e) {
      return fail(`${e instanceof NoValidHost ? e.message : (e as Error).message} (rescheduling after: ${reason})`);
    }
    const moved = await db.updateTable('instances').set({ host: sel[0].host, node: sel[0].nodename, task_state: TASK.SCHEDULING, updated_at: now() })
      .where('uuid', '=', uuid).where('host', '=', failedHost).where('vm_state', '=', VM.BUILDING).where('deleted', '=', 0).executeTakeFirst();
    if (Number(moved.numUpdatedRows) === 0) return settleLostClaim(ctx, d, db, uuid, sel[0], row).catch(this.logged(ctx, 'settle the claim of a reschedule that lost its instance', uuid));
    const t = await d.cellTransports.forCell(cell);
    await this.compute(sel[0].host, t).cast(ctx, 'build_and_run_instance', { instance_uuid: uuid, node: sel[0].nodename, ...secrets });
  }

  /**
   * Builds whose compute host stopped heartbeating are moved to another host (or failed), and
   * builds older than instance_build_timeout fail with a fault: no instance stays in BUILD forever.
   */
  async healStuckBuilds(): Promise<number> {
    if (this.healing) return 0;
    this.healing = true;
    let n = 0;
    try {
      const d = this.d;
      const downTime = d.config.get<number>('DEFAULT', 'service_down_time');
      const timeout = d.config.get<number>('DEFAULT', 'instance_build_timeout');
      for (const { db } of await d.cells.all({ includeCell0: false })) {
        const rows = await db.selectFrom('instances').selectAll().where('vm_state', '=', VM.BUILDING).where('deleted', '=', 0).where('host', 'is not', null).execute() as InstanceRow[];
        if (!rows.length) continue;
        const svcs = await db.selectFrom('services').selectAll().where('binary', '=', 'nova-compute').execute();
        for (const r of rows) {
          const svc = svcs.find((s) => s.host === r.host);
          const ctx = systemContext({ requestId: `req-${randomUUID()}` });
          if (!svc || !serviceIsUp(svc, downTime)) {
            n++;
            await recordAction(db, r.uuid, 'reschedule', { requestId: ctx.requestId, userId: r.user_id, projectId: r.project_id });
            await eventStart(db, r.uuid, ctx.requestId, 'conductor_reschedule', null);
            await this.reschedule(ctx, r.uuid, r.host!, `Compute host ${r.host} went down during the build`);
            await eventFinish(db, r.uuid, ctx.requestId, 'conductor_reschedule', 'Success').catch(this.logged(ctx, 'record the reschedule', r.uuid));
          } else if (timeout > 0 && Date.now() - Date.parse(r.created_at) > timeout * 1000) {
            n++;
            const ok = await updateInstance(db, r.uuid, { vm_state: VM.ERROR, task_state: null, host: null, node: null }, { vm_state: [VM.BUILDING] }).then(() => true, () => false);
            if (ok) {
              await addFault(db, r.uuid, { code: 500, message: `Build of instance ${r.uuid} timed out after ${timeout} seconds on host ${r.host}.`, host: r.host });
              await d.placement.deleteAllocations(r.uuid).catch(this.logged(ctx, 'remove the allocation of a timed-out build', r.uuid));
            }
          }
        }
      }
    } finally {
      this.healing = false;
    }
    return n;
  }
}

/**
 * A claim made for an instance that someone else handled meanwhile: the same schedule_and_build
 * message handled twice at once (redelivered after a broker cut or a conductor crash while the
 * first copy still runs), or the same stuck build rescheduled by both conductors. The winner
 * owns the instance; this claim replaced the consumer's allocation, so it is put back on the host
 * the instance really is on (or removed, the instance deleted), and nothing else is done.
 */
async function settleLostClaim(ctx: RequestContext, d: ConductorDeps, db: CellDb, uuid: string, sel: Selection, who: { project_id: string; user_id: string }): Promise<void> {
  d.logger.warn({ instance: uuid, requestId: ctx.requestId }, 'instance handled twice: this copy stands down');
  const row = await db.selectFrom('instances').select(['host', 'node']).where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
  if (row && row.host === sel.host && row.node === sel.nodename) return;
  const node = row?.host && row.node ? await db.selectFrom('compute_nodes').select('uuid').where('host', '=', row.host).where('hypervisor_hostname', '=', row.node).executeTakeFirst() : undefined;
  const resources = Object.values(sel.allocations ?? {})[0]?.resources;
  if (node && resources) await d.placement.claim(uuid, { [node.uuid]: { resources } }, who.project_id, who.user_id);
  else await d.placement.deleteAllocations(uuid);
}

function secretsOf(a: BuildSecrets): BuildSecrets {
  const out: BuildSecrets = {};
  if (typeof a.admin_password === 'string') out.admin_password = a.admin_password;
  if (Array.isArray(a.injected_files) && a.injected_files.length) out.injected_files = a.injected_files;
  return out;
}

// --- services and compute nodes (shared with the scheduler's own registration) ---

export async function registerOwnService(db: CellDb, host: string, binary: string, topic: string): Promise<{ id: number; uuid: string; disabled: number }> {
  const t = now();
  const existing = await db.selectFrom('services').selectAll().where('host', '=', host).where('binary', '=', binary).executeTakeFirst();
  if (existing) {
    await db.updateTable('services').set({ last_seen_up: t, updated_at: t, report_count: existing.report_count + 1, version: SERVICE_VERSION, topic }).where('id', '=', existing.id).execute();
    return { id: existing.id, uuid: existing.uuid, disabled: existing.disabled };
  }
  try {
    await db.insertInto('services').values({ uuid: randomUUID(), host, binary, topic, report_count: 0, disabled: 0, disabled_reason: null, forced_down: 0, last_seen_up: t, version: SERVICE_VERSION, created_at: t, updated_at: t }).execute();
  } catch (e) { if (!isUniqueViolation(e)) throw e; }
  const row = await db.selectFrom('services').selectAll().where('host', '=', host).where('binary', '=', binary).executeTakeFirstOrThrow();
  return { id: row.id, uuid: row.uuid, disabled: row.disabled };
}

export async function heartbeat(db: CellDb, host: string, binary: string): Promise<{ disabled: number; forced_down: number } | null> {
  const t = now();
  const row = await db.selectFrom('services').select(['id', 'report_count', 'disabled', 'forced_down']).where('host', '=', host).where('binary', '=', binary).executeTakeFirst();
  if (!row) return null;
  await db.updateTable('services').set({ last_seen_up: t, updated_at: t, report_count: row.report_count + 1 }).where('id', '=', row.id).execute();
  return { disabled: row.disabled, forced_down: row.forced_down };
}

export type { ComputeNodeUpdate };

export async function computeNodeUpdate(db: CellDb, a: ComputeNodeUpdate): Promise<{ uuid: string; id: number }> {
  const { usage, ...fields } = a;
  const t = now();
  const existing = await db.selectFrom('compute_nodes').select(['id', 'uuid']).where('host', '=', a.host).where('hypervisor_hostname', '=', a.hypervisor_hostname).executeTakeFirst();
  if (existing) {
    await db.updateTable('compute_nodes').set({ ...fields, ...(usage ?? {}), updated_at: t }).where('id', '=', existing.id).execute();
    return existing;
  }
  try {
    await db.insertInto('compute_nodes').values({ uuid: randomUUID(), ...fields, ...(usage ?? { vcpus_used: 0, memory_mb_used: 0, local_gb_used: 0, running_vms: 0 }), mapped: 0, created_at: t, updated_at: t }).execute();
  } catch (e) { if (!isUniqueViolation(e)) throw e; }
  return db.selectFrom('compute_nodes').select(['id', 'uuid']).where('host', '=', a.host).where('hypervisor_hostname', '=', a.hypervisor_hostname).executeTakeFirstOrThrow();
}

export async function hostUsage(db: CellDb, host: string) {
  const r = await db.selectFrom('instances')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('vcpus').as('c'), eb.fn.sum<number>('memory_mb').as('m'), eb.fn.sum<number>('root_gb').as('d'), eb.fn.sum<number>('ephemeral_gb').as('e')])
    .where('host', '=', host).where('deleted', '=', 0).executeTakeFirst();
  return { running_vms: Number(r?.n ?? 0), vcpus_used: Number(r?.c ?? 0), memory_mb_used: Number(r?.m ?? 0), local_gb_used: Number(r?.d ?? 0) + Number(r?.e ?? 0) };
}

export type { CellMapping };
