// Nova's createImage (server snapshot) on the all-in-one with the fake driver: the queued image
// with the instance's image properties, the driver's bytes uploaded, the task state, the
// instance action, the 2.45 body versus the older Location header, and bad input; createBackup
// with its rotation.
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

/** This server's backups of one type, newest first, as the image service lists them. */
async function backups(type: string): Promise<any[]> {
  const r = await cloud.req('GET', `/image/v2/images?image_type=backup&backup_type=${type}&instance_uuid=${serverId}&sort=created_at:desc`, { token });
  return r.body.images;
}

test('createBackup: a backup image (image_type=backup, backup_type); the rotation keeps the newest of that type', async () => {
  const made: string[] = [];
  for (const n of [1, 2, 3]) {
    const r = await api('POST', `/servers/${serverId}/action`, { createBackup: { name: `daily-${n}`, backup_type: 'daily', rotation: 2, metadata: { n: String(n) } } }, mv('2.45'));
    assert.equal(r.status, 202, r.text);
    made.push(r.body.image_id);
    const img = await imageActive(r.body.image_id);
    assert.equal(img.image_type, 'backup');
    assert.equal(img.backup_type, 'daily');
    assert.equal(img.instance_uuid, serverId);
    assert.equal(img.n, String(n));
    assert.equal(img.os_distro, 'cirros');
    const s = await waitFor(serverId, ['ACTIVE']);
    assert.equal(s['OS-EXT-STS:task_state'], null);
  }
  // The rotation runs after the upload: wait for the oldest to go.
  const end = Date.now() + 20_000;
  while ((await backups('daily')).length > 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual((await backups('daily')).map((i) => i.id).sort(), made.slice(1).sort());
  // Another type is rotated on its own; a string rotation is accepted (Nova's non_negative_integer).
  const w = await api('POST', `/servers/${serverId}/action`, { createBackup: { name: 'weekly-1', backup_type: 'weekly', rotation: '1' } }, mv('2.45'));
  assert.equal(w.status, 202, w.text);
  await imageActive(w.body.image_id);
  await waitFor(serverId, ['ACTIVE']);
  assert.equal((await backups('daily')).length, 2);
  // rotation 0 removes every backup of the type, the new one included; before 2.45 no Location then.
  const z = await api('POST', `/servers/${serverId}/action`, { createBackup: { name: 'daily-0', backup_type: 'daily', rotation: 0 } }, mv('2.44'));
  assert.equal(z.status, 202, z.text);
  assert.equal(z.headers.get('location'), null);
  const end0 = Date.now() + 20_000;
  while ((await backups('daily')).length > 0 && Date.now() < end0) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await backups('daily')).length, 0);
  assert.equal((await backups('weekly')).length, 1);
  await waitFor(serverId, ['ACTIVE']);
  const old = await api('POST', `/servers/${serverId}/action`, { createBackup: { name: 'weekly-2', backup_type: 'weekly', rotation: 3 } }, mv('2.44'));
  assert.match(old.headers.get('location') ?? '', /\/v2\/images\/[0-9a-f-]{36}$/);
  await waitFor(serverId, ['ACTIVE']);
  const actions = (await api('GET', `/servers/${serverId}/os-instance-actions`)).body.instanceActions.map((a: any) => a.action);
  assert.ok(actions.includes('createBackup'), actions.join(','));
});

test('createBackup: bad input is 400, a missing server 404', async () => {
  for (const body of [{ createBackup: { name: 'b', backup_type: 'daily' } }, { createBackup: { name: 'b', rotation: 1 } }, { createBackup: { backup_type: 'daily', rotation: 1 } },
    { createBackup: { name: 'b', backup_type: 'daily', rotation: -1 } }, { createBackup: { name: 'b', backup_type: 'daily', rotation: 'x' } }, { createBackup: { name: 'b', backup_type: 'daily', rotation: 1.5 } },
    { createBackup: { name: 'b', backup_type: 1, rotation: 1 } }, { createBackup: { name: 'b', backup_type: 'daily', rotation: 1, extra: 1 } }, { createBackup: null }]) {
    const r = await api('POST', `/servers/${serverId}/action`, body, mv('2.45'));
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.body.badRequest.code, 400);
  }
  assert.equal((await api('POST', '/servers/00000000-0000-4000-8000-000000000000/action', { createBackup: { name: 'b', backup_type: 'daily', rotation: 1 } }, mv('2.45'))).status, 404);
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
  const b = await api('POST', `/servers/${serverId}/action`, { createBackup: { name: 'x', backup_type: 'daily', rotation: 1 } }, mv('2.45'));
  assert.equal(b.status, 409, b.text);
  assert.match(b.body.conflictingRequest.message, /Cannot 'createBackup' instance .* while it is in vm_state shelved_offloaded/);
});
