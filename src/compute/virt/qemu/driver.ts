// The QEMU driver: one qemu-system process per instance, detached from the agent (-daemonize,
// pid file, QMP socket, serial socket + log under instances_path/<uuid>/), so guests outlive an
// agent restart and are adopted by the next one (initHost). Control goes through QMP, one
// connection per guest held here; QMP events and a periodic power-state check report guests
// that change state on their own (a guest that powers itself off, a qemu that was killed).
// Everything needed to start a guest again is in its directory (guest.json), so any operation
// works from the uuid alone after a restart.
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile, open as openFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../../common/config.ts';
import type { Logger } from '../../../common/logging.ts';
import { POWER, POWER_NAMES } from '../../objects.ts';
import type {
  ComputeDriver, ConsoleEndpoint, ConsoleKind, FlavorSpec, GuestInfo, GuestSpec, HostResources, ImageSpec, InstanceDiagnostics, LifecycleEvent,
  LiveMigrationOptions, LiveMigrationResult, LiveMigrationSource, LiveMigrationTarget, MigratedDisks, MoveTarget, SnapshotTarget,
} from '../driver.ts';
import { InstanceNotFound, InvalidState, NotSupported } from '../errors.ts';
import { run } from '../../../guest/run.ts';
import { chooseAccelerator, qemuVersion, type Accelerator, type QemuVersion } from './accel.ts';
import { Qmp } from './qmp.ts';
import { files, qemuArgs, userNetdev, type DiskBus, type LaunchPlan, type PlanDisk } from './cmdline.ts';
import { ImageCache, type ImageSource } from './image-cache.ts';
import { checkFreeSpace, checkRootFits, createEphemeral, createOverlay, createSwap, flatten } from './disks.ts';
import { capabilityTraits, hostResources, ovmf } from './host.ts';
import { Mover } from './migration.ts';
import './config.ts';
import { buildConfigDrive, configDriveRequired } from '../../metadata/configdrive.ts';
import { metadataRelayCommand } from '../../metadata/relay.ts';

const MiB = 1024 ** 2;
/** Nova's libvirt driver returns at most the last 100 KiB of a console log. */
const MAX_CONSOLE_BYTES = 100 * 1024;

/** What a guest's directory keeps: enough to start it again from its uuid alone. */
interface Persisted {
  spec: GuestSpec;
  plan: LaunchPlan;
  /** While rescued: the plan with the rescue disk first. */
  rescuePlan?: LaunchPlan;
  /** Image ids this guest's disks are built on (the cache manager keeps those). */
  images: string[];
}

interface Live { pid: number; qmp?: Qmp; paused: boolean }

export interface QemuDriverOptions {
  config: Config;
  logger: Logger;
  images: ImageSource;
  hostname: string;
  instancesPath: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A spawn's timeline: when it began (performance.now()) and each step's end, in ms since then. */
export type Marks = { t0: number } & Record<string, number>;
const elapsed = (m: Marks) => Math.round((performance.now() - m.t0) * 10) / 10;

/** The one failure a best-effort read or removal expects: the file is not there. */
const missing = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'ENOENT';
/** undefined for a missing file; any other failure is thrown. */
const unlessMissing = (e: unknown): undefined => { if (missing(e)) return undefined; throw e; };

/** Waits for every job (none is left writing into a directory its caller is about to remove), then throws the first failure. */
async function settleAll(jobs: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(jobs)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Our guest's process is alive: the pid exists and its command line names the instance (pids get recycled). /proc reads do not block. */
function alive(pid: number, uuid: string): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(uuid);
  } catch { return false; }
}

export class QemuDriver implements ComputeDriver {
  readonly type = 'qemu';
  private live = new Map<string, Live>();
  private persisted = new Map<string, Persisted>();
  /** Guests with a driver operation under way: their state changes are not "on their own". */
  private busy = new Set<string>();
  private reported = new Map<string, number>();
  private listeners: ((e: LifecycleEvent) => void)[] = [];
  private timers: NodeJS.Timeout[] = [];
  private accel?: Accelerator;
  private version?: QemuVersion;
  readonly dir: string;
  readonly cache: ImageCache;
  private readonly binary: string;
  private readonly mover: Mover;

  constructor(private readonly o: QemuDriverOptions) {
    this.dir = o.instancesPath;
    this.binary = o.config.get<string>('qemu', 'binary');
    this.cache = new ImageCache(join(this.dir, o.config.get<string>('image_cache', 'subdirectory_name')), o.images, o.logger.child({ component: 'image-cache' }));
    this.mover = new Mover({
      hostname: o.hostname, config: o.config, logger: o.logger.child({ component: 'migration' }), cache: this.cache,
      gdir: (u) => this.gdir(u), guest: (u) => this.guest(u), save: (u, p) => this.save(u, p as Persisted),
      prepare: (g, dir, po) => this.prepare(g, dir, { launched: true, keepDisks: po.keepDisks }),
      forget: (u) => { this.persisted.delete(u); this.reported.delete(u); },
      launch: (u, lo) => this.launch(u, lo), cleanStop: (u) => this.cleanStop(u), hardStop: (u) => this.hardStop(u),
      qmp: (u) => this.live.get(u)?.qmp, imageMeta: (g, id) => this.imageMeta(g, id), op: (u, fn) => this.op(u, fn),
      hold: (u, on) => { if (on) this.busy.add(u); else { this.busy.delete(u); this.reported.set(u, this.power(u)); } },
    });
  }

  get accelerator(): Accelerator | undefined { return this.accel; }

  private gdir(uuid: string) { return join(this.dir, uuid); }

  /**
   * The `.catch` of a step whose failure the operation survives (a fallback follows, or it was
   * best effort): logged as a warning, with the request id where one is being handled (the
   * logger's context adds it), and dropped.
   */
  private warned(uuid: string, what: string) {
    return (err: unknown) => { this.o.logger.warn({ err, instance: uuid }, `could not ${what}`); };
  }

  // ---- start-up and adoption

  async initHost(known: { uuid: string; vmState: string }[]): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.version = await qemuVersion(this.binary);
    const cacheDir = this.o.config.get<string | undefined>('qemu', 'guest_cache_dir') ?? join(this.dir, '_guest');
    await mkdir(cacheDir, { recursive: true });
    this.accel = await chooseAccelerator({ config: this.o.config, logger: this.o.logger, binary: this.binary, cacheDir, stateFile: join(cacheDir, 'accelerator.json') });
    this.o.logger.info({ accel: this.accel.accel, how: this.accel.how, detail: this.accel.detail, qemu: this.version.text }, `QEMU driver: accelerator ${this.accel.accel} (${this.accel.how})`);
    const knownIds = new Set(known.map((k) => k.uuid));
    for (const uuid of await this.guestDirs()) {
      const p = await this.load(uuid).catch((err) => { this.o.logger.error({ err, instance: uuid }, 'guest.json of a guest on this host is unreadable: leaving the guest alone'); });
      if (!p) continue;
      if (!knownIds.has(uuid)) {
        // Deleted while this agent was down (Nova's running_deleted_instance_action = reap).
        this.o.logger.warn({ instance: uuid }, 'guest of an instance that is no longer on this host: removing it');
        await this.destroy(uuid).catch((e) => this.o.logger.warn({ err: e, instance: uuid }, 'could not remove the guest'));
        continue;
      }
      const pid = await this.pidOf(uuid);
      if (pid) {
        await this.attach(uuid, pid).catch((e) => this.o.logger.warn({ err: e, instance: uuid }, 'could not connect to a running guest\'s QMP socket'));
        this.o.logger.info({ instance: uuid, pid }, 'adopted running guest');
      }
      this.reported.set(uuid, this.power(uuid));
    }
    const every = this.o.config.get<number>('qemu', 'power_sync_interval') * 1000;
    const t = setInterval(() => { void this.syncPowerStates(); }, every);
    t.unref();
    this.timers.push(t);
    const cacheEvery = this.o.config.get<number>('image_cache', 'manager_interval');
    if (cacheEvery >= 0) {
      const c = setInterval(() => { void this.runImageCacheManager().catch((e) => this.o.logger.warn({ err: e }, 'image cache manager failed')); }, Math.max(cacheEvery, 60) * 1000);
      c.unref();
      this.timers.push(c);
    }
  }

  async cleanupHost(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const l of this.live.values()) l.qmp?.close();
    this.live.clear();
    await this.mover.close();
  }

  private async guestDirs(): Promise<string[]> {
    const names = await readdir(this.dir).catch((e) => unlessMissing(e) ?? []); // no instances_path yet
    return names.filter((n) => /^[0-9a-f-]{36}$/.test(n) && existsSync(files(this.gdir(n)).guest));
  }

  private async load(uuid: string): Promise<Persisted> {
    const cached = this.persisted.get(uuid);
    if (cached) return cached;
    const p = JSON.parse(await readFile(files(this.gdir(uuid)).guest, 'utf8')) as Persisted;
    this.persisted.set(uuid, p);
    return p;
  }

  private async save(uuid: string, p: Persisted): Promise<void> {
    const f = files(this.gdir(uuid)).guest;
    await writeFile(`${f}.tmp`, JSON.stringify(p, null, 1));
    await rename(`${f}.tmp`, f);
    this.persisted.set(uuid, p);
  }

  private async pidOf(uuid: string): Promise<number | undefined> {
    const text = await readFile(files(this.gdir(uuid)).pid, 'utf8').catch((e) => unlessMissing(e) ?? ''); // not running
    const pid = Number(text.trim());
    return pid > 0 && alive(pid, uuid) ? pid : undefined;
  }

  private async attach(uuid: string, pid: number): Promise<void> {
    const qmp = await Qmp.connect(files(this.gdir(uuid)).qmp, 15_000);
    const held = this.live.get(uuid);
    if (held?.qmp && !held.qmp.closed && held.pid === pid) { qmp.close(); return; }
    const status = await qmp.execute<{ status: string; running: boolean }>('query-status');
    const l: Live = { pid, qmp, paused: !status.running };
    this.live.set(uuid, l);
    qmp.on('event', (e) => {
      if (e.event === 'STOP') { l.paused = true; this.changed(uuid); }
      if (e.event === 'RESUME') { l.paused = false; this.changed(uuid); }
    });
    qmp.on('close', () => {
      if (this.live.get(uuid) === l) this.live.delete(uuid);
      this.changed(uuid);
    });
  }

  // ---- power state, events, periodic sync

  private power(uuid: string): number {
    const l = this.live.get(uuid);
    if (l && alive(l.pid, uuid)) return l.paused ? POWER.PAUSED : POWER.RUNNING;
    if (!this.persisted.has(uuid) && !existsSync(files(this.gdir(uuid)).guest)) return POWER.NOSTATE;
    return existsSync(files(this.gdir(uuid)).state) ? POWER.SUSPENDED : POWER.SHUTDOWN;
  }

  /** Reports a state change unless a driver operation on the guest is causing it. */
  private changed(uuid: string): void {
    if (this.busy.has(uuid)) return;
    const now = this.power(uuid);
    if (this.reported.get(uuid) === now) return;
    this.reported.set(uuid, now);
    const event: LifecycleEvent['event'] = now === POWER.RUNNING ? 'resumed' : now === POWER.PAUSED ? 'paused' : now === POWER.SUSPENDED ? 'suspended' : 'stopped';
    this.o.logger.info({ instance: uuid, power: POWER_NAMES[now] }, `guest ${event} on its own`);
    for (const cb of this.listeners) {
      try { cb({ uuid, event: event === 'resumed' && this.reported.get(uuid) !== POWER.PAUSED ? 'started' : event, powerState: now }); } catch (err) { this.warned(uuid, 'report a lifecycle event')(err); }
    }
  }

  onLifecycleEvent(cb: (e: LifecycleEvent) => void): void { this.listeners.push(cb); }

  /** Nova's _sync_power_states, driver side: what the processes say versus what was last reported; also reattaches QMP and rotates console logs. */
  async syncPowerStates(): Promise<void> {
    for (const uuid of this.persisted.keys()) {
      if (this.busy.has(uuid)) continue;
      const l = this.live.get(uuid);
      if (l && !alive(l.pid, uuid)) { l.qmp?.close(); this.live.delete(uuid); }
      if (!this.live.has(uuid)) {
        const pid = await this.pidOf(uuid);
        // An operation may have started meanwhile: it attaches itself (QMP serves one client).
        if (pid && !this.busy.has(uuid) && !this.live.has(uuid)) await this.attach(uuid, pid).catch(this.warned(uuid, 'connect to the QMP socket of a running guest (the next sync tries again)'));
      }
      this.changed(uuid);
      await this.rotateConsole(uuid).catch(this.warned(uuid, 'rotate the console log'));
    }
  }

  private async op<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(uuid)) throw new InvalidState(`Instance ${uuid} has an operation in progress on the hypervisor`);
    this.busy.add(uuid);
    try { return await fn(); } finally {
      this.busy.delete(uuid);
      this.reported.set(uuid, this.power(uuid));
    }
  }

  private async guest(uuid: string): Promise<Persisted> {
    try { return await this.load(uuid); } catch { throw new InstanceNotFound(`Instance ${uuid} could not be found on this host.`); }
  }

  // ---- launching and stopping processes

  /** `marks`: a spawn's timeline (exec: qemu started, daemonized: its parent returned, qmp: attached). */
  private async launch(uuid: string, o: { incoming?: string; paused?: boolean; marks?: Marks } = {}): Promise<void> {
    const p = await this.guest(uuid);
    const plan = p.rescuePlan ?? p.plan;
    const f = files(plan.dir);
    await Promise.all([f.qmp, f.serial, f.vnc, f.qga, f.pid].map((s) => rm(s, { force: true })));
    if (o.marks) o.marks.exec = elapsed(o.marks);
    await run(this.binary, qemuArgs(plan, o), { timeoutMs: 60_000 });
    if (o.marks) o.marks.daemonized = elapsed(o.marks);
    const pid = await this.pidOf(uuid);
    if (!pid) throw new Error(`qemu for ${uuid} did not stay up (no live process in ${f.pid})`);
    await this.attach(uuid, pid);
    if (o.marks) o.marks.qmp = elapsed(o.marks);
  }

  /** Waits for the process itself (not the QMP connection, which closes first) to be gone. */
  private async waitExit(uuid: string, pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!alive(pid, uuid)) return true;
      if (Date.now() >= deadline) return false;
      await sleep(50);
    }
  }

  /** Stops the process now: QMP quit, SIGKILL if it does not go. */
  private async hardStop(uuid: string): Promise<void> {
    const l = this.live.get(uuid) ?? await this.pidOf(uuid).then((pid) => (pid ? { pid, paused: false } as Live : undefined));
    if (!l) return;
    // QEMU may close the connection before its answer to quit arrives: that is the quit working.
    if (l.qmp) await l.qmp.execute('quit').catch((err) => { if (!l.qmp?.closed) this.warned(uuid, 'send QMP quit (SIGKILL follows)')(err); });
    else try { process.kill(l.pid, 'SIGTERM'); } catch { /* gone */ } // QEMU quits on SIGTERM too
    if (!(await this.waitExit(uuid, l.pid, 5000))) {
      try { process.kill(l.pid, 'SIGKILL'); } catch { /* gone */ }
      for (let i = 0; i < 50 && alive(l.pid, uuid); i++) await sleep(100);
    }
    l.qmp?.close();
    this.live.delete(uuid);
  }

  private shutdownTimeout(p: Persisted): number {
    const v = Number((p.spec.image?.properties ?? p.spec.imageProps ?? {}).os_shutdown_timeout);
    return (Number.isFinite(v) && v >= 0 ? v : this.o.config.get<number>('DEFAULT', 'shutdown_timeout')) * 1000;
  }

  /** ACPI power button, then a hard stop once the timeout passes (Nova's clean shutdown). */
  private async cleanStop(uuid: string): Promise<void> {
    const p = await this.guest(uuid);
    const l = this.live.get(uuid);
    if (!l) return this.hardStop(uuid);
    if (!l.paused) {
      await l.qmp?.execute('system_powerdown').catch(this.warned(uuid, 'press the ACPI power button (stopped after the shutdown timeout)'));
      if (await this.waitExit(uuid, l.pid, this.shutdownTimeout(p))) { l.qmp?.close(); this.live.delete(uuid); return; }
      this.o.logger.info({ instance: uuid }, 'guest did not power off within the shutdown timeout; stopping it');
    }
    await this.hardStop(uuid);
  }

  // ---- spawn: image, disks, config drive, plan

  private imageProps(spec: GuestSpec): Record<string, string> {
    return { ...(spec.imageProps ?? {}), ...(spec.image?.properties ?? {}) };
  }

  private async imageMeta(spec: GuestSpec, id: string): Promise<ImageSpec> {
    if (spec.image && spec.image.id === id) return spec.image;
    return this.o.images.meta(id);
  }

  private bus(v: string | undefined, fallback: DiskBus): DiskBus {
    return v === 'virtio' || v === 'ide' || v === 'scsi' || v === 'sata' || v === 'usb' ? v : fallback;
  }

  /**
   * Builds every disk and the launch plan; on failure removes what it made. `marks` (a spawn's
   * timeline) gets the milliseconds since `marks.t0` at which each step finished.
   */
  private async prepare(spec: GuestSpec, dir: string, o: { launched?: boolean; keepDisks?: boolean; marks?: Marks } = {}): Promise<Persisted> {
    const keep = (path: string) => !!o.keepDisks && existsSync(path);
    const mark = (step: string) => { if (o.marks) o.marks[step] = elapsed(o.marks); };
    if (!this.accel) throw new Error('QEMU driver used before initHost');
    if (!spec.imageId) throw new NotSupported('The QEMU driver boots from images only (no volumes)');
    const props = this.imageProps(spec);
    const flavor = spec.flavor;
    const rootGb = flavor?.rootGb ?? spec.rootGb;
    const ephGb = flavor?.ephemeralGb ?? 0;
    const swapMb = flavor?.swapMb ?? 0;
    const meta = await this.imageMeta(spec, spec.imageId);
    if (meta.diskFormat === 'aki' || meta.diskFormat === 'ari') throw new NotSupported(`Image ${spec.imageId} is a ${meta.diskFormat} (a kernel or ramdisk), not a bootable disk`);
    // Refused before any work: the image does not fit the root disk.
    if (meta.virtualSize != null) checkRootFits(meta.virtualSize, rootGb, spec.imageId);
    // Space for what is not cached yet plus the disks' own metadata and the config drive.
    const downloading = this.cache.has(spec.imageId) ? 0 : meta.size ?? 0;
    await mkdir(dir, { recursive: true, mode: 0o750 }); // instances_path with it
    await checkFreeSpace(this.dir, downloading + 64 * MiB + (ephGb ? 64 * MiB : 0) + (swapMb ? 16 * MiB : 0), `instance ${spec.uuid}`);
    mark('checks');
    // The config drive needs no disk: it is built while the base is fetched and the disks made.
    const configDrive = configDriveRequired(spec, this.o.config, { launched: o.launched }) ? join(dir, 'disk.config') : undefined;
    const jobs: Promise<unknown>[] = [];
    // A moved guest keeps the drive it came with (its bytes are what the guest may have read).
    if (configDrive && !keep(configDrive)) jobs.push(buildConfigDrive(spec, configDrive, { config: this.o.config }).then(() => mark('configDrive')));
    const diskBus = this.bus(props.hw_disk_bus, 'virtio');
    const cdBus = this.bus(props.hw_cdrom_bus, 'ide');
    const disks: PlanDisk[] = [];
    const root = join(dir, 'disk');
    jobs.push((async () => {
      const base = await this.cache.get(spec.imageId!, meta);
      mark('image');
      checkRootFits(base.virtualSize, rootGb, spec.imageId!);
      if (!keep(root)) await createOverlay(base, root, rootGb);
      mark('overlay');
    })());
    disks.push({ id: 'root', path: root, format: 'qcow2', bus: diskBus, media: 'disk', bootIndex: 1 });
    if (ephGb > 0) {
      if (!keep(join(dir, 'disk.eph0'))) jobs.push(createEphemeral(join(dir, 'disk.eph0'), ephGb));
      disks.push({ id: 'ephemeral0', path: join(dir, 'disk.eph0'), format: 'raw', bus: diskBus, media: 'disk' });
    }
    if (swapMb > 0) {
      jobs.push(createSwap(join(dir, 'disk.swap'), swapMb));
      disks.push({ id: 'swap', path: join(dir, 'disk.swap'), format: 'raw', bus: diskBus, media: 'disk' });
    }
    if (configDrive) disks.push({ id: 'config', path: configDrive, format: 'raw', bus: cdBus, media: 'cdrom', readonly: true });
    await settleAll(jobs);
    const images = [spec.imageId];

    // AMI-style boot: kernel and ramdisk images, the image's command line (Nova's default otherwise).
    let kernel: LaunchPlan['kernel'];
    if (props.kernel_id) {
      const k = await this.cache.get(props.kernel_id);
      images.push(props.kernel_id);
      let initrd: string | undefined;
      if (props.ramdisk_id) { initrd = (await this.cache.get(props.ramdisk_id)).path; images.push(props.ramdisk_id); }
      kernel = { path: k.path, initrd, cmdline: props.os_command_line || 'root=/dev/vda console=tty0 console=ttyS0' };
    }

    let firmware: LaunchPlan['firmware'] = 'bios';
    let fw: LaunchPlan['ovmf'];
    if (props.hw_firmware_type === 'uefi') {
      const ovmfFiles = ovmf();
      if (!ovmfFiles) throw new NotSupported('The image needs UEFI (hw_firmware_type=uefi) but OVMF is not installed on this host (Debian package ovmf)');
      if (!keep(join(dir, 'OVMF_VARS.fd'))) await copyFile(ovmfFiles.vars, join(dir, 'OVMF_VARS.fd'));
      firmware = 'uefi';
      fw = { code: ovmfFiles.code, vars: join(dir, 'OVMF_VARS.fd') };
    }

    let nic: LaunchPlan['nic'];
    const vif = spec.network?.mode === 'auto' ? spec.network.vifs[0] : undefined;
    if (vif) {
      const relay = metadataRelayCommand(this.o.config, spec.uuid);
      nic = {
        mac: vif.mac, model: props.hw_vif_model || vif.model || 'virtio',
        netdev: userNetdev({ hostname: spec.hostname, relayCommand: relay, outbound: this.o.config.get<boolean>('qemu', 'user_network_outbound') }),
      };
    }
    const vcpus = flavor?.vcpus ?? spec.vcpus;
    const memoryMb = flavor?.memoryMb ?? spec.memoryMb;
    const plan: LaunchPlan = {
      uuid: spec.uuid, name: spec.name, dir, vcpus, memoryMb, accel: this.accel.accel,
      machine: props.hw_machine_type || 'pc', disks, kernel, nic, firmware, ovmf: fw,
      video: props.hw_video_model || 'vga', rng: props.hw_rng_model === 'virtio',
      guestAgent: props.hw_qemu_guest_agent === 'yes' || props.hw_qemu_guest_agent === 'true',
      vncListen: this.o.config.get<string>('vnc', 'server_listen') === 'unix' ? 'unix' : this.o.config.get<string>('vnc', 'server_listen'),
      smbios: { manufacturer: 'OpenStack Foundation', product: 'OpenStack Nova', version: '0.1.0', serial: spec.uuid, uuid: spec.uuid, family: 'Virtual Machine' },
    };
    const { adminPassword: _pw, injectedFiles: _f, ...kept } = spec;
    return { spec: kept, plan, images };
  }

  async spawn(spec: GuestSpec): Promise<void> {
    const dir = this.gdir(spec.uuid);
    if (existsSync(files(dir).guest)) throw new InvalidState(`Instance ${spec.uuid} already has a guest on this host`);
    await this.op(spec.uuid, async () => {
      const marks: Marks = { t0: performance.now() };
      try {
        const p = await this.prepare(spec, dir, { marks });
        await this.save(spec.uuid, p);
        marks.saved = elapsed(marks);
        await this.launch(spec.uuid, { marks });
        const { t0: _t0, ...ms } = marks;
        this.o.logger.info({ instance: spec.uuid, ms }, `guest spawned in ${Math.round(ms.qmp ?? 0)} ms`);
      } catch (e) {
        // Nothing of a failed spawn stays behind.
        await this.hardStop(spec.uuid).catch(this.warned(spec.uuid, 'stop the qemu of a failed spawn'));
        this.persisted.delete(spec.uuid);
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
    });
  }

  async destroy(uuid: string): Promise<void> {
    const dir = this.gdir(uuid);
    this.busy.add(uuid);
    try {
      await this.hardStop(uuid);
      await rm(dir, { recursive: true, force: true });
      this.persisted.delete(uuid);
      this.reported.delete(uuid);
    } finally {
      this.busy.delete(uuid);
    }
  }

  async powerOff(uuid: string): Promise<void> {
    await this.op(uuid, async () => {
      await this.guest(uuid);
      await this.cleanStop(uuid);
    });
  }

  async powerOn(g: GuestSpec): Promise<void> {
    const uuid = g.uuid;
    await this.op(uuid, async () => {
      await this.ensureGuest(g);
      if (this.live.has(uuid)) { await this.live.get(uuid)!.qmp?.execute('cont'); return; }
      await rm(files(this.gdir(uuid)).state, { force: true });
      await this.launch(uuid);
    });
  }

  /** A guest whose directory was lost is made again from its spec (disks from the image, as a hard reboot in Nova recreates the domain). */
  private async ensureGuest(g: GuestSpec): Promise<Persisted> {
    const have = await this.load(g.uuid).catch(unlessMissing); // a guest.json that is there but unreadable is not remade over
    if (have) return have;
    const dir = this.gdir(g.uuid);
    try {
      const p = await this.prepare(g, dir, { launched: true });
      await this.save(g.uuid, p);
      return p;
    } catch (e) {
      this.persisted.delete(g.uuid);
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async reboot(g: GuestSpec, hard: boolean): Promise<void> {
    const uuid = g.uuid;
    await this.op(uuid, async () => {
      const p = await this.ensureGuest(g);
      const l = this.live.get(uuid);
      if (!l) { await rm(files(this.gdir(uuid)).state, { force: true }); await this.launch(uuid); return; }
      if (hard || l.paused) {
        await l.qmp?.execute('system_reset');
        if (l.paused) await l.qmp?.execute('cont');
        return;
      }
      // Soft: ACPI power off, then start again; a guest that ignores it gets a hard reset (Nova's fallback).
      await l.qmp?.execute('system_powerdown').catch(this.warned(uuid, 'press the ACPI power button (reset after the shutdown timeout)'));
      if (await this.waitExit(uuid, l.pid, this.shutdownTimeout(p))) {
        l.qmp?.close();
        this.live.delete(uuid);
        await this.launch(uuid);
      } else {
        this.o.logger.info({ instance: uuid }, 'soft reboot: guest ignored the power button; resetting it');
        await this.live.get(uuid)?.qmp?.execute('system_reset');
      }
    });
  }

  private async qmpOf(uuid: string, what: string) {
    await this.guest(uuid); // a guest this host does not have is InstanceNotFound, not InvalidState
    const l = this.live.get(uuid);
    if (!l?.qmp) throw new InvalidState(`Cannot ${what} instance ${uuid}: its guest is not running`);
    return { l, qmp: l.qmp };
  }

  async pause(uuid: string): Promise<void> {
    await this.op(uuid, async () => { const { l, qmp } = await this.qmpOf(uuid, 'pause'); await qmp.execute('stop'); l.paused = true; });
  }

  async unpause(uuid: string): Promise<void> {
    await this.op(uuid, async () => { const { l, qmp } = await this.qmpOf(uuid, 'unpause'); await qmp.execute('cont'); l.paused = false; });
  }

  /** The guest's memory and device state go to suspend.state (QMP migrate to exec:), then QEMU exits. */
  async suspend(uuid: string): Promise<void> {
    await this.op(uuid, async () => {
      const { qmp } = await this.qmpOf(uuid, 'suspend');
      const f = files(this.gdir(uuid));
      const tmp = `${f.state}.tmp`;
      await qmp.execute('stop');
      // The default 32 MiB/s bandwidth cap is for live migration over a network, not a local file.
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 1024 * MiB }).catch(this.warned(uuid, 'lift the migration bandwidth cap (the state is saved at 32 MiB/s)'));
      await qmp.execute('migrate', { uri: `exec:cat > '${tmp.replace(/'/g, `'\\''`)}'` });
      for (;;) {
        const m = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
        if (m.status === 'completed') break;
        if (m.status === 'failed' || m.status === 'cancelled') {
          await qmp.execute('cont').catch(this.warned(uuid, 'resume the guest after its state could not be saved'));
          await rm(tmp, { force: true });
          throw new Error(`Saving the state of ${uuid} failed: ${m['error-desc'] ?? m.status}`);
        }
        await sleep(50);
      }
      await rename(tmp, f.state);
      await this.hardStop(uuid);
    });
  }

  async resume(g: GuestSpec): Promise<void> {
    const uuid = g.uuid;
    await this.op(uuid, async () => {
      await this.guest(uuid);
      const f = files(this.gdir(uuid));
      if (this.live.has(uuid)) { await this.live.get(uuid)!.qmp?.execute('cont'); return; }
      if (!existsSync(f.state)) throw new InvalidState(`Instance ${uuid} has no saved state to resume from`);
      await this.launch(uuid, { incoming: `exec:cat '${f.state.replace(/'/g, `'\\''`)}'` });
      const { l, qmp } = await this.qmpOf(uuid, 'resume');
      for (let i = 0; ; i++) {
        const s = await qmp.execute<{ status: string; running: boolean }>('query-status');
        if (s.status !== 'inmigrate') { if (!s.running) await qmp.execute('cont'); break; }
        if (i > 1200) throw new Error(`Restoring the state of ${uuid} did not finish`);
        await sleep(50);
      }
      l.paused = false;
      await rm(f.state, { force: true });
    });
  }

  async rebuild(spec: GuestSpec): Promise<void> {
    await this.op(spec.uuid, async () => {
      const dir = this.gdir(spec.uuid);
      await this.hardStop(spec.uuid);
      // Disks, config drive and saved state go; the console log stays (as Nova's does).
      for (const f of await readdir(dir).catch((e) => unlessMissing(e) ?? [])) if (f.startsWith('disk') || f === 'suspend.state' || f === 'OVMF_VARS.fd') await rm(join(dir, f), { force: true });
      const p = await this.prepare(spec, dir);
      await this.save(spec.uuid, p);
      await this.launch(spec.uuid);
    });
  }

  async setAdminPassword(uuid: string, _password: string): Promise<void> {
    await this.guest(uuid);
    // Nova does it through the QEMU guest agent; the minimal guest has none.
    throw new NotSupported('Setting the admin password needs the QEMU guest agent, which the QEMU driver does not drive yet');
  }

  async rescue(spec: GuestSpec, r: { imageId: string | null; password: string | null }): Promise<void> {
    await this.op(spec.uuid, async () => {
      const p = await this.guest(spec.uuid);
      const imageId = r.imageId ?? p.spec.imageId;
      if (!imageId) throw new NotSupported('No rescue image');
      // A rescue image no longer in the image service still rescues from its cached base.
      const base = await this.cache.get(imageId, await this.imageMeta(spec, imageId).catch((err) => { this.warned(spec.uuid, `read rescue image ${imageId} (its cached base, if any, is used)`)(err); return undefined; }));
      await this.cleanStop(spec.uuid);
      const dir = this.gdir(spec.uuid);
      const rescueDisk = join(dir, 'disk.rescue');
      await rm(rescueDisk, { force: true });
      await createOverlay(base, rescueDisk, 0);
      const bus = p.plan.disks[0]?.bus ?? 'virtio';
      // The rescue disk first, the instance's own disks after it, none of them bootable but the first.
      const disks: PlanDisk[] = [
        { id: 'rescue', path: rescueDisk, format: 'qcow2', bus, media: 'disk', bootIndex: 1 },
        ...p.plan.disks.map((d) => ({ ...d, bootIndex: undefined })),
      ];
      const next = { ...p, rescuePlan: { ...p.plan, disks, kernel: undefined }, images: [...new Set([...p.images, imageId])] };
      await this.save(spec.uuid, next);
      await this.launch(spec.uuid);
    });
  }

  async unrescue(g: GuestSpec): Promise<void> {
    const uuid = g.uuid;
    await this.op(uuid, async () => {
      const p = await this.guest(uuid);
      await this.hardStop(uuid);
      await rm(join(this.gdir(uuid), 'disk.rescue'), { force: true });
      const { rescuePlan: _r, ...rest } = p;
      await this.save(uuid, { ...rest, images: p.images });
      await this.launch(uuid);
    });
  }

  // ---- consoles

  async consoleOutput(uuid: string): Promise<string> {
    await this.guest(uuid);
    const f = files(this.gdir(uuid)).console;
    const tail = async (path: string, max: number): Promise<Buffer> => {
      const fh = await openFile(path, 'r').catch(unlessMissing); // no console yet, or no rotated part
      if (!fh) return Buffer.alloc(0);
      try {
        const { size } = await fh.stat();
        const n = Math.min(size, max);
        const b = Buffer.alloc(n);
        await fh.read(b, 0, n, size - n);
        return b;
      } finally { await fh.close(); }
    };
    const cur = await tail(f, MAX_CONSOLE_BYTES);
    const prev = cur.length < MAX_CONSOLE_BYTES ? await tail(`${f}.0`, MAX_CONSOLE_BYTES - cur.length) : Buffer.alloc(0);
    return Buffer.concat([prev, cur]).toString('utf8');
  }

  /** copytruncate at the cap: QEMU appends (logappend=on), so the file can be cut under it. */
  private async rotateConsole(uuid: string): Promise<void> {
    const f = files(this.gdir(uuid)).console;
    const st = await stat(f).catch(unlessMissing); // the guest has written nothing yet
    if (!st || st.size < this.o.config.get<number>('qemu', 'console_log_max_bytes')) return;
    await copyFile(f, `${f}.0`);
    const fh = await openFile(f, 'r+');
    try { await fh.truncate(0); } finally { await fh.close(); }
  }

  async getConsole(g: GuestSpec, kind: ConsoleKind): Promise<ConsoleEndpoint> {
    await this.guest(g.uuid);
    const f = files(this.gdir(g.uuid));
    if (kind === 'serial') return { kind, path: f.serial };
    if (kind === 'vnc') {
      const { qmp } = await this.qmpOf(g.uuid, 'get the console of');
      const v = await qmp.execute<{ enabled: boolean; host?: string; service?: string; family?: string }>('query-vnc');
      if (!v.enabled) throw new NotSupported('VNC is not enabled for this guest');
      if (v.family === 'unix') return { kind, path: f.vnc };
      return { kind, host: v.host ?? '127.0.0.1', port: Number(v.service) };
    }
    throw new NotSupported(`The QEMU driver offers no ${kind} console`);
  }

  // ---- snapshots

  /** Root disk → a standalone qcow2, streamed to the image service: QMP drive-backup while running, qemu-img convert otherwise. */
  async snapshot(g: GuestSpec, target: SnapshotTarget): Promise<void> {
    await this.op(g.uuid, async () => {
      const p = await this.guest(g.uuid);
      const root = p.plan.disks.find((d) => d.id === 'root')!;
      const out = join(this.gdir(g.uuid), `snapshot-${target.imageId}.qcow2`);
      const t0 = performance.now();
      try {
        const l = this.live.get(g.uuid);
        if (l?.qmp) {
          const done = l.qmp.waitEvent('BLOCK_JOB_COMPLETED', 3_600_000, (e) => e.data?.device === 'snapshot');
          await l.qmp.execute('drive-backup', { 'job-id': 'snapshot', device: 'root', target: out, sync: 'full', format: 'qcow2' });
          const e = await done;
          if (!e) throw new Error('snapshot: the guest went away during the disk copy');
          if (e.data?.error) throw new Error(`snapshot: ${String(e.data.error)}`);
        } else {
          await flatten(root.path, root.format, out, false);
        }
        const copied = performance.now();
        // 1 MiB reads: with the default 64 KiB, the client's streaming costs ~4x the CPU per GiB.
        await target.upload(createReadStream(out, { highWaterMark: MiB }), 'qcow2', 'bare');
        this.o.logger.info({ instance: g.uuid, image: target.imageId, bytes: (await stat(out)).size, copyMs: Math.round(copied - t0), uploadMs: Math.round(performance.now() - copied) }, 'snapshot uploaded');
      } finally {
        await rm(out, { force: true });
      }
    });
  }

  // ---- moves (virt/qemu/migration.ts)

  migrateDiskAndPowerOff(g: GuestSpec, dest: MoveTarget, newFlavor: FlavorSpec): Promise<MigratedDisks> { return this.mover.migrateDiskAndPowerOff(g, dest, newFlavor); }
  finishMigration(g: GuestSpec, disks: MigratedDisks, opts: { resize: boolean; powerOn: boolean }): Promise<void> { return this.mover.finishMigration(g, disks, opts); }
  confirmMigration(uuid: string): Promise<void> { return this.mover.confirmMigration(uuid); }
  finishRevertMigration(g: GuestSpec, opts: { powerOn: boolean }): Promise<void> { return this.mover.finishRevertMigration(g, opts); }
  checkCanLiveMigrateSource(g: GuestSpec, dest: MoveTarget): Promise<LiveMigrationSource> { return this.mover.checkCanLiveMigrateSource(g, dest); }
  preLiveMigration(g: GuestSpec, source: MoveTarget, opts: LiveMigrationOptions): Promise<LiveMigrationTarget> { return this.mover.preLiveMigration(g, source, opts); }
  liveMigrate(g: GuestSpec, dest: MoveTarget, target: LiveMigrationTarget, opts: LiveMigrationOptions): Promise<LiveMigrationResult> { return this.mover.liveMigrate(g, dest, target, opts); }
  postLiveMigrationAtDestination(g: GuestSpec, o?: { consoleTail?: Buffer }): Promise<void> { return this.mover.postLiveMigrationAtDestination(g, o); }
  rollbackLiveMigrationAtDestination(uuid: string): Promise<void> { return this.mover.rollbackLiveMigrationAtDestination(uuid); }
  rollbackLiveMigrationAtSource(uuid: string, source?: LiveMigrationSource): Promise<void> { return this.mover.rollbackLiveMigrationAtSource(uuid, source); }
  liveMigrationForceComplete(uuid: string): Promise<void> { return this.mover.liveMigrationForceComplete(uuid); }
  liveMigrationAbort(uuid: string): Promise<void> { return this.mover.liveMigrationAbort(uuid); }
  cleanupLiveMigration(uuid: string, o: { running: boolean }): Promise<void> { return this.mover.cleanupLiveMigration(uuid, o); }

  // ---- host and guest information

  async hostResources(): Promise<HostResources> {
    if (!this.accel || !this.version) throw new Error('QEMU driver used before initHost');
    return hostResources({ instancesPath: this.dir, accel: this.accel, version: this.version, hostname: this.o.hostname });
  }

  capabilities(): string[] { return capabilityTraits(); }

  async info(uuid: string): Promise<GuestInfo> {
    if (!this.persisted.has(uuid)) throw new InstanceNotFound(`Instance ${uuid} could not be found on this host.`);
    return { powerState: this.power(uuid) };
  }

  listGuests(): string[] { return [...this.persisted.keys()]; }

  async diagnostics(g: GuestSpec): Promise<Record<string, number>> {
    const { qmp } = await this.qmpOf(g.uuid, 'get diagnostics of');
    const p = await this.guest(g.uuid);
    const out: Record<string, number> = { memory: p.plan.memoryMb * 1024 };
    const stats = await qmp.execute<{ device: string; stats: { rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number } }[]>('query-blockstats');
    stats.forEach((s, i) => {
      const d = `vd${String.fromCharCode(97 + i)}`;
      Object.assign(out, { [`${d}_read`]: s.stats.rd_bytes, [`${d}_read_req`]: s.stats.rd_operations, [`${d}_write`]: s.stats.wr_bytes, [`${d}_write_req`]: s.stats.wr_operations, [`${d}_errors`]: -1 });
    });
    return out;
  }

  async instanceDiagnostics(g: GuestSpec): Promise<InstanceDiagnostics> {
    const { qmp } = await this.qmpOf(g.uuid, 'get diagnostics of');
    const p = await this.guest(g.uuid);
    const stats = await qmp.execute<{ stats: { rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number; failed_rd_operations?: number; failed_wr_operations?: number } }[]>('query-blockstats');
    const pidStat = await readFile(`/proc/${this.live.get(g.uuid)?.pid}/stat`, 'utf8').catch((e) => unlessMissing(e) ?? ''); // exited meanwhile: no uptime
    const startTicks = Number(pidStat.split(') ')[1]?.split(' ')[19] ?? 0);
    const uptime = startTicks ? Math.max(0, Math.floor(Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]) - startTicks / 100)) : null;
    return {
      state: POWER_NAMES[this.power(g.uuid)] ?? 'pending', driver: 'libvirt', hypervisor: this.accel?.virtType ?? 'qemu', hypervisor_os: 'linux',
      uptime, config_drive: p.plan.disks.some((d) => d.id === 'config'), num_cpus: p.plan.vcpus, num_nics: p.plan.nic ? 1 : 0, num_disks: p.plan.disks.length,
      cpu_details: Array.from({ length: p.plan.vcpus }, (_x, id) => ({ id, time: null, utilisation: null })),
      nic_details: p.plan.nic ? [{ mac_address: p.plan.nic.mac, rx_octets: null, rx_errors: null, rx_drop: null, rx_packets: null, rx_rate: null, tx_octets: null, tx_errors: null, tx_drop: null, tx_packets: null, tx_rate: null }] : [],
      disk_details: stats.map((s) => ({ read_bytes: s.stats.rd_bytes, read_requests: s.stats.rd_operations, write_bytes: s.stats.wr_bytes, write_requests: s.stats.wr_operations, errors_count: (s.stats.failed_rd_operations ?? 0) + (s.stats.failed_wr_operations ?? 0) })),
      memory_details: { maximum: p.plan.memoryMb, used: null },
    };
  }

  /** The image cache manager's pass: bases no guest here uses (kept resize disks count), unused for long enough, go. */
  async runImageCacheManager(): Promise<string[]> {
    const inUse = new Set<string>();
    for (const uuid of await this.guestDirs()) {
      // A guest whose images cannot be told must not lose its base: no removal this pass.
      const p = await this.load(uuid).catch((err) => { throw new Error(`guest.json of ${uuid} is unreadable, so the bases in use are not known: ${(err as Error).message}`); });
      for (const i of p.images ?? []) inUse.add(i);
    }
    for (const name of await readdir(this.dir).catch((e) => unlessMissing(e) ?? [])) {
      if (!name.endsWith('_resize')) continue;
      const p = await readFile(files(join(this.dir, name)).guest, 'utf8').then((t) => JSON.parse(t) as Persisted).catch((err) => {
        if (missing(err)) return undefined; // not a guest's directory
        throw new Error(`guest.json of ${name} is unreadable, so the bases in use are not known: ${(err as Error).message}`);
      });
      for (const i of p?.images ?? []) inUse.add(i);
    }
    return this.cache.run(inUse, this.o.config.get<number>('image_cache', 'remove_unused_original_minimum_age_seconds'), this.o.config.get<boolean>('image_cache', 'remove_unused_base_images'));
  }
}

