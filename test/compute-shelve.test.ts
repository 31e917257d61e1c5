// Nova's shelve on the all-in-one with the fake driver and shelved_offload_time = -1 (never
// offloaded by the periodic task), so each step is seen: shelve snapshots the server into
// "<name>-shelved" and keeps its guest and allocation (SHELVED); shelveOffload destroys the
// guest and frees the host (SHELVED_OFFLOADED, no host); unshelve schedules it again, boots it
// from the shelved image and deletes that image; a SHELVED server unshelves in place. (The
// default, offload at once, is what compute-snapshot.test.ts's shelve sees.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';

let cloud: TestCloud;
let token: string;
let serverId: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });

const allocations = async (id: string) => (await cloud.req('GET', `/placement/allocations/${id}`, { token, headers: { 'OpenStack-API-Version': 'placement 1.28' } })).body.allocations;
const shelvedImages = async () => (await cloud.req('GET', '/image/v2/images?name=sh1-shelved', { token })).body.images as any[];

before(async () => {
  process.env.OS_DEFAULT__SHELVED_OFFLOAD_TIME = '-1';
  try { cloud = await startCloud(); } finally { delete process.env.OS_DEFAULT__SHELVED_OFFLOAD_TIME; }
  token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'base', disk_format: 'raw', container_format: 'bare', visibility: 'public', os_distro: 'cirros' } });
  await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  const r = await api('POST', '/servers', { server: { name: 'sh1', imageRef: img.body.id, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  assert.equal(r.status, 202, r.text);
  serverId = r.body.server.id;
  await waitFor(serverId, ['ACTIVE']);
});
after(async () => { await cloud?.stop(); });

test('shelve: the server\'s disk in "<name>-shelved", powered off, still on its host with its allocation', async () => {
  assert.equal((await api('POST', `/servers/${serverId}/action`, { shelve: null })).status, 202);
  const s = await waitFor(serverId, ['SHELVED']);
  assert.equal(s['OS-EXT-STS:power_state'], 4);
  assert.ok(s['OS-EXT-SRV-ATTR:host']);
  const [img] = await shelvedImages();
  assert.equal(img.status, 'active');
  assert.equal(img.image_type, 'snapshot');
  assert.equal(img.instance_uuid, serverId);
  assert.equal(img.os_distro, 'cirros');
  const data = await fetch(`${cloud.url}/image/v2/images/${img.id}/file`, { headers: { 'x-auth-token': token } });
  assert.match(await data.text(), new RegExp(`fake disk of ${serverId}`));
  assert.equal(Object.keys(await allocations(serverId)).length, 1);
});

test('unshelve of a SHELVED server powers it on where it is and deletes the shelved image', async () => {
  const host = (await waitFor(serverId, ['SHELVED']))['OS-EXT-SRV-ATTR:host'];
  assert.equal((await api('POST', `/servers/${serverId}/action`, { unshelve: null })).status, 202);
  const s = await waitFor(serverId, ['ACTIVE']);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], host);
  assert.equal(s['OS-EXT-STS:power_state'], 1);
  assert.deepEqual(await shelvedImages(), []);
});

test('shelveOffload frees the host; unshelve boots it again from the shelved image, which then goes', async () => {
  assert.equal((await api('POST', `/servers/${serverId}/action`, { shelve: null })).status, 202);
  await waitFor(serverId, ['SHELVED']);
  assert.equal((await shelvedImages()).length, 1);
  assert.equal((await api('POST', `/servers/${serverId}/action`, { shelveOffload: null })).status, 202);
  const off = await waitFor(serverId, ['SHELVED_OFFLOADED']);
  assert.equal(off['OS-EXT-SRV-ATTR:host'], null);
  assert.deepEqual(await allocations(serverId), {});
  // Offloading an offloaded server changes nothing.
  assert.equal((await api('POST', `/servers/${serverId}/action`, { shelveOffload: null })).status, 202);
  assert.equal((await api('POST', `/servers/${serverId}/action`, { unshelve: null })).status, 202);
  const s = await waitFor(serverId, ['ACTIVE']);
  assert.ok(s['OS-EXT-SRV-ATTR:host']);
  assert.equal(Object.keys(await allocations(serverId)).length, 1);
  assert.deepEqual(await shelvedImages(), []);
  const actions = (await api('GET', `/servers/${serverId}/os-instance-actions`)).body.instanceActions.map((a: any) => a.action);
  for (const a of ['shelve', 'shelveOffload', 'unshelve']) assert.ok(actions.includes(a), actions.join(','));
});

test('wrong states: shelveOffload and unshelve of an active server, shelve of a shelved one', async () => {
  for (const body of [{ shelveOffload: null }, { unshelve: null }]) {
    const r = await api('POST', `/servers/${serverId}/action`, body);
    assert.equal(r.status, 409, `${JSON.stringify(body)}: ${r.text}`);
  }
  assert.equal((await api('POST', `/servers/${serverId}/action`, { shelve: null })).status, 202);
  await waitFor(serverId, ['SHELVED']);
  const r = await api('POST', `/servers/${serverId}/action`, { shelve: null });
  assert.equal(r.status, 409, r.text);
  assert.match(r.body.conflictingRequest.message, /Cannot 'shelve' instance .* while it is in vm_state shelved/);
  assert.equal((await api('POST', `/servers/${serverId}/action`, { unshelve: { availability_zone: 5 } })).status, 400);
});
