// The compute agent (nova-compute) for one host: registers its service and compute node through
// the conductor, heartbeats, reports inventory to placement (healing it at start), and runs the
// instance lifecycle through its virt driver, recording instance action events and faults.
// It never opens a database: every read and write goes through the conductor over RPC.
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import type { RequestContext, RpcServer, Transport } from '../../common/rpc/transport.ts';
import { Conflict, MessagingTimeout, ServiceUnavailable } from '../../common/errors.ts';
import { systemContext } from '../rpc.ts';
import { RpcClient, serveApi, type ArgsOf, type CallNames, type Handlers, type ResultOf } from '../../common/rpc/typed.ts';
import { conductorApi, type InstanceWithMetadata } from '../rpcapi/conductor.ts';
import { computeApi, type BuildSecrets } from '../rpcapi/compute.ts';
import { VM, TASK, POWER, POWER_NAMES, type InstanceRow } from '../objects.ts';
import type { Inventories, PlacementClient, ProviderState } from '../clients.ts';
import type { ComputeDriver, GuestSpec, InjectedFile, LifecycleEvent } from '../virt/driver.ts';
import { InstanceNotFound as GuestNotFound, NotSupported } from '../virt/errors.ts';
import { CAPABILITY_TRAITS } from '../virt/capabilities.ts';
import { guestSpecOf } from './guest-spec.ts';
import { moveHandlers, destroyEvacuatedInstances, recoverMoves, type AgentPort } from './moves.ts';
import { now, parseJson, sleep } from '../util.ts';

/** Where snapshots go (the image service, with the service token). */
export interface SnapshotStore {
  upload(imageId: string, data: NodeJS.ReadableStream, diskFormat: string, containerFormat: string): Promise<void>;
  remove(imageId: string): Promise<void>;
  /** Images whose properties match every filter (all pages), with the service token. */
  list(filters: Record<string, string>): Promise<{ id: string; created_at: string }[]>;
}

export interface AgentDeps { config: Config; logger: Logger; transport: Transport; placement: PlacementClient; driver: ComputeDriver; host: string; images?: SnapshotStore }

type ConductorMethods = typeof conductorApi.methods;

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--; else await new Promise<void>((r) => this.waiting.push(r));
    try { return await fn(); } finally {
      const next = this.waiting.shift();
      if (next) next(); else this.free++;
    }
  }
}

export class ComputeManager {
  readonly host: string;
  private server?: RpcServer;
  private timers: NodeJS.Timeout[] = [];
  private nodeUuid?: string;
  private serviceId?: number;
  private builds: Semaphore;
  private usageDirty?: NodeJS.Timeout;
  private stopped = false;

  /** The virt driver (the all-in-one's banner names it). */
  get driver(): ComputeDriver { return this.d.driver; }

  constructor(private readonly d: AgentDeps) {
    this.host = d.host;
    this.builds = new Semaphore(d.config.get<number>('DEFAULT', 'max_concurrent_builds'));
    this.conductorRpc = new RpcClient(d.transport, conductorApi);
  }

  private dead = false;

  private readonly conductorRpc: RpcClient<ConductorMethods>;

  /**
   * A conductor call. ServiceUnavailable (the conductor could not reach its database: a
   * restart) is retried for up to a minute, as oslo.db retries a lost connection: running a
   * conductor method again does no harm (at worst an action event or a fault is recorded twice),
   * and giving up would leave the work half done (a delete stuck in `deleting`, a spawned guest whose ACTIVE was never written).
   */
  private async conductor<K extends CallNames<ConductorMethods>>(method: K, args: ArgsOf<ConductorMethods[K]>, ctx: RequestContext = systemContext()): Promise<ResultOf<ConductorMethods[K]>> {
    const until = Date.now() + 60_000;
    for (let i = 0; ; i++) {
      if (this.dead) throw new Error(`compute agent ${this.host} is dead`);
      try {
        return await this.conductorRpc.call(ctx, method, args, { timeoutMs: 60_000 });
      } catch (e) {
        if (!(e instanceof ServiceUnavailable) || this.stopped || Date.now() > until) throw e;
        if (i === 0) this.d.logger.warn({ host: this.host, method, requestId: ctx.requestId, err: (e as Error).message }, 'conductor could not reach its database; retrying');
        await sleep(Math.min(5000, 250 * 2 ** i));
      }
    }
  }

  /** Waits for a conductor (start-up order does not matter in a distributed deployment). */
  private async conductorRetry<K extends CallNames<ConductorMethods>>(method: K, args: ArgsOf<ConductorMethods[K]>): Promise<ResultOf<ConductorMethods[K]>> {
    for (let i = 0; ; i++) {
      try { return await this.conductor(method, args); } catch (e) {
        if (!(e instanceof MessagingTimeout) || this.stopped) throw e;
        this.d.logger.warn({ host: this.host }, `waiting for a conductor (${method})`);
        await sleep(Math.min(5000, 500 * (i + 1)));
      }
    }
  }

  async start(): Promise<void> {
    const { config, driver } = this.d;
    const svc = await this.conductorRetry('service_update', { host: this.host, binary: 'nova-compute', topic: 'compute' });
    this.serviceId = svc.id;
    const known = await this.conductorRetry('instances_on_host', { host: this.host });
    // A guest coming in by live migration is not on this host in the database yet, but it is
    // not a leftover either: the driver must adopt it, not reap it.
    const incoming = (await this.conductor('migrations_in_progress', { host: this.host }).catch((e) => {
      this.d.logger.warn({ err: e, host: this.host }, 'could not list the moves in progress (a conductor older than RPC 1.3?)');
      return [];
    })).filter((m) => m.migration_type === 'live-migration' && m.dest_compute === this.host && !known.some((k) => k.uuid === m.instance_uuid));
    await driver.initHost([...known.map((k) => ({ uuid: k.uuid, vmState: k.vm_state })), ...incoming.map((m) => ({ uuid: m.instance_uuid, vmState: VM.ACTIVE }))]);
    // Before this host takes messages again (as Nova's init_host): what it had under way is put
    // right first, and whatever was queued for it meanwhile finds the moves ended.
    const moved = await recoverMoves(this.port(), systemContext()).catch((e) => {
      this.d.logger.warn({ err: e }, 'could not recover the moves in progress');
      return new Set<string>();
    });
    driver.onLifecycleEvent?.((e) => {
      this.onLifecycle(e).catch((err) => this.d.logger.warn({ err, instance: e.uuid, event: e.event }, 'could not sync the instance after a lifecycle event'));
    });
    this.server = await serveApi(this.d.transport, computeApi, { server: this.host }, this.endpoints());
    // Identity or placement may come up after us (separate processes start in any order).
    for (let i = 0; ; i++) {
      try { await this.updateResources(); break; } catch (e) {
        // Not reachable, or answering errors while it starts (a 503 behind a proxy, a database
        // still migrating): keep trying for a few minutes before giving up.
        if (this.stopped || i > 60) throw e;
        this.d.logger.warn({ host: this.host, err: (e as Error).message, unavailable: e instanceof ServiceUnavailable }, 'placement not ready yet; retrying');
        await sleep(Math.min(5000, 500 * (i + 1)));
      }
    }
    await this.initInstances(known.filter((k) => !moved.has(k.uuid)));
    const hb = setInterval(() => {
      this.conductor('service_heartbeat', { host: this.host, binary: 'nova-compute' }).catch((e) => this.d.logger.warn({ err: e }, 'heartbeat failed'));
    }, config.get<number>('DEFAULT', 'report_interval') * 1000);
    const rt = setInterval(() => { this.updateResources().catch((e) => this.d.logger.warn({ err: e }, 'resource update failed')); }, config.get<number>('DEFAULT', 'update_resources_interval') * 1000);
    const sh = setInterval(() => { this.offloadShelved().catch((e) => this.d.logger.warn({ err: e }, 'offloading shelved servers failed')); }, config.get<number>('DEFAULT', 'shelved_poll_interval') * 1000);
    hb.unref(); rt.unref(); sh.unref();
    this.timers.push(hb, rt, sh);
    const reap = config.get<number>('DEFAULT', 'running_deleted_instance_poll_interval');
    if (reap > 0) {
      const t = setInterval(() => { this.cleanupRunningDeleted().catch((e) => this.d.logger.warn({ err: e }, 'cleaning up guests of deleted instances failed')); }, reap * 1000);
      t.unref();
      this.timers.push(t);
    }
  }

  /** Tests: the agent dies as a killed process would: no more heartbeats, messages or writes. */
  async kill(): Promise<void> {
    this.dead = true;
    await this.stop();
  }

  /** Tests: the same host's agent started again on the same hypervisor (its guests kept running meanwhile). */
  restarted(): ComputeManager {
    return new ComputeManager(this.d);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.usageDirty);
    await this.server?.stop();
    // The driver's background work (QMP connections, the fake driver's console servers); guests keep running.
    await this.d.driver.cleanupHost?.().catch((err) => this.d.logger.warn({ err, host: this.host }, 'the driver did not clean up its host work'));
  }

  /** Resource tracker: the compute node record (through the conductor) and placement inventory. */
  async updateResources(): Promise<void> {
    const { config, driver, placement } = this.d;
    if (this.serviceId === undefined) throw new Error(`compute agent ${this.host}: resources reported before its service registered`);
    const r = await driver.hostResources();
    const usage = await this.conductor('host_usage', { host: this.host });
    // The node record gets the configured ratio, else the initial one (Nova's ComputeNode does the same).
    const configured = (res: 'cpu' | 'ram' | 'disk') => config.get<number | undefined>('DEFAULT', `${res}_allocation_ratio`) || undefined;
    const initial = (res: 'cpu' | 'ram' | 'disk') => config.get<number>('DEFAULT', `initial_${res}_allocation_ratio`);
    const ratios = { cpu: configured('cpu') ?? initial('cpu'), ram: configured('ram') ?? initial('ram'), disk: configured('disk') ?? initial('disk') };
    const node = await this.conductor('compute_node_update', {
      host: this.host, service_id: this.serviceId, hypervisor_hostname: r.hypervisorHostname, hypervisor_type: r.hypervisorType,
      hypervisor_version: r.hypervisorVersion, vcpus: r.vcpus, memory_mb: r.memoryMb, local_gb: r.localGb, cpu_info: JSON.stringify(r.cpuInfo),
      host_ip: config.get<string>('DEFAULT', 'my_ip'), supported_instances: JSON.stringify(r.supportedInstances),
      cpu_allocation_ratio: ratios.cpu, ram_allocation_ratio: ratios.ram, disk_allocation_ratio: ratios.disk,
      usage: { ...usage, memory_mb_used: usage.memory_mb_used + config.get<number>('DEFAULT', 'reserved_host_memory_mb') },
    });
    // A provider this call creates is known exactly, so its traits and inventory are written
    // without reading them first.
    let known: ProviderState | undefined;
    if (this.nodeUuid !== node.uuid) {
      // Remember the node only once its provider exists: if placement is not reachable yet, the
      // next attempt must create the provider again instead of writing inventory to nothing.
      known = await placement.ensureProvider(node.uuid, r.hypervisorHostname);
      known = await this.reportCapabilities(node.uuid, known);
      this.nodeUuid = node.uuid;
    }
    const reservedDisk = Math.ceil(config.get<number>('DEFAULT', 'reserved_host_disk_mb') / 1024);
    // Nova's ComputeDriver._get_allocation_ratios: the configured ratio overrides placement's; else
    // a class the provider already has keeps the ratio placement has (an operator may have set it
    // with `openstack resource provider inventory set`); a class it lacks starts at initial_*.
    const ratio = (cur: Inventories, rc: string, res: 'cpu' | 'ram' | 'disk') => configured(res) ?? cur[rc]?.allocation_ratio ?? initial(res);
    await placement.setInventory(node.uuid, (cur) => ({
      VCPU: { total: r.vcpus, reserved: config.get<number>('DEFAULT', 'reserved_host_cpus'), min_unit: 1, max_unit: r.vcpus, step_size: 1, allocation_ratio: ratio(cur, 'VCPU', 'cpu') },
      MEMORY_MB: { total: r.memoryMb, reserved: config.get<number>('DEFAULT', 'reserved_host_memory_mb'), min_unit: 1, max_unit: r.memoryMb, step_size: 1, allocation_ratio: ratio(cur, 'MEMORY_MB', 'ram') },
      DISK_GB: { total: r.localGb, reserved: reservedDisk, min_unit: 1, max_unit: r.localGb, step_size: 1, allocation_ratio: ratio(cur, 'DISK_GB', 'disk') },
    }), known);
  }

  /**
   * The driver's capabilities as traits on the node's provider (Nova's capability traits): the
   * ones it claims are added, the capability traits it does not claim removed, others kept.
   */
  private async reportCapabilities(nodeUuid: string, known?: ProviderState): Promise<ProviderState> {
    const claimed = new Set(this.d.driver.capabilities());
    return this.d.placement.setTraits(nodeUuid, [...claimed], CAPABILITY_TRAITS.filter((t) => !claimed.has(t)), known);
  }

  /** The driver's power state of a guest; NOSTATE when it has none. */
  private async powerState(uuid: string): Promise<number> {
    try { return (await this.d.driver.info(uuid)).powerState; } catch (e) {
      if (e instanceof GuestNotFound) return POWER.NOSTATE;
      throw e;
    }
  }

  /** The instance row with its metadata, through the conductor. */
  private async instance(ctx: RequestContext, uuid: string): Promise<InstanceWithMetadata | null> {
    return this.conductor('instance_get', { uuid, expected_attrs: ['metadata'] }, ctx);
  }

  private specOf(row: InstanceWithMetadata, secrets: { adminPassword?: string | null; injectedFiles?: InjectedFile[] } = {}): GuestSpec {
    return guestSpecOf(row, { nameTemplate: this.d.config.get<string>('DEFAULT', 'instance_name_template'), metadata: row.metadata, ...secrets });
  }

  /** The spec of an instance this host runs, for operations that may start the guest afresh. */
  private async specFor(ctx: RequestContext, uuid: string): Promise<GuestSpec> {
    const row = await this.instance(ctx, uuid);
    if (!row || row.deleted) throw new GuestNotFound(`Instance ${uuid} could not be found.`);
    return this.specOf(row);
  }

  /**
   * Nova's handle_lifecycle_event → _sync_instance_power_state: with no task in flight the
   * instance follows its guest; an ACTIVE instance whose guest stopped (or crashed, or was
   * suspended behind our back) becomes STOPPED (SHUTOFF), as Nova's stop does.
   */
  private async onLifecycle(e: LifecycleEvent): Promise<void> {
    if (this.stopped) return;
    const ctx = systemContext();
    const row = await this.conductor('instance_get', { uuid: e.uuid }, ctx);
    if (!row || row.deleted || row.host !== this.host || row.task_state !== null) return;
    const power = await this.powerState(e.uuid);
    const updates: Partial<InstanceRow> = { power_state: power };
    const off = power === POWER.SHUTDOWN || power === POWER.CRASHED || power === POWER.SUSPENDED || power === POWER.NOSTATE;
    if (row.vm_state === VM.ACTIVE && off) updates.vm_state = VM.STOPPED;
    if (row.power_state === power && !updates.vm_state) return;
    this.d.logger.info({ instance: e.uuid, event: e.event, vm_state: row.vm_state, power_state: power }, 'guest changed state on its own; syncing the instance');
    await this.conductor('instance_update', { uuid: e.uuid, updates, expect: { task_state: [null] }, host: this.host }, ctx);
  }

  private markUsageDirty(): void {
    if (this.usageDirty) return;
    this.usageDirty = setTimeout(() => {
      this.usageDirty = undefined;
      this.updateResources().catch((e) => this.d.logger.warn({ err: e }, 'resource update failed'));
    }, 1000);
    this.usageDirty.unref();
  }

  /** Logs a failure that must not stop what it accompanies (bookkeeping, best-effort cleanup). */
  private logged(ctx: RequestContext, what: string, uuid?: string) {
    return (err: unknown) => { this.d.logger.warn({ err, instance: uuid, requestId: ctx.requestId }, `could not ${what}`); };
  }

  /**
   * Nova's _init_instance: instances caught mid-operation by a restart are put right; builds
   * that were running here are failed (the conductor reschedules builds of dead hosts), and
   * allocations of instances deleted meanwhile are removed from placement.
   */
  private async initInstances(known: { uuid: string; vm_state: string; task_state: string | null }[]): Promise<void> {
    await destroyEvacuatedInstances(this.port(), systemContext()).catch((e) => this.d.logger.warn({ err: e }, 'could not clean up evacuated instances'));
    for (const k of known) {
      try {
        if (k.task_state === TASK.DELETING) {
          await this.terminate(systemContext(), k.uuid);
        } else if (k.vm_state === VM.BUILDING && k.task_state === TASK.SPAWNING) {
          await this.conductor('instance_update', { uuid: k.uuid, updates: { vm_state: VM.ERROR, task_state: null }, host: this.host });
          await this.conductor('add_fault', { uuid: k.uuid, code: 500, message: `Instance ${k.uuid} was being built on ${this.host} when its compute service restarted.`, host: this.host });
        } else if (k.task_state && k.vm_state !== VM.BUILDING) {
          const power = await this.powerState(k.uuid);
          await this.conductor('instance_update', { uuid: k.uuid, updates: { task_state: null, power_state: power }, host: this.host });
        }
      } catch (e) {
        this.d.logger.warn({ err: e, instance: k.uuid }, 'could not recover instance state at start');
      }
    }
    // Allocations against this host for consumers that are gone.
    if (this.nodeUuid) {
      try {
        const allocs = await this.d.placement.providerAllocations(this.nodeUuid);
        for (const consumer of Object.keys(allocs)) {
          const row = await this.conductor('instance_get', { uuid: consumer });
          if (row && row.deleted) await this.d.placement.deleteAllocations(consumer);
        }
      } catch (e) {
        this.d.logger.warn({ err: e }, 'could not heal allocations');
      }
    }
  }

  /** Records the instance action event around fn: start, then Success or Error (with the stack). */
  private wrap<A extends { instance_uuid: string }>(event: string, fn: (ctx: RequestContext, a: A) => Promise<unknown>) {
    return async (ctx: RequestContext, a: A) => {
      await this.conductor('event_start', { uuid: a.instance_uuid, request_id: ctx.requestId, event, host: this.host }, ctx).catch(this.logged(ctx, `record ${event} start`, a.instance_uuid));
      try {
        const r = await fn(ctx, a);
        await this.conductor('event_finish', { uuid: a.instance_uuid, request_id: ctx.requestId, event, result: 'Success', host: this.host }, ctx).catch(this.logged(ctx, `record ${event} finish`, a.instance_uuid));
        return r;
      } catch (e) {
        await this.conductor('event_finish', { uuid: a.instance_uuid, request_id: ctx.requestId, event, result: 'Error', traceback: (e as Error).stack ?? String(e), host: this.host }, ctx)
          .catch(this.logged(ctx, `record ${event} failure`, a.instance_uuid));
        throw e;
      }
    };
  }

  /**
   * o, whose methods reject once the agent is killed (tests' kill()): as with a killed process,
   * what it still had under way reaches neither placement nor another host.
   */
  private whileAlive<T extends object>(o: T): T {
    return new Proxy(o, {
      get: (t, k) => {
        const v: unknown = Reflect.get(t, k);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => (this.dead ? Promise.reject(new Error(`compute agent ${this.host} is dead`)) : (v as (...a: unknown[]) => unknown).apply(t, args));
      },
    });
  }

  /** What the move handlers (agent/moves.ts) use of this agent. */
  private port(): AgentPort {
    return {
      host: this.host, myIp: this.d.config.get<string>('DEFAULT', 'my_ip'), driver: this.d.driver, placement: this.whileAlive(this.d.placement),
      conductor: (method, args, ctx) => this.conductor(method, args, ctx),
      instance: (ctx, uuid) => this.instance(ctx, uuid),
      specOf: (row, secrets) => this.specOf(row, secrets),
      compute: (host) => this.whileAlive(new RpcClient(this.d.transport, computeApi, host)),
      powerState: (uuid) => this.powerState(uuid),
      logged: (ctx, what, uuid) => this.logged(ctx, what, uuid),
      markUsageDirty: () => this.markUsageDirty(),
      wrap: (event, fn) => this.wrap(event, fn),
    };
  }

  private endpoints(): Handlers<typeof computeApi.methods> {
    const wrap = this.wrap.bind(this);
    /**
     * A power action: the driver call, then the instance's new state if it is still in the task
     * the API set; on failure a fault and the task cleared, the guest's real power state kept
     * (a NotSupported driver leaves the instance as it was, with the fault saying why).
     */
    const power = <A extends { instance_uuid: string }>(event: string, op: (a: A, ctx: RequestContext) => Promise<unknown>, after: (a: A) => Partial<InstanceRow>, expect: string[]) =>
      wrap<A>(event, async (ctx, a) => {
        try {
          await op(a, ctx);
        } catch (e) {
          await this.conductor('add_fault', { uuid: a.instance_uuid, code: e instanceof NotSupported ? 501 : 500, message: (e as Error).message, host: this.host }, ctx).catch(this.logged(ctx, 'record a fault', a.instance_uuid));
          const ps = await this.powerState(a.instance_uuid).catch(() => POWER.NOSTATE);
          await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { task_state: null, power_state: ps }, host: this.host }, ctx).catch(this.logged(ctx, 'clear the task state', a.instance_uuid));
          throw e;
        }
        await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { ...after(a), task_state: null }, expect: { task_state: expect }, host: this.host }, ctx);
      });
    const drv = this.d.driver;
    type U = { instance_uuid: string };
    return {
      build_and_run_instance: (ctx: RequestContext, a: U & BuildSecrets) => {
        // Answer the cast at once; builds run in the background, a few at a time.
        void this.builds.run(() => this.build(ctx, a.instance_uuid, a)).catch((e) => this.d.logger.error({ err: e, instance: a.instance_uuid, requestId: ctx.requestId }, 'build failed'));
      },
      terminate_instance: wrap<U>('compute_terminate_instance', (ctx, a) => this.terminate(ctx, a.instance_uuid)),
      stop_instance: power<U>('compute_stop_instance', (a) => drv.powerOff(a.instance_uuid), () => ({ vm_state: VM.STOPPED, power_state: POWER.SHUTDOWN }), [TASK.POWERING_OFF]),
      start_instance: power<U>('compute_start_instance', async (a, ctx) => drv.powerOn(await this.specFor(ctx, a.instance_uuid)), () => ({ vm_state: VM.ACTIVE, power_state: POWER.RUNNING }), [TASK.POWERING_ON]),
      reboot_instance: power<U & { reboot_type?: string }>('compute_reboot_instance', async (a, ctx) => drv.reboot(await this.specFor(ctx, a.instance_uuid), a.reboot_type === 'HARD'),
        () => ({ vm_state: VM.ACTIVE, power_state: POWER.RUNNING }),
        [TASK.REBOOTING, TASK.REBOOTING_HARD, TASK.REBOOT_PENDING, TASK.REBOOT_STARTED, TASK.REBOOT_PENDING_HARD, TASK.REBOOT_STARTED_HARD]),
      pause_instance: power<U>('compute_pause_instance', (a) => drv.pause(a.instance_uuid), () => ({ vm_state: VM.PAUSED, power_state: POWER.PAUSED }), [TASK.PAUSING]),
      unpause_instance: power<U>('compute_unpause_instance', (a) => drv.unpause(a.instance_uuid), () => ({ vm_state: VM.ACTIVE, power_state: POWER.RUNNING }), [TASK.UNPAUSING]),
      suspend_instance: power<U>('compute_suspend_instance', (a) => drv.suspend(a.instance_uuid), () => ({ vm_state: VM.SUSPENDED, power_state: POWER.SUSPENDED }), [TASK.SUSPENDING]),
      resume_instance: power<U>('compute_resume_instance', async (a, ctx) => drv.resume(await this.specFor(ctx, a.instance_uuid)), () => ({ vm_state: VM.ACTIVE, power_state: POWER.RUNNING }), [TASK.RESUMING]),
      set_admin_password: power<U & { new_pass: string }>('compute_set_admin_password', (a) => drv.setAdminPassword(a.instance_uuid, a.new_pass), () => ({}), [TASK.UPDATING_PASSWORD]),
      rebuild_instance: wrap<U & BuildSecrets & { orig_vm_state?: string; evacuate?: { migration_uuid: string; source_host: string } }>('compute_rebuild_instance', async (ctx, a) => {
        const row = await this.instance(ctx, a.instance_uuid);
        if (!row || row.deleted) return;
        await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { task_state: TASK.REBUILD_SPAWNING }, expect: { task_state: [TASK.REBUILDING] }, host: this.host }, ctx);
        const evac = a.evacuate;
        try {
          // An evacuation has nothing here to rebuild: the guest is spawned afresh from its image.
          const spec = this.specOf(row, { adminPassword: a.admin_password, injectedFiles: a.injected_files });
          if (evac) await drv.spawn(spec); else await drv.rebuild(spec);
        } catch (e) {
          if (evac) await drv.destroy(a.instance_uuid).catch(this.logged(ctx, 'clean up a failed evacuation', a.instance_uuid));
          await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { vm_state: VM.ERROR, task_state: null }, host: this.host }, ctx);
          await this.conductor('add_fault', { uuid: a.instance_uuid, code: e instanceof NotSupported ? 501 : 500, message: (e as Error).message, host: this.host }, ctx);
          if (evac) await this.conductor('migration_update', { uuid: evac.migration_uuid, updates: { status: 'failed' } }, ctx).catch(this.logged(ctx, 'record the failed evacuation', a.instance_uuid));
          throw e;
        }
        if (evac) {
          await this.conductor('migration_update', { uuid: evac.migration_uuid, updates: { status: 'done' } }, ctx);
          this.markUsageDirty();
        }
        // A stopped server stays stopped after its rebuild, as in Nova.
        if (a.orig_vm_state === VM.STOPPED) {
          await drv.powerOff(a.instance_uuid);
          await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { vm_state: VM.STOPPED, task_state: null, power_state: POWER.SHUTDOWN, launched_at: now() }, host: this.host }, ctx);
        } else {
          await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING, launched_at: now() }, host: this.host }, ctx);
        }
      }),
      // Nova's shelve_instance: power off, the root disk into the shelved image the API made,
      // then SHELVED, or offloaded at once when shelved_offload_time is 0.
      shelve_instance: wrap<U>('compute_shelve_instance', async (ctx, a) => {
        const row = await this.instance(ctx, a.instance_uuid);
        if (!row || row.deleted) return;
        const sm = parseJson<Record<string, unknown>>(row.system_metadata, {});
        // A guest that is already off (or gone) is fine.
        await drv.powerOff(a.instance_uuid).catch((e) => { if (!(e instanceof GuestNotFound)) this.logged(ctx, 'power off before shelving', a.instance_uuid)(e); });
        if (typeof sm.shelved_image_id === 'string') {
          try {
            await this.snapshotTo(ctx, a.instance_uuid, sm.shelved_image_id);
          } catch (e) {
            await this.conductor('add_fault', { uuid: a.instance_uuid, code: 500, message: `Shelving failed: ${(e as Error).message}`, host: this.host }, ctx).catch(this.logged(ctx, 'record a fault', a.instance_uuid));
            await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { task_state: null, power_state: await this.powerState(a.instance_uuid).catch(() => POWER.NOSTATE) }, host: this.host }, ctx);
            throw e;
          }
        }
        const shelved = JSON.stringify({ ...sm, shelved_at: now(), shelved_host: this.host });
        await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { vm_state: VM.SHELVED, power_state: POWER.SHUTDOWN, system_metadata: shelved, ...(this.offloadAfter() === 0 ? {} : { task_state: null }) }, expect: { task_state: ['shelving'] }, host: this.host }, ctx);
        if (this.offloadAfter() === 0) await this.offload(ctx, a.instance_uuid, 'shelving');
      }),
      shelve_offload_instance: wrap<U>('compute_shelve_offload_instance', (ctx, a) => this.offload(ctx, a.instance_uuid, TASK.SHELVING_OFFLOADING)),
      // Nova's unshelve: a shelved guest still here is powered on; an offloaded server is spawned
      // from its shelved image. Either way the shelved image is deleted afterwards.
      unshelve_instance: wrap<U>('compute_unshelve_instance', async (ctx, a) => {
        const row = await this.instance(ctx, a.instance_uuid);
        if (!row || row.deleted || row.host !== this.host) return;
        const sm = parseJson<Record<string, unknown>>(row.system_metadata, {});
        const shelvedImage = typeof sm.shelved_image_id === 'string' ? sm.shelved_image_id : undefined;
        if (row.vm_state === VM.SHELVED) {
          await drv.powerOn(this.specOf(row));
        } else {
          // The shelved image's own metadata (size, hashes) is the driver's to read; the image properties stay the instance's.
          const spec = this.specOf(row);
          try {
            await drv.spawn(shelvedImage ? { ...spec, imageId: shelvedImage, image: undefined } : spec);
          } catch (e) {
            await drv.destroy(a.instance_uuid).catch(this.logged(ctx, 'clean up after a failed unshelve spawn', a.instance_uuid));
            await this.d.placement.deleteAllocations(a.instance_uuid).catch(this.logged(ctx, 'remove the allocation of a failed unshelve', a.instance_uuid));
            await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { vm_state: VM.SHELVED_OFFLOADED, task_state: null, host: null, node: null }, host: this.host }, ctx);
            await this.conductor('add_fault', { uuid: a.instance_uuid, code: 500, message: (e as Error).message, host: this.host }, ctx);
            throw e;
          }
        }
        const { shelved_image_id: _i, shelved_at: _a, shelved_host: _h, ...rest } = sm;
        // The shelved image goes before the server reads ACTIVE (Nova's order in _unshelve_instance).
        if (shelvedImage) await this.d.images?.remove(shelvedImage).catch(this.logged(ctx, `delete the shelved image ${shelvedImage}`, a.instance_uuid));
        await this.conductor('instance_update', { uuid: a.instance_uuid, updates: { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING, system_metadata: JSON.stringify(rest) }, host: this.host }, ctx);
        this.markUsageDirty();
      }),
      // Nova's snapshot: the driver streams the root disk into the queued image the API made;
      // on failure the image goes and the instance is left as it was (no fault, as Nova).
      snapshot_instance: wrap<U & { image_id: string }>('compute_snapshot_instance', (ctx, a) => this.snapshot(ctx, a.instance_uuid, a.image_id, TASK.IMAGE_SNAPSHOT)),
      // Nova's backup_instance: the same snapshot, then _rotate_backups: of this instance's
      // backups of this type, the newest `rotation` stay (the one just made counts first).
      backup_instance: wrap<U & { image_id: string; backup_type: string; rotation: number }>('compute_backup_instance', async (ctx, a) => {
        await this.snapshot(ctx, a.instance_uuid, a.image_id, TASK.IMAGE_BACKUP);
        const images = this.d.images!;
        const older = (await images.list({ image_type: 'backup', backup_type: a.backup_type, instance_uuid: a.instance_uuid }))
          .filter((i) => i.id !== a.image_id)
          .sort((x, y) => y.created_at.localeCompare(x.created_at));
        for (const old of [{ id: a.image_id, created_at: '' }, ...older].slice(a.rotation)) {
          this.d.logger.info({ instance: a.instance_uuid, image: old.id, backupType: a.backup_type, rotation: a.rotation }, 'rotating out a backup');
          await images.remove(old.id).catch(this.logged(ctx, `delete backup image ${old.id}`, a.instance_uuid));
        }
      }),
      ...moveHandlers(this.port()),
      get_console_output: async (_ctx: RequestContext, a: U) => drv.consoleOutput(a.instance_uuid),
      // Consoles (calls): where a console client reaches this guest's console, or NotSupported (501).
      get_console: async (ctx: RequestContext, a: U & { kind: 'serial' | 'vnc' | 'spice' }) => {
        if (!drv.getConsole) throw new NotSupported(`The ${drv.type} driver has no ${a.kind} console.`);
        return drv.getConsole(await this.specFor(ctx, a.instance_uuid), a.kind);
      },
      // Rescue (Nova's rescue_instance): the guest boots from the rescue image (the instance's
      // own image unless one was named) with its disk attached; a failure leaves it in ERROR.
      rescue_instance: wrap<U & { rescue_image_ref?: string | null; rescue_password?: string | null }>('compute_rescue_instance', async (ctx, a) => {
        const row = await this.instance(ctx, a.instance_uuid);
        if (!row || row.deleted) return;
        const sm = parseJson<Record<string, string>>(row.system_metadata, {});
        const imageId = a.rescue_image_ref || row.image_ref || sm.image_base_image_ref || null;
        try {
          await drv.rescue(this.specOf(row), { imageId, password: a.rescue_password ?? null });
        } catch (e) {
          const message = `Instance ${a.instance_uuid} cannot be rescued: Driver Error: ${(e as Error).message}`;
          await this.conductor('add_fault', { uuid: a.instance_uuid, code: e instanceof NotSupported ? 501 : 500, message, host: this.host }, ctx).catch(this.logged(ctx, 'record a fault', a.instance_uuid));
          // A driver that cannot rescue leaves the guest as it was; a failed rescue is an ERROR.
          const ps = await this.powerState(a.instance_uuid).catch(() => POWER.NOSTATE);
          const updates: Partial<InstanceRow> = e instanceof NotSupported ? { task_state: null, power_state: ps } : { vm_state: VM.ERROR, task_state: null, power_state: ps };
          await this.conductor('instance_update', { uuid: a.instance_uuid, updates, host: this.host }, ctx).catch(this.logged(ctx, 'record the state after a failed rescue', a.instance_uuid));
          throw e;
        }
        const ps = await this.powerState(a.instance_uuid).catch(() => POWER.RUNNING);
        await this.conductor('instance_update', {
          uuid: a.instance_uuid, updates: { vm_state: VM.RESCUED, task_state: null, power_state: ps, launched_at: now() },
          expect: { task_state: [TASK.RESCUING] }, host: this.host,
        }, ctx);
      }),
      unrescue_instance: power<U>('compute_unrescue_instance', async (a, ctx) => drv.unrescue(await this.specFor(ctx, a.instance_uuid)), () => ({ vm_state: VM.ACTIVE, power_state: POWER.RUNNING }), [TASK.UNRESCUING]),
      // Diagnostics (calls): only of a running guest, as Nova's manager checks.
      get_diagnostics: async (ctx: RequestContext, a: U) => drv.diagnostics(await this.runningGuest(ctx, a.instance_uuid)),
      get_instance_diagnostics: async (ctx: RequestContext, a: U) => drv.instanceDiagnostics(await this.runningGuest(ctx, a.instance_uuid)),
    };
  }

  /** The driver's snapshot of the root disk into a queued image; on failure the image goes. */
  private async snapshotTo(ctx: RequestContext, uuid: string, imageId: string): Promise<void> {
    const drv = this.d.driver;
    try {
      if (!drv.snapshot || !this.d.images) throw new NotSupported(`The ${drv.type} driver cannot snapshot instances here.`);
      const images = this.d.images;
      await drv.snapshot(await this.specFor(ctx, uuid), { imageId, upload: (data, df, cf) => images.upload(imageId, data, df, cf) });
    } catch (e) {
      await this.d.images?.remove(imageId).catch(this.logged(ctx, 'delete the image of a failed snapshot', uuid));
      throw e;
    }
  }

  /** createImage and createBackup: the snapshot, and the task cleared whatever happens (no fault, as Nova). */
  private async snapshot(ctx: RequestContext, uuid: string, imageId: string, task: string): Promise<void> {
    const clear = () => this.conductor('instance_update', { uuid, updates: { task_state: null }, expect: { task_state: [task] }, host: this.host }, ctx);
    try {
      await this.snapshotTo(ctx, uuid, imageId);
    } catch (e) {
      await clear().catch(this.logged(ctx, 'clear the task state', uuid));
      throw e;
    }
    await clear();
  }

  private offloadAfter(): number { return this.d.config.get<number>('DEFAULT', 'shelved_offload_time'); }

  /** Nova's shelve_offload_instance: the guest goes, the host's allocation is freed, the server belongs to no host. */
  private async offload(ctx: RequestContext, uuid: string, task: string | null): Promise<void> {
    await this.d.driver.destroy(uuid);
    await this.d.placement.deleteAllocations(uuid);
    await this.conductor('instance_update', { uuid, updates: { vm_state: VM.SHELVED_OFFLOADED, task_state: null, power_state: POWER.SHUTDOWN, host: null, node: null }, expect: { vm_state: [VM.SHELVED], task_state: [task] }, host: this.host }, ctx);
    this.markUsageDirty();
  }

  /** Nova's _poll_shelved_instances: shelved servers here for longer than shelved_offload_time are offloaded. */
  async offloadShelved(): Promise<void> {
    const after = this.offloadAfter();
    if (after <= 0) return;
    const ctx = systemContext();
    for (const k of await this.conductor('instances_on_host', { host: this.host })) {
      if (k.vm_state !== VM.SHELVED || k.task_state) continue;
      const row = await this.instance(ctx, k.uuid);
      const at = parseJson<Record<string, unknown>>(row?.system_metadata ?? null, {}).shelved_at;
      if (typeof at !== 'string' || Date.parse(at) + after * 1000 > Date.now()) continue;
      this.d.logger.info({ instance: k.uuid, shelvedAt: at }, 'offloading a shelved server');
      await this.offload(ctx, k.uuid, null).catch(this.logged(ctx, 'offload a shelved server', k.uuid));
    }
  }

  /**
   * Nova's _cleanup_running_deleted_instances: a guest on this host whose instance is deleted
   * (deleted locally while this host was down or partitioned, or a terminate that never came) is
   * destroyed (`reap`) or only logged (`log`). Guests of live instances on another host are left
   * alone: a live migration has the guest on both hosts for a while. Returns the uuids found.
   */
  async cleanupRunningDeleted(): Promise<string[]> {
    const action = this.d.config.get<string>('DEFAULT', 'running_deleted_instance_action');
    if (action === 'noop') return [];
    const ctx = systemContext();
    const here = new Set((await this.conductor('instances_on_host', { host: this.host }, ctx)).map((k) => k.uuid));
    const found: string[] = [];
    for (const uuid of this.d.driver.listGuests()) {
      if (here.has(uuid)) continue;
      const row = await this.conductor('instance_get', { uuid }, ctx);
      if (row && !row.deleted) continue;
      found.push(uuid);
      if (action === 'log') {
        this.d.logger.warn({ instance: uuid, host: this.host, requestId: ctx.requestId }, 'a guest is running for an instance that is deleted');
        continue;
      }
      this.d.logger.warn({ instance: uuid, host: this.host, requestId: ctx.requestId }, 'destroying the guest of an instance that is deleted');
      await this.d.driver.destroy(uuid).catch(this.logged(ctx, 'destroy the guest of a deleted instance', uuid));
      // Its allocation here went with the delete; one written back by a late report goes too.
      await this.d.placement.deleteAllocations(uuid).catch(this.logged(ctx, 'remove the allocation of a deleted instance', uuid));
    }
    if (found.length && action === 'reap') this.markUsageDirty();
    return found;
  }

  /** The guest spec of an instance whose guest runs here, or Nova's InstanceInvalidState (409). */
  private async runningGuest(ctx: RequestContext, uuid: string): Promise<GuestSpec> {
    const row = await this.instance(ctx, uuid);
    if (!row || row.deleted) throw new Conflict(`Instance ${uuid} is not ready`);
    const power = await this.powerState(uuid);
    if (power !== POWER.RUNNING) throw new Conflict(`Cannot 'get_diagnostics' instance ${uuid} while it is in power_state ${POWER_NAMES[power] ?? power}`);
    return this.specOf(row);
  }

  private async build(ctx: RequestContext, uuid: string, secrets: BuildSecrets): Promise<void> {
    this.d.logger.debug({ instance: uuid }, 'build received');
    const row = await this.instance(ctx, uuid);
    // A build for an instance that was deleted, finished, or moved to another host meanwhile
    // (e.g. rescheduled while this agent was down) is dropped.
    if (!row || row.deleted || row.vm_state !== VM.BUILDING || row.host !== this.host) return;
    const event = 'compute_build_and_run_instance';
    await this.conductor('event_start', { uuid, request_id: ctx.requestId, event, host: this.host }, ctx).catch(this.logged(ctx, 'record the build start', uuid));
    try {
      await this.conductor('instance_update', { uuid, updates: { task_state: TASK.SPAWNING }, expect: { vm_state: [VM.BUILDING], task_state: [TASK.SCHEDULING, null] }, host: this.host }, ctx);
    } catch {
      return; // deleted or taken over while queued
    }
    const t0 = Date.now();
    this.d.logger.debug({ instance: uuid }, 'spawning');
    try {
      await this.d.driver.spawn(this.specOf(row, { adminPassword: secrets.admin_password ?? null, injectedFiles: secrets.injected_files ?? [] }));
      this.d.logger.info({ instance: uuid }, `Took ${((Date.now() - t0) / 1000).toFixed(2)} seconds to spawn the instance on the hypervisor.`);
    } catch (e) {
      const reason = (e as Error).message;
      this.d.logger.warn({ instance: uuid, err: e, requestId: ctx.requestId }, 'spawn failed; asking the conductor to reschedule');
      // Spawn cleans up after itself (the contract); destroying again is harmless and covers a driver that did not.
      await this.d.driver.destroy(uuid).catch(this.logged(ctx, 'clean up after a failed spawn', uuid));
      await this.conductor('event_finish', { uuid, request_id: ctx.requestId, event, result: 'Error', traceback: (e as Error).stack ?? reason, host: this.host }, ctx).catch(this.logged(ctx, 'record the build failure', uuid));
      // The password and files travel on with the reschedule (they are stored nowhere).
      await this.conductorRpc.cast(ctx, 'reschedule', { instance_uuid: uuid, failed_host: this.host, reason, ...secrets });
      return;
    }
    try {
      await this.conductor('instance_update', {
        uuid, updates: { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING, launched_at: now(), root_device_name: '/dev/vda' },
        expect: { vm_state: [VM.BUILDING], task_state: [TASK.SPAWNING] }, host: this.host,
      }, ctx);
      // The server password record (os-server-password) starts empty; the guest may post one.
      if (secrets.admin_password) await this.conductor('set_password', { uuid, password: '' }, ctx).catch(this.logged(ctx, 'reset the server password record', uuid));
      await this.conductor('event_finish', { uuid, request_id: ctx.requestId, event, result: 'Success', host: this.host }, ctx).catch(this.logged(ctx, 'record the build finish', uuid));
    } catch (e) {
      // Deleted (or moved) while we spawned: the guest must not outlive its instance. When the
      // instance cannot even be read back, nothing is known: the guest stays (the build timeout
      // puts the instance in ERROR; a delete then destroys it).
      const r = await this.conductor('instance_get', { uuid }, ctx).catch((err) => { this.logged(ctx, 'read the instance back', uuid)(err); return undefined; });
      if (r === undefined) return this.d.logger.error({ instance: uuid, requestId: ctx.requestId, err: (e as Error).message }, 'could not record the spawned instance as ACTIVE');
      this.d.logger.info({ instance: uuid, requestId: ctx.requestId, err: (e as Error).message }, 'instance deleted during spawn; cleaning up');
      await this.d.driver.destroy(uuid).catch(this.logged(ctx, 'destroy the guest of an instance deleted during spawn', uuid));
      if (!r || r.deleted || r.task_state === TASK.DELETING) await this.terminate(ctx, uuid).catch(this.logged(ctx, 'terminate an instance deleted during spawn', uuid));
    }
    this.markUsageDirty();
  }

  private async terminate(ctx: RequestContext, uuid: string): Promise<void> {
    // destroy() of a guest the driver does not have succeeds (the contract).
    await this.d.driver.destroy(uuid);
    await this.d.placement.deleteAllocations(uuid);
    await this.conductor('instance_destroy', { uuid }, ctx);
    this.markUsageDirty();
  }
}
