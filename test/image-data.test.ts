// Image data: upload and download through the filesystem store, hashes, Range, the status
// machine under failure (disconnects, quotas, refused content), crafted images, the startup scrub.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { startTestService, type TestService } from './helpers/service.ts';
import { imageService } from '../src/image/index.ts';
import { GlanceClient } from './fixtures/image/client.ts';
import { Workshop, images, pattern } from './fixtures/image/craft.ts';
import { ImageService } from '../src/image/service.ts';
import { openDatabase } from '../src/common/db/database.ts';
import { PolicyEngine } from '../src/common/http/policy.ts';
import { imagePolicyDefaults } from '../src/image/policy.ts';
import { createLogger } from '../src/common/logging.ts';

let svc: TestService;
let c: GlanceClient;
const w = new Workshop();
before(async () => {
  svc = await startTestService(imageService);
  c = new GlanceClient(svc.url);
});
after(async () => { svc?.app.server.closeAllConnections(); await svc?.close(); w.remove(); });

const storeDir = (s: TestService) => join(s.dataDir, 'images');
const storeFiles = (s: TestService) => readdirSync(storeDir(s)).filter((f) => f !== 'staging');
const status = async (id: string) => (await c.get(`/v2/images/${id}`, 'admin')).body.status;

async function waitFor(cond: () => Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return; await new Promise((r) => setTimeout(r, 20)); }
  throw new Error('condition not met in time');
}

test('upload and download are byte-identical; checksum, multihash, size, Content-MD5', async () => {
  const data = pattern(3 * 1024 * 1024 + 17);
  const id = await c.create({ name: 'data' });
  assert.equal((await c.upload(id, data)).status, 204);
  const img = (await c.get(`/v2/images/${id}`)).body;
  assert.equal(img.status, 'active');
  assert.equal(img.size, data.length);
  assert.equal(img.virtual_size, data.length);
  assert.equal(img.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(img.os_hash_algo, 'sha512');
  assert.equal(img.os_hash_value, createHash('sha512').update(data).digest('hex'));
  // The first download after the upload reads with O_DIRECT, the later ones through the page
  // cache (download_direct_io = auto): every one is the same bytes.
  for (let i = 0; i < 3; i++) {
    const dl = await c.get(`/v2/images/${id}/file`);
    assert.equal(dl.status, 200);
    assert.equal(dl.headers['content-type'], 'application/octet-stream');
    assert.equal(dl.headers['content-md5'], img.checksum);
    assert.equal(dl.headers['content-length'], String(data.length));
    assert.ok(dl.raw.equals(data), `download ${i + 1}`);
  }
  assert.ok(existsSync(join(storeDir(svc), id)));
  assert.equal((await c.delete(`/v2/images/${id}`)).status, 204);
  assert.ok(!existsSync(join(storeDir(svc), id)), 'deleting an image deletes its data');
});

test('a chunked upload (no Content-Length) works', async () => {
  const data = pattern(1 << 20, 3);
  const id = await c.create({ name: 'chunked' });
  const body = new ReadableStream({
    start(ctrl) { for (let o = 0; o < data.length; o += 100_000) ctrl.enqueue(data.subarray(o, o + 100_000)); ctrl.close(); },
  });
  const r = await fetch(`${svc.url}/v2/images/${id}/file`, { method: 'PUT', body, duplex: 'half', headers: { 'x-auth-token': 'member-a', 'content-type': 'application/octet-stream' } } as RequestInit);
  assert.equal(r.status, 204);
  assert.equal((await c.get(`/v2/images/${id}`)).body.size, data.length);
});

test('Range requests: 206 with Content-Range, suffix and open ranges, 416 beyond the end', async () => {
  const data = pattern(10_000, 5);
  const id = await c.create({ name: 'range' });
  await c.upload(id, data);
  const get = (range: string) => c.call('GET', `/v2/images/${id}/file`, { headers: { range } });
  let r = await get('bytes=100-199');
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], 'bytes 100-199/10000');
  assert.equal(r.headers['content-length'], '100');
  assert.ok(r.raw.equals(data.subarray(100, 200)));
  r = await get('bytes=9990-');
  assert.equal(r.status, 206);
  assert.ok(r.raw.equals(data.subarray(9990)));
  r = await get('bytes=-10');
  assert.ok(r.raw.equals(data.subarray(9990)));
  r = await get('bytes=9000-20000');
  assert.equal(r.headers['content-range'], 'bytes 9000-9999/10000');
  r = await get('bytes=10000-10001');
  assert.equal(r.status, 416);
  assert.equal(r.headers['content-range'], 'bytes */10000');
  assert.equal(r.body.code, '416 Requested Range Not Satisfiable');
  r = await get('bytes=0-1,5-6');
  assert.equal(r.status, 200, 'multiple ranges are ignored');
  assert.equal(r.raw.length, 10_000);
  r = await c.call('GET', `/v2/images/${id}/file`, { headers: { 'content-range': 'bytes 10-19/*' } });
  assert.equal(r.status, 206);
  assert.ok(r.raw.equals(data.subarray(10, 20)));
});

test('a client that stops reading mid-download is cut off; the service and the image are fine', async () => {
  const data = pattern(24 << 20, 6);
  const id = await c.create({ name: 'download-abort' });
  await c.upload(id, data);
  const ac = new AbortController();
  const r = await fetch(`${svc.url}/v2/images/${id}/file`, { headers: { 'x-auth-token': 'member-a' }, signal: ac.signal });
  assert.equal(r.status, 200);
  const reader = r.body!.getReader();
  let got = 0;
  while (got < 2 << 20) got += (await reader.read()).value!.length;
  ac.abort();
  await reader.cancel().catch(() => undefined);
  // The download's request id and the request counter show the service went on: the next
  // download is whole and the metrics still count 200s for the route.
  const again = await c.get(`/v2/images/${id}/file`);
  assert.equal(again.status, 200);
  assert.ok(again.raw.equals(data));
  assert.ok(again.headers['x-openstack-request-id'], 'headers set in hooks survive the hijacked reply');
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  assert.match(metrics, /route="\/v2\/images\/:id\/file",status="200"/);
});

test('download of an image without data is 204', async () => {
  const id = await c.create({ name: 'empty' });
  const r = await c.get(`/v2/images/${id}/file`);
  assert.equal(r.status, 204);
  assert.equal(r.raw.length, 0);
});

test('a zero-byte image', async () => {
  const id = await c.create({ name: 'zero' });
  assert.equal((await c.upload(id, Buffer.alloc(0))).status, 204);
  const img = (await c.get(`/v2/images/${id}`)).body;
  assert.equal(img.size, 0);
  assert.equal(img.checksum, 'd41d8cd98f00b204e9800998ecf8427e');
  const dl = await c.get(`/v2/images/${id}/file`);
  assert.equal(dl.status, 200);
  assert.equal(dl.raw.length, 0);
});

test('wrong Content-Type on upload is 415 and leaves the image queued', async () => {
  const id = await c.create({ name: 'ctype' });
  for (const ct of ['application/json', 'text/plain', 'multipart/form-data; boundary=x']) {
    const r = await c.call('PUT', `/v2/images/${id}/file`, { raw: '{"a": 1}', headers: { 'content-type': ct } });
    assert.equal(r.status, 415, ct);
    assert.match(r.body.message, /Invalid content type/);
  }
  const r = await fetch(`${svc.url}/v2/images/${id}/file`, { method: 'PUT', headers: { 'x-auth-token': 'member-a' }, body: new Uint8Array([1, 2]) });
  assert.equal(r.status, 415);
  assert.equal(await status(id), 'queued');
});

test('upload needs disk and container formats; upload to an active image is 409', async () => {
  const r = await c.post('/v2/images', { name: 'noformats' });
  const id = r.body.id;
  const up = await c.upload(id, Buffer.from('abc'));
  assert.equal(up.status, 400);
  assert.match(up.body.message, /Properties disk_format, container_format must be set prior to saving data/);
  assert.equal(await status(id), 'queued');
});

test('a client that disconnects mid-upload leaves the image queued and no file behind', async () => {
  const id = await c.create({ name: 'aborted' });
  const before = storeFiles(svc);
  await c.abortedUpload(id, 50 << 20, 5 << 20);
  await waitFor(async () => (await status(id)) === 'queued');
  await waitFor(async () => storeFiles(svc).length === before.length);
  assert.deepEqual(storeFiles(svc), before);
  // And the image can be uploaded again afterwards.
  assert.equal((await c.upload(id, Buffer.alloc(1000, 2))).status, 204);
  assert.equal(await status(id), 'active');
});

test('a short body (fewer bytes than Content-Length, then EOF) is an interrupted upload', async () => {
  const id = await c.create({ name: 'short' });
  await c.abortedUpload(id, 1000, 10);
  await waitFor(async () => (await status(id)) === 'queued');
});

test('two concurrent uploads to one image: one wins, the other gets 409', async () => {
  const id = await c.create({ name: 'race' });
  const data = pattern(8 << 20, 9);
  const [a, b] = await Promise.all([c.upload(id, data), c.upload(id, data)]);
  assert.deepEqual([a.status, b.status].sort(), [204, 409]);
  assert.equal(await status(id), 'active');
});

test('20 uploads to 20 images at once all become active (no deadlock between their activations)', async () => {
  const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => c.create({ name: `many${i}` })));
  const data = pattern(4096, 3);
  const res = await Promise.all(ids.map((id) => c.upload(id, data)));
  assert.deepEqual(res.map((r) => r.status), ids.map(() => 204), res.map((r) => JSON.stringify(r.body)).join(' '));
  for (const id of ids) assert.equal(await status(id), 'active');
  await Promise.all(ids.map((id) => c.delete(`/v2/images/${id}`)));
});

test('deleting an image while it uploads: the upload gets 410 and nothing stays behind', async () => {
  const id = await c.create({ name: 'delete-during-upload' });
  const before = storeFiles(svc);
  let sent = 0;
  const total = 32 << 20;
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const body = new ReadableStream({
    async pull(ctrl) {
      if (sent === 4 << 20) await gate;
      if (sent >= total) { ctrl.close(); return; }
      ctrl.enqueue(new Uint8Array(1 << 20));
      sent += 1 << 20;
    },
  });
  const upload = fetch(`${svc.url}/v2/images/${id}/file`, { method: 'PUT', body, duplex: 'half', headers: { 'x-auth-token': 'member-a', accept: 'application/json', 'content-type': 'application/octet-stream', 'content-length': String(total) } } as RequestInit);
  await waitFor(async () => (await status(id)) === 'saving');
  assert.equal((await c.delete(`/v2/images/${id}`)).status, 204);
  release();
  const r = await upload;
  assert.equal(r.status, 410);
  assert.match((await r.json() as any).message, /could not be found after upload/);
  assert.deepEqual(storeFiles(svc), before);
});

test('crafted images are refused with a clear message and leave nothing stored', async () => {
  const cases: [string, Buffer, Record<string, unknown>, RegExp][] = [
    ['qcow2 backing file', images.qcow2BackingPasswd(w), { disk_format: 'qcow2' }, /qcow2 image has a backing file \("\/etc\/passwd"\)/],
    ['qcow2 data file', images.qcow2DataFile(w), { disk_format: 'qcow2' }, /external data file/],
    ['vmdk extent outside', images.vmdkExtentOutside(w), { disk_format: 'vmdk' }, /extent of type FLAT \("\/etc\/passwd"\) lies outside the image/],
    ['vmdk descriptor only', images.vmdkFlatDescriptor(w), { disk_format: 'vmdk' }, /create type "monolithicFlat" is not allowed/],
    ['qcow2 as raw', images.qcow2(w), { disk_format: 'raw' }, /does not match disk_format raw: the data is a qcow2 image/],
    ['raw as qcow2', pattern(1 << 20), { disk_format: 'qcow2' }, /does not match disk_format qcow2: the data is not a qcow2 image/],
    ['truncated header', images.qcow2TruncatedHeader(w), { disk_format: 'qcow2' }, /qcow2 header is truncated/],
    ['unknown feature', images.qcow2UnknownFeature(w), { disk_format: 'qcow2' }, /unknown incompatible features/],
    ['luks1 as raw', images.luks1(w), { disk_format: 'raw' }, /does not match disk_format raw: the data is a luks image/],
    ['luks2 as raw', images.luks2(), { disk_format: 'raw' }, /does not match disk_format raw: the data is a luks image/],
    ['luks1 as qcow2', images.luks1(w), { disk_format: 'qcow2' }, /does not match disk_format qcow2: the data is a luks image/],
  ];
  const before = storeFiles(svc);
  for (const [name, data, props, msg] of cases) {
    const id = await c.create({ name, ...props });
    const r = await c.upload(id, data);
    assert.equal(r.status, 400, name);
    assert.match(r.body.message, msg, name);
    assert.equal(await status(id), 'queued', name);
  }
  assert.deepEqual(storeFiles(svc), before);
});

test('accepted formats get their virtual size from the inspector', async () => {
  const cases: [Buffer, string, number][] = [
    [images.qcow2(w), 'qcow2', 16 << 20],
    [images.vmdkStream(w), 'vmdk', 16 << 20],
    [images.vhdx(w), 'vhdx', 16 << 20],
    [images.vdi(w), 'vdi', 16 << 20],
    [images.iso(), 'iso', 64 * 2048],
  ];
  for (const [data, fmt, vsize] of cases) {
    const id = await c.create({ name: fmt, disk_format: fmt });
    const r = await c.upload(id, data);
    assert.equal(r.status, 204, `${fmt}: ${JSON.stringify(r.body)}`);
    const img = (await c.get(`/v2/images/${id}`)).body;
    assert.equal(img.virtual_size, vsize, fmt);
    assert.equal(img.size, data.length, fmt);
  }
});

test('usage reports the project\'s images', async () => {
  const r = await c.get('/v2/info/usage', 'member-b');
  assert.deepEqual(Object.keys(r.body.usage).sort(), ['image_count_total', 'image_count_uploading', 'image_size_total', 'image_stage_total']);
  assert.equal(r.body.usage.image_count_total.usage, 0);
  assert.equal(r.body.usage.image_count_total.limit, -1);
  const a = await c.get('/v2/info/usage', 'member-a');
  assert.ok(a.body.usage.image_count_total.usage > 0);
  assert.ok(a.body.usage.image_size_total.usage > 0);
});

test('info: import methods; stores is 404 without multiple backends', async () => {
  assert.deepEqual((await c.get('/v2/info/import')).body, { 'import-methods': { description: 'Import methods available.', type: 'array', value: ['glance-direct', 'web-download', 'copy-image'] } });
  const s = await c.get('/v2/info/stores');
  assert.equal(s.status, 404);
  assert.match(s.body.message, /Multi backend is not supported at this site/);
});

test('quotas: over the storage quota or the size cap is 413 and stores nothing', async () => {
  const q = await startTestService(imageService, { configText: '[DEFAULT]\nuser_storage_quota = 1MB\nimage_size_cap = 3000000\n[image_limits]\nimage_count_total = 5\n' });
  try {
    const qc = new GlanceClient(q.url);
    const small = await qc.create({ name: 'fits' });
    assert.equal((await qc.upload(small, pattern(600_000))).status, 204);
    // Declared length over the remaining quota: refused before anything is read.
    const big = await qc.create({ name: 'too-big' });
    const r = await qc.upload(big, pattern(600_000));
    assert.equal(r.status, 413);
    assert.equal(r.body.title, 'Request Entity Too Large');
    assert.match(r.body.message, /Image exceeds the storage quota: The size of the data 600000 will exceed the limit. 448576 bytes remaining./);
    assert.equal((await qc.get(`/v2/images/${big}`)).body.status, 'queued');
    // Chunked (no declared length): refused mid-stream.
    const data = pattern(600_000);
    const body = new ReadableStream({ start(ctrl) { for (let o = 0; o < data.length; o += 50_000) ctrl.enqueue(data.subarray(o, o + 50_000)); ctrl.close(); } });
    const r2 = await fetch(`${q.url}/v2/images/${big}/file`, { method: 'PUT', body, duplex: 'half', headers: { 'x-auth-token': 'member-a', 'content-type': 'application/octet-stream' } } as RequestInit);
    assert.equal(r2.status, 413);
    assert.equal((await qc.get(`/v2/images/${big}`)).body.status, 'queued');
    assert.deepEqual(storeFiles(q), [small]);
    // The size cap applies to everyone, admin included.
    const capped = await qc.create({ name: 'capped', owner: 'p-x' }, 'admin');
    const r3 = await qc.upload(capped, pattern(3_000_001), 'admin');
    assert.equal(r3.status, 413);
    assert.match(r3.body.message, /The incoming image is too large/);
    // Image count limit.
    for (let i = 0; i < 2; i++) await qc.create({ name: `n${i}` });
    const over = await qc.post('/v2/images', { name: 'sixth' });
    assert.equal(over.status, 201);
    const seventh = await qc.post('/v2/images', { name: 'seventh' });
    assert.equal(seventh.status, 413);
    assert.match(seventh.body.message, /Maximum number of images exceeded/);
    const usage = (await qc.get('/v2/info/usage')).body.usage;
    assert.equal(usage.image_size_total.limit, 1);
    assert.equal(usage.image_count_total.limit, 5);
  } finally {
    await q.close();
  }
});

test('startup recovery: stuck uploads go back to queued, leftovers are scrubbed', async () => {
  const id = await c.create({ name: 'stuck' });
  const keep = await c.create({ name: 'keep' });
  await c.upload(keep, Buffer.from('kept'));
  // Simulate a crash: the image left in saving by this node, a temp file of a dead process, an
  // orphan data file (older than the grace period).
  const database = await openDatabase(svc.config.get<string>('image_database', 'connection'));
  const logger = createLogger({ level: 'silent' });
  const s2 = new ImageService(svc.config, database, new PolicyEngine(imagePolicyDefaults), logger, svc.url);
  await database.db.updateTable('images').set({ status: 'saving', ...s2.uploadMarks() }).where('id', '=', id).execute();
  const dir = storeDir(svc);
  mkdirSync(dir, { recursive: true });
  const host = hostname().replace(/[^\w-]/g, '_');
  const tmp = join(dir, `.${id}.${host}.999999.abcd1234.tmp`);
  writeFileSync(tmp, 'partial');
  const orphan = join(dir, '0f0f0f0f-0000-4000-8000-000000000000');
  writeFileSync(orphan, 'orphan');
  const { utimesSync } = await import('node:fs');
  const old = new Date(Date.now() - 3600_000);
  utimesSync(orphan, old, old);
  await s2.recover();
  await database.close();
  assert.equal(await status(id), 'queued');
  assert.ok(!existsSync(tmp), 'temp file of a dead process removed');
  assert.ok(!existsSync(orphan), 'orphaned data file removed');
  assert.ok(existsSync(join(dir, keep)), 'referenced data kept');
  assert.equal((await c.get(`/v2/images/${keep}/file`)).raw.toString(), 'kept');
});

test('an upload whose process stopped reporting goes back to queued', async () => {
  const id = await c.create({ name: 'stale' });
  const database = await openDatabase(svc.config.get<string>('image_database', 'connection'));
  const s2 = new ImageService(svc.config, database, new PolicyEngine(imagePolicyDefaults), createLogger({ level: 'silent' }), svc.url);
  await database.db.updateTable('images').set({ status: 'saving', upload_owner: 'elsewhere:/x', upload_heartbeat: new Date(Date.now() - 600_000).toISOString() }).where('id', '=', id).execute();
  await s2.resetStale(300_000);
  await database.close();
  assert.equal(await status(id), 'queued');
});
