// Real cloud-init (Debian 12's 22.4) against Stratus's config drive and metadata service: a
// debootstrapped Debian root booted under QEMU (TCG) for servers of a real all-in-one, once with
// the config-2 drive and no NIC, once with a user-mode NIC whose guestfwd relay reaches the
// metadata service. cloud-init's own "finished … Datasource …" line, the user data's output and
// the installed key on the serial console are the proof. Takes a few minutes; not in `npm test`:
//
//   debootstrap --variant=minbase --include=systemd-sysv,udev,cloud-init,python3-cffi-backend,kmod,dbus,\
//     linux-image-cloud-amd64,ifupdown,isc-dhcp-client,iproute2,netbase,e2fsprogs bookworm ROOTFS http://deb.debian.org/debian
//   STRATUS_CLOUDINIT_ROOTFS=ROOTFS npm run test:metadata-cloudinit
//
// QEMU is driven directly (not through the qemu driver): only the metadata side is under test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';
import { Cells } from '../src/compute/cells.ts';
import { loadInstance } from '../src/compute/metadata/instance-source.ts';
import { buildConfigDrive } from '../src/compute/metadata/configdrive.ts';
import { metadataRelayCommand } from '../src/compute/metadata/relay.ts';

const ROOTFS = process.env.STRATUS_CLOUDINIT_ROOTFS ?? '';
let cloud: TestCloud;
let token: string;
let imageId: string;
let work: string;
let disk: string;
let kernel: string;
let initrd: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm0Jf6rZ0hS3J3u4n0b1mTq3oQ9m6iQm0b3YbVqkQ2D k1@cloud-init-e2e';
const USER_DATA = '#!/bin/sh\necho "USERDATA-RAN on $(hostname)"\n';

before(async () => {
  assert.ok(ROOTFS && existsSync(join(ROOTFS, 'usr/bin/cloud-init')), 'STRATUS_CLOUDINIT_ROOTFS must name a debootstrapped root with cloud-init (see the head of this file)');
  const boot = readdirSync(join(ROOTFS, 'boot'));
  kernel = join(ROOTFS, 'boot', boot.find((f) => f.startsWith('vmlinuz-'))!);
  initrd = join(ROOTFS, 'boot', boot.find((f) => f.startsWith('initrd.img-'))!);
  // The root as the guest's disk: fstab, the interfaces.d cloud-init's ENI renderer writes to.
  writeFileSync(join(ROOTFS, 'etc/fstab'), '/dev/vda / ext4 defaults 0 1\n');
  writeFileSync(join(ROOTFS, 'etc/hostname'), 'debian-stock\n');
  mkdirSync(join(ROOTFS, 'etc/network/interfaces.d'), { recursive: true });
  writeFileSync(join(ROOTFS, 'etc/network/interfaces'), 'auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n');
  work = mkdtempSync(join(tmpdir(), 'stratus-cloudinit-'));
  disk = join(work, 'root.raw');
  execFileSync('truncate', ['-s', '3G', disk]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', ROOTFS, disk]);
  cloud = await startCloud();
  token = await cloud.adminToken();
  assert.equal((await api('POST', '/os-keypairs', { keypair: { name: 'k1', public_key: KEY } }, mv('2.2'))).status, 201);
  // The servers run under the fake driver; QEMU runs the guest here.
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'debian', disk_format: 'raw', container_format: 'bare' } });
  imageId = img.body.id;
  await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1024) });
});
after(async () => {
  await cloud?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function boot(name: string, extra: Record<string, unknown>): Promise<any> {
  const r = await api('POST', '/servers', { server: { name, imageRef: imageId, flavorRef: '1', key_name: 'k1', user_data: Buffer.from(USER_DATA).toString('base64'), ...extra } }, mv('2.93'));
  assert.equal(r.status, 202, r.text);
  await waitFor(r.body.server.id, ['ACTIVE']);
  return (await api('GET', `/servers/${r.body.server.id}`, undefined, mv('2.93'))).body.server;
}

/** Boots the Debian root (throw-away writes) until cloud-init finishes; returns the console. */
async function runGuest(name: string, uuid: string, args: string[]): Promise<string> {
  const log = join(work, `${name}.console.log`);
  const p = spawn('qemu-system-x86_64', [
    '-machine', 'pc', '-accel', 'tcg', '-m', '768', '-display', 'none', '-serial', `file:${log}`,
    // cloud-init's OpenStack datasource runs only on what looks like Nova (real-guests.md).
    '-smbios', `type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,serial=${uuid},uuid=${uuid}`,
    '-kernel', kernel, '-initrd', initrd, '-append', 'root=/dev/vda rw console=ttyS0 net.ifnames=0',
    '-drive', `file=${disk},if=virtio,format=raw,snapshot=on`, ...args,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  const end = Date.now() + 600_000;
  try {
    for (;;) {
      const out = existsSync(log) ? readFileSync(log, 'utf8') : '';
      if (/Cloud-init v\. [\d.]+ finished/.test(out)) return out;
      if (p.exitCode !== null) assert.fail(`qemu exited (${p.exitCode}): ${stderr}\n${out}`);
      if (Date.now() > end) assert.fail(`cloud-init did not finish in 600 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  } finally {
    p.kill();
  }
}

const show = (out: string) => console.log(out.split('\n').filter((l) => /Cloud-init v\.|USERDATA|k1@|\| *eth0 /.test(l)).join('\n'));

test('cloud-init finds the config drive (--config-drive true --nic none)', async () => {
  const s = await boot('ci-drive', { config_drive: true, networks: 'none' });
  const cells = await Cells.open(cloud.config.get('api_database', 'connection'));
  const iso = join(work, 'ci-drive.config');
  try {
    await buildConfigDrive((await loadInstance(cells, s.id, cloud.config))!.spec, iso, { config: cloud.config });
  } finally { await cells.close(); }
  const out = await runGuest('ci-drive', s.id, ['-nic', 'none', '-drive', `file=${iso},media=cdrom,if=ide,format=raw,readonly=on`]);
  show(out);
  assert.match(out, /finished at .* Datasource DataSourceConfigDrive \[net,ver=2\]\[source=\/dev\/sr0\]/);
  assert.match(out, /USERDATA-RAN on ci-drive/);
  assert.match(out, /ssh-ed25519 .* k1@cloud-init-e2e/);
});

test('cloud-init reads the metadata service through the relay (--nic auto)', async () => {
  const s = await boot('ci-net', { networks: 'auto' });
  const mac = s.addresses.user[0]['OS-EXT-IPS-MAC:mac_addr'];
  const netdev = `user,id=n0,restrict=on,net=169.254.0.0/16,host=169.254.0.2,dhcpstart=169.254.0.15,guestfwd=tcp:169.254.169.254:80-cmd:${metadataRelayCommand(cloud.config, s.id)}`;
  const out = await runGuest('ci-net', s.id, ['-netdev', netdev, '-device', `virtio-net-pci,netdev=n0,mac=${mac}`]);
  show(out);
  assert.match(out, /finished at .* Datasource DataSourceOpenStackLocal \[net,ver=2\]/);
  assert.match(out, new RegExp(`eth0 +\\| +True +\\| +169\\.254\\.0\\.15 .*${mac}`), 'network_data.json brought eth0 up with DHCP');
  assert.match(out, /USERDATA-RAN on ci-net/);
  assert.match(out, /ssh-ed25519 .* k1@cloud-init-e2e/);
});
