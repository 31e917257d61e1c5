// Two hosts across a network boundary (issue 12 item 9): the destination's QEMU driver runs in
// its own process inside a network namespace (test/helpers/netns.ts), with [DEFAULT] my_ip on
// its side of a veth pair; the source runs here with my_ip on the host side. A live block
// migration into the namespace (QEMU's -incoming and NBD server listen on the namespace's
// address) and a cold move with resize back out of it (the namespace side serves the disks on
// its disk channel) both cross the veth, which the pair's byte counters show.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/common/config.ts';
import { createLogger } from '../../src/common/logging.ts';
import { POWER } from '../../src/compute/objects.ts';
import type { FlavorSpec, MigratedDisks } from '../../src/compute/virt/driver.ts';
import { QemuDriver } from '../../src/compute/virt/qemu/driver.ts';
import type { DiskOffer } from '../../src/compute/virt/qemu/disk-transfer.ts';
import '../../src/compute/config.ts';
import '../../src/compute/virt/qemu/config.ts';
import { Netns } from '../helpers/netns.ts';
import { cacheDir, fileImage, FileImages, minimalImage } from './helpers.ts';
import { consoleLog, guestSpec, MOVING_GUEST, waitFor } from './moving.ts';

const available = await Netns.available();
let dir: string;
let ns: Netns;
let src: QemuDriver;
let child: ChildProcess;
const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
let next = 0;
const flavor = (rootGb: number): FlavorSpec => ({ id: `f${rootGb}`, name: `root${rootGb}`, vcpus: 1, memoryMb: 256, rootGb, ephemeralGb: 0, swapMb: 0, extraSpecs: {} });

/** A call to the driver inside the namespace. */
function dst<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    child.send({ id, method, args });
  });
}

const conf = async (host: string, myIp: string) => {
  const p = join(dir, `${host}.conf`);
  await writeFile(p, ['[DEFAULT]', `state_path = ${dir}`, `my_ip = ${myIp}`, 'shutdown_timeout = 20', '[qemu]', `guest_cache_dir = ${cacheDir}`, 'power_sync_interval = 1', ''].join('\n'));
  return p;
};

before(async () => {
  if (!available) return;
  dir = await mkdtemp(join(tmpdir(), 'stratus-netns-'));
  ns = await Netns.create();
  const image = await minimalImage();
  const images = new FileImages();
  images.add(await fileImage(MOVING_GUEST, image, 'qcow2'));
  src = new QemuDriver({ config: await loadConfig(await conf('src', ns.hostIp)), logger: createLogger({ level: process.env.STRATUS_LOG_LEVEL ?? 'warn' }), images, hostname: 'src', instancesPath: join(dir, 'src') });
  await src.initHost([]);
  child = ns.exec(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'remote-driver.ts'), await conf('dst', ns.nsIp), 'dst', join(dir, 'dst'), MOVING_GUEST, image], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the driver in the namespace exited (${code})`)));
    child.on('message', (m: { ready?: boolean; id?: number; result?: unknown; error?: { name: string; message: string } }) => {
      if (m.ready) return resolve();
      const p = pending.get(m.id!);
      pending.delete(m.id!);
      if (m.error) p?.reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
      else p?.resolve(m.result);
    });
  });
});

after(async () => {
  if (!available) return;
  for (const u of src?.listGuests() ?? []) await src.destroy(u).catch(() => undefined);
  await src?.cleanupHost();
  if (child?.connected) await dst('shutdown').catch(() => undefined);
  // Guests are daemonized out of the child's process group: any left are stopped by their pid files.
  for (const host of ['src', 'dst']) {
    for (const u of await readdir(join(dir, host)).catch(() => [] as string[])) {
      const pid = Number(await readFile(join(dir, host, u, 'qemu.pid'), 'utf8').catch(() => ''));
      if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  await ns?.remove();
  await rm(dir, { recursive: true, force: true });
});

test('live block migration into a network namespace and a cold move with resize out of it cross the veth', { skip: !available && 'ip netns is not usable here (needs root and iproute2)' }, async () => {
  const g = guestSpec({ flavor: flavor(2) });
  await src.spawn(g);
  const before = await waitFor(() => consoleLog(join(dir, 'src', g.uuid)), /stratus-test: tick/);
  const marker = /stratus-test: wrote (\S+)/.exec(before)![1]!;

  let t0 = await ns.traffic();
  const target = await dst<{ uri: string; nbd: { host: string } }>('preLiveMigration', g, { host: 'src', address: ns.hostIp }, { block: true });
  assert.equal(target.uri.split(':')[1], ns.nsIp);
  assert.equal(target.nbd.host, ns.nsIp);
  const r = await src.liveMigrate(g, { host: 'dst', address: ns.nsIp }, target, { block: true });
  await dst('postLiveMigrationAtDestination', g);
  let t1 = await ns.traffic();
  console.log(`# live block migration across the veth: total ${r.totalTimeMs} ms, QEMU downtime ${r.downtimeMs} ms, ${((t1.tx - t0.tx) / 2 ** 20).toFixed(1)} MiB sent into the namespace`);
  assert.ok(t1.tx - t0.tx > 4 * 2 ** 20, 'the guest\'s memory and disk went through the veth');
  assert.equal((await dst<{ powerState: number }>('info', g.uuid)).powerState, POWER.RUNNING);
  const on = await waitFor(() => consoleLog(join(dir, 'dst', g.uuid)), /stratus-test: tick[\s\S]*stratus-test: tick/);
  assert.doesNotMatch(on, /stratus-init: kernel/);
  assert.ok(on.includes(` ${marker}\n`) || on.includes(` ${marker}\r\n`));

  // Out again, cold, with a bigger root: the namespace side serves the disks on its my_ip.
  t0 = await ns.traffic();
  const disks = await dst<MigratedDisks>('migrateDiskAndPowerOff', g, { host: 'src', address: ns.hostIp }, flavor(3));
  assert.ok((disks.offer as DiskOffer).url.startsWith(`http://${ns.nsIp}:`));
  await src.finishMigration({ ...g, flavor: flavor(3), rootGb: 3 }, disks, { resize: true, powerOn: true });
  await dst('confirmMigration', g.uuid);
  t1 = await ns.traffic();
  assert.ok(t1.rx - t0.rx > 1 * 2 ** 20, 'the disks came out through the veth');
  const back = await waitFor(() => consoleLog(join(dir, 'src', g.uuid)), /stratus-test: found \S+/);
  assert.match(back, /stratus-init: root 3G/);
  assert.ok(back.includes(`stratus-test: found ${marker}`));
  await src.destroy(g.uuid);
});
