// End to end with a real guest: the minimal image (`stratus image build --kind minimal`) booted
// under QEMU (TCG) for servers of a real all-in-one, once with its config drive and no NIC, once
// with a user-mode NIC whose guestfwd relay reaches the metadata service; what the guest's init
// logs on its serial console is the proof. Not part of `npm test` (it boots VMs): run it with
// `npm run test:metadata-guest` (STRATUS_GUEST_IMAGE=FILE reuses an image; otherwise one is
// built into test-artifacts/ and reused next time).
//
// QEMU is driven here directly (not through the qemu driver) so that only the metadata side is
// under test: the config drive, the relay command and the service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';
import { Cells } from '../src/compute/cells.ts';
import { loadInstance } from '../src/compute/metadata/instance-source.ts';
import { buildConfigDrive } from '../src/compute/metadata/configdrive.ts';
import { metadataRelayCommand } from '../src/compute/metadata/relay.ts';
import { buildImage } from '../src/guest/build.ts';

let cloud: TestCloud;
let token: string;
let image: string;
let imageId: string;
let work: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm0Jf6rZ0hS3J3u4n0b1mTq3oQ9m6iQm0b3YbVqkQ2D k1@guest-e2e';
const USER_DATA = '#!/bin/sh\necho "user_data says hello from $(hostname)"\n';

before(async () => {
  image = process.env.STRATUS_GUEST_IMAGE ?? resolve('test-artifacts/guest-minimal.qcow2');
  if (!existsSync(image)) {
    mkdirSync('test-artifacts', { recursive: true });
    await buildImage({ kind: 'minimal', output: image, format: 'qcow2', log: (m) => console.log(`image build: ${m}`) });
  }
  work = mkdtempSync(join(tmpdir(), 'stratus-md-guest-'));
  cloud = await startCloud();
  token = await cloud.adminToken();
  assert.equal((await api('POST', '/os-keypairs', { keypair: { name: 'k1', public_key: KEY } }, mv('2.2'))).status, 201);
  // The real image in the image service (the servers run under the fake driver; QEMU runs it here).
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'guest', disk_format: 'qcow2', container_format: 'bare' } });
  imageId = img.body.id;
  const put = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: readFileSync(image) });
  assert.equal(put.status, 204);
});
after(async () => {
  await cloud?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function boot(server: Record<string, unknown>): Promise<any> {
  const r = await api('POST', '/servers', { server: { imageRef: imageId, flavorRef: '1', key_name: 'k1', user_data: Buffer.from(USER_DATA).toString('base64'), ...server } }, mv('2.93'));
  assert.equal(r.status, 202, r.text);
  await waitFor(r.body.server.id, ['ACTIVE']);
  return (await api('GET', `/servers/${r.body.server.id}`, undefined, mv('2.93'))).body.server;
}

/** Boots the image with these extra QEMU arguments until stratus-init says it is up; returns the console. */
async function runGuest(name: string, uuid: string, args: string[]): Promise<string> {
  const overlay = join(work, `${name}.qcow2`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image, overlay, '1G']);
  const log = join(work, `${name}.console.log`);
  const p = spawn('qemu-system-x86_64', [
    '-machine', 'pc', '-accel', 'tcg', '-m', '256', '-display', 'none', '-no-reboot', '-serial', `file:${log}`,
    '-smbios', `type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,serial=${uuid},uuid=${uuid}`,
    '-drive', `file=${overlay},if=virtio,format=qcow2`, ...args,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  const end = Date.now() + 180_000;
  try {
    for (;;) {
      const out = existsSync(log) ? readFileSync(log, 'utf8') : '';
      if (/stratus-init: up in/.test(out)) return out;
      if (p.exitCode !== null) assert.fail(`qemu exited (${p.exitCode}): ${stderr}\n${out}`);
      if (Date.now() > end) assert.fail(`the guest did not finish its init in 180 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    p.kill();
  }
}

test('--config-drive true --nic none: the guest reads the config-2 drive', async () => {
  const s = await boot({ name: 'vm1', config_drive: true, networks: 'none' });
  const cells = await Cells.open(cloud.config.get('api_database', 'connection'));
  const iso = join(work, 'vm1.config');
  try {
    const inst = (await loadInstance(cells, s.id, cloud.config))!;
    await buildConfigDrive(inst.spec, iso, { config: cloud.config });
  } finally { await cells.close(); }
  const out = await runGuest('vm1', s.id, ['-nic', 'none', '-drive', `file=${iso},media=cdrom,if=ide,format=raw,readonly=on`]);
  console.log(out.split('\n').filter((l) => /stratus-init|user_data says/.test(l)).join('\n'));
  assert.match(out, /stratus-init: datasource config-2/);
  assert.match(out, /stratus-init: hostname vm1\r?$/m);
  assert.match(out, /stratus-init: ssh key installed \(k1\)/);
  assert.match(out, /user_data says hello from vm1/);
  assert.match(out, /stratus-init: user_data exit 0/);
});

test('--nic auto: the guest reads the metadata service through its relay', async () => {
  const s = await boot({ name: 'vm3', networks: 'auto' });
  const mac = s.addresses.user[0]['OS-EXT-IPS-MAC:mac_addr'];
  const netdev = `user,id=n0,restrict=on,net=169.254.0.0/16,host=169.254.0.2,dhcpstart=169.254.0.15,guestfwd=tcp:169.254.169.254:80-cmd:${metadataRelayCommand(cloud.config, s.id)}`;
  const out = await runGuest('vm3', s.id, ['-netdev', netdev, '-device', `virtio-net-pci,netdev=n0,mac=${mac}`]);
  console.log(out.split('\n').filter((l) => /stratus-init|user_data says/.test(l)).join('\n'));
  assert.match(out, /stratus-init: ip 169\.254\.0\.15/);
  assert.match(out, /stratus-init: datasource metadata-service/);
  assert.match(out, /stratus-init: hostname vm3\r?$/m);
  assert.match(out, /stratus-init: ssh key installed \(k1\)/);
  assert.match(out, /user_data says hello from vm3/);
  assert.match(out, /stratus-init: user_data exit 0/);
});
