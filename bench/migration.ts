// Moving real guests between two QEMU drivers on loopback (two hosts in one process, each its
// own instances_path, my_ip 127.0.0.1), the minimal guest under the host's accelerator:
//   - live block migration of a 512 MiB guest, back and forth: total time (disk mirror + RAM),
//     QEMU's own downtime figure (target < 100 ms)
//   - cold resize to another host of a guest whose overlay holds 1 GiB of data: ACPI power off,
//     disk channel transfer + rebase + grow + start (and the CPU time of both channel ends, the
//     figure that holds on a loaded machine), and the boot on the destination
//
//   npm run bench -- migration [--live=3] [--tag=NAME]   (results in migration[-NAME]-<date>.json)
// Needs the minimal image (STRATUS_MINIMAL_IMAGE or the guest cache), qemu-system-x86, qemu-utils.
import { loadavg, tmpdir } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { round, writeResult } from './lib.ts';

export default async function run(argv: string[]): Promise<void> {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  const liveRuns = Number(get('live') ?? 3);
  const tag = get('tag');
  const { loadConfig } = await import('../src/common/config.ts');
  const { createLogger } = await import('../src/common/logging.ts');
  const { QemuDriver } = await import('../src/compute/virt/qemu/driver.ts');
  const { run: tool } = await import('../src/guest/run.ts');
  await import('../src/compute/config.ts');
  await import('../src/compute/virt/qemu/config.ts');
  const { cacheDir, fileImage, FileImages, minimalImage } = await import('../test/qemu/helpers.ts');
  const { consoleLog, guestSpec, MOVING_GUEST, waitFor } = await import('../test/qemu/moving.ts');
  type Driver = InstanceType<typeof QemuDriver>;

  const dir = await mkdtemp(join(tmpdir(), 'stratus-bench-migration-'));
  const logger = createLogger({ level: process.env.STRATUS_LOG_LEVEL ?? 'warn' });
  const drivers: Record<string, Driver> = {};
  const result: Record<string, unknown> = { loadavgBefore: loadavg().map((x) => round(x, 2)) };
  const flavor = (memoryMb: number, rootGb: number) => ({ id: `f${memoryMb}-${rootGb}`, name: `m${memoryMb}r${rootGb}`, vcpus: 1, memoryMb, rootGb, ephemeralGb: 0, swapMb: 0, extraSpecs: {} });
  try {
    const image = await minimalImage();
    for (const host of ['a', 'b']) {
      const conf = join(dir, `${host}.conf`);
      await writeFile(conf, ['[DEFAULT]', `state_path = ${dir}`, 'my_ip = 127.0.0.1', 'shutdown_timeout = 30', '[qemu]', `guest_cache_dir = ${cacheDir}`, ''].join('\n'));
      const images = new FileImages();
      images.add(await fileImage(MOVING_GUEST, image, 'qcow2'));
      drivers[host] = new QemuDriver({ config: await loadConfig(conf), logger, images, hostname: host, instancesPath: join(dir, host) });
      await drivers[host]!.initHost([]);
    }
    const log = (host: string, uuid: string) => consoleLog(join(dir, host, uuid));

    // Live: 512 MiB, a → b → a …
    const g = guestSpec({ memoryMb: 512, flavor: flavor(512, 2) });
    await drivers.a!.spawn(g);
    await waitFor(() => log('a', g.uuid), /stratus-test: tick/, 180_000);
    const live: { from: string; totalMs: number; downtimeMs: number | null }[] = [];
    let at = 'a';
    for (let i = 0; i < liveRuns; i++) {
      const to = at === 'a' ? 'b' : 'a';
      // The whole flow: the source offers its config drive and console log, the destination takes them.
      const source = await drivers[at]!.checkCanLiveMigrateSource(g, { host: to, address: '127.0.0.1' });
      const target = await drivers[to]!.preLiveMigration(g, { host: at, address: '127.0.0.1' }, { block: true, source });
      const r = await drivers[at]!.liveMigrate(g, { host: to, address: '127.0.0.1' }, target, { block: true });
      await drivers[to]!.postLiveMigrationAtDestination(g);
      live.push({ from: at, totalMs: r.totalTimeMs, downtimeMs: r.downtimeMs });
      console.log(`live ${at} → ${to}: total ${r.totalTimeMs} ms, QEMU downtime ${r.downtimeMs} ms`);
      at = to;
      await waitFor(() => log(at, g.uuid), /stratus-test: tick/, 60_000);
    }
    await drivers[at]!.destroy(g.uuid);
    const sorted = (k: 'totalMs' | 'downtimeMs') => live.map((l) => l[k] ?? NaN).sort((x, y) => x - y);
    result.live = { memoryMb: 512, runs: live, totalMsMedian: sorted('totalMs')[Math.floor(live.length / 2)], downtimeMsMedian: sorted('downtimeMs')[Math.floor(live.length / 2)], downtimeTargetMs: 100 };

    // Cold: a 1 GiB overlay (written outside the guest's partition, which the next boot grows over).
    const c = guestSpec({ flavor: flavor(256, 4), rootGb: 4 });
    await drivers.a!.spawn({ ...c, flavor: flavor(256, 2), rootGb: 2 });
    await waitFor(() => log('a', c.uuid), /stratus-test: tick/, 180_000);
    await drivers.a!.powerOff(c.uuid);
    const disk = join(dir, 'a', c.uuid, 'disk');
    await tool('qemu-img', ['resize', '-q', '-f', 'qcow2', disk, String(4 * 2 ** 30)]);
    await tool('qemu-io', ['-f', 'qcow2', '-c', `write -q -P 0xa5 ${2.5 * 2 ** 30} 1G`, disk]);
    const overlay = JSON.parse((await tool('qemu-img', ['info', '--output=json', '-f', 'qcow2', disk])).stdout)['actual-size'] as number;
    await drivers.a!.powerOn(c);
    // "up in" comes after acpid has started: the power button is heard from then on.
    await waitFor(() => log('a', c.uuid), /stratus-test: found[\s\S]*stratus-init: up in/, 180_000);
    let t = Date.now();
    const disks = await drivers.a!.migrateDiskAndPowerOff(c, { host: 'b', address: '127.0.0.1' }, flavor(256, 5));
    const powerOffMs = Date.now() - t;
    t = Date.now();
    const cpu0 = process.cpuUsage();
    await drivers.b!.finishMigration({ ...c, flavor: flavor(256, 5), rootGb: 5 }, disks, { resize: true, powerOn: true });
    const finishMs = Date.now() - t;
    const cpu = process.cpuUsage(cpu0);
    t = Date.now();
    const booted = await waitFor(() => log('b', c.uuid), /stratus-init: root 5G[\s\S]*stratus-test: found/, 180_000);
    const bootMs = Date.now() - t;
    await drivers.a!.confirmMigration(c.uuid);
    await drivers.b!.destroy(c.uuid);
    result.cold = { overlayBytes: overlay, powerOffMs, transferRebaseGrowStartMs: finishMs, transferMiBps: round(overlay / 2 ** 20 / (finishMs / 1000), 1), finishCpuMs: { user: round(cpu.user / 1000, 0), system: round(cpu.system / 1000, 0), note: 'this process: both ends of the disk channel (qemu-img and genisoimage children not counted)' }, bootMs, totalMs: powerOffMs + finishMs + bootMs, grownTo5G: /root 5G/.test(booted) };
    console.log(`cold resize with a ${round(overlay / 2 ** 30, 2)} GiB overlay: power off ${powerOffMs} ms, transfer+rebase+grow+start ${finishMs} ms, boot ${bootMs} ms`);
  } finally {
    for (const d of Object.values(drivers)) {
      for (const u of d.listGuests()) await d.destroy(u).catch(() => undefined);
      await d.cleanupHost();
    }
    await rm(dir, { recursive: true, force: true });
  }
  result.loadavgAfter = loadavg().map((x) => round(x, 2));
  result.note = 'Machine shared with other engineers (2 cores); the guests run under TCG (no usable KVM here). Live: minimal guest, mostly idle memory; total = mirror of the root overlay top layer + RAM; downtime = QEMU query-migrate "downtime" (source side).';
  result.accelerator = drivers.a?.accelerator?.accel;
  writeResult(tag ? `migration-${tag}` : 'migration', result);
}
