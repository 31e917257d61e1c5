// Moving real guests between two QEMU drivers in one process — two hosts (src, dst), each its
// own instances_path, both on 127.0.0.1: a cold move with a resize to a bigger root over the
// disk channel (the config drive carried byte for byte), revert, a same-host resize of a stopped
// guest and confirm, a shrink refused, a wrong token refused (403); a live block migration after
// which the guest runs on without a reboot (the source's config drive and console log came
// along, the uptime goes on; a boot there finds its root disk's data); force-complete (the source
// paused) then an abort that leaves the guest running on the source; and live migrations back and
// forth of a guest hammering its disk. Run by `npm run test:qemu`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/common/config.ts';
import { createLogger } from '../../src/common/logging.ts';
import { POWER } from '../../src/compute/objects.ts';
import type { FlavorSpec, GuestSpec, LiveMigrationProgress } from '../../src/compute/virt/driver.ts';
import { MigrationAborted, MigrationPreCheckError } from '../../src/compute/virt/errors.ts';
import { QemuDriver } from '../../src/compute/virt/qemu/driver.ts';
import { run } from '../../src/guest/run.ts';
import type { DiskOffer } from '../../src/compute/virt/qemu/disk-transfer.ts';
import { TOKEN_HEADER } from '../../src/compute/virt/qemu/disk-transfer.ts';
import '../../src/compute/config.ts';
import '../../src/compute/virt/qemu/config.ts';
import { cacheDir, fileImage, FileImages, minimalImage } from './helpers.ts';
import { consoleLog, guestSpec, ioGuestSpec, KERNEL_TROUBLE, MOVING_GUEST, waitFor } from './moving.ts';

let dir: string;
let src: QemuDriver;
let dst: QemuDriver;
const logger = createLogger({ level: process.env.STRATUS_LOG_LEVEL ?? 'warn' });
const flavor = (rootGb: number): FlavorSpec => ({ id: `f${rootGb}`, name: `root${rootGb}`, vcpus: 1, memoryMb: 256, rootGb, ephemeralGb: 0, swapMb: 0, extraSpecs: {} });

async function makeDriver(host: string, extra: string[] = []): Promise<QemuDriver> {
  const conf = join(dir, `${host}.conf`);
  await writeFile(conf, ['[DEFAULT]', `state_path = ${dir}`, 'my_ip = 127.0.0.1', 'shutdown_timeout = 20', '[qemu]', `guest_cache_dir = ${cacheDir}`, 'power_sync_interval = 1', ...extra, ''].join('\n'));
  const images = new FileImages();
  images.add(await fileImage(MOVING_GUEST, await minimalImage(), 'qcow2'));
  const d = new QemuDriver({ config: await loadConfig(conf), logger, images, hostname: host, instancesPath: join(dir, host) });
  await d.initHost([]);
  return d;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stratus-moves-'));
  src = await makeDriver('src');
  // dst as a source is slow on purpose (1 MiB/s): the abort test needs a migration that lasts.
  dst = await makeDriver('dst', ['live_migration_bandwidth = 1']);
});

after(async () => {
  for (const d of [src, dst]) {
    for (const u of d?.listGuests() ?? []) await d.destroy(u).catch(() => undefined);
    await d?.cleanupHost();
  }
  // STRATUS_KEEP_TEST_DIR=1 keeps the instances (console logs) for a post-mortem.
  if (!process.env.STRATUS_KEEP_TEST_DIR) await rm(dir, { recursive: true, force: true });
  else console.log(`# kept ${dir}`);
});

const log = (host: string, uuid: string) => consoleLog(join(dir, host, uuid));
const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

test('cold move: resize to a bigger root on another host over the disk channel, wrong token refused, revert; same-host resize and confirm; shrink refused', async () => {
  const g = guestSpec({ flavor: flavor(2) });
  await src.spawn(g);
  const first = await waitFor(() => log('src', g.uuid), /stratus-test: wrote (\S+)/);
  const marker = /stratus-test: wrote (\S+)/.exec(first)![1]!;

  // A smaller root is refused before the guest is touched.
  await assert.rejects(src.migrateDiskAndPowerOff(g, { host: 'dst', address: '127.0.0.1' }, flavor(1)), MigrationPreCheckError);
  assert.equal((await src.info(g.uuid)).powerState, POWER.RUNNING);

  const configDrive = await sha256(join(dir, 'src', g.uuid, 'disk.config'));
  let t = Date.now();
  const disks = await src.migrateDiskAndPowerOff(g, { host: 'dst', address: '127.0.0.1' }, flavor(3));
  console.log(`# power off + disks offered ${Date.now() - t} ms`);
  const offer = disks.offer as DiskOffer;
  assert.match(offer.url, /^http:\/\/127\.0\.0\.1:\d+\/migrations\//);
  assert.ok(offer.files.some((f) => f.name === 'disk'));
  assert.ok(existsSync(join(dir, 'src', `${g.uuid}_resize`, 'disk')) && !existsSync(join(dir, 'src', g.uuid)));
  for (const headers of [{}, { [TOKEN_HEADER]: 'x'.repeat(offer.token.length) }] as Record<string, string>[]) {
    const r = await fetch(`${offer.url}/disk`, { headers });
    assert.equal(r.status, 403);
    await r.body?.cancel();
  }
  const other = await fetch(`${offer.url.replace(g.uuid, randomUUID())}/disk`, { headers: { [TOKEN_HEADER]: offer.token } });
  assert.equal(other.status, 403);

  const bigger = { ...g, flavor: flavor(3), rootGb: 3 };
  const t1 = Date.now();
  await dst.finishMigration(bigger, disks, { resize: true, powerOn: true });
  console.log(`# finishMigration (fetch, rebase, grow, config drive, start) ${Date.now() - t1} ms`);
  const moved = await waitFor(() => log('dst', g.uuid), /stratus-test: found \S+/);
  console.log(`# cold move with resize to another host (power off, copy, boot) ${Date.now() - t} ms`);
  assert.match(moved, /stratus-init: root 3G/);
  assert.ok(moved.includes(`stratus-test: found ${marker}`), 'the root disk came along');
  assert.equal((await dst.info(g.uuid)).powerState, POWER.RUNNING);
  assert.equal(await sha256(join(dir, 'dst', g.uuid, 'disk.config')), configDrive, 'the config drive came along byte for byte');

  // Revert: the destination drops its copy, the source starts the kept disks with the old flavor.
  await dst.destroy(g.uuid);
  await src.finishRevertMigration(g, { powerOn: true });
  const reverted = await waitFor(() => log('src', g.uuid), /(stratus-test: found \S+[\s\S]*)/);
  assert.match(reverted.slice(reverted.lastIndexOf('stratus-init: kernel')), /stratus-init: root 2G/);
  assert.ok(!existsSync(join(dir, 'src', `${g.uuid}_resize`)));
  const gone = await fetch(`${offer.url}/disk`, { headers: { [TOKEN_HEADER]: offer.token } }).then((r) => r.status, () => 'refused');
  assert.ok(gone === 403 || gone === 'refused', `the token of an ended move still works (${gone})`);

  // Same host (allow_resize_to_same_host): old disks under <uuid>_resize/, new ones in <uuid>/, confirm drops the old.
  t = Date.now();
  const same = await src.migrateDiskAndPowerOff(g, { host: 'src', address: '127.0.0.1' }, flavor(3));
  assert.equal(same.offer, undefined);
  // Not started (powerOn false, as for a stopped instance): one boot less; the disk tells.
  await src.finishMigration(bigger, same, { resize: true, powerOn: false });
  console.log(`# same-host resize of a stopped guest ${Date.now() - t} ms`);
  assert.equal((await src.info(g.uuid)).powerState, POWER.SHUTDOWN);
  const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', '-f', 'qcow2', join(dir, 'src', g.uuid, 'disk')])).stdout);
  assert.equal(info['virtual-size'], 3 * 1024 ** 3);
  assert.ok(existsSync(join(dir, 'src', `${g.uuid}_resize`)));
  await src.confirmMigration(g.uuid);
  await src.confirmMigration(g.uuid); // idempotent
  assert.ok(!existsSync(join(dir, 'src', `${g.uuid}_resize`)));
  assert.ok(existsSync(join(dir, 'src', g.uuid, 'disk')));
  await src.destroy(g.uuid);
});

test('live block migration: the guest runs on at the destination without a reboot; force-complete pauses it, an abort leaves it running on the source', async () => {
  const g = guestSpec({ flavor: flavor(2) });
  await src.spawn(g);
  await waitFor(() => log('src', g.uuid), /stratus-test: tick/);
  const before = await log('src', g.uuid);
  const lastUptime = Math.max(...[...before.matchAll(/stratus-test: tick ([\d.]+)/g)].map((m) => Number(m[1])));

  await assert.rejects(src.liveMigrationAbort(g.uuid), /not being live migrated/);
  await assert.rejects(dst.preLiveMigration(g, { host: 'src', address: '127.0.0.1' }, { block: false }), MigrationPreCheckError);
  const configDrive = await sha256(join(dir, 'src', g.uuid, 'disk.config'));
  const source = await src.checkCanLiveMigrateSource(g, { host: 'dst', address: '127.0.0.1' });
  const target = await dst.preLiveMigration(g, { host: 'src', address: '127.0.0.1' }, { block: true, source });
  // The destination has the source's own config drive, byte for byte (a rebuilt one differs).
  assert.equal(await sha256(join(dir, 'dst', g.uuid, 'disk.config')), configDrive);
  // A tick printed after the console log was offered: it must reach the destination's log too.
  const offered = (await log('dst', g.uuid)).length;
  const during = /stratus-test: tick ([\d.]+)/.exec((await waitFor(async () => (await log('src', g.uuid)).slice(offered), /stratus-test: tick [\d.]+ \S+\r?\n/)))![0];
  const progress: LiveMigrationProgress[] = [];
  const r = await src.liveMigrate(g, { host: 'dst', address: '127.0.0.1' }, target, { block: true, onProgress: (p) => progress.push(p) });
  assert.ok(r.consoleTail?.includes(during), `the source's console tail has ${during}`);
  await dst.postLiveMigrationAtDestination(g, { consoleTail: r.consoleTail });
  // The offer ended with the migration.
  const offer = source.offer as DiskOffer;
  const ended = await fetch(`${offer.url}/disk.config`, { headers: { [TOKEN_HEADER]: offer.token } }).then((x) => x.status, () => 'refused');
  assert.ok(ended === 403 || ended === 'refused', `the live migration's offer outlived it (${ended})`);
  console.log(`# live block migration of a 256 MiB guest: total ${r.totalTimeMs} ms, QEMU downtime ${r.downtimeMs} ms`);
  assert.ok(r.totalTimeMs > 0 && r.downtimeMs !== null && r.downtimeMs >= 0);
  assert.ok(progress.length > 0 && progress.at(-1)!.processedBytes > 0);
  assert.ok(!src.listGuests().includes(g.uuid) && !existsSync(join(dir, 'src', g.uuid)), 'the source copy is gone');
  assert.equal((await dst.info(g.uuid)).powerState, POWER.RUNNING);
  // The console on the destination continues the same boot: its log so far came along, then
  // ticks with a larger uptime, and no boot but the first.
  const uptimes = (text: string) => [...text.matchAll(/stratus-test: tick ([\d.]+) (\S+)/g)];
  await waitFor(async () => String((uptimes(await log('dst', g.uuid)).filter((t) => Number(t[1]) > lastUptime).length) >= 2), /true/);
  const on = await log('dst', g.uuid);
  const ticks = uptimes(on);
  assert.ok(Number(ticks.at(-1)![1]) > lastUptime, `uptime went on (${ticks.at(-1)![1]} after ${lastUptime})`);
  assert.ok(on.startsWith(before.slice(0, 1000)), 'the console log so far came along');
  assert.ok(on.includes(during), `what the guest printed during the move came along (${during})`);
  const seq = ticks.map((t) => Number(t[1]));
  assert.ok(seq.every((u, i) => i === 0 || u > seq[i - 1]!), `the ticks are in order, none twice: ${seq.join(' ')}`);
  assert.equal(on.split('stratus-init: kernel').length, 2, 'one boot only');
  const marker = /stratus-test: wrote (\S+)/.exec(before)![1]!;
  assert.equal(ticks.at(-1)![2], marker);
  // The root disk was mirrored: a boot on the destination finds the marker written before the move.
  await dst.reboot(g, true);
  await waitFor(() => log('dst', g.uuid), new RegExp(`stratus-init: kernel[\\s\\S]*stratus-test: found ${marker}[\\s\\S]*stratus-test: tick`));

  // Back to src, slowly (dst's 1 MiB/s cap), aborted in the memory phase: the guest stays on dst.
  const back = await src.preLiveMigration(g, { host: 'dst', address: '127.0.0.1' }, { block: true, source: await dst.checkCanLiveMigrateSource(g, { host: 'src', address: '127.0.0.1' }) });
  let inRam = false;
  const moving = dst.liveMigrate(g, { host: 'src', address: '127.0.0.1' }, back, { block: true, onProgress: (p) => { if (p.totalBytes > 200 * 1024 ** 2) inRam = true; } });
  const caught = moving.catch((e: Error) => e);
  await waitFor(async () => String(inRam), /true/, 60_000);
  // Force-complete pauses the guest (at 1 MiB/s it still would not finish soon); abort resumes it.
  await dst.liveMigrationForceComplete(g.uuid);
  assert.equal((await dst.info(g.uuid)).powerState, POWER.PAUSED);
  await dst.liveMigrationAbort(g.uuid);
  assert.ok(await caught instanceof MigrationAborted);
  await src.rollbackLiveMigrationAtDestination(g.uuid);
  await src.rollbackLiveMigrationAtDestination(g.uuid); // idempotent
  assert.ok(!existsSync(join(dir, 'src', g.uuid)) && !src.listGuests().includes(g.uuid));
  assert.equal((await dst.info(g.uuid)).powerState, POWER.RUNNING);
  const n = (await log('dst', g.uuid)).split('stratus-test: tick').length;
  await waitFor(async () => String((await log('dst', g.uuid)).split('stratus-test: tick').length > n + 1), /true/, 30_000);
  // A live migration given up before liveMigrate (the destination refused): its offer is revoked at once.
  const refused = await dst.checkCanLiveMigrateSource(g, { host: 'src', address: '127.0.0.1' });
  const o = refused.offer as DiskOffer;
  const open = await fetch(`${o.url}/console.log.live`, { headers: { [TOKEN_HEADER]: o.token } });
  assert.equal(open.status, 200);
  await open.body?.cancel();
  await dst.rollbackLiveMigrationAtSource(g.uuid, refused);
  const gone = await fetch(`${o.url}/console.log.live`, { headers: { [TOKEN_HEADER]: o.token } }).then((x) => x.status, () => 'refused');
  assert.ok(gone === 403 || gone === 'refused', `the offer outlived its migration (${gone})`);
  assert.ok(!existsSync(join(dir, 'dst', g.uuid, 'console.log.live')), 'the console log copy went with it');
  await dst.destroy(g.uuid);
});

// The defect this guards against: under heavy guest disk I/O, a live block migration ended with
// the guest's kernel reporting list corruption after the switch-over (1 run in 5). The guest
// writes, syncs, drops its page cache and reads its files back all the time; after every move
// it must go on on the other host with every file intact and nothing on its console.
test('live block migration under heavy guest disk I/O: back and forth, the data intact, no kernel complaint', async () => {
  const runs = Number(process.env.STRATUS_MIGRATION_IO_RUNS ?? 4);
  const a = await makeDriver('ioa');
  const b = await makeDriver('iob');
  const hosts = [{ name: 'ioa', d: a }, { name: 'iob', d: b }];
  const g = ioGuestSpec({ flavor: flavor(2) });
  try {
    await a.spawn(g);
    const ioLines = (text: string) => [...text.matchAll(/stratus-test: io (\d+) ([\d.]+) bad=(\d+)/g)].map((m) => ({ n: Number(m[1]), uptime: Number(m[2]), bad: Number(m[3]) }));
    await waitFor(() => log('ioa', g.uuid), /stratus-test: io 3 /);
    let last = ioLines(await log('ioa', g.uuid)).at(-1)!;
    for (let i = 0; i < runs; i++) {
      const [from, to] = i % 2 === 0 ? hosts : [hosts[1]!, hosts[0]!];
      const source = await from.d.checkCanLiveMigrateSource(g, { host: to.name, address: '127.0.0.1' });
      const target = await to.d.preLiveMigration(g, { host: from.name, address: '127.0.0.1' }, { block: true, source });
      const r = await from.d.liveMigrate(g, { host: to.name, address: '127.0.0.1' }, target, { block: true });
      await to.d.postLiveMigrationAtDestination(g);
      // Three more rounds of write, sync, drop caches, read back, on the new host.
      const after = await waitFor(async () => {
        const lines = ioLines(await log(to.name, g.uuid)).filter((l) => l.n > last.n);
        return lines.length >= 3 ? 'ok' : '';
      }, /ok/, 120_000).then(() => log(to.name, g.uuid));
      const lines = ioLines(after).filter((l) => l.n > last.n);
      console.log(`# I/O-heavy live migration ${i + 1}/${runs} ${from.name} → ${to.name}: total ${r.totalTimeMs} ms, downtime ${r.downtimeMs} ms; io rounds ${last.n} → ${lines.at(-1)!.n}`);
      assert.doesNotMatch(after, KERNEL_TROUBLE, `the guest's kernel complained after move ${i + 1}`);
      assert.ok(lines.every((l) => l.bad === 0), `files changed under the guest after move ${i + 1}: ${JSON.stringify(lines)}`);
      assert.ok(lines[0]!.uptime > last.uptime, 'the guest went on (no reboot)');
      assert.equal(after.split('stratus-init: kernel').length, 2, 'one boot only (the console log came along)');
      assert.ok(!from.d.listGuests().includes(g.uuid));
      last = lines.at(-1)!;
    }
  } finally {
    for (const d of [a, b]) {
      for (const u of d.listGuests()) await d.destroy(u);
      await d.cleanupHost();
    }
  }
});
