// The fake driver: behaves like a hypervisor from the outside (power states, resources,
// console output, configurable spawn time) without running anything. Guests live in memory;
// at start the agent hands over the instances the database places on this host and they are
// adopted as if they had kept running, as real guests do across an agent restart.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { POWER, POWER_NAMES } from '../objects.ts';
import { FakeConsoles } from './fake-consoles.ts';
import type {
  ComputeDriver, ConsoleEndpoint, ConsoleKind, FlavorSpec, GuestSpec, HostResources, GuestInfo, InstanceDiagnostics, LifecycleEvent, SnapshotTarget,
  LiveMigrationOptions, LiveMigrationResult, LiveMigrationSource, LiveMigrationTarget, MigratedDisks, MoveTarget,
} from './driver.ts';
import { InstanceNotFound, InvalidState, MigrationAborted, MigrationPreCheckError } from './errors.ts';
import { IMAGE_TYPE_TRAITS } from './capabilities.ts';
import type { DriverDeps } from './registry.ts';

export interface FakeOptions {
  hostname: string;
  vcpus: number;
  memoryMb: number;
  localGb: number;
  spawnDelayMs: number;
  hypervisorType: string;
  architecture: string;
  /** How long a live migration takes (progress is reported in ten steps), so that it can be watched, forced or aborted. */
  liveMigrationMs?: number;
}

/** As long as the qemu driver's live migration offer lasts when nothing ends it. */
const OFFER_TTL_MS = 10 * 60_000;
/** The console a fake guest prints when it boots. */
const BOOT_CONSOLE = ['FAKE CONSOLE OUTPUT', 'ANOTHER', 'LAST LINE'];
/** The console lines a move carries (the qemu driver carries console.log): an array of strings or nothing. */
const carriedConsole = (x: unknown): string[] | undefined => (Array.isArray(x) && x.every((l) => typeof l === 'string') ? x : undefined);

interface Guest {
  spec?: GuestSpec; power: number; console: string[];
  /** When the guest last started running (uptime in diagnostics). */
  startedAt?: number;
  rescue?: { imageId: string | null };
}

export class FakeDriver implements ComputeDriver {
  readonly type = 'fake';
  private guests = new Map<string, Guest>();
  /** Test hook: makes the next spawns fail (as a hypervisor error would). */
  failSpawns = 0;
  private listeners: ((e: LifecycleEvent) => void)[] = [];
  /** Guests a cold move took off this host, kept until confirm or revert (Nova's <uuid>_resize). */
  private kept = new Map<string, Guest>();
  /** Live migrations running from this host: force-complete and abort act on them. */
  private live = new Map<string, { aborted: boolean; forced: boolean }>();
  /** Test hooks: the next finishMigration / preLiveMigration calls fail (a destination refusing). */
  failFinishMigrations = 0;
  failPreLiveMigrations = 0;
  private consoles = new FakeConsoles((uuid) => this.guests.get(uuid)?.console.join('\n') ?? '');
  /**
   * What checkCanLiveMigrateSource offered (as the qemu driver's disk channel does): a token per
   * instance, until the migration ends, is rolled back, or OFFER_TTL_MS passes.
   */
  private offers = new Map<string, { token: string; expiry: NodeJS.Timeout; /** console lines offered */ lines: number }>();
  constructor(private readonly o: FakeOptions) {}

  /** Nothing is looked at on disk, so every image type "boots"; rescue works (not from volumes: there are none). */
  capabilities(): string[] {
    return ['COMPUTE_NODE', ...Object.values(IMAGE_TYPE_TRAITS)];
  }

  onLifecycleEvent(cb: (e: LifecycleEvent) => void): void { this.listeners.push(cb); }

  /** Test hook: the spec a guest was last spawned, rebuilt or rescued with. */
  specOf(uuid: string): GuestSpec | undefined { return this.guests.get(uuid)?.spec; }

  /** Test hook: the guest prints a line on its console. */
  guestPrints(uuid: string, line: string): void { this.get(uuid).console.push(line); }

  /** Test hook: the guest powers itself off (as `poweroff` inside it would), and says so. */
  guestShutsDown(uuid: string): void {
    const g = this.get(uuid);
    g.power = POWER.SHUTDOWN;
    for (const l of this.listeners) l({ uuid, event: 'stopped', powerState: POWER.SHUTDOWN });
  }

  async initHost(known: { uuid: string; vmState: string }[]): Promise<void> {
    for (const k of known) {
      if (this.guests.has(k.uuid)) continue;
      const power = k.vmState === 'active' || k.vmState === 'rescued' ? POWER.RUNNING : k.vmState === 'paused' ? POWER.PAUSED : k.vmState === 'suspended' ? POWER.SUSPENDED : POWER.SHUTDOWN;
      if (k.vmState !== 'building') {
        this.guests.set(k.uuid, { power, console: [...BOOT_CONSOLE], startedAt: power === POWER.RUNNING ? Date.now() : undefined, rescue: k.vmState === 'rescued' ? { imageId: null } : undefined });
      }
    }
  }

  async hostResources(): Promise<HostResources> {
    return {
      vcpus: this.o.vcpus, memoryMb: this.o.memoryMb, localGb: this.o.localGb, hypervisorType: this.o.hypervisorType,
      hypervisorVersion: 1000, hypervisorHostname: this.o.hostname,
      cpuInfo: { arch: this.o.architecture, model: 'Nehalem', vendor: 'Intel', features: ['pge', 'clflush'], topology: { cores: 1, threads: 1, sockets: 4 } },
      supportedInstances: [[this.o.architecture, this.o.hypervisorType, 'hvm']],
    };
  }

  private get(uuid: string): Guest {
    const g = this.guests.get(uuid);
    if (!g) throw new InstanceNotFound(`Instance ${uuid} could not be found on hypervisor ${this.o.hostname}.`);
    return g;
  }

  async spawn(spec: GuestSpec): Promise<void> {
    if (this.o.spawnDelayMs) await new Promise((r) => setTimeout(r, this.o.spawnDelayMs));
    if (this.failSpawns > 0) { this.failSpawns--; throw new Error('Fake driver: injected spawn failure'); }
    if (this.guests.has(spec.uuid)) throw new InvalidState(`Instance ${spec.uuid} already exists on hypervisor ${this.o.hostname}.`);
    this.guests.set(spec.uuid, { spec, power: POWER.RUNNING, console: [...BOOT_CONSOLE], startedAt: Date.now() });
  }
  async destroy(uuid: string): Promise<void> { this.guests.delete(uuid); await this.consoles.close(uuid); }
  async powerOff(uuid: string): Promise<void> { this.get(uuid).power = POWER.SHUTDOWN; }
  async powerOn(spec: GuestSpec): Promise<void> { this.run(this.get(spec.uuid)); }
  async reboot(spec: GuestSpec, _hard: boolean): Promise<void> {
    const g = this.get(spec.uuid);
    this.run(g);
    g.console.push('reboot: Restarting system');
  }
  async pause(uuid: string): Promise<void> { this.running(uuid).power = POWER.PAUSED; }
  async unpause(uuid: string): Promise<void> {
    const g = this.get(uuid);
    if (g.power !== POWER.PAUSED) throw new InvalidState(`Instance ${uuid} is not paused.`);
    g.power = POWER.RUNNING;
  }
  async suspend(uuid: string): Promise<void> { this.running(uuid).power = POWER.SUSPENDED; }
  async resume(spec: GuestSpec): Promise<void> {
    const g = this.get(spec.uuid);
    if (g.power !== POWER.SUSPENDED) throw new InvalidState(`Instance ${spec.uuid} is not suspended.`);
    g.power = POWER.RUNNING;
  }
  /** A guest that must be running for the operation (pause, suspend), as a hypervisor refuses otherwise. */
  private running(uuid: string): Guest {
    const g = this.get(uuid);
    if (g.power !== POWER.RUNNING) throw new InvalidState(`Instance ${uuid} is not running (${POWER_NAMES[g.power] ?? g.power}).`);
    return g;
  }
  async rebuild(spec: GuestSpec): Promise<void> {
    if (this.o.spawnDelayMs) await new Promise((r) => setTimeout(r, this.o.spawnDelayMs));
    this.guests.set(spec.uuid, { spec, power: POWER.RUNNING, console: [...BOOT_CONSOLE], startedAt: Date.now() });
  }
  /** Test hook: makes the next rescues fail (as a hypervisor error would). */
  failRescues = 0;
  async rescue(spec: GuestSpec, r: { imageId: string | null; password: string | null }): Promise<void> {
    const g = this.get(spec.uuid);
    if (this.failRescues > 0) { this.failRescues--; throw new Error('Fake driver: injected rescue failure'); }
    g.spec ??= spec;
    g.rescue = { imageId: r.imageId };
    g.console.push(`rescue: booting from image ${r.imageId ?? '(none)'}`);
    this.run(g, true);
  }
  async unrescue(spec: GuestSpec): Promise<void> {
    const g = this.get(spec.uuid);
    g.rescue = undefined;
    g.console.push('unrescue: booting from the original disk');
    this.run(g, true);
  }
  /** The guest powers on; a restart resets its uptime. */
  private run(g: Guest, restart = false): void {
    if (g.power !== POWER.RUNNING || restart || g.startedAt === undefined) g.startedAt = Date.now();
    g.power = POWER.RUNNING;
  }
  private shape(uuid: string, spec: GuestSpec) {
    const g = this.get(uuid);
    const s = g.spec ?? spec;
    const vcpus = Math.max(1, spec.vcpus ?? s.vcpus ?? 1);
    const memoryMb = spec.memoryMb ?? s.memoryMb ?? 0;
    const uptime = g.power === POWER.RUNNING && g.startedAt !== undefined ? Math.floor((Date.now() - g.startedAt) / 1000) : 0;
    // The guest has its root disk; in rescue the rescue disk comes first, the root disk second.
    const disks = (g.rescue ? 1 : 0) + 1;
    return { g, vcpus, memoryMb, uptime, disks };
  }
  // The values of Nova's fake driver, per vCPU and disk of this guest; no NICs (no networking).
  async diagnostics(spec: GuestSpec): Promise<Record<string, number>> {
    const { vcpus, memoryMb, disks } = this.shape(spec.uuid, spec);
    const out: Record<string, number> = {};
    for (let i = 0; i < vcpus; i++) out[`cpu${i}_time`] = 17300000000;
    out.memory = memoryMb * 1024;
    for (let i = 0; i < disks; i++) {
      const d = `vd${String.fromCharCode(97 + i)}`;
      Object.assign(out, { [`${d}_errors`]: -1, [`${d}_read`]: 262144, [`${d}_read_req`]: 112, [`${d}_write`]: 5778432, [`${d}_write_req`]: 488 });
    }
    return out;
  }
  async instanceDiagnostics(spec: GuestSpec): Promise<InstanceDiagnostics> {
    const { g, vcpus, memoryMb, uptime, disks } = this.shape(spec.uuid, spec);
    return {
      // Nova's Diagnostics object only admits real drivers' names; its fake driver says libvirt/kvm too.
      state: POWER_NAMES[g.power] ?? 'pending', driver: 'libvirt', hypervisor: 'kvm', hypervisor_os: 'ubuntu',
      uptime, config_drive: !!spec.configDrive, num_cpus: vcpus, num_nics: 0, num_disks: disks,
      cpu_details: Array.from({ length: vcpus }, (_x, id) => ({ id, time: 17300000000, utilisation: 15 })),
      nic_details: [],
      disk_details: Array.from({ length: disks }, () => ({ read_bytes: 262144, read_requests: 112, write_bytes: 5778432, write_requests: 488, errors_count: 1 })),
      memory_details: { maximum: memoryMb, used: 0 },
    };
  }
  async setAdminPassword(uuid: string, _password: string): Promise<void> { this.get(uuid); }
  async consoleOutput(uuid: string): Promise<string> { return this.get(uuid).console.join('\n') + '\n'; }
  async info(uuid: string): Promise<GuestInfo> { return { powerState: this.get(uuid).power }; }
  listGuests(): string[] { return [...this.guests.keys()]; }

  /** Real little console servers on loopback (fake-consoles.ts), for a guest that runs (or is paused). */
  async getConsole(spec: GuestSpec, kind: ConsoleKind): Promise<ConsoleEndpoint> {
    const g = this.get(spec.uuid);
    if (g.power !== POWER.RUNNING && g.power !== POWER.PAUSED) throw new InvalidState(`Instance ${spec.uuid} is not running (${POWER_NAMES[g.power] ?? g.power}).`);
    return this.consoles.endpoint(spec.uuid, kind);
  }
  async cleanupHost(): Promise<void> { await this.consoles.close(); }

  /** The fake disk: a few bytes of raw data that say whose snapshot they are. */
  async snapshot(spec: GuestSpec, target: SnapshotTarget): Promise<void> {
    this.get(spec.uuid);
    await target.upload(Readable.from([Buffer.from(`fake disk of ${spec.uuid}\n`)]), 'raw', 'bare');
  }

  // ---- moves: the fake holds no disks (MigratedDisks {}); a guest is "on" a host when its driver has it.
  async migrateDiskAndPowerOff(g: GuestSpec, _dest: MoveTarget, _newFlavor: FlavorSpec): Promise<MigratedDisks> {
    const guest = this.get(g.uuid);
    guest.power = POWER.SHUTDOWN;
    this.kept.set(g.uuid, guest);
    this.guests.delete(g.uuid);
    await this.consoles.close(g.uuid);
    // The console log goes with the disks (another host's driver has no `kept`).
    return { console: [...guest.console] };
  }
  async finishMigration(g: GuestSpec, disks: MigratedDisks, opts: { resize: boolean; powerOn: boolean }): Promise<void> {
    if (this.failFinishMigrations > 0) { this.failFinishMigrations--; throw new MigrationPreCheckError(`Fake driver: host ${this.o.hostname} refused the migrated disks of ${g.uuid}`); }
    const console = [...(carriedConsole(disks.console) ?? this.kept.get(g.uuid)?.console ?? BOOT_CONSOLE), opts.resize ? `resize: ${g.flavor?.name ?? ''}` : 'migrate'];
    this.guests.set(g.uuid, { spec: g, power: opts.powerOn ? POWER.RUNNING : POWER.SHUTDOWN, console, startedAt: opts.powerOn ? Date.now() : undefined });
  }
  async confirmMigration(uuid: string): Promise<void> { this.kept.delete(uuid); }
  async finishRevertMigration(g: GuestSpec, opts: { powerOn: boolean }): Promise<void> {
    const kept = this.kept.get(g.uuid);
    if (!kept) throw new InstanceNotFound(`Instance ${g.uuid} has no kept disks on hypervisor ${this.o.hostname}.`);
    this.kept.delete(g.uuid);
    this.guests.set(g.uuid, { ...kept, spec: g, power: opts.powerOn ? POWER.RUNNING : POWER.SHUTDOWN, startedAt: opts.powerOn ? Date.now() : undefined });
  }
  /** The console so far goes to the destination, under a token that the end of the migration revokes. */
  async checkCanLiveMigrateSource(g: GuestSpec, _dest: MoveTarget): Promise<LiveMigrationSource> {
    const guest = this.get(g.uuid);
    clearTimeout(this.offers.get(g.uuid)?.expiry);
    const token = randomBytes(16).toString('hex');
    const expiry = setTimeout(() => { if (this.offers.get(g.uuid)?.token === token) this.offers.delete(g.uuid); }, OFFER_TTL_MS);
    expiry.unref();
    this.offers.set(g.uuid, { token, expiry, lines: guest.console.length });
    return { offer: { token }, console: [...guest.console] };
  }
  /** Test hook: the instances with a live migration offer still open on this host. */
  openOffers(): string[] { return [...this.offers.keys()]; }
  private endOffer(uuid: string, token?: string): void {
    const o = this.offers.get(uuid);
    if (!o || (token !== undefined && o.token !== token)) return;
    clearTimeout(o.expiry);
    this.offers.delete(uuid);
  }
  async rollbackLiveMigrationAtSource(uuid: string, source?: LiveMigrationSource): Promise<void> {
    if (this.live.has(uuid)) return;
    const token = (source?.offer as { token?: unknown } | undefined)?.token;
    this.endOffer(uuid, typeof token === 'string' ? token : undefined);
  }
  async preLiveMigration(g: GuestSpec, _source: MoveTarget, opts: LiveMigrationOptions): Promise<LiveMigrationTarget> {
    if (this.failPreLiveMigrations > 0) { this.failPreLiveMigrations--; throw new MigrationPreCheckError(`Fake driver: host ${this.o.hostname} refused the incoming guest ${g.uuid}`); }
    if (this.guests.has(g.uuid)) throw new InvalidState(`Instance ${g.uuid} already exists on hypervisor ${this.o.hostname}.`);
    // The incoming guest exists, paused, until the source hands over (QEMU's -incoming), with the source's console so far.
    this.guests.set(g.uuid, { spec: g, power: POWER.PAUSED, console: carriedConsole(opts.source?.console) ?? [] });
    return {};
  }
  async liveMigrate(g: GuestSpec, _dest: MoveTarget, _target: LiveMigrationTarget, opts: LiveMigrationOptions): Promise<LiveMigrationResult> {
    const guest = this.get(g.uuid);
    if (this.live.has(g.uuid)) throw new InvalidState(`Instance ${g.uuid} is already migrating.`);
    const state = { aborted: false, forced: false };
    this.live.set(g.uuid, state);
    const t0 = Date.now();
    const total = (g.memoryMb || 1) * 1024 * 1024;
    const steps = 10;
    try {
      for (let i = 1; i <= steps && !state.forced; i++) {
        if (this.o.liveMigrationMs) await new Promise((r) => setTimeout(r, this.o.liveMigrationMs! / steps));
        if (state.aborted) throw new MigrationAborted(`Live migration of instance ${g.uuid} was aborted.`);
        const processed = Math.round((total * i) / steps);
        opts.onProgress?.({ totalBytes: total, processedBytes: processed, remainingBytes: total - processed });
      }
      if (state.aborted) throw new MigrationAborted(`Live migration of instance ${g.uuid} was aborted.`);
    } catch (e) {
      this.endOffer(g.uuid); // the guest stays: the destination needs nothing more from here
      throw e;
    } finally {
      // A restarted agent's cleanupLiveMigration may have let a new migration start meanwhile.
      if (this.live.get(g.uuid) === state) this.live.delete(g.uuid);
      if (state.forced && guest.power === POWER.PAUSED && state.aborted) guest.power = POWER.RUNNING;
    }
    // What the guest printed since its console was offered goes along too.
    const tail = guest.console.slice(this.offers.get(g.uuid)?.lines ?? guest.console.length);
    this.endOffer(g.uuid);
    this.guests.delete(g.uuid);
    await this.consoles.close(g.uuid);
    return { totalTimeMs: Date.now() - t0, downtimeMs: state.forced ? 0 : 1, consoleTail: tail.length ? Buffer.from(tail.map((l) => `${l}\n`).join('')) : undefined };
  }
  async postLiveMigrationAtDestination(g: GuestSpec, o: { consoleTail?: Buffer } = {}): Promise<void> {
    const guest = this.get(g.uuid);
    guest.spec = g;
    // The same boot goes on: the source's lines (taken in preLiveMigration, then those printed
    // during the move), then this host's.
    const during = o.consoleTail ? o.consoleTail.toString('utf8').split('\n').slice(0, -1) : [];
    guest.console = [...(guest.console.length ? guest.console : BOOT_CONSOLE), ...during, 'live-migrated'];
    this.run(guest);
  }
  async rollbackLiveMigrationAtDestination(uuid: string): Promise<void> { this.guests.delete(uuid); }
  async liveMigrationForceComplete(uuid: string): Promise<void> {
    const m = this.live.get(uuid);
    if (!m) throw new InvalidState(`Instance ${uuid} is not live-migrating from hypervisor ${this.o.hostname}.`);
    this.get(uuid).power = POWER.PAUSED;
    m.forced = true;
  }
  /** The agent that ran liveMigrate is gone; this one cancels what is left of it (a guest paused by a force-complete runs again). */
  async cleanupLiveMigration(uuid: string, o: { running: boolean }): Promise<void> {
    const m = this.live.get(uuid);
    if (m) m.aborted = true;
    this.live.delete(uuid);
    const guest = this.guests.get(uuid);
    if (o.running && guest?.power === POWER.PAUSED) guest.power = POWER.RUNNING;
  }
  async liveMigrationAbort(uuid: string): Promise<void> {
    const m = this.live.get(uuid);
    if (!m) throw new InvalidState(`Instance ${uuid} is not live-migrating from hypervisor ${this.o.hostname}.`);
    m.aborted = true;
  }
}

/** `[DEFAULT] compute_driver = fake`: sizes and timings from [fake_driver]. */
export function createFakeDriver(d: DriverDeps): FakeDriver {
  const c = d.config;
  return new FakeDriver({
    hostname: d.host, vcpus: c.get('fake_driver', 'vcpus'), memoryMb: c.get('fake_driver', 'memory_mb'), localGb: c.get('fake_driver', 'local_gb'),
    spawnDelayMs: c.get('fake_driver', 'spawn_delay_ms'), hypervisorType: c.get('fake_driver', 'hypervisor_type'), architecture: c.get('fake_driver', 'architecture'),
    liveMigrationMs: c.get('fake_driver', 'live_migration_ms'),
  });
}
