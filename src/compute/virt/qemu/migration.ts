// Moving guests between QEMU hosts (Nova's libvirt driver's migrate_disk_and_power_off …
// live_migration, said to QEMU directly). No shared storage anywhere:
// - cold (resize, migrate): the guest is powered off, its directory becomes `<uuid>_resize/`
//   (kept until confirm or revert, as Nova does), and the destination fetches its disks over
//   the agent-to-agent disk channel (disk-transfer.ts) — or copies them, on the same host. The
//   base image comes from the destination's own image cache (the image service), the overlay
//   is rebased onto it, the root grown to the new flavor, swap and config drive made anew.
// - live (block migration): the destination starts the same devices paused with
//   `-incoming tcp:<my_ip>:<port>` on empty disks and exports them over NBD; the source mirrors
//   its writable disks into those exports (drive-mirror, the root's top layer only: the base is
//   the same image on both sides), migrates RAM and device state once the mirrors are in step,
//   ends the mirrors while it is paused, and quits; the destination's `cont` runs the guest on.
//   The order is libvirt's, so that no write of the last moment is lost.
import { existsSync } from 'node:fs';
import { appendFile, constants, copyFile, mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../../common/config.ts';
import type { Logger } from '../../../common/logging.ts';
import { run, ToolError } from '../../../guest/run.ts';
import type {
  FlavorSpec, GuestSpec, ImageSpec, LiveMigrationOptions, LiveMigrationResult, LiveMigrationSource, LiveMigrationTarget, MigratedDisks, MoveTarget,
} from '../driver.ts';
import { InstanceNotFound, InvalidState, MigrationAborted, MigrationPreCheckError } from '../errors.ts';
import { files } from './cmdline.ts';
import { DiskChannel, fetchOffer, type DiskOffer } from './disk-transfer.ts';
import type { ImageCache } from './image-cache.ts';
import type { Qmp } from './qmp.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a paused source waits for its mirrors' last writes before it gives the move up (and runs on). */
const MIRROR_END_MS = 120_000;
/** The bandwidth a held block device gets (holdDiskIo): 1 byte/s, no request goes through. */
const HELD_BPS = 1;

interface QueryMigrate { status?: string; 'total-time'?: number; downtime?: number; 'error-desc'?: string; ram?: { total: number; transferred: number; remaining: number } }

/**
 * Files of a guest directory that a cold move carries (swap is made anew). The config drive is
 * carried, not rebuilt, as Nova does: a rebuilt one differs (its random_seed, its timestamps).
 */
const CARRIED = ['disk', 'disk.eph0', 'disk.config', 'OVMF_VARS.fd', 'console.log'];
/**
 * What a live migration's destination takes from the source before it starts: the config drive
 * (the guest may have read it; its bytes must not change under it) and the console log so far
 * (a snapshot: the guest keeps writing the real one), so that the log goes on on the destination.
 */
const LIVE_CONFIG = 'disk.config';
const LIVE_CONSOLE = 'console.log.live';
/** At most this much of what the guest printed during a live migration goes along (Nova shows the last 100 KiB of a log). */
const LIVE_TAIL_MAX = 100 * 1024;
/** A live migration's source offer lasts this long when no migration comes to end it. */
const LIVE_OFFER_TTL_MS = 10 * 60_000;

/** What the driver lends the mover: its own primitives, nothing more. */
export interface MoveHost {
  readonly hostname: string;
  readonly config: Config;
  readonly logger: Logger;
  readonly cache: ImageCache;
  gdir(uuid: string): string;
  /** The guest's saved spec and plan; InstanceNotFound when there is none. */
  guest(uuid: string): Promise<{ spec: GuestSpec; plan: { accel: string; disks: { id: string; path: string; format: string; media: string; readonly?: boolean }[] }; images: string[] }>;
  /** Builds the guest directory's plan; `keepDisks`: a root overlay and ephemeral disk already there are used as they are. */
  prepare(spec: GuestSpec, dir: string, o: { keepDisks?: boolean }): Promise<unknown>;
  save(uuid: string, p: unknown): Promise<void>;
  /** The driver forgets the guest (its directory went away or moved). */
  forget(uuid: string): void;
  launch(uuid: string, o?: { incoming?: string; paused?: boolean }): Promise<void>;
  cleanStop(uuid: string): Promise<void>;
  hardStop(uuid: string): Promise<void>;
  qmp(uuid: string): Qmp | undefined;
  imageMeta(spec: GuestSpec, id: string): Promise<ImageSpec>;
  /** Runs fn with the guest marked busy (its state changes are the operation's, not its own). */
  op<T>(uuid: string, fn: () => Promise<T>): Promise<T>;
  /** Marks a guest busy across calls (a live migration's destination between pre and post/rollback). */
  hold(uuid: string, on: boolean): void;
}

/** What preLiveMigration answers (the LiveMigrationTarget of the qemu driver). */
interface QemuLiveTarget {
  uri: string;
  nbd: { host: string; port: number };
  disks: { id: string; sync: 'top' | 'full' }[];
}

/** A cold move's MigratedDisks of the qemu driver. */
interface QemuMigratedDisks {
  sourceHost: string;
  /** Same host: where the kept disks are (no channel needed). */
  localDir?: string;
  offer?: DiskOffer;
}

/** A live migration under way on the source; `held`: the block devices whose I/O holdDiskIo stopped. */
interface Outgoing { aborted: boolean; paused: boolean; held: string[] }

/** block_set_io_throttle's arguments: every limit 0 (none) unless given. */
const throttle = (device: string, bps: number) => ({ device, bps, bps_rd: 0, bps_wr: 0, iops: 0, iops_rd: 0, iops_wr: 0 });

async function virtualSize(path: string, format = 'qcow2'): Promise<number> {
  const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', '-f', format, path])).stdout) as { 'virtual-size': number };
  return info['virtual-size'];
}

/** A free TCP port on `address` for QEMU to listen on (QEMU's NBD server cannot say which port it chose). */
function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const hostPart = (a: string) => (a.includes(':') ? `[${a}]` : a);

/** A file's stat, or undefined when it is not there (only then: other errors are real). */
async function statIfAny(path: string) {
  try { return await stat(path); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export class Mover {
  private readonly channel: DiskChannel;
  private readonly outgoing = new Map<string, Outgoing>();
  private readonly myIp: string;

  constructor(private readonly h: MoveHost) {
    this.myIp = h.config.get<string>('DEFAULT', 'my_ip');
    this.channel = new DiskChannel({ address: this.myIp, port: h.config.get<number>('qemu', 'migration_port'), logger: h.logger.child({ component: 'disk-channel' }) });
  }

  private resizeDir(uuid: string) { return `${this.h.gdir(uuid)}_resize`; }

  async close(): Promise<void> { await this.channel.close(); }

  // ---- cold moves

  async migrateDiskAndPowerOff(g: GuestSpec, dest: MoveTarget, newFlavor: FlavorSpec): Promise<MigratedDisks> {
    const uuid = g.uuid;
    return this.h.op(uuid, async () => {
      const p = await this.h.guest(uuid);
      const dir = this.h.gdir(uuid);
      // Nova's "Unable to resize disk down.": refused before the guest is touched.
      const root = await virtualSize(join(dir, 'disk'));
      if (newFlavor.rootGb > 0 && newFlavor.rootGb * GiB < root) throw new MigrationPreCheckError(`Resize error: Unable to resize disk down (root disk is ${root / GiB} GiB, flavor ${newFlavor.name} has ${newFlavor.rootGb} GiB).`);
      const eph = existsSync(join(dir, 'disk.eph0')) ? (await stat(join(dir, 'disk.eph0'))).size : 0;
      if (newFlavor.ephemeralGb > 0 && newFlavor.ephemeralGb * GiB < eph) throw new MigrationPreCheckError(`Resize error: Unable to resize ephemeral disk down (${eph / GiB} GiB to ${newFlavor.ephemeralGb} GiB).`);
      await this.h.cleanStop(uuid);
      const keep = this.resizeDir(uuid);
      await rm(keep, { recursive: true, force: true });
      await rename(dir, keep);
      this.h.forget(uuid);
      const out: QemuMigratedDisks = { sourceHost: this.h.hostname };
      if (dest.host === this.h.hostname) return { ...out, localDir: keep };
      const carried: { name: string; size: number }[] = [];
      for (const name of CARRIED) {
        const st = await statIfAny(join(keep, name));
        if (st) carried.push({ name, size: st.size });
      }
      this.h.logger.info({ instance: uuid, dest: dest.host, files: carried }, 'cold move: disks offered on the disk channel');
      return { ...out, offer: await this.channel.offer(uuid, keep, carried) };
    });
  }

  async finishMigration(g: GuestSpec, disks: MigratedDisks, opts: { resize: boolean; powerOn: boolean }): Promise<void> {
    const uuid = g.uuid;
    const d = disks as unknown as QemuMigratedDisks;
    const dir = this.h.gdir(uuid);
    if (existsSync(files(dir).guest)) throw new InvalidState(`Instance ${uuid} already has a guest on this host`);
    if (!g.imageId) throw new MigrationPreCheckError('The QEMU driver moves image-backed guests only');
    await this.h.op(uuid, async () => {
      try {
        await mkdir(dir, { recursive: true, mode: 0o750 });
        if (d.localDir) {
          for (const name of CARRIED) {
            if (existsSync(join(d.localDir, name))) await copyFile(join(d.localDir, name), join(dir, name), constants.COPYFILE_FICLONE);
          }
        } else if (d.offer) {
          await fetchOffer(d.offer, dir, { logger: this.h.logger });
        } else {
          throw new MigrationPreCheckError('The move names no disks to take (neither a local directory nor a disk channel offer)');
        }
        await this.adoptDisks(g, dir);
        const p = await this.h.prepare(g, dir, { keepDisks: true });
        await this.h.save(uuid, p);
        if (opts.powerOn) await this.h.launch(uuid);
      } catch (e) {
        await this.h.hardStop(uuid).catch((err) => this.h.logger.warn({ err, instance: uuid }, 'cold move refused: could not stop the guest it had started'));
        this.h.forget(uuid);
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
    });
  }

  /** The carried disks made this host's: the overlay on the local cached base, root and ephemeral grown to g.flavor. */
  private async adoptDisks(g: GuestSpec, dir: string): Promise<void> {
    const base = await this.h.cache.get(g.imageId!, await this.h.imageMeta(g, g.imageId!));
    const root = join(dir, 'disk');
    // Same bytes under another path: an unsafe rebase only rewrites the backing file name.
    await run('qemu-img', ['rebase', '-q', '-u', '-f', 'qcow2', '-F', base.format, '-b', base.path, root]);
    const rootGb = g.flavor?.rootGb ?? g.rootGb;
    const have = await virtualSize(root);
    if (rootGb > 0 && rootGb * GiB < have) throw new MigrationPreCheckError(`Resize error: Unable to resize disk down (root disk is ${have / GiB} GiB, the flavor has ${rootGb} GiB).`);
    if (rootGb > 0 && rootGb * GiB > have) await run('qemu-img', ['resize', '-q', '-f', 'qcow2', root, String(rootGb * GiB)]);
    const eph = join(dir, 'disk.eph0');
    const ephGb = g.flavor?.ephemeralGb ?? 0;
    if (existsSync(eph)) {
      const size = (await stat(eph)).size;
      if (ephGb === 0) await rm(eph);
      else if (ephGb * GiB > size) {
        await truncate(eph, ephGb * GiB);
        // e2fsck first: resize2fs refuses a filesystem not checked since it was last mounted.
        // Exit 1 and 2 mean it fixed something, which is fine to grow; worse is refused.
        await run('e2fsck', ['-f', '-p', eph]).catch((e) => {
          if (!(e instanceof ToolError) || (e.code !== 1 && e.code !== 2)) throw new MigrationPreCheckError(`The ephemeral disk of ${g.uuid} cannot be grown: ${(e as Error).message}`);
          this.h.logger.info({ instance: g.uuid, fsck: e.message }, 'cold move: e2fsck repaired the ephemeral disk before growing it');
        });
        await run('resize2fs', ['-f', eph]);
      }
    }
    await rm(join(dir, 'disk.swap'), { force: true });
  }

  async confirmMigration(uuid: string): Promise<void> {
    await this.channel.end(uuid);
    await rm(this.resizeDir(uuid), { recursive: true, force: true });
  }

  async finishRevertMigration(g: GuestSpec, opts: { powerOn: boolean }): Promise<void> {
    const uuid = g.uuid;
    await this.channel.end(uuid);
    await this.h.op(uuid, async () => {
      const keep = this.resizeDir(uuid);
      const dir = this.h.gdir(uuid);
      if (existsSync(keep)) {
        // The destination's copy, on this same host, if the manager has not removed it.
        await this.h.hardStop(uuid);
        await rm(dir, { recursive: true, force: true });
        this.h.forget(uuid);
        await rename(keep, dir);
      } else if (!existsSync(files(dir).guest)) {
        throw new InstanceNotFound(`Instance ${uuid} has no kept disks (${keep}) to revert to on this host.`);
      }
      const p = await this.h.guest(uuid);
      const { adminPassword: _pw, injectedFiles: _f, ...spec } = g;
      await this.h.save(uuid, { ...p, spec });
      if (opts.powerOn && !this.h.qmp(uuid)) await this.h.launch(uuid);
    });
  }

  // ---- live migration: source, before the destination prepares

  async checkCanLiveMigrateSource(g: GuestSpec, dest: MoveTarget): Promise<LiveMigrationSource> {
    const uuid = g.uuid;
    await this.h.guest(uuid);
    if (!this.h.qmp(uuid)) throw new InvalidState(`Instance ${uuid} is not running: it cannot be live migrated`);
    const dir = this.h.gdir(uuid);
    await copyFile(files(dir).console, join(dir, LIVE_CONSOLE)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; /* no log yet */ });
    const offered: { name: string; size: number }[] = [];
    for (const name of [LIVE_CONFIG, LIVE_CONSOLE]) {
      const st = await statIfAny(join(dir, name));
      if (st) offered.push({ name, size: st.size });
    }
    if (!offered.length) return {};
    this.h.logger.info({ instance: uuid, dest: dest.host, files: offered }, 'live migration: config drive and console log offered on the disk channel');
    return { offer: await this.channel.offer(uuid, dir, offered, { ttlMs: LIVE_OFFER_TTL_MS }) };
  }

  // ---- live migration: destination

  async preLiveMigration(g: GuestSpec, source: MoveTarget, opts: LiveMigrationOptions): Promise<LiveMigrationTarget> {
    const uuid = g.uuid;
    if (!opts.block) throw new MigrationPreCheckError('The QEMU driver has no shared storage: a live migration must be a block migration');
    const dir = this.h.gdir(uuid);
    if (existsSync(files(dir).guest)) throw new MigrationPreCheckError(`Instance ${uuid} already has a guest on the destination host ${this.h.hostname}`);
    this.h.hold(uuid, true);
    try {
      // The same devices as on the source, from the same spec; disks empty on the local base,
      // but the source's own config drive and console log.
      const offer = (opts.source as { offer?: DiskOffer } | undefined)?.offer;
      if (offer) {
        await mkdir(dir, { recursive: true, mode: 0o750 });
        await fetchOffer(offer, dir, { logger: this.h.logger });
        if (existsSync(join(dir, LIVE_CONSOLE))) await rename(join(dir, LIVE_CONSOLE), files(dir).console);
      }
      const p = await this.h.prepare(g, dir, { keepDisks: true });
      await this.h.save(uuid, p);
      const [migPort, nbdPort] = [await freePort(this.myIp), await freePort(this.myIp)];
      await this.h.launch(uuid, { incoming: `tcp:${hostPart(this.myIp)}:${migPort}`, paused: true });
      const qmp = this.h.qmp(uuid)!;
      await qmp.execute('nbd-server-start', { addr: { type: 'inet', data: { host: this.myIp, port: String(nbdPort) } } });
      const blocks = await qmp.execute<{ device: string; inserted?: { 'node-name': string } }[]>('query-block');
      const disks: QemuLiveTarget['disks'] = [];
      for (const d of (await this.h.guest(uuid)).plan.disks) {
        if (d.media !== 'disk' || d.readonly) continue;
        const node = blocks.find((b) => b.device === d.id)?.inserted?.['node-name'];
        if (!node) throw new Error(`destination guest has no block device ${d.id}`);
        await qmp.execute('block-export-add', { type: 'nbd', id: `mig-${d.id}`, 'node-name': node, name: d.id, writable: true });
        disks.push({ id: d.id, sync: d.id === 'root' && d.format === 'qcow2' ? 'top' : 'full' });
      }
      this.h.logger.info({ instance: uuid, source: source.host, migPort, nbdPort }, 'live migration: destination ready');
      const t: QemuLiveTarget = { uri: `tcp:${hostPart(this.myIp)}:${migPort}`, nbd: { host: this.myIp, port: nbdPort }, disks };
      return t as unknown as LiveMigrationTarget;
    } catch (e) {
      await this.rollbackLiveMigrationAtDestination(uuid);
      throw e instanceof MigrationPreCheckError ? e : new MigrationPreCheckError(`The destination host ${this.h.hostname} could not get ready: ${(e as Error).message}`);
    }
  }

  async postLiveMigrationAtDestination(g: GuestSpec, o: { consoleTail?: Buffer } = {}): Promise<void> {
    const uuid = g.uuid;
    const qmp = this.h.qmp(uuid);
    if (!qmp) throw new InstanceNotFound(`Instance ${uuid} has no incoming guest on this host.`);
    // What the source printed during the move, before this side's guest prints anything (it is
    // paused until the `cont` below; QEMU appends to the same log).
    if (o.consoleTail?.length) await appendFile(files(this.h.gdir(uuid)).console, o.consoleTail.subarray(-LIVE_TAIL_MAX));
    try {
      for (let i = 0; ; i++) {
        const s = await qmp.execute<{ status: string; running: boolean }>('query-status');
        if (s.status !== 'inmigrate') break;
        if (i > 600) throw new Error(`the incoming migration of ${uuid} did not finish`);
        await sleep(50);
      }
      // Only the mirrors wrote to it; an error stopping it must not stop the guest from running on.
      await qmp.execute('nbd-server-stop').catch((err) => this.h.logger.warn({ err, instance: uuid }, 'live migration: could not stop the incoming NBD server'));
      await qmp.execute('cont');
      const p = await this.h.guest(uuid);
      const { adminPassword: _pw, injectedFiles: _f, ...spec } = g;
      await this.h.save(uuid, { ...p, spec });
    } finally {
      this.h.hold(uuid, false);
    }
  }

  async rollbackLiveMigrationAtDestination(uuid: string): Promise<void> {
    await this.h.hardStop(uuid).catch((err) => this.h.logger.warn({ err, instance: uuid }, 'live migration rollback: could not stop the incoming guest'));
    this.h.forget(uuid);
    await rm(this.h.gdir(uuid), { recursive: true, force: true });
    this.h.hold(uuid, false);
  }

  // ---- live migration: source

  async liveMigrate(g: GuestSpec, dest: MoveTarget, target: LiveMigrationTarget, opts: LiveMigrationOptions): Promise<LiveMigrationResult> {
    const uuid = g.uuid;
    const t = target as unknown as QemuLiveTarget;
    if (!t?.uri || !t.nbd || !Array.isArray(t.disks)) throw new MigrationPreCheckError('The live migration target is not a QEMU one (uri, nbd, disks)');
    if (!opts.block) throw new MigrationPreCheckError('The QEMU driver has no shared storage: a live migration must be a block migration');
    return this.h.op(uuid, async () => {
      const qmp = this.h.qmp(uuid);
      if (!qmp) throw new InvalidState(`Instance ${uuid} is not running: it cannot be live migrated`);
      const state: Outgoing = { aborted: false, paused: false, held: [] };
      const tcg = (await this.h.guest(uuid)).plan.accel === 'tcg';
      this.outgoing.set(uuid, state);
      const t0 = Date.now();
      const jobs = t.disks.map((d) => `mig-${d.id}`);
      const failures: string[] = [];
      const onEvent = (e: { event: string; data?: Record<string, unknown> }) => {
        if (e.event === 'BLOCK_JOB_COMPLETED' && e.data?.error && jobs.includes(String(e.data.device))) failures.push(`${String(e.data.device)}: ${String(e.data.error)}`);
      };
      qmp.on('event', onEvent);
      try {
        // 1. Disks: mirror each writable disk into the destination's NBD export until in step.
        for (const d of t.disks) {
          await qmp.execute('drive-mirror', {
            'job-id': `mig-${d.id}`, device: d.id, target: `nbd://${hostPart(t.nbd.host)}:${t.nbd.port}/${d.id}`,
            format: 'raw', mode: 'existing', sync: d.sync,
          });
        }
        let diskTotal = 0;
        for (;;) {
          const list = await qmp.execute<{ device: string; len: number; offset: number; ready: boolean }[]>('query-block-jobs');
          const mine = list.filter((j) => jobs.includes(j.device));
          diskTotal = mine.reduce((n, j) => n + j.len, 0);
          const done = mine.reduce((n, j) => n + j.offset, 0);
          opts.onProgress?.({ totalBytes: diskTotal, processedBytes: done, remainingBytes: diskTotal - done });
          if (state.aborted) throw new MigrationAborted(`Live migration of ${uuid} aborted while copying its disks; the guest keeps running on ${this.h.hostname}`);
          if (failures.length || mine.length < jobs.length) throw new MigrationPreCheckError(`Copying the disks of ${uuid} to ${dest.host} failed: ${failures.join('; ') || 'a mirror job ended'}`);
          if (mine.every((j) => j.ready)) break;
          await sleep(100);
        }
        // 2. Memory, then (paused before the switch-over) the mirrors' end, then device state.
        const bw = this.h.config.get<number>('qemu', 'live_migration_bandwidth');
        // MIGRATION events say at once when the source pauses: polling would add its period to the downtime.
        await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'pause-before-switchover', state: true }, { capability: 'events', state: true }] });
        await qmp.execute('migrate-set-parameters', {
          'max-bandwidth': (bw > 0 ? bw : 100 * 1024) * MiB, 'downtime-limit': this.h.config.get<number>('qemu', 'live_migration_downtime'),
        });
        if (tcg) await this.holdDiskIo(qmp, uuid, state);
        await qmp.execute('migrate', { uri: t.uri });
        let m: QueryMigrate;
        let mirrorsDone = false;
        for (;;) {
          m = await qmp.execute('query-migrate');
          if (m.ram) opts.onProgress?.({ totalBytes: diskTotal + m.ram.total, processedBytes: diskTotal + m.ram.transferred, remainingBytes: m.ram.remaining });
          if (m.status === 'completed') break;
          if (m.status === 'cancelled') throw new MigrationAborted(`Live migration of ${uuid} aborted; the guest keeps running on ${this.h.hostname}`);
          if (m.status === 'failed') throw new MigrationPreCheckError(`Live migration of ${uuid} to ${dest.host} failed: ${m['error-desc'] ?? 'QEMU gave no reason'}`);
          if (m.status === 'pre-switchover' && !mirrorsDone) {
            // 3. The guest is paused, its RAM is across, its device state not yet: the mirrors
            // write out their last dirty blocks now and end (a READY mirror's cancel is a
            // completion without pivot). Only then do the devices go across and the source
            // hand its disks over. Ending them after the switch-over instead (the old order)
            // let the destination take over disks still being written and crashed guests under
            // heavy disk I/O ("list_add corruption"); this is libvirt's order.
            await this.endMirrors(qmp, uuid, jobs, failures);
            mirrorsDone = true;
            await this.releaseDiskIo(qmp, uuid, state.held);
            if (state.aborted) throw new MigrationAborted(`Live migration of ${uuid} aborted; the guest keeps running on ${this.h.hostname}`);
            await qmp.execute('migrate-continue', { state: 'pre-switchover' });
            continue;
          }
          await qmp.waitEvent('MIGRATION', 50);
        }
        if (!mirrorsDone) throw new MigrationPreCheckError(`Live migration of ${uuid} completed without pausing before the switch-over: its disks may not be in step`);
        await this.h.hardStop(uuid);
        this.h.forget(uuid);
        const consoleTail = await this.consoleSinceOffer(uuid).catch((err) => { this.h.logger.warn({ err, instance: uuid }, 'live migration: could not read the console lines printed during the move'); return undefined; });
        await rm(this.h.gdir(uuid), { recursive: true, force: true });
        const result = { totalTimeMs: Date.now() - t0, downtimeMs: m.downtime ?? null };
        this.h.logger.info({ instance: uuid, dest: dest.host, ...result, qemuTotalTimeMs: m['total-time'], consoleTailBytes: consoleTail?.length ?? 0 }, 'live migration completed');
        return { ...result, consoleTail };
      } catch (e) {
        // The guest stays here, running as it was.
        await this.rollBackSource(qmp, uuid, jobs, state);
        throw e;
      } finally {
        qmp.off('event', onEvent);
        this.outgoing.delete(uuid);
        // The destination took the offered files in its preLiveMigration, long before.
        await this.channel.end(uuid);
        await rm(join(this.h.gdir(uuid), LIVE_CONSOLE), { force: true });
      }
    });
  }

  /**
   * What the stopped source guest printed after checkCanLiveMigrateSource copied its console log
   * (the destination has that copy): the rest of console.log, its last LIVE_TAIL_MAX bytes. A log
   * rotated meanwhile (shorter than the copy) goes whole.
   */
  private async consoleSinceOffer(uuid: string): Promise<Buffer | undefined> {
    const dir = this.h.gdir(uuid);
    const copied = (await statIfAny(join(dir, LIVE_CONSOLE)))?.size ?? 0;
    const fh = await open(files(dir).console, 'r').catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
    if (!fh) return undefined;
    try {
      const { size } = await fh.stat();
      const from = Math.max(size >= copied ? copied : 0, size - LIVE_TAIL_MAX);
      if (size <= from) return undefined;
      const b = Buffer.alloc(size - from);
      await fh.read(b, 0, b.length, from);
      return b;
    } finally { await fh.close(); }
  }

  /**
   * A live migration given up on the source: QEMU's migration cancelled, the mirrors abandoned,
   * the guest running again (QEMU resumes it on a cancel; a force-complete's pause or a
   * finished migration's is ours to undo). Every step is tried; each failure is logged.
   */
  private async rollBackSource(qmp: Qmp, uuid: string, jobs: string[], state: Outgoing): Promise<void> {
    const warn = (what: string) => (err: unknown) => { this.h.logger.warn({ err, instance: uuid }, `live migration rollback: could not ${what}`); };
    await qmp.execute('migrate_cancel').catch(warn('cancel the migration'));
    await this.releaseDiskIo(qmp, uuid, state.held);
    const left = await qmp.execute<{ device: string }[]>('query-block-jobs').catch((err) => { warn('list the disk mirrors')(err); return []; });
    for (const j of left.filter((x) => jobs.includes(x.device))) await qmp.execute('block-job-cancel', { device: j.device, force: true }).catch(warn(`abandon the mirror ${j.device}`));
    for (let i = 0; ; i++) {
      const s = await qmp.execute<{ status: string; running: boolean }>('query-status').catch((err) => { warn('read the guest state')(err); return undefined; });
      if (!s) return;
      if (s.status !== 'finish-migrate') {
        if (!s.running && (state.paused || s.status === 'postmigrate')) await qmp.execute('cont').catch(warn('resume the guest'));
        break;
      }
      if (i === 100) { this.h.logger.warn({ instance: uuid }, 'live migration rollback: the guest stayed in finish-migrate'); break; }
      await sleep(20);
    }
    await this.unsetPause(qmp, uuid);
  }

  /**
   * Under TCG, the guest's disk I/O waits while its memory is copied (its block devices
   * throttled to HELD_BPS; the vCPU runs on). A guest reading its disk during the memory copy
   * came out of about 1 live migration in 3 (5 in 15) with corrupted memory on the destination (kernel
   * "list_add corruption", segfaults), however the disk mirrors were ended: the same guest with
   * its I/O on tmpfs, or paused for the memory copy, never did (10 runs each). The requests held
   * back complete when the source stops for the switch-over (QEMU's drain lifts the throttle),
   * and their pages go in the final pass. KVM guests are not held.
   */
  private async holdDiskIo(qmp: Qmp, uuid: string, state: Outgoing): Promise<void> {
    const blocks = await qmp.execute<{ device: string; inserted?: unknown }[]>('query-block');
    for (const b of blocks.filter((x) => x.inserted)) {
      await qmp.execute('block_set_io_throttle', throttle(b.device, HELD_BPS));
      state.held.push(b.device);
    }
  }

  private async releaseDiskIo(qmp: Qmp, uuid: string, held: string[]): Promise<void> {
    while (held.length) {
      const device = held.pop()!;
      await qmp.execute('block_set_io_throttle', throttle(device, 0))
        .catch((err) => this.h.logger.warn({ err, instance: uuid, device }, 'live migration: could not give a block device its I/O back'));
    }
  }

  /** The guest runs on here: a later migrate (suspend's) must not stop before its switch-over. */
  private async unsetPause(qmp: Qmp, uuid: string): Promise<void> {
    // QEMU refuses capability changes until the cancelled migration has wound down.
    for (let i = 0; i < 250; i++) {
      let m: QueryMigrate;
      try { m = await qmp.execute<QueryMigrate>('query-migrate'); } catch (err) {
        this.h.logger.warn({ err, instance: uuid }, 'live migration rollback: could not read the migration state');
        break;
      }
      if (!['active', 'cancelling', 'pre-switchover', 'device', 'setup'].includes(m.status ?? '')) break;
      await sleep(20);
    }
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'pause-before-switchover', state: false }] })
      .catch((err) => this.h.logger.warn({ err, instance: uuid }, 'live migration rollback: could not unset pause-before-switchover'));
  }

  /**
   * Source, a live migration that failed or was cancelled before liveMigrate ran here (the
   * destination refused, an abort while preparing): the offer of checkCanLiveMigrateSource ends
   * now instead of at its TTL, and the console log copy made for it goes. A running liveMigrate
   * ends its own offer when it finishes.
   */
  async rollbackLiveMigrationAtSource(uuid: string, source?: LiveMigrationSource): Promise<void> {
    if (this.outgoing.has(uuid)) return;
    const offer = (source as { offer?: DiskOffer } | undefined)?.offer;
    if (source && !offer) return; // nothing was offered (no config drive, no console log yet)
    if (await this.channel.end(uuid, offer?.token)) return; // another migration's offer since
    await rm(join(this.h.gdir(uuid), LIVE_CONSOLE), { force: true });
    this.h.logger.info({ instance: uuid }, 'live migration given up: the offer to the destination is revoked');
  }

  /**
   * Source, after an agent restart found a live migration of this guest unfinished: what QEMU
   * still does for it stops (its migration, the disk mirrors), and the guest runs on here.
   */
  async cleanupLiveMigration(uuid: string, o: { running: boolean }): Promise<void> {
    const qmp = this.h.qmp(uuid);
    if (!qmp) return;
    const state = this.outgoing.get(uuid);
    if (state) { await this.liveMigrationAbort(uuid); return; }
    const jobs = (await qmp.execute<{ device: string }[]>('query-block-jobs')).map((j) => j.device).filter((d) => d.startsWith('mig-'));
    const held = (await qmp.execute<{ device: string; inserted?: { bps: number } }[]>('query-block')).filter((b) => b.inserted?.bps === HELD_BPS).map((b) => b.device);
    await this.rollBackSource(qmp, uuid, jobs, { aborted: true, paused: false, held });
    const s = await qmp.execute<{ status: string }>('query-status');
    // Paused by the move (pre-switchover, a force-complete): ours to resume, unless the instance is PAUSED.
    if (o.running && (s.status === 'paused' || s.status === 'postmigrate')) await qmp.execute('cont');
    this.h.logger.info({ instance: uuid, jobs }, 'live migration left by a restarted agent: cancelled, the guest runs on here');
  }

  /**
   * Ends the READY mirrors of a paused source: block-job-cancel completes each one after its
   * final synchronisation. Every job must be gone, without error, before the switch-over.
   */
  private async endMirrors(qmp: Qmp, uuid: string, jobs: string[], failures: string[]): Promise<void> {
    for (const j of jobs) await qmp.execute('block-job-cancel', { device: j });
    const t0 = Date.now();
    for (;;) {
      const left = (await qmp.execute<{ device: string }[]>('query-block-jobs')).filter((j) => jobs.includes(j.device));
      if (failures.length) throw new MigrationPreCheckError(`The disks of ${uuid} did not reach the destination: ${failures.join('; ')}`);
      if (!left.length) return;
      if (Date.now() - t0 > MIRROR_END_MS) throw new MigrationPreCheckError(`The disk mirrors of ${uuid} did not finish their last writes within ${MIRROR_END_MS / 1000} s`);
      await qmp.waitEvent('BLOCK_JOB_COMPLETED', 10);
    }
  }

  async liveMigrationForceComplete(uuid: string): Promise<void> {
    const state = this.outgoing.get(uuid);
    const qmp = this.h.qmp(uuid);
    if (!state || !qmp) throw new InvalidState(`Instance ${uuid} is not being live migrated from this host`);
    // Nova's libvirt driver pauses the guest: with no new dirty pages the copy converges.
    await qmp.execute('stop');
    state.paused = true;
  }

  async liveMigrationAbort(uuid: string): Promise<void> {
    const state = this.outgoing.get(uuid);
    const qmp = this.h.qmp(uuid);
    if (!state || !qmp) throw new InvalidState(`Instance ${uuid} is not being live migrated from this host`);
    state.aborted = true;
    // Still copying the disks, QEMU has no migration to cancel yet: liveMigrate sees `aborted`.
    await qmp.execute('migrate_cancel').catch((err) => this.h.logger.warn({ err, instance: uuid }, 'live migration abort: migrate_cancel failed; the copy stops at its next check'));
  }
}
