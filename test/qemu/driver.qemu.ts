// The QEMU driver on real guests (the minimal image) under the host's accelerator: spawn with
// the root disk grown to the flavor, power operations through QMP, suspend/resume through a
// state file, rescue, snapshot, adoption by a new driver, a killed qemu noticed by the power
// sync, a guest ignoring ACPI, a UEFI (OVMF) boot, unsafe and oversized images refused, a corrupt cached base
// downloaded again, and destroy leaving nothing. Run by `npm run test:qemu` (not `npm test`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { loadConfig, type Config } from '../../src/common/config.ts';
import { createLogger } from '../../src/common/logging.ts';
import { POWER } from '../../src/compute/objects.ts';
import type { GuestSpec, LifecycleEvent } from '../../src/compute/virt/driver.ts';
import { QemuDriver } from '../../src/compute/virt/qemu/driver.ts';
import { run } from '../../src/guest/run.ts';
import { debianCloudKernel } from '../../src/guest/kernel.ts';
import { makeInitramfs } from '../../src/guest/initramfs.ts';
import '../../src/compute/config.ts';
import '../../src/compute/virt/qemu/config.ts';
import { cacheDir, fileImage, FileImages, minimalImage } from './helpers.ts';

let dir: string;
let config: Config;
let images: FileImages;
let driver: QemuDriver;
const events: LifecycleEvent[] = [];
const logger = createLogger({ level: process.env.STRATUS_LOG_LEVEL ?? 'warn' });
const MIN = 'img-minimal';

function spec(over: Partial<GuestSpec> = {}): GuestSpec {
  const uuid = randomUUID();
  return {
    uuid, name: `instance-${uuid.slice(0, 8)}`, vcpus: 1, memoryMb: 256, rootGb: 2, imageId: MIN, imageProps: {},
    userData: null, keyData: null, hostname: 'vm1', network: { mode: 'none', vifs: [] },
    flavor: { id: '1', name: 'test', vcpus: 1, memoryMb: 256, rootGb: 2, ephemeralGb: 0, swapMb: 0, extraSpecs: {} }, ...over,
  };
}

/** Waits for the whole console log (the driver's consoleOutput is its last 100 KiB) to match. */
async function waitConsole(_d: QemuDriver, uuid: string, re: RegExp, ms = 90_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const out = await readFile(join(dir, 'instances', uuid, 'console.log'), 'utf8').catch(() => '');
    if (re.test(out)) return out;
    if (Date.now() - t0 > ms) throw new Error(`console of ${uuid} (power ${(await _d.info(uuid).catch(() => undefined))?.powerState}, ${JSON.stringify(await (_d as any).live.get(uuid)?.qmp?.execute('query-status').catch((e: Error) => e.message))}) never matched ${re}:\n${out.split('\n').filter((l) => /stratus-init|Linux version|Power down|reboot:/.test(l)).join('\n')}\n${out.slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function newDriver(): Promise<QemuDriver> {
  const d = new QemuDriver({ config, logger, images, hostname: 'qemu-test', instancesPath: join(dir, 'instances') });
  d.onLifecycleEvent((e) => events.push(e));
  return d;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stratus-qemu-'));
  await writeFile(join(dir, 'stratus.conf'), [
    '[DEFAULT]', `state_path = ${dir}`, 'shutdown_timeout = 30', '[qemu]', `guest_cache_dir = ${cacheDir}`, 'power_sync_interval = 1',
    '[neutron]', 'metadata_proxy_shared_secret = driver-test', '',
  ].join('\n'));
  config = await loadConfig(join(dir, 'stratus.conf'));
  images = new FileImages();
  images.add(await fileImage(MIN, await minimalImage(), 'qcow2'));
  driver = await newDriver();
  await driver.initHost([]);
});

after(async () => {
  for (const u of driver.listGuests()) await driver.destroy(u).catch(() => undefined);
  await driver.cleanupHost();
  await rm(dir, { recursive: true, force: true });
});

test('host: QEMU, real resources, an accelerator that ran a guest, capabilities as traits', async () => {
  const r = await driver.hostResources();
  assert.equal(r.hypervisorType, 'QEMU');
  assert.ok(r.vcpus >= 1 && r.memoryMb > 512 && r.localGb > 0);
  assert.ok(r.hypervisorVersion >= 7_000_000);
  assert.ok(r.supportedInstances.some(([a, h, m]) => a === 'x86_64' && h === 'qemu' && m === 'hvm'));
  assert.ok(driver.accelerator && ['kvm', 'tcg'].includes(driver.accelerator.accel));
  assert.ok(driver.capabilities().includes('COMPUTE_STORAGE_BUS_VIRTIO'));
});

test('a minimal guest: boots, root grown to the flavor, power operations, suspend/resume, rescue, snapshot, destroy', async () => {
  const g = spec();
  const t0 = Date.now();
  await driver.spawn(g);
  const spawnMs = Date.now() - t0;
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.RUNNING);
  let out = await waitConsole(driver, g.uuid, /stratus-init: up in/);
  assert.match(out, /stratus-init: root 2G \(filesystem 1\.9G\)/);
  assert.match(out, /stratus-init: no datasource/);
  const gdir = join(dir, 'instances', g.uuid);
  const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', '-f', 'qcow2', join(gdir, 'disk')])).stdout);
  assert.equal(info['virtual-size'], 2 * 1024 ** 3);
  assert.match(info['backing-filename'], /_base\//);
  const cmdline = await readFile(`/proc/${(await readFile(join(gdir, 'qemu.pid'), 'utf8')).trim()}/cmdline`, 'utf8');
  assert.match(cmdline, /product=OpenStack Nova/);
  assert.ok(cmdline.includes(`serial=${g.uuid}`));
  console.log(`# spawn (cached image after the first download) ${spawnMs} ms`);

  await driver.pause(g.uuid);
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.PAUSED);
  await driver.unpause(g.uuid);
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.RUNNING);

  await driver.reboot(g, true);
  await waitConsole(driver, g.uuid, /(stratus-init: up in[\s\S]*){2}/);

  let t = Date.now();
  await driver.powerOff(g.uuid);
  console.log(`# clean power off ${Date.now() - t} ms`);
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.SHUTDOWN);
  assert.match(await driver.consoleOutput(g.uuid), /stratus-init: shutting down/);
  await driver.powerOn(g);
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.RUNNING);
  await waitConsole(driver, g.uuid, /(stratus-init: up in[\s\S]*){3}/);

  t = Date.now();
  await driver.reboot(g, false);
  console.log(`# soft reboot ${Date.now() - t} ms`);
  await waitConsole(driver, g.uuid, /(stratus-init: up in[\s\S]*){4}/);

  await driver.rescue(g, { imageId: MIN, password: null });
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.RUNNING);
  const rc = await readFile(`/proc/${(await readFile(join(gdir, 'qemu.pid'), 'utf8')).trim()}/cmdline`, 'utf8');
  assert.ok(rc.indexOf('disk.rescue') < rc.indexOf(`${g.uuid}/disk\0`) || rc.indexOf('disk.rescue') < rc.indexOf('id=root'));
  await waitConsole(driver, g.uuid, /(stratus-init: up in[\s\S]*){5}/);
  await driver.unrescue(g);
  assert.ok(!existsSync(join(gdir, 'disk.rescue')));
  await waitConsole(driver, g.uuid, /(stratus-init: up in[\s\S]*){6}/);

  const snap = join(dir, 'snap.qcow2');
  await driver.snapshot(g, { imageId: 'snap-1', upload: async (data, fmt) => { assert.equal(fmt, 'qcow2'); await pipeline(data, createWriteStream(snap)); } });
  const si = JSON.parse((await run('qemu-img', ['info', '--output=json', '-f', 'qcow2', snap])).stdout);
  assert.equal(si['virtual-size'], 2 * 1024 ** 3);
  assert.equal(si['backing-filename'], undefined);

  const vnc = await driver.getConsole(g, 'vnc');
  assert.equal(vnc.host, '127.0.0.1');
  assert.ok(vnc.port! >= 5900);
  assert.ok((await driver.getConsole(g, 'serial')).path?.endsWith('serial.sock'));

  t = Date.now();
  await driver.suspend(g.uuid);
  console.log(`# suspend ${Date.now() - t} ms`);
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.SUSPENDED);
  assert.ok(existsSync(join(gdir, 'suspend.state')));
  t = Date.now();
  await driver.resume(g);
  console.log(`# resume ${Date.now() - t} ms`);
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.RUNNING);
  assert.ok(!existsSync(join(gdir, 'suspend.state')));
  await driver.pause(g.uuid);
  await driver.unpause(g.uuid);

  await driver.destroy(g.uuid);
  assert.ok(!existsSync(gdir));
  await assert.rejects(driver.info(g.uuid), /could not be found/);
});

test('image properties reach QEMU: hw_disk_bus=scsi boots the guest from a virtio-scsi disk, hw_vif_model=e1000 gives an e1000 NIC', async () => {
  const g = spec({
    imageProps: { hw_disk_bus: 'scsi', hw_vif_model: 'e1000' }, configDrive: true,
    network: { mode: 'auto', vifs: [{ id: 'vif-1', mac: 'fa:16:3e:00:00:01', address: '169.254.0.15', networkName: 'auto' }] },
  });
  await driver.spawn(g);
  try {
    const out = await waitConsole(driver, g.uuid, /stratus-init: up in/);
    assert.match(out, /sd \d+:\d+:\d+:\d+: \[sda\]/); // the root disk is a SCSI disk in the guest
    const pci = await (driver as any).live.get(g.uuid).qmp.execute('query-pci') as { devices: { id: { vendor: number; device: number } }[] }[];
    const ids = pci.flatMap((b) => b.devices.map((d) => `${d.id.vendor.toString(16)}:${d.id.device.toString(16)}`));
    assert.ok(ids.includes('8086:100e'), `an e1000 NIC: ${ids.join(' ')}`);
    assert.ok(ids.includes('1af4:1004') || ids.includes('1af4:1048'), `a virtio-scsi controller: ${ids.join(' ')}`);
    assert.ok(!ids.includes('1af4:1001') && !ids.includes('1af4:1042'), 'no virtio-blk disk');
  } finally {
    await driver.destroy(g.uuid);
  }
});

test('adoption: a new driver (agent restart) finds the running guest and controls it; a killed qemu becomes SHUTDOWN through the sync', async () => {
  const g = spec();
  await driver.spawn(g);
  await waitConsole(driver, g.uuid, /stratus-init: up in/);
  const pid = Number((await readFile(join(dir, 'instances', g.uuid, 'qemu.pid'), 'utf8')).trim());
  await driver.cleanupHost();
  const d2 = await newDriver();
  await d2.initHost([{ uuid: g.uuid, vmState: 'active' }]);
  assert.equal((await d2.info(g.uuid).catch(() => undefined))?.powerState, POWER.RUNNING);
  await d2.pause(g.uuid);
  assert.equal((await d2.info(g.uuid).catch(() => undefined))?.powerState, POWER.PAUSED);
  await d2.unpause(g.uuid);
  events.length = 0;
  process.kill(pid, 'SIGKILL');
  const t0 = Date.now();
  while (!events.some((e) => e.uuid === g.uuid && e.powerState === POWER.SHUTDOWN) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  assert.ok(events.some((e) => e.uuid === g.uuid && e.event === 'stopped'), JSON.stringify(events));
  assert.equal((await d2.info(g.uuid).catch(() => undefined))?.powerState, POWER.SHUTDOWN);
  await d2.destroy(g.uuid);
  driver = d2;
});

// What the agent's shelve and unshelve do with the driver: power off, snapshot the stopped
// guest's root disk (qemu-img convert of the overlay, not QMP), destroy (offload), and later
// spawn a new guest from that image. What the first boot wrote on its disk is there after.
test('shelve on real disks: the stopped guest\'s root disk into an image, the guest destroyed, unshelved from that image with its data', async () => {
  const marker = '#!/bin/sh\nif [ -f /root/marker ]; then echo "marker: kept from $(cat /root/marker)"; else echo first-boot > /root/marker; sync; echo "marker: new"; fi\n';
  const g = spec({ configDrive: true, userData: Buffer.from(marker).toString('base64') });
  await driver.spawn(g);
  await waitConsole(driver, g.uuid, /marker: new[\s\S]*stratus-init: up in/);
  await driver.powerOff(g.uuid);
  const shelved = join(dir, 'shelved.qcow2');
  await driver.snapshot(g, { imageId: 'shelved-1', upload: async (data, fmt) => { assert.equal(fmt, 'qcow2'); await pipeline(data, createWriteStream(shelved)); } });
  await driver.destroy(g.uuid);
  assert.ok(!existsSync(join(dir, 'instances', g.uuid)));
  images.add(await fileImage('shelved-1', shelved, 'qcow2'));
  await driver.spawn({ ...g, imageId: 'shelved-1', image: undefined });
  const out = await waitConsole(driver, g.uuid, /stratus-init: up in/);
  assert.match(out, /marker: kept from first-boot/);
  assert.doesNotMatch(out, /marker: new/);
  await driver.destroy(g.uuid);
});

test('a guest that ignores ACPI (AMI-style kernel_id/ramdisk_id boot) still stops after os_shutdown_timeout', async () => {
  const kernel = await debianCloudKernel(cacheDir);
  const initrd = join(dir, 'deaf.img');
  await makeInitramfs({ kernel, modules: [], files: [{ path: 'init', mode: 0o755, content: '#!/bin/busybox sh\n/bin/busybox echo "deaf guest up"\nwhile :; do /bin/busybox sleep 1; done\n' }] }, initrd);
  const disk = join(dir, 'empty.raw');
  await writeFile(disk, Buffer.alloc(1024 * 1024));
  images.add(await fileImage('aki-1', kernel.vmlinuz, 'aki'));
  images.add(await fileImage('ari-1', initrd, 'ari'));
  images.add(await fileImage('ami-1', disk, 'ami', { kernel_id: 'aki-1', ramdisk_id: 'ari-1', os_command_line: 'console=ttyS0', os_shutdown_timeout: '3' }));
  const g = spec({ imageId: 'ami-1', imageProps: { kernel_id: 'aki-1', ramdisk_id: 'ari-1', os_command_line: 'console=ttyS0', os_shutdown_timeout: '3' } });
  await driver.spawn(g);
  await waitConsole(driver, g.uuid, /deaf guest up/);
  const t0 = Date.now();
  await driver.powerOff(g.uuid);
  const ms = Date.now() - t0;
  assert.ok(ms >= 2900 && ms < 15_000, `stop took ${ms} ms`);
  assert.equal((await driver.info(g.uuid).catch(() => undefined))?.powerState, POWER.SHUTDOWN);
  await driver.destroy(g.uuid);
});

test('hw_firmware_type=uefi: the guest boots through OVMF (pflash code read-only, its own copy of the variable store), its kernel sees EFI', async () => {
  // The minimal image boots with BIOS GRUB (no EFI loader), so the guest is AMI-style: OVMF loads
  // the kernel through fw_cfg and starts its EFI stub, as it does a distribution's shim/GRUB.
  const kernel = await debianCloudKernel(cacheDir);
  const initrd = join(dir, 'efi.img');
  await makeInitramfs({ kernel, modules: [], files: [{ path: 'init', mode: 0o755, content: [
    '#!/bin/busybox sh', '/bin/busybox mkdir -p /sys', '/bin/busybox mount -t sysfs sysfs /sys',
    'if [ -d /sys/firmware/efi ]; then /bin/busybox echo "efi guest: /sys/firmware/efi present, $(/bin/busybox cat /sys/firmware/efi/fw_platform_size)-bit UEFI"; else /bin/busybox echo "efi guest: no /sys/firmware/efi"; fi',
    'while :; do /bin/busybox sleep 1; done', ''].join('\n') }] }, initrd);
  const disk = join(dir, 'efi.raw');
  await writeFile(disk, Buffer.alloc(1024 * 1024));
  const props = { kernel_id: 'aki-efi', ramdisk_id: 'ari-efi', os_command_line: 'console=ttyS0', hw_firmware_type: 'uefi', os_shutdown_timeout: '1' };
  images.add(await fileImage('aki-efi', kernel.vmlinuz, 'aki'));
  images.add(await fileImage('ari-efi', initrd, 'ari'));
  images.add(await fileImage('ami-efi', disk, 'ami', props));
  const g = spec({ imageId: 'ami-efi', imageProps: props });
  const t0 = Date.now();
  await driver.spawn(g);
  try {
    const gdir = join(dir, 'instances', g.uuid);
    const cmdline = (await readFile(`/proc/${(await readFile(join(gdir, 'qemu.pid'), 'utf8')).trim()}/cmdline`, 'utf8')).split('\0');
    const pflash = cmdline.filter((a) => a.startsWith('if=pflash'));
    assert.equal(pflash.length, 2, cmdline.join(' '));
    assert.match(pflash[0]!, /^if=pflash,format=raw,unit=0,readonly=on,file=\/usr\/share\/OVMF\/OVMF_CODE(_4M)?\.fd$/);
    assert.equal(pflash[1], `if=pflash,format=raw,unit=1,file=${join(gdir, 'OVMF_VARS.fd')}`);
    const out = await waitConsole(driver, g.uuid, /efi guest: /, 120_000);
    console.log(`# UEFI boot to the guest's init ${Date.now() - t0} ms`);
    assert.match(out, /efi: EFI v[\d.]+ by EDK II/); // the kernel's EFI stub found the firmware's system table
    assert.match(out, /efi guest: \/sys\/firmware\/efi present, 64-bit UEFI/);
  } finally {
    await driver.destroy(g.uuid);
  }
  assert.ok(!existsSync(join(dir, 'instances', g.uuid)), 'the variable store goes with the guest');
});

test('refused before any qemu-img: a qcow2 naming a backing file on the host; an image larger than the root disk. Nothing left behind', async () => {
  const evil = join(dir, 'evil.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', evil, '64M']);
  images.add(await fileImage('evil', evil, 'qcow2'));
  const g = spec({ imageId: 'evil' });
  await assert.rejects(driver.spawn(g), /not safe to boot.*backing/i);
  assert.ok(!existsSync(join(dir, 'instances', g.uuid)));
  assert.ok(!(await readdir(join(dir, 'instances', '_base'))).some((f) => f.includes('.part')));

  images.add({ ...(await fileImage('big', await minimalImage(), 'qcow2')), virtualSize: 3 * 1024 ** 3 });
  const b = spec({ imageId: 'big' });
  await assert.rejects(driver.spawn(b), /Flavor's disk is too small/);
  assert.ok(!existsSync(join(dir, 'instances', b.uuid)));
});

test('image cache: a second boot downloads nothing; a corrupted cached base is downloaded again; unused bases age out', async () => {
  const before = images.opened;
  const a = spec();
  await driver.spawn(a);
  assert.equal(images.opened, before, 'the cached base was used');
  await driver.destroy(a.uuid);
  const { baseName } = await import('../../src/compute/virt/qemu/image-cache.ts');
  const base = join(dir, 'instances', '_base', baseName(MIN));
  const fh = await (await import('node:fs/promises')).open(base, 'r+');
  await fh.write(Buffer.from('corrupt'), 0, 7, 100_000);
  await fh.close();
  const b = spec();
  await driver.spawn(b);
  assert.equal(images.opened, before + 1, 'downloaded again');
  await waitConsole(driver, b.uuid, /stratus-init: up in/);
  await driver.destroy(b.uuid);
  const removed = await driver.cache.run(new Set(), 0);
  assert.ok(removed.includes(MIN));
  assert.ok(!existsSync(base));
});
