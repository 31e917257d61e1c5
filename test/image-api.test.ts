// Image API: shapes (against the Zed captures), create/list/show/patch/delete, tags, actions,
// schemas, bad input. Runs on the backend chosen by STRATUS_TEST_DB.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { startTestService, type TestService } from './helpers/service.ts';
import { imageService } from '../src/image/index.ts';
import { GlanceClient } from './fixtures/image/client.ts';

const REF = new URL('./fixtures/reference/openstack-zed', import.meta.url).pathname;
const ref = (name: string) => JSON.parse(readFileSync(`${REF}/${name}.json`, 'utf8'));
const keysOf = (o: Record<string, unknown>) => Object.keys(o).sort();

let svc: TestService;
let c: GlanceClient;
before(async () => {
  svc = await startTestService(imageService, { configText: '[DEFAULT]\nimage_tag_quota = 5\nimage_property_quota = 20\n' });
  c = new GlanceClient(svc.url);
});
after(async () => { svc?.app.server.closeAllConnections(); await svc?.close(); });

test('root version document is a 300 without a token, as 03-glance-root', async () => {
  const r = await c.get('/', null);
  assert.equal(r.status, 300);
  const expected = ref('03-glance-root');
  assert.deepEqual(r.body.versions.map((v: any) => [v.id, v.status]), expected.versions.map((v: any) => [v.id, v.status]));
  assert.equal(r.body.versions[0].links[0].href, `${svc.url}/v2/`);
  assert.match(r.headers['x-openstack-request-id'], /^req-[0-9a-f-]{36}$/);
  assert.equal((await c.get('/versions', null)).status, 200);
});

test('everything under /v2 needs a token', async () => {
  for (const p of ['/v2/images', '/v2/schemas/image', '/v2/nothing']) {
    const r = await c.get(p, null);
    assert.equal(r.status, 401, p);
  }
  assert.equal((await c.get('/v2/images', 'bogus')).status, 401);
});

test('create, show, list, patch and delete have the shapes of the Zed captures', async () => {
  const created = await c.post('/v2/images', ref('16-glance-image-create.request'));
  assert.equal(created.status, 201);
  assert.deepEqual(keysOf(created.body), keysOf(ref('16-glance-image-create')));
  const id = created.body.id;
  assert.equal(created.headers.location, `${svc.url}/v2/images/${id}`);
  assert.equal(created.headers['openstack-image-import-methods'], 'glance-direct,web-download,copy-image');
  assert.equal(created.body.status, 'queued');
  assert.equal(created.body.owner, 'p-a');
  assert.equal(created.body.size, null);
  assert.deepEqual(created.body.tags, []);
  assert.equal(created.body.self, `/v2/images/${id}`);
  assert.equal(created.body.file, `/v2/images/${id}/file`);
  assert.equal(created.body.schema, '/v2/schemas/image');
  assert.match(created.body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const data = Buffer.alloc(65536, 1);
  const up = await c.upload(id, data);
  assert.equal(up.status, 204);
  const shown = await c.get(`/v2/images/${id}`);
  assert.equal(shown.status, 200);
  assert.deepEqual(keysOf(shown.body), keysOf(ref('18-glance-image-show-active')));
  assert.equal(shown.body.status, 'active');
  assert.equal(shown.body.size, 65536);
  assert.equal(shown.body.virtual_size, 65536);
  assert.equal(shown.body.os_hash_algo, 'sha512');
  assert.equal(shown.body.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(shown.body.os_hash_value, createHash('sha512').update(data).digest('hex'));

  const patched = await c.patch(`/v2/images/${id}`, ref('21-glance-image-patch.request'));
  assert.equal(patched.status, 200);
  assert.deepEqual(keysOf(patched.body), keysOf(ref('21-glance-image-patch')));
  assert.equal(patched.body.anchor_property, 'hello');
  assert.equal(patched.body.name, 'anchor-capture-image-renamed');

  const listed = await c.get('/v2/images?limit=5');
  assert.equal(listed.status, 200);
  assert.deepEqual(keysOf(listed.body), ['first', 'images', 'schema']);
  assert.equal(listed.body.first, '/v2/images?limit=5');
  assert.equal(listed.body.schema, '/v2/schemas/images');
  assert.ok(listed.body.images.some((i: any) => i.id === id));

  const again = await c.upload(id, Buffer.from('x'));
  assert.equal(again.status, 409);
  assert.deepEqual(again.body, ref('22-glance-error-409-upload-to-active'));

  const del = await c.delete(`/v2/images/${id}`);
  assert.equal(del.status, 204);
  const gone = await c.get(`/v2/images/${id}`);
  assert.equal(gone.status, 404);
  assert.deepEqual(gone.body, { ...ref('24-glance-error-404'), message: `No image found with ID ${id}<br /><br />\n\n\n` });
});

test('bad disk_format gives the 400 of capture 23, word for word', async () => {
  const r = await c.post('/v2/images', ref('23-glance-error-400-bad-disk-format.request'));
  assert.equal(r.status, 400);
  assert.deepEqual(r.body, ref('23-glance-error-400-bad-disk-format'));
});

test('invalid enum values, types and ids are 400s in the glance shape', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ container_format: 'tarball' }, /'tarball' is not one of \[None, 'ami'/],
    [{ visibility: 'everyone' }, /'everyone' is not one of \['community', 'public', 'private', 'shared'\]/],
    [{ min_ram: 'lots' }, /'lots' is not of type 'integer'/],
    [{ min_disk: 1.5 }, /1.5 is not of type 'integer'/],
    [{ protected: 'yes' }, /'yes' is not of type 'boolean'/],
    [{ id: 'not-a-uuid' }, /'not-a-uuid' does not match/],
    [{ hw_disk_bus: 5 }, /5 is not of type 'string'/],
    [{ tags: 'one' }, /'one' is not of type 'array'/],
    [{ name: 'x'.repeat(256) }, /is too long/],
    [{ min_ram: -1 }, /Cannot set min_ram to a negative value/],
    [{ ['k'.repeat(256)]: 'v' }, /Custom property should not be greater than 255 characters/],
  ];
  for (const [body, msg] of cases) {
    const r = await c.post('/v2/images', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.code, '400 Bad Request');
    assert.equal(r.body.title, 'Bad Request');
    assert.match(r.body.message, msg);
  }
  const bad = await c.call('POST', '/v2/images', { raw: '{"name": ', headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 400);
  const notObject = await c.post('/v2/images', [1, 2]);
  assert.equal(notObject.status, 400);
});

test('reserved and read-only attributes are refused as Glance refuses them', async () => {
  for (const k of ['status', 'size', 'checksum', 'created_at', 'os_hash_value', 'virtual_size', 'self', 'file', 'schema', 'direct_url']) {
    const r = await c.post('/v2/images', { [k]: k === 'size' || k === 'virtual_size' ? 5 : k === 'status' ? 'active' : 'x' });
    assert.equal(r.status, 403, k);
    assert.match(r.body.message, new RegExp(`Attribute '${k}' is read-only.`));
  }
  for (const k of ['location', 'deleted', 'deleted_at', 'os_glance_import_task']) {
    const r = await c.post('/v2/images', { [k]: 'x' });
    assert.equal(r.status, 403, k);
    assert.match(r.body.message, new RegExp(`Attribute '${k}' is reserved.`));
  }
  const id = await c.create({ name: 'ro' });
  for (const [path, re, status] of [
    ['/status', /Attribute 'status' is read-only/, 403], ['/size', /Attribute 'size' is read-only/, 403], ['/id', /Attribute 'id' is read-only/, 403],
    ['/checksum', /read-only/, 403], ['/deleted', /Attribute 'deleted' is reserved/, 403],
    ['/os_glance_foo', /Attribute 'os_glance_foo' is reserved/, 403],
  ] as const) {
    const r = await c.patch(`/v2/images/${id}`, [{ op: 'replace', path, value: 'x' }]);
    assert.equal(r.status, status, path);
    assert.match(r.body.message, re);
  }
});

test('malformed JSON patches are 400, wrong patch media type is 415 with Accept-Patch', async () => {
  const id = await c.create({ name: 'p' });
  const cases: [unknown, RegExp][] = [
    [{ op: 'add' }, /must be a JSON array/],
    [[5], /Operations must be JSON objects/],
    [[{ path: '/name', value: 'x' }], /Unable to find `op`/],
    [[{ op: 'move', path: '/name', value: 'x' }], /Invalid operation: `move`/],
    [[{ op: 'replace', value: 'x' }], /Unable to find 'path'/],
    [[{ op: 'replace', path: 'name', value: 'x' }], /does not start with "\/"/],
    [[{ op: 'replace', path: '/name' }], /Operation "replace" requires a member named "value"/],
    [[{ op: 'replace', path: '/name/x', value: 'x' }], /Invalid JSON pointer/],
    [[{ op: 'replace', path: '/a~2b', value: 'x' }], /not part of a recognized escape sequence/],
    [[{ op: 'replace', path: '/min_ram', value: 'x' }], /'x' is not of type 'integer'/],
    [[{ op: 'add', path: '/visibility', value: 'nope' }], /'nope' is not one of/],
  ];
  for (const [ops, msg] of cases) {
    const r = await c.patch(`/v2/images/${id}`, ops);
    assert.equal(r.status, 400, JSON.stringify(ops));
    assert.match(r.body.message, msg);
  }
  const garbage = await c.call('PATCH', `/v2/images/${id}`, { raw: '[{"op": ', headers: { 'content-type': 'application/openstack-images-v2.1-json-patch' } });
  assert.equal(garbage.status, 400);
  const wrong = await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/name', value: 'x' }], undefined, 'application/json');
  assert.equal(wrong.status, 415);
  assert.equal(wrong.headers['accept-patch'], 'application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch');
});

test('patch semantics: add/replace/remove on base attributes and properties, draft 4 too', async () => {
  const id = await c.create({ name: 'sem', hypervisor_type: 'qemu' });
  let r = await c.patch(`/v2/images/${id}`, [
    { op: 'add', path: '/architecture', value: 'x86_64' },
    { op: 'replace', path: '/hypervisor_type', value: 'kvm' },
    { op: 'add', path: '/min_ram', value: 512 },
    { op: 'replace', path: '/tags', value: ['a', 'b', 'a'] },
    { op: 'add', path: '/a~1b', value: 'slash' },
  ]);
  assert.equal(r.status, 200);
  assert.equal(r.body.architecture, 'x86_64');
  assert.equal(r.body.hypervisor_type, 'kvm');
  assert.equal(r.body.min_ram, 512);
  assert.deepEqual(r.body.tags, ['a', 'b']);
  assert.equal(r.body['a/b'], 'slash');
  r = await c.patch(`/v2/images/${id}`, [{ op: 'remove', path: '/architecture' }]);
  assert.equal(r.status, 200);
  assert.equal(r.body.architecture, undefined);
  r = await c.patch(`/v2/images/${id}`, [{ op: 'remove', path: '/architecture' }]);
  assert.equal(r.status, 409);
  assert.match(r.body.message, /Property architecture does not exist/);
  r = await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/nonexistent', value: 'x' }]);
  assert.equal(r.status, 409);
  r = await c.patch(`/v2/images/${id}`, [{ op: 'remove', path: '/name' }]);
  assert.equal(r.status, 403);
  assert.match(r.body.message, /Property name may not be removed/);
  r = await c.patch(`/v2/images/${id}`, [{ replace: '/name', value: 'draft4' }], undefined, 'application/openstack-images-v2.0-json-patch');
  assert.equal(r.status, 200);
  assert.equal(r.body.name, 'draft4');
  r = await c.patch(`/v2/images/${id}`, []);
  assert.equal(r.status, 200);
});

test('disk and container formats change only while queued', async () => {
  const id = await c.create({ name: 'fmt' });
  assert.equal((await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }])).status, 200);
  assert.equal((await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/disk_format', value: 'raw' }])).status, 200);
  assert.equal((await c.upload(id, Buffer.alloc(1024, 3))).status, 204);
  const r = await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }]);
  assert.equal(r.status, 403);
  assert.match(r.body.message, /Attribute disk_format can be only replaced for a queued image/);
});

test('non-UUID and unknown ids are 404 everywhere', async () => {
  for (const [m, p] of [['GET', '/v2/images/abc'], ['DELETE', '/v2/images/abc'], ['GET', '/v2/images/abc/file'], ['GET', '/v2/images/abc/members'],
    ['GET', `/v2/images/${'1'.repeat(900)}`], ['GET', '/v2/images/00000000-0000-4000-8000-000000000000']] as const) {
    const r = await c.call(m, p);
    assert.equal(r.status, 404, `${m} ${p}`);
    assert.equal(r.body.title, 'Not Found');
  }
  const r = await c.patch('/v2/images/abc', [{ op: 'replace', path: '/name', value: 'x' }]);
  assert.equal(r.status, 404);
  const d = await c.delete('/v2/images/00000000-0000-4000-8000-000000000000');
  assert.match(d.body.message, /Failed to find image 00000000-0000-4000-8000-000000000000 to delete/);
});

test('duplicate id is 409', async () => {
  const id = '6b5d3c2e-1f0a-4b9c-8d7e-6f5a4b3c2d1e';
  assert.equal((await c.post('/v2/images', { id })).status, 201);
  const r = await c.post('/v2/images', { id });
  assert.equal(r.status, 409);
  assert.match(r.body.message, /Image with identifier .* already exists!/);
  await c.delete(`/v2/images/${id}`);
  assert.equal((await c.post('/v2/images', { id })).status, 409, 'a deleted id is not reused');
});

test('tags: put, delete, idempotent, limited', async () => {
  const id = await c.create({ name: 'tags' });
  assert.equal((await c.call('PUT', `/v2/images/${id}/tags/t1`)).status, 204);
  assert.equal((await c.call('PUT', `/v2/images/${id}/tags/t1`)).status, 204);
  assert.equal((await c.call('PUT', `/v2/images/${id}/tags/t%202`)).status, 204);
  assert.deepEqual((await c.get(`/v2/images/${id}`)).body.tags, ['t1', 't 2']);
  assert.equal((await c.delete(`/v2/images/${id}/tags/t1`)).status, 204);
  assert.equal((await c.delete(`/v2/images/${id}/tags/t1`)).status, 404);
  for (const t of ['a', 'b', 'c', 'd']) await c.call('PUT', `/v2/images/${id}/tags/${t}`);
  const over = await c.call('PUT', `/v2/images/${id}/tags/e`);
  assert.equal(over.status, 413);
  assert.match(over.body.message, /number of allowed image tags. Attempted: 6, Maximum: 5/);
  const long = await c.call('PUT', `/v2/images/${id}/tags/${'x'.repeat(256)}`);
  assert.equal(long.status, 400);
});

test('protected images cannot be deleted; deactivate and reactivate', async () => {
  const id = await c.create({ name: 'prot', protected: true });
  const r = await c.delete(`/v2/images/${id}`);
  assert.equal(r.status, 403);
  assert.match(r.body.message, new RegExp(`Image ${id} is protected and cannot be deleted.`));
  assert.equal((await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/protected', value: false }])).status, 200);

  const deq = await c.post(`/v2/images/${id}/actions/deactivate`, undefined);
  assert.equal(deq.status, 403);
  assert.match(deq.body.message, /Not allowed to deactivate image in status 'queued'/);
  await c.upload(id, Buffer.alloc(100, 1));
  assert.equal((await c.post(`/v2/images/${id}/actions/deactivate`, undefined)).status, 204);
  assert.equal((await c.get(`/v2/images/${id}`)).body.status, 'deactivated');
  const dl = await c.get(`/v2/images/${id}/file`);
  assert.equal(dl.status, 403);
  assert.match(dl.body.message, /has been deactivated/);
  assert.equal((await c.get(`/v2/images/${id}/file`, 'admin')).status, 200, 'admins still download');
  assert.equal((await c.post(`/v2/images/${id}/actions/deactivate`, undefined)).status, 204);
  assert.equal((await c.post(`/v2/images/${id}/actions/reactivate`, undefined)).status, 204);
  assert.equal((await c.get(`/v2/images/${id}`)).body.status, 'active');
  assert.equal((await c.delete(`/v2/images/${id}`)).status, 204);
});

test('schemas endpoints', async () => {
  const img = await c.get('/v2/schemas/image');
  assert.equal(img.status, 200);
  assert.deepEqual(img.body, ref('19-glance-schemas-image'));
  const imgs = await c.get('/v2/schemas/images');
  assert.equal(imgs.body.name, 'images');
  assert.deepEqual(imgs.body.properties.images.items, ref('19-glance-schemas-image'));
  assert.deepEqual(imgs.body.links.map((l: any) => l.rel), ['first', 'next', 'describedby']);
  assert.equal((await c.get('/v2/schemas/member')).body.name, 'member');
  assert.equal((await c.get('/v2/schemas/members')).body.properties.members.items.name, 'member');
  assert.equal((await c.get('/v2/schemas/nope')).status, 404);
});

test('property quota', async () => {
  const props = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`p${i}`, 'v']));
  const r = await c.post('/v2/images', props);
  assert.equal(r.status, 413);
  assert.match(r.body.message, /image properties. Attempted: 21, Maximum: 20/);
});

test('a body under another content type is still read as JSON (Glance does not insist)', async () => {
  const r = await c.call('POST', '/v2/images', { raw: JSON.stringify({ name: 'textplain' }), headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 201);
  assert.equal(r.body.name, 'textplain');
  const big = await c.call('POST', '/v2/images', { raw: JSON.stringify({ name: 'x', description: 'y'.repeat(200_000) }) , headers: { 'content-type': 'application/json' } });
  assert.equal(big.status, 413);
});

test('lists reflect every change at once (rendered images are reused only while unchanged)', async () => {
  const id = await c.create({ name: 'cache-1', visibility: 'private' });
  const find = async () => (await c.get('/v2/images?visibility=private&limit=100')).body.images.find((i: any) => i.id === id);
  assert.equal((await find()).name, 'cache-1');
  await c.patch(`/v2/images/${id}`, [{ op: 'replace', path: '/name', value: 'cache-2' }, { op: 'add', path: '/k', value: 'v' }]);
  let img = await find();
  assert.equal(img.name, 'cache-2');
  assert.equal(img.k, 'v');
  await c.call('PUT', `/v2/images/${id}/tags/t`);
  assert.deepEqual((await find()).tags, ['t']);
  await c.upload(id, Buffer.alloc(10, 1));
  img = await find();
  assert.equal(img.status, 'active');
  assert.equal(img.size, 10);
  await c.post(`/v2/images/${id}/actions/deactivate`, undefined);
  assert.equal((await find()).status, 'deactivated');
  await c.delete(`/v2/images/${id}`);
  assert.equal(await find(), undefined);
});

test('concurrent patches never lose an update', async () => {
  const id = await c.create({ name: 'race' });
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => c.patch(`/v2/images/${id}`, [{ op: 'add', path: `/p${i}`, value: String(i) }])));
  assert.ok(results.every((r) => r.status === 200), results.map((r) => r.status).join(','));
  const img = (await c.get(`/v2/images/${id}`)).body;
  for (let i = 0; i < 12; i++) assert.equal(img[`p${i}`], String(i));
  await Promise.all(['a', 'b', 'c', 'd'].map((t) => c.call('PUT', `/v2/images/${id}/tags/${t}`)));
  assert.deepEqual((await c.get(`/v2/images/${id}`)).body.tags.sort(), ['a', 'b', 'c', 'd']);
});

test('error bodies follow Accept as webob does: JSON, HTML (glanceclient sends none), plain; 401 as keystonemiddleware', async () => {
  const path = '/v2/images/00000000-0000-4000-8000-000000000000';
  const json = await c.call('GET', path, { headers: { accept: 'application/json' } });
  assert.equal(json.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(json.body.code, '404 Not Found');
  for (const accept of ['*/*', 'text/html', '']) {
    const r = await fetch(`${svc.url}${path}`, { headers: { 'x-auth-token': 'member-a', ...(accept ? { accept } : {}) } });
    assert.equal(r.status, 404);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/, accept);
    const text = await r.text();
    assert.match(text, /<title>404 Not Found<\/title>/);
    assert.match(text, /No image found with ID 00000000-0000-4000-8000-000000000000<br \/><br \/>/);
  }
  const plain = await fetch(`${svc.url}${path}`, { headers: { 'x-auth-token': 'member-a', accept: 'text/plain' } });
  assert.match(plain.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(await plain.text(), /^404 Not Found\n\nNo image found/);
  const unauth = await fetch(`${svc.url}/v2/images`, { headers: { accept: '*/*' } });
  assert.equal(unauth.status, 401);
  assert.deepEqual(await unauth.json(), { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
});

test('a known path with another method is 405 with Allow', async () => {
  const r = await c.call('PUT', '/v2/images', { body: {} });
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'GET, POST');
  assert.match(r.body.message, /The method PUT is not allowed for this resource/);
  const f = await c.call('POST', '/v2/images/00000000-0000-4000-8000-000000000000/file');
  assert.equal(f.status, 405);
  assert.equal(f.headers.allow, 'GET, PUT');
  assert.equal((await c.get('/v2/nothing/here')).status, 404);
});
