// Nova's createImage (server snapshot) on the all-in-one with the fake driver: the queued image
// with the instance's image properties, the driver's bytes uploaded, the task state, the
// instance action, the 2.45 body versus the older Location header, and bad input.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';

let cloud: TestCloud;
let token: string;
let serverId: string;
let baseImage: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });

async function imageActive(id: string): Promise<any> {
  const end = Date.now() + 20_000;
  for (;;) {
    const r = await cloud.req('GET', `/image/v2/images/${id}`, { token });
    if (r.body?.status === 'active') return r.body;
    if (Date.now() > end) assert.fail(`image ${id} never active: ${r.text}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'base', disk_format: 'raw', container_format: 'bare', visibility: 'public', architecture: 'x86_64', os_distro: 'cirros' } });
  baseImage = img.body.id;
  await fetch(`${cloud.url}/image/v2/images/${baseImage}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  const r = await api('POST', '/servers', { server: { name: 'snapme', imageRef: baseImage, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  assert.equal(r.status, 202, r.text);
  serverId = r.body.server.id;
  await waitFor(serverId, ['ACTIVE']);
});
after(async () => { await cloud?.stop(); });

test('createImage: a private snapshot with the image\'s properties and the given metadata, filled by the driver', async () => {
  const r = await api('POST', `/servers/${serverId}/action`, { createImage: { name: 'snap1', metadata: { purpose: 'backup' } } }, mv('2.45'));
  assert.equal(r.status, 202, r.text);
  const id = r.body.image_id;
  const img = await imageActive(id);
  assert.equal(img.name, 'snap1');
  assert.equal(img.visibility, 'private');
  assert.equal(img.image_type, 'snapshot');
  assert.equal(img.instance_uuid, serverId);
  assert.equal(img.base_image_ref, baseImage);
  assert.equal(img.architecture, 'x86_64');
  assert.equal(img.os_distro, 'cirros');
  assert.equal(img.purpose, 'backup');
  assert.ok(img.size > 0);
  const data = await fetch(`${cloud.url}/image/v2/images/${id}/file`, { headers: { 'x-auth-token': token } });
  assert.match(await data.text(), new RegExp(`fake disk of ${serverId}`));
  const s = await waitFor(serverId, ['ACTIVE']);
  assert.equal(s['OS-EXT-STS:task_state'], null);
  const actions = (await api('GET', `/servers/${serverId}/os-instance-actions`)).body.instanceActions.map((a: any) => a.action);
  assert.ok(actions.includes('createImage'), actions.join(','));
});

test('before 2.45 the image is named in Location, with no body', async () => {
  const r = await api('POST', `/servers/${serverId}/action`, { createImage: { name: 'snap-old' } }, mv('2.44'));
  assert.equal(r.status, 202, r.text);
  const loc = r.headers.get('location') ?? '';
  assert.match(loc, /\/v2\/images\/[0-9a-f-]{36}$/);
  await imageActive(loc.split('/').pop()!);
  await waitFor(serverId, ['ACTIVE']);
});

test('bad input and wrong states', async () => {
  for (const body of [{ createImage: {} }, { createImage: { name: '' } }, { createImage: { name: ' lead' } }, { createImage: { name: 'x', metadata: { k: 1 } } }, { createImage: { name: 'x', extra: 1 } }, { createImage: 'x' }]) {
    const r = await api('POST', `/servers/${serverId}/action`, body, mv('2.45'));
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.body.badRequest.code, 400);
  }
  assert.equal((await api('POST', '/servers/00000000-0000-4000-8000-000000000000/action', { createImage: { name: 'x' } }, mv('2.45'))).status, 404);
  assert.equal((await api('POST', `/servers/${serverId}/action`, { shelve: null }, mv('2.45'))).status, 202);
  await waitFor(serverId, ['SHELVED_OFFLOADED']);
  const r = await api('POST', `/servers/${serverId}/action`, { createImage: { name: 'x' } }, mv('2.45'));
  assert.equal(r.status, 409, r.text);
  assert.match(r.body.conflictingRequest.message, /Cannot 'createImage' instance .* while it is in vm_state shelved_offloaded/);
});
