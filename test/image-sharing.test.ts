// Visibility, members and policy: what an owner, a member, another project, a reader and an admin
// each see and may do. Project isolation is checked for every call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from './helpers/service.ts';
import { imageService } from '../src/image/index.ts';
import { GlanceClient } from './fixtures/image/client.ts';

let svc: TestService;
let c: GlanceClient;
const ids: Record<string, string> = {};

before(async () => {
  svc = await startTestService(imageService);
  c = new GlanceClient(svc.url);
  // Project a owns one image of each visibility (public made by admin for a); b owns a private one.
  ids.private = await c.create({ name: 'a-private', visibility: 'private' });
  ids.shared = await c.create({ name: 'a-shared', visibility: 'shared' });
  ids.community = await c.create({ name: 'a-community', visibility: 'community' });
  ids.public = await c.create({ name: 'a-public', visibility: 'public', owner: 'p-a' }, 'admin');
  ids.hidden = await c.create({ name: 'a-hidden', visibility: 'public', os_hidden: true, owner: 'p-a' }, 'admin');
  ids.bPrivate = await c.create({ name: 'b-private', visibility: 'private' }, 'member-b');
});
after(async () => { svc?.app.server.closeAllConnections(); await svc?.close(); });

const names = async (path: string, token: string) => {
  const r = await c.get(path, token);
  assert.equal(r.status, 200, `${path} as ${token}: ${JSON.stringify(r.body)}`);
  return r.body.images.map((i: any) => i.name).sort();
};

test('default visibility is shared; publicizing needs admin, communitizing does not', async () => {
  const r = await c.post('/v2/images', { name: 'dflt' });
  assert.equal(r.body.visibility, 'shared');
  await c.delete(`/v2/images/${r.body.id}`);
  const pub = await c.post('/v2/images', { name: 'pub', visibility: 'public' });
  assert.equal(pub.status, 403);
  assert.match(pub.body.message, /You are not authorized to complete publicize_image action/);
  const patch = await c.patch(`/v2/images/${ids.private}`, [{ op: 'replace', path: '/visibility', value: 'public' }]);
  assert.equal(patch.status, 403);
  const other = await c.post('/v2/images', { name: 'x', owner: 'p-b' });
  assert.equal(other.status, 403);
  assert.match(other.body.message, /You are not permitted to create images owned by 'p-b'/);
  const owner = await c.patch(`/v2/images/${ids.private}`, [{ op: 'replace', path: '/owner', value: 'p-b' }]);
  assert.equal(owner.status, 403);
  assert.match(owner.body.message, /Owner can't be updated by non admin/);
});

test('list semantics for each visibility filter', async () => {
  // Owner a: public + own (private, shared, community); never hidden images by default.
  assert.deepEqual(await names('/v2/images', 'member-a'), ['a-community', 'a-private', 'a-public', 'a-shared']);
  // Another project sees public only (community only on request, shared only when accepted).
  assert.deepEqual(await names('/v2/images', 'member-b'), ['a-public', 'b-private']);
  assert.deepEqual(await names('/v2/images?visibility=community', 'member-b'), ['a-community']);
  assert.deepEqual(await names('/v2/images?visibility=public', 'member-b'), ['a-public']);
  assert.deepEqual(await names('/v2/images?visibility=private', 'member-b'), ['b-private']);
  assert.deepEqual(await names('/v2/images?visibility=shared', 'member-b'), []);
  assert.deepEqual(await names('/v2/images?visibility=all', 'member-b'), ['a-community', 'a-public', 'b-private']);
  assert.deepEqual(await names('/v2/images?os_hidden=true', 'member-b'), ['a-hidden']);
  // Admin sees every project's images, community ones only on request.
  assert.deepEqual(await names('/v2/images', 'admin'), ['a-private', 'a-public', 'a-shared', 'b-private']);
  assert.deepEqual(await names('/v2/images?visibility=all', 'admin'), ['a-community', 'a-private', 'a-public', 'a-shared', 'b-private']);
  // A reader of project a sees what a member of a sees.
  assert.deepEqual(await names('/v2/images', 'reader-a'), ['a-community', 'a-private', 'a-public', 'a-shared']);
});

test('show, update, delete, upload and download of another project\'s image are 404 (never 403)', async () => {
  for (const id of [ids.private, ids.shared]) {
    assert.equal((await c.get(`/v2/images/${id}`, 'member-b')).status, 404);
    assert.equal((await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/name', value: 'x' }], 'member-b')).status, 404);
    assert.equal((await c.delete(`/v2/images/${id}`, 'member-b')).status, 404);
    assert.equal((await c.upload(id, Buffer.from('x'), 'member-b')).status, 404);
    assert.equal((await c.get(`/v2/images/${id}/file`, 'member-b')).status, 404);
    assert.equal((await c.call('PUT', `/v2/images/${id}/tags/x`, { token: 'member-b' })).status, 404);
    assert.equal((await c.post(`/v2/images/${id}/actions/deactivate`, undefined, 'member-b')).status, 404);
    assert.equal((await c.get(`/v2/images/${id}/members`, 'member-b')).status, 404);
    assert.equal((await c.post(`/v2/images/${id}/members`, { member: 'p-b' }, 'member-b')).status, 404);
  }
  // Public and community images are visible but not modifiable by others: 403.
  for (const id of [ids.public, ids.community]) {
    assert.equal((await c.get(`/v2/images/${id}`, 'member-b')).status, 200);
    const r = await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/name', value: 'x' }], 'member-b');
    assert.equal(r.status, 403);
    assert.match(r.body.message, /not authorized to complete modify_image action/);
    assert.equal((await c.delete(`/v2/images/${id}`, 'member-b')).status, 403);
    assert.equal((await c.upload(id, Buffer.from('x'), 'member-b')).status, 403);
  }
});

test('readers read but never write', async () => {
  assert.equal((await c.get(`/v2/images/${ids.private}`, 'reader-a')).status, 200);
  assert.equal((await c.post('/v2/images', { name: 'r' }, 'reader-a')).status, 403);
  assert.equal((await c.patch(`/v2/images/${ids.private}`, [{ op: 'replace', path: '/name', value: 'x' }], 'reader-a')).status, 403);
  assert.equal((await c.delete(`/v2/images/${ids.private}`, 'reader-a')).status, 403);
  assert.equal((await c.upload(ids.private, Buffer.from('x'), 'reader-a')).status, 403);
  assert.equal((await c.post(`/v2/images/${ids.shared}/members`, { member: 'p-c' }, 'reader-a')).status, 403);
});

test('members: the owner shares, the member accepts, lists follow member status', async () => {
  const url = `/v2/images/${ids.shared}/members`;
  // Only shared images have members.
  const priv = await c.post(`/v2/images/${ids.private}/members`, { member: 'p-b' });
  assert.equal(priv.status, 403);
  assert.match(priv.body.message, /Only shared images have members/);
  assert.equal((await c.post(url, {})).status, 400);
  assert.equal((await c.post(url, { member: '' })).status, 400);

  const add = await c.post(url, { member: 'p-b' });
  assert.equal(add.status, 200);
  assert.deepEqual(Object.keys(add.body).sort(), ['created_at', 'image_id', 'member_id', 'schema', 'status', 'updated_at']);
  assert.equal(add.body.status, 'pending');
  assert.equal(add.body.schema, '/v2/schemas/member');
  assert.equal((await c.post(url, { member: 'p-b' })).status, 409);
  await c.post(url, { member: 'p-c' });

  // Pending: b can show the image but does not list it by default.
  assert.equal((await c.get(`/v2/images/${ids.shared}`, 'member-b')).status, 200);
  assert.deepEqual(await names('/v2/images', 'member-b'), ['a-public', 'b-private']);
  assert.deepEqual(await names('/v2/images?member_status=pending', 'member-b'), ['a-public', 'a-shared', 'b-private']);
  assert.deepEqual(await names('/v2/images?visibility=shared&member_status=pending', 'member-b'), ['a-shared']);

  // The member sees only its own membership; the owner sees all.
  const asB = await c.get(url, 'member-b');
  assert.deepEqual(asB.body.members.map((m: any) => m.member_id), ['p-b']);
  assert.equal(asB.body.schema, '/v2/schemas/members');
  assert.deepEqual((await c.get(url)).body.members.map((m: any) => m.member_id).sort(), ['p-b', 'p-c']);
  assert.equal((await c.get(`${url}/p-c`, 'member-b')).status, 404);
  assert.equal((await c.get(`${url}/p-b`, 'member-b')).body.status, 'pending');

  // Only the member decides; the owner cannot accept for it; members cannot add members.
  const ownerAccepts = await c.call('PUT', `${url}/p-b`, { body: { status: 'accepted' } });
  assert.equal(ownerAccepts.status, 403);
  assert.match(ownerAccepts.body.message, /Not allowed to update members for image/);
  assert.equal((await c.call('PUT', `${url}/p-b`, { body: { status: 'maybe' }, token: 'member-b' })).status, 400);
  assert.equal((await c.call('PUT', `${url}/p-b`, { body: {}, token: 'member-b' })).status, 400);
  const accept = await c.call('PUT', `${url}/p-b`, { body: { status: 'accepted' }, token: 'member-b' });
  assert.equal(accept.status, 200);
  assert.equal(accept.body.status, 'accepted');
  assert.equal((await c.post(url, { member: 'p-d' }, 'member-b')).status, 403);
  assert.equal((await c.delete(`${url}/p-b`, 'member-b')).status, 403);

  // Accepted: listed by default and under visibility=shared; still not modifiable by b.
  assert.deepEqual(await names('/v2/images', 'member-b'), ['a-public', 'a-shared', 'b-private']);
  assert.deepEqual(await names('/v2/images?visibility=shared', 'member-b'), ['a-shared']);
  assert.equal((await c.patch(`/v2/images/${ids.shared}`, [{ op: 'replace', path: '/name', value: 'x' }], 'member-b')).status, 403);

  // Rejected: hidden from default lists again.
  await c.call('PUT', `${url}/p-b`, { body: { status: 'rejected' }, token: 'member-b' });
  assert.deepEqual(await names('/v2/images', 'member-b'), ['a-public', 'b-private']);
  assert.deepEqual(await names('/v2/images?member_status=rejected', 'member-b'), ['a-public', 'a-shared', 'b-private']);
  assert.equal((await c.get('/v2/images?member_status=bogus', 'member-b')).status, 400);

  // The owner removes the member: b no longer sees the image at all.
  assert.equal((await c.delete(`${url}/p-b`)).status, 204);
  assert.equal((await c.get(`/v2/images/${ids.shared}`, 'member-b')).status, 404);
  assert.equal((await c.delete(`${url}/p-b`)).status, 404);
});

test('a shared image\'s data can be downloaded by an accepted member', async () => {
  const id = await c.create({ name: 'shared-data', visibility: 'shared' });
  await c.upload(id, Buffer.from('shared bytes'));
  assert.equal((await c.get(`/v2/images/${id}/file`, 'member-b')).status, 404);
  await c.post(`/v2/images/${id}/members`, { member: 'p-b' });
  await c.call('PUT', `/v2/images/${id}/members/p-b`, { body: { status: 'accepted' }, token: 'member-b' });
  const r = await c.get(`/v2/images/${id}/file`, 'member-b');
  assert.equal(r.status, 200);
  assert.equal(r.raw.toString(), 'shared bytes');
});

test('admin may do anything to any image', async () => {
  assert.equal((await c.get(`/v2/images/${ids.bPrivate}`, 'admin')).status, 200);
  assert.equal((await c.patch(`/v2/images/${ids.bPrivate}`, [{ op: 'replace', path: '/owner', value: 'p-c' }], 'admin')).body.owner, 'p-c');
  assert.equal((await c.get(`/v2/images/${ids.bPrivate}`, 'member-b')).status, 404, 'ownership moved away from b');
  assert.equal((await c.delete(`/v2/images/${ids.bPrivate}`, 'admin')).status, 204);
});

test('filters, sorting and pagination', async () => {
  const mk = (name: string, extra: Record<string, unknown> = {}) => c.create({ name, visibility: 'private', ...extra }, 'member-b');
  const made = [
    await mk('f-one', { tags: ['x', 'y'], architecture: 'x86_64', min_ram: 1 }),
    await mk('f-two', { tags: ['x'], architecture: 'aarch64', protected: true }),
    await mk('f-three', { disk_format: 'qcow2', container_format: 'ova', architecture: 'x86_64' }),
  ];
  assert.equal((await c.upload(made[0], Buffer.alloc(10, 1), 'member-b')).status, 204);
  const q = async (qs: string) => (await names(`/v2/images?visibility=private&${qs}`, 'member-b'));
  assert.deepEqual(await q('tag=x'), ['f-one', 'f-two']);
  assert.deepEqual(await q('tag=x&tag=y'), ['f-one']);
  assert.deepEqual(await q('architecture=x86_64'), ['f-one', 'f-three']);
  assert.deepEqual(await q('architecture=in:aarch64,x86_64'), ['f-one', 'f-three', 'f-two']);
  assert.deepEqual(await q('disk_format=qcow2'), ['f-three']);
  assert.deepEqual(await q('container_format=ova'), ['f-three']);
  assert.deepEqual(await q('name=in:f-one,"f-two"'), ['f-one', 'f-two']);
  assert.deepEqual(await q('status=active'), ['f-one']);
  assert.deepEqual(await q('size_min=5&size_max=10'), ['f-one']);
  assert.deepEqual(await q('protected=true'), ['f-two']);
  assert.deepEqual(await q('owner=p-b&protected=false'), ['f-one', 'f-three']);
  const past = '2000-01-01T00:00:00Z';
  const future = '2999-01-01T00:00:00Z';
  assert.deepEqual(await q(`created_at=gt:${past}&created_at=lt:${future}`), ['f-one', 'f-three', 'f-two']);
  assert.deepEqual(await q(`updated_at=lte:${past}`), []);
  const one = (await c.get(`/v2/images/${made[0]}`, 'member-b')).body.created_at;
  assert.ok((await q(`created_at=eq:${one}`)).includes('f-one'));
  for (const bad of ['created_at=xx:2020-01-01T00:00:00Z', 'created_at=gt:yesterday', 'size_min=big', 'os_hidden=maybe', 'protected=1',
    'sort_key=owner', 'sort_dir=up', 'sort=name:up', 'sort=name&sort_key=name', 'limit=-1', 'limit=x', 'visibility=everyone',
    'sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc', 'marker=00000000-0000-4000-8000-000000000000', 'changes-since=2020']) {
    assert.equal((await c.get(`/v2/images?${bad}`, 'member-b')).status, 400, bad);
  }

  // Sorting both ways, both syntaxes.
  const order = async (qs: string) => (await c.get(`/v2/images?visibility=private&${qs}`, 'member-b')).body.images.map((i: any) => i.name);
  assert.deepEqual(await order('sort_key=name&sort_dir=asc'), ['f-one', 'f-three', 'f-two']);
  assert.deepEqual(await order('sort=name:desc'), ['f-two', 'f-three', 'f-one']);
  assert.deepEqual(await order('sort=size:desc,name:asc'), ['f-one', 'f-three', 'f-two']);

  // Pagination: limit + marker + next links walk every image exactly once.
  const seen: string[] = [];
  let url: string | undefined = '/v2/images?visibility=private&limit=1&sort_key=name&sort_dir=asc';
  while (url) {
    const r = await c.get(url, 'member-b');
    seen.push(...r.body.images.map((i: any) => i.name));
    url = r.body.next;
    assert.ok(seen.length < 10);
  }
  assert.deepEqual(seen, ['f-one', 'f-three', 'f-two']);
});

test('user properties never override the policy target: a property project_id/owner naming B gives B nothing', async () => {
  // A community image is visible to B, so only policy stands between B and a write.
  const id = await c.create({ name: 'a-target', visibility: 'community', project_id: 'p-b', owner_id: 'p-b' });
  const set = await c.patch(`/v2/images/${id}`, [
    { op: 'add', path: '/member_id', value: 'p-b' }, { op: 'add', path: '/image_id', value: 'x' },
  ]);
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.equal(set.body.project_id, 'p-b', 'the property is stored and shown');
  const patch = await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/name', value: 'stolen' }], 'member-b');
  assert.equal(patch.status, 403, JSON.stringify(patch.body));
  const del = await c.delete(`/v2/images/${id}`, 'member-b');
  assert.equal(del.status, 403, JSON.stringify(del.body));
  const tag = await c.call('PUT', `/v2/images/${id}/tags/mine`, { token: 'member-b' });
  assert.equal(tag.status, 403);
  const deact = await c.call('POST', `/v2/images/${id}/actions/deactivate`, { token: 'member-b' });
  assert.equal(deact.status, 403);
  const upload = await c.upload(id, Buffer.alloc(512), 'member-b');
  assert.equal(upload.status, 403);
  assert.equal((await c.get(`/v2/images/${id}`)).body.name, 'a-target');
  assert.equal((await c.delete(`/v2/images/${id}`)).status, 204, 'the owner still can');
});
