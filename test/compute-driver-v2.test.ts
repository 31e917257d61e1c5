// Driver contract v2 through a real all-in-one: what the agent hands the driver (every GuestSpec
// field, the admin password over RPC only), the driver's capabilities as placement traits, a
// guest that stops on its own becoming SHUTOFF, a driver's NotSupported as Nova's 501, and the
// `networks: auto` NIC in `addresses`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';
import type { FakeDriver } from '../src/compute/virt/fake.ts';
import { NotSupported } from '../src/compute/virt/errors.ts';
import { findInstance } from '../src/compute/store.ts';

let cloud: TestCloud;
let token: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
let imageId: string;
const driver = () => (cloud.compute!.agents[0] as unknown as { d: { driver: FakeDriver } }).d.driver;

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', {
    token, body: { name: 'cirros', disk_format: 'qcow2', container_format: 'bare', visibility: 'public', min_ram: 16, hw_disk_bus: 'virtio', os_distro: 'cirros' },
  });
  imageId = img.body.id;
  // A minimal valid qcow2 header (the image service inspects what it stores).
  const q = Buffer.alloc(512);
  q.write('QFI\xfb', 0, 'latin1'); q.writeUInt32BE(3, 4); q.writeBigUInt64BE(1024n * 1024n, 24); q.writeUInt32BE(16, 20); q.writeUInt32BE(104, 100);
  const up = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: q });
  assert.equal(up.status, 204, await up.text());
  await api('POST', '/os-keypairs', { keypair: { name: 'k1', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJk4G9fXyM9nP0gJvZpN2mJcE1t3kq1mHk3Y0eQm5c7X k1' } });
});
after(async () => { await cloud?.stop(); });

test('the driver gets every GuestSpec field; the admin password reaches it and is stored nowhere', async () => {
  const r = await api('POST', '/servers', {
    server: {
      name: 'spec-vm', imageRef: imageId, flavorRef: '1', networks: 'auto', adminPass: 'S3cret-pass', key_name: 'k1', user_data: 'IyEvYmluL3NoCmVjaG8gaGkK',
      metadata: { role: 'web' }, availability_zone: 'nova', config_drive: true, personality: [{ path: '/etc/motd', contents: 'aGVsbG8=' }],
    },
  }, mv('2.37'));
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.server.adminPass, 'S3cret-pass');
  const id = r.body.server.id;
  const s = await waitFor(id, ['ACTIVE']);
  const g = driver().specOf(id)!;
  assert.ok(g, 'the fake driver spawned it');
  assert.equal(g.adminPassword, 'S3cret-pass');
  assert.deepEqual(g.injectedFiles, [{ path: '/etc/motd', contents: 'aGVsbG8=' }]);
  assert.deepEqual(g.flavor, { id: '1', name: 'm1.tiny', vcpus: 1, memoryMb: 512, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} });
  assert.equal(g.image!.id, imageId);
  assert.equal(g.image!.diskFormat, 'qcow2');
  assert.equal(g.image!.containerFormat, 'bare');
  assert.equal(g.image!.minRam, 16);
  assert.equal(g.image!.size, 512);
  assert.match(g.image!.checksum ?? '', /^[0-9a-f]{32}$/);
  assert.equal(g.image!.osHashAlgo, 'sha512');
  assert.deepEqual(g.imageProps, { hw_disk_bus: 'virtio', os_distro: 'cirros' });
  assert.deepEqual(g.metadata, { role: 'web' });
  assert.equal(g.userData, 'IyEvYmluL3NoCmVjaG8gaGkK');
  assert.equal(g.keyName, 'k1');
  assert.match(g.keyData ?? '', /^ssh-ed25519 /);
  assert.equal(g.availabilityZone, 'nova');
  assert.equal(g.launchIndex, 0);
  assert.match(g.reservationId ?? '', /^r-/);
  assert.equal(g.configDrive, true);
  assert.ok(g.createdAt);
  assert.equal(g.network!.mode, 'auto');
  const vif = g.network!.vifs[0];
  assert.equal(vif.address, '169.254.0.15');
  assert.equal(vif.networkName, 'user');
  assert.match(vif.mac, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
  // The API shows the NIC as Nova does.
  assert.deepEqual(s.addresses, { user: [{ version: 4, addr: '169.254.0.15', 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': vif.mac }] });
  // Not in the instance's system_metadata, nor anywhere else in the row.
  const l = await findInstance(cloud.compute!.cells!, id);
  assert.ok(l);
  assert.ok(!JSON.stringify(l.row).includes('S3cret-pass'), 'the admin password is not stored');
  const sm = JSON.parse(l.row.system_metadata);
  assert.equal(sm.admin_pass, undefined);
  assert.equal(sm.image_base_image_ref, imageId);
  assert.equal(sm.image_disk_format, 'qcow2');
  assert.equal(sm.image_hw_disk_bus, 'virtio');
  // A later start needs no message secrets and no image service: the spec comes from the instance.
  assert.equal((await api('POST', `/servers/${id}/action`, { 'os-stop': null })).status, 202);
  await waitFor(id, ['SHUTOFF']);
  assert.equal((await api('POST', `/servers/${id}/action`, { 'os-start': null })).status, 202);
  await waitFor(id, ['ACTIVE']);
  assert.equal((await api('DELETE', `/servers/${id}`)).status, 204);
  await waitFor(id, ['DELETED']);
});

test('networks none: no NIC in the spec, addresses empty', async () => {
  const r = await api('POST', '/servers', { server: { name: 'nonet', imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  const s = await waitFor(r.body.server.id, ['ACTIVE']);
  assert.deepEqual(s.addresses, {});
  assert.deepEqual(driver().specOf(s.id)!.network, { mode: 'none', vifs: [] });
  assert.equal(driver().specOf(s.id)!.adminPassword, s.adminPass ?? r.body.server.adminPass);
  await api('DELETE', `/servers/${s.id}`);
});

test("the driver's capabilities are traits on the compute node's provider, beside the other traits", async () => {
  const rp = (await cloud.req('GET', '/placement/resource_providers', { token, headers: { 'openstack-api-version': 'placement 1.36' } })).body.resource_providers[0];
  const traits = (await cloud.req('GET', `/placement/resource_providers/${rp.uuid}/traits`, { token, headers: { 'openstack-api-version': 'placement 1.36' } })).body.traits as string[];
  for (const t of driver().capabilities()) assert.ok(traits.includes(t), `${t} in ${traits}`);
  assert.ok(traits.includes('COMPUTE_IMAGE_TYPE_QCOW2'));
  assert.ok(!traits.includes('COMPUTE_RESCUE_BFV'), 'the fake driver cannot rescue from volumes');
  assert.ok(!traits.includes('COMPUTE_NET_ATTACH_INTERFACE'));
});

test('a guest that stops on its own becomes SHUTOFF', async () => {
  const r = await api('POST', '/servers', { server: { name: 'selfstop', imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  const id = r.body.server.id;
  await waitFor(id, ['ACTIVE']);
  driver().guestShutsDown(id);
  const s = await waitFor(id, ['SHUTOFF']);
  assert.equal(s['OS-EXT-STS:power_state'], 4);
  assert.equal(s['OS-EXT-STS:vm_state'], 'stopped');
  // And it starts again normally.
  assert.equal((await api('POST', `/servers/${id}/action`, { 'os-start': null })).status, 202);
  await waitFor(id, ['ACTIVE']);
  await api('DELETE', `/servers/${id}`);
});

test("a driver's NotSupported crosses the bus and is Nova's 501", async () => {
  const r = await api('POST', '/servers', { server: { name: 'nosup', imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  const id = r.body.server.id;
  await waitFor(id, ['ACTIVE']);
  const d = driver();
  const orig = d.consoleOutput;
  d.consoleOutput = async () => { throw new NotSupported('The fake driver has no console log today.'); };
  try {
    const c = await api('POST', `/servers/${id}/action`, { 'os-getConsoleOutput': {} });
    assert.equal(c.status, 501, c.text);
    assert.deepEqual(c.body, { notImplemented: { code: 501, message: 'The fake driver has no console log today.' } });
  } finally { d.consoleOutput = orig; }
  await api('DELETE', `/servers/${id}`);
});
