// Interoperable import: glance-direct (stage + import), web-download (from a loopback HTTP server,
// allowed only by configuration), copy-image between stores, conversion, and the failures.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTestService, type TestService } from './helpers/service.ts';
import { tempDir } from './helpers/backends.ts';
import { imageService } from '../src/image/index.ts';
import { GlanceClient } from './fixtures/image/client.ts';
import { Workshop, images, pattern } from './fixtures/image/craft.ts';

const w = new Workshop();
let web: Server;
let port = 0;
const files: Record<string, Buffer> = {};

before(async () => {
  files['/disk.raw'] = pattern(2 << 20, 11);
  files['/disk.qcow2'] = w.qcow2WithData('web.qcow2', pattern(1 << 20, 12));
  files['/evil.qcow2'] = images.qcow2BackingPasswd(w);
  web = createServer((req, res) => {
    if (req.url === '/redirect-internal') { res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }); return res.end(); }
    if (req.url === '/redirect-ok') { res.writeHead(301, { location: '/disk.raw' }); return res.end(); }
    const f = files[req.url ?? ''];
    if (!f) { res.writeHead(404); return res.end('no'); }
    res.writeHead(200, { 'content-length': f.length, 'content-type': 'application/octet-stream' });
    res.end(f);
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  port = (web.address() as { port: number }).port;
});
after(() => { web?.close(); w.remove(); });

async function waitStatus(c: GlanceClient, id: string, want: string[], ms = 10_000) {
  const end = Date.now() + ms;
  let img: any;
  while (Date.now() < end) {
    img = (await c.get(`/v2/images/${id}`, 'admin')).body;
    if (want.includes(img.status) && !img.os_glance_import_task) return img;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`image ${id} stayed ${img?.status}`);
}

const lastTask = async (c: GlanceClient, id: string) => {
  const t = (await c.get(`/v2/images/${id}/tasks`)).body.tasks;
  return t[t.length - 1];
};

test('glance-direct: stage, import, active with hashes; staging cleaned up', async () => {
  const svc = await startTestService(imageService);
  try {
    const c = new GlanceClient(svc.url);
    const data = pattern(3 << 20, 21);
    const id = await c.create({ name: 'direct' });
    const early = await c.post(`/v2/images/${id}/import`, { method: { name: 'glance-direct' } });
    assert.equal(early.status, 409);
    assert.match(early.body.message, /Image needs to be staged before 'glance-direct' method can be used/);
    assert.equal((await c.upload(id, data, undefined, 'stage')).status, 204);
    assert.equal((await c.get(`/v2/images/${id}`)).body.status, 'uploading');
    assert.equal((await c.upload(id, data, undefined, 'stage')).status, 409, 'staging twice');
    const r = await c.post(`/v2/images/${id}/import`, { method: { name: 'glance-direct' } });
    assert.equal(r.status, 202);
    const img = await waitStatus(c, id, ['active', 'queued']);
    assert.equal(img.status, 'active');
    assert.equal(img.checksum, createHash('md5').update(data).digest('hex'));
    assert.equal(img.os_hash_value, createHash('sha512').update(data).digest('hex'));
    assert.equal(img.size, data.length);
    assert.equal(img.os_glance_importing_to_stores, undefined);
    assert.ok((await c.get(`/v2/images/${id}/file`)).raw.equals(data));
    const staging = join(svc.dataDir, 'images', 'staging');
    assert.deepEqual(readdirSync(staging), []);
    const task = await lastTask(c, id);
    assert.equal(task.status, 'success');
    assert.equal(task.type, 'api_image_import');
    assert.equal((await c.get(`/v2/tasks/${task.id}`, 'admin')).body.status, 'success');
    assert.equal((await c.get(`/v2/tasks/${task.id}`)).status, 403, 'the tasks API is for admins');
    assert.equal((await c.post(`/v2/images/${id}/import`, { method: { name: 'glance-direct' } })).status, 409);
  } finally { await svc.close(); }
});

test('import request validation', async () => {
  const svc = await startTestService(imageService);
  try {
    const c = new GlanceClient(svc.url);
    const id = await c.create({ name: 'v' });
    for (const [body, msg] of [
      [{}, /requires a 'method' field/], [{ method: {} }, /requires a 'name' field/],
      [{ method: { name: 'ftp' } }, /Unknown import method name 'ftp'/],
      [{ method: { name: 'web-download', uri: 'http://x' }, all_stores: 'yes' }, /'all_stores' must be boolean/],
      [{ method: { name: 'web-download' } }, /URI for web-download is required/],
      [{ method: { name: 'web-download', uri: 'file:///etc/passwd' } }, /does not pass filtering/],
      [{ method: { name: 'web-download', uri: 'http://example.com:8080/x' } }, /does not pass filtering/],
      [{ method: { name: 'web-download', uri: 'http://user:pw@example.com/x' } }, /does not pass filtering/],
    ] as const) {
      const r = await c.post(`/v2/images/${id}/import`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.message, msg);
    }
    const noFormat = (await c.post('/v2/images', { name: 'nf' })).body.id;
    const r = await c.post(`/v2/images/${noFormat}/import`, { method: { name: 'web-download', uri: 'http://example.com/x' } });
    assert.equal(r.status, 409);
    assert.match(r.body.message, /'container_format' needs to be set before import/);
    assert.equal((await c.post(`/v2/images/${id}/import`, { method: { name: 'copy-image' } })).status, 409);
  } finally { await svc.close(); }
});

test('web-download: loopback is refused by default, allowed when the host is listed', async () => {
  // Port allowed, host not listed: the loopback address is refused when the task runs.
  const denied = await startTestService(imageService, { configText: `[import_filtering_opts]\nallowed_ports = ${port}\n` });
  try {
    const c = new GlanceClient(denied.url);
    const id = await c.create({ name: 'loop' });
    assert.equal((await c.post(`/v2/images/${id}/import`, { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/disk.raw` } })).status, 202);
    const img = await waitStatus(c, id, ['queued', 'active']);
    assert.equal(img.status, 'queued');
    const task = await lastTask(c, id);
    assert.equal(task.status, 'failure');
    assert.match(task.message, /resolves to 127.0.0.1, a loopback, link-local or unspecified address/);
  } finally { await denied.close(); }

  const svc = await startTestService(imageService, { configText: `[import_filtering_opts]\nallowed_ports = ${port}\nallowed_hosts = 127.0.0.1\n` });
  try {
    const c = new GlanceClient(svc.url);
    const id = await c.create({ name: 'web' });
    assert.equal((await c.post(`/v2/images/${id}/import`, { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/disk.raw` } })).status, 202);
    const img = await waitStatus(c, id, ['active', 'queued']);
    assert.equal(img.status, 'active');
    assert.equal(img.checksum, createHash('md5').update(files['/disk.raw']).digest('hex'));

    // Redirects are followed and re-vetted.
    const ok = await c.create({ name: 'redir' });
    await c.post(`/v2/images/${ok}/import`, { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/redirect-ok` } });
    assert.equal((await waitStatus(c, ok, ['active', 'queued'])).status, 'active');
    const bad = await c.create({ name: 'redir-bad' });
    await c.post(`/v2/images/${bad}/import`, { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/redirect-internal` } });
    assert.equal((await waitStatus(c, bad, ['active', 'queued'])).status, 'queued');
    assert.match((await lastTask(c, bad)).message, /host 169.254.169.254 is not allowed/);

    // A 404 and an unsafe image both fail the task and leave the image queued.
    const missing = await c.create({ name: 'missing' });
    await c.post(`/v2/images/${missing}/import`, { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/nothing` } });
    assert.equal((await waitStatus(c, missing, ['active', 'queued'])).status, 'queued');
    assert.match((await lastTask(c, missing)).message, /HTTP 404/);
    const evil = await c.create({ name: 'evil', disk_format: 'qcow2' });
    await c.post(`/v2/images/${evil}/import`, { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/evil.qcow2` } });
    assert.equal((await waitStatus(c, evil, ['active', 'queued'])).status, 'queued');
    assert.match((await lastTask(c, evil)).message, /backing file/);
    assert.deepEqual(readdirSync(join(svc.dataDir, 'images', 'staging')), []);
  } finally { await svc.close(); }
});

test('image_conversion turns an imported qcow2 into raw', async () => {
  const svc = await startTestService(imageService, { configText: `[image_import_opts]\nimage_import_plugins = image_conversion\n[image_conversion]\noutput_format = raw\n[import_filtering_opts]\nallowed_ports = ${port}\nallowed_hosts = 127.0.0.1\n` });
  try {
    const c = new GlanceClient(svc.url);
    const id = await c.create({ name: 'conv', disk_format: 'qcow2' });
    await c.post(`/v2/images/${id}/import`, { method: { name: 'web-download', uri: `http://127.0.0.1:${port}/disk.qcow2` } });
    const img = await waitStatus(c, id, ['active', 'queued']);
    assert.equal(img.status, 'active', JSON.stringify(await lastTask(c, id)));
    assert.equal(img.disk_format, 'raw');
    assert.equal(img.size, 1 << 20);
    assert.ok((await c.get(`/v2/images/${id}/file`)).raw.equals(pattern(1 << 20, 12)));
  } finally { await svc.close(); }
});

test('multiple stores: upload to a chosen store, copy-image, stores field, delete from a store', async () => {
  const cheapDir = tempDir();
  const svc = await startTestService(imageService, {
    configText: `[DEFAULT]\nenabled_backends = fast:file, cheap:file\n[glance_store]\ndefault_backend = fast\n[cheap]\nfilesystem_store_datadir = ${cheapDir.path}\nstore_description = Slow disks\n`,
  });
  try {
    assert.deepEqual(svc.config.warnings, [], 'the stores\' own sections are known options');
    const c = new GlanceClient(svc.url);
    const stores = await c.get('/v2/info/stores');
    assert.deepEqual(stores.body, { stores: [{ id: 'fast', default: 'true' }, { id: 'cheap', description: 'Slow disks' }] });
    const detail = await c.get('/v2/info/stores/detail', 'admin');
    assert.equal(detail.body.stores[0].type, 'file');
    assert.equal((await c.get('/v2/info/stores/detail')).status, 403);
    const versions = (await c.get('/', null)).body.versions.map((v: any) => v.id);
    assert.ok(versions.includes('v2.8') && versions.includes('v2.13'));
    const created = await c.post('/v2/images', { name: 'ms', disk_format: 'raw', container_format: 'bare' });
    assert.equal(created.headers['openstack-image-store-ids'], 'fast,cheap');
    const id = created.body.id;
    const data = pattern(1 << 20, 31);
    assert.equal((await c.upload(id, data)).status, 204);
    assert.equal((await c.get(`/v2/images/${id}`)).body.stores, 'fast');
    assert.ok(existsSync(join(svc.dataDir, 'images', 'fast', id)));

    const byMember = await c.post(`/v2/images/${id}/import`, { method: { name: 'copy-image' }, stores: ['cheap'] });
    assert.equal(byMember.status, 403, 'copy-image is admin-only by default');
    assert.equal((await c.post(`/v2/images/${id}/import`, { method: { name: 'copy-image' }, stores: ['nowhere'] }, 'admin')).status, 409);
    assert.equal((await c.post(`/v2/images/${id}/import`, { method: { name: 'copy-image' }, stores: ['fast'] }, 'admin')).status, 400);
    assert.equal((await c.post(`/v2/images/${id}/import`, { method: { name: 'copy-image' }, stores: ['cheap'] }, 'admin')).status, 202);
    const end = Date.now() + 10_000;
    let img: any;
    do { img = (await c.get(`/v2/images/${id}`)).body; await new Promise((r) => setTimeout(r, 25)); } while (img.stores !== 'fast,cheap' && Date.now() < end);
    assert.equal(img.stores, 'fast,cheap');
    assert.equal(img.status, 'active');
    assert.ok(existsSync(join(cheapDir.path, id)), 'the store\'s own filesystem_store_datadir');

    assert.equal((await c.delete(`/v2/stores/fast/${id}`)).status, 403, 'deleting a location is admin-only');
    assert.equal((await c.delete(`/v2/stores/fast/${id}`, 'admin')).status, 204);
    assert.equal((await c.get(`/v2/images/${id}`)).body.stores, 'cheap');
    assert.ok((await c.get(`/v2/images/${id}/file`)).raw.equals(data), 'served from the remaining store');
    const last = await c.delete(`/v2/stores/cheap/${id}`, 'admin');
    assert.equal(last.status, 403);
    assert.match(last.body.message, /only store containing it/);

    const other = await c.create({ name: 'to-cheap' });
    const r = await c.call('PUT', `/v2/images/${other}/file`, { raw: data, headers: { 'x-image-meta-store': 'cheap' } });
    assert.equal(r.status, 204);
    assert.equal((await c.get(`/v2/images/${other}`)).body.stores, 'cheap');
    const bad = await c.create({ name: 'bad-store' });
    assert.equal((await c.call('PUT', `/v2/images/${bad}/file`, { raw: data, headers: { 'x-image-meta-store': 'nope' } })).status, 400);
    assert.equal((await c.get(`/v2/images/${bad}`)).body.status, 'queued');

    await c.delete(`/v2/images/${id}`);
    assert.ok(!existsSync(join(cheapDir.path, id)));
  } finally { await svc.close(); cheapDir.remove(); }
});
