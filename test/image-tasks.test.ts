// The tasks API: admins create legacy `import` tasks (data from import_from into a new image
// made from image_properties), list them with Glance's filters, sort and paging, show them; the
// task goes pending → processing → success (result {image_id}) or failure (message) and expires.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { startTestService, type TestService } from './helpers/service.ts';
import { imageService } from '../src/image/index.ts';
import { GlanceClient } from './fixtures/image/client.ts';
import { Workshop, images, pattern } from './fixtures/image/craft.ts';

const w = new Workshop();
let web: Server;
let port = 0;
let svc: TestService;
let c: GlanceClient;
const files: Record<string, Buffer> = {};

before(async () => {
  files['/disk.raw'] = pattern(1 << 20, 31);
  files['/disk.qcow2'] = w.qcow2WithData('t.qcow2', pattern(1 << 20, 32));
  files['/evil.qcow2'] = images.qcow2BackingPasswd(w);
  web = createServer((req, res) => {
    const f = files[req.url ?? ''];
    if (!f) { res.writeHead(404); return res.end('no'); }
    res.writeHead(200, { 'content-length': f.length });
    res.end(f);
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  port = (web.address() as { port: number }).port;
  svc = await startTestService(imageService, { configText: `[import_filtering_opts]\nallowed_ports = ${port}\nallowed_hosts = 127.0.0.1\n` });
  c = new GlanceClient(svc.url);
});
after(async () => { web?.close(); w.remove(); svc?.app.server.closeAllConnections(); await svc?.close(); });

const importTask = (path: string, props: Record<string, unknown> = { name: 'from-task', disk_format: 'raw', container_format: 'bare' }) => ({
  type: 'import', input: { import_from: `http://127.0.0.1:${port}${path}`, import_from_format: 'raw', image_properties: props },
});

async function finished(id: string): Promise<any> {
  const end = Date.now() + 15_000;
  for (;;) {
    const t = (await c.get(`/v2/tasks/${id}`, 'admin')).body;
    if (t.status === 'success' || t.status === 'failure') return t;
    if (Date.now() > end) throw new Error(`task ${id} stayed ${t.status}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('an import task creates the image, fetches its data and succeeds with result {image_id}', async () => {
  const r = await c.post('/v2/tasks', importTask('/disk.raw'), 'admin');
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.headers.location, `/v2/tasks/${r.body.id}`);
  assert.equal(r.body.status, 'pending');
  assert.equal(r.body.type, 'import');
  assert.equal(r.body.owner, 'p-admin');
  assert.equal(r.body.result, null);
  assert.equal(r.body.message, '');
  assert.equal(r.body.self, `/v2/tasks/${r.body.id}`);
  assert.equal(r.body.schema, '/v2/schemas/task');
  assert.deepEqual(r.body.input, importTask('/disk.raw').input);
  assert.equal(r.body.expires_at, undefined, 'a running task does not expire');
  const t = await finished(r.body.id);
  assert.equal(t.status, 'success', t.message);
  const imageId = t.result.image_id;
  assert.equal(t.image_id, imageId);
  assert.ok(Date.parse(t.expires_at) - Date.now() > 47 * 3600_000, `expires in 48 h: ${t.expires_at}`);
  let img = (await c.get(`/v2/images/${imageId}`, 'admin')).body;
  assert.equal(img.status, 'active');
  assert.equal(img.name, 'from-task');
  assert.equal(img.checksum, createHash('md5').update(files['/disk.raw']).digest('hex'));
  // The import lock goes right after the task ends.
  for (let i = 0; i < 100 && img.os_glance_import_task; i++) {
    await new Promise((r) => setTimeout(r, 20));
    img = (await c.get(`/v2/images/${imageId}`, 'admin')).body;
  }
  assert.equal(img.os_glance_import_task, undefined);
});

test('an empty image_properties makes a bare qcow2 (Glance default); unsafe or mismatched data fails the task', async () => {
  const ok = await finished((await c.post('/v2/tasks', importTask('/disk.qcow2', {}), 'admin')).body.id);
  assert.equal(ok.status, 'success', ok.message);
  const img = (await c.get(`/v2/images/${ok.result.image_id}`, 'admin')).body;
  assert.equal(img.disk_format, 'qcow2');
  assert.equal(img.container_format, 'bare');
  assert.equal(img.virtual_size, 1 << 20);

  const evil = await finished((await c.post('/v2/tasks', importTask('/evil.qcow2', { disk_format: 'qcow2', container_format: 'bare' }), 'admin')).body.id);
  assert.equal(evil.status, 'failure');
  assert.match(evil.message, /backing file/);
  assert.equal(evil.result, null);
  assert.ok(evil.expires_at);
  assert.equal((await c.get(`/v2/images/${evil.image_id}`, 'admin')).body.status, 'queued', 'no data became active');

  const missing = await finished((await c.post('/v2/tasks', importTask('/nope'), 'admin')).body.id);
  assert.equal(missing.status, 'failure');
  assert.match(missing.message, /HTTP 404/);

  const noProps = await finished((await c.post('/v2/tasks', { type: 'import', input: { import_from: `http://127.0.0.1:${port}/disk.raw`, import_from_format: 'raw' } }, 'admin')).body.id);
  assert.equal(noProps.status, 'failure');
  assert.equal(noProps.message, "Input does not contain 'image_properties' field");

  const badProps = await finished((await c.post('/v2/tasks', importTask('/disk.raw', { disk_format: 'floppy' }), 'admin')).body.id);
  assert.equal(badProps.status, 'failure');
  assert.match(badProps.message, /Provided object does not match schema 'image'/);
});

test('creating a task: policy first, then the body, the schema and the import_from URI (400s in Glance words)', async () => {
  // Policy before the body is even read: a member's garbage body is still a 403.
  assert.equal((await c.call('POST', '/v2/tasks', { raw: '{bad', headers: { 'content-type': 'application/json' } })).status, 403);
  assert.equal((await c.post('/v2/tasks', importTask('/disk.raw'))).status, 403);
  assert.equal((await c.post('/v2/tasks', importTask('/disk.raw'), 'reader-a')).status, 403);
  const cases: [unknown, RegExp][] = [
    [{ input: {} }, /Task 'type' is required/],
    [{ type: 'import' }, /Task 'input' is required/],
    [{ type: 'nope', input: {} }, /Provided object does not match schema 'task': 'nope' is not one of/],
    [{ type: 'import', input: 'x' }, /'x' is not of type 'null', 'object'/],
    [{ type: 'import', input: {}, extra: 1 }, /Additional properties are not allowed \('extra' was unexpected\)/],
    [{ type: 'import', input: {} }, /Invalid location: None/],
    [{ type: 'import', input: { import_from: 'file:///etc/passwd' } }, /File based imports are not allowed/],
    [{ type: 'import', input: { import_from: 'ftp://example.com/x' } }, /The given uri is not valid/],
    [{ type: 'import', input: { import_from: 'http://169.254.169.254/latest' } }, /does not pass filtering/],
    [{ type: 'api_image_import', input: {} }, /cannot be created with the tasks API/],
    [[], /Request body must be a JSON object/],
  ];
  for (const [body, msg] of cases) {
    const r = await c.post('/v2/tasks', body, 'admin');
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.body.message, msg, JSON.stringify(body));
  }
  assert.equal((await c.call('POST', '/v2/tasks', { token: 'admin', headers: { 'content-type': 'application/json' } })).status, 400);
});

test('listing: stubs without input/result/message, filters, sort, paging with next links', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await c.post('/v2/tasks', importTask('/disk.raw', { name: `page-${i}`, disk_format: 'raw', container_format: 'bare' }), 'admin')).body.id);
  for (const id of ids) await finished(id);
  const all = (await c.get('/v2/tasks?limit=1000', 'admin')).body;
  assert.equal(all.schema, '/v2/schemas/tasks');
  assert.equal(all.first, '/v2/tasks?limit=1000');
  assert.ok(all.tasks.length >= 3);
  for (const t of all.tasks) {
    assert.deepEqual(Object.keys(t).sort(), ['created_at', 'expires_at', 'id', 'owner', 'schema', 'self', 'status', 'type', 'updated_at'].filter((k) => k !== 'expires_at' || t.expires_at));
  }
  // Default order: newest first.
  const created = all.tasks.map((t: any) => t.created_at);
  assert.deepEqual(created, [...created].sort().reverse());
  // Paging walks every task exactly once, in both directions.
  for (const dir of ['asc', 'desc']) {
    const seen: string[] = [];
    let url: string | undefined = `/v2/tasks?limit=2&sort_key=id&sort_dir=${dir}`;
    while (url) {
      const page: any = (await c.get(url, 'admin')).body;
      seen.push(...page.tasks.map((t: any) => t.id));
      url = page.next;
    }
    const sorted = [...seen].sort();
    assert.deepEqual(seen, dir === 'asc' ? sorted : sorted.reverse());
    assert.equal(new Set(seen).size, all.tasks.length);
  }
  const ok = (await c.get('/v2/tasks?status=success&type=import', 'admin')).body.tasks;
  assert.ok(ok.length >= 3 && ok.every((t: any) => t.status === 'success' && t.type === 'import'));
  for (const [q, msg] of [
    ['status=done', /Invalid status value: done/], ['type=export', /Invalid type value: export/], ['sort_dir=up', /Invalid sort direction: up/],
    ['sort_key=input', /Sort key supplied is invalid/], ['limit=x', /limit param must be an integer/], ['limit=-1', /limit param must be positive/],
    ['marker=abc', /Invalid marker format/], ['marker=3cdcb878-1440-4848-a392-ac3f85176036', /not found/],
  ] as const) {
    const r = await c.get(`/v2/tasks?${q}`, 'admin');
    assert.equal(r.status, 400, q);
    assert.match(r.body.message, msg, q);
  }
  assert.equal((await c.get('/v2/tasks', 'member-a')).status, 403);
  assert.equal((await c.get(`/v2/tasks/${ids[0]}`, 'reader-a')).status, 403);
  assert.equal((await c.get('/v2/tasks/3cdcb878-1440-4848-a392-ac3f85176036', 'admin')).status, 404);
  const del = await c.delete(`/v2/tasks/${ids[0]}`, 'admin');
  assert.equal(del.status, 405);
  assert.equal(del.headers.allow, 'GET');
});

test('tasks expire [task] task_time_to_live hours after they end', async (t) => {
  const short = await startTestService(imageService, { configText: `[task]\ntask_time_to_live = 0\n[import_filtering_opts]\nallowed_ports = ${port}\nallowed_hosts = 127.0.0.1\n` });
  t.after(async () => { short.app.server.closeAllConnections(); await short.close(); });
  const sc = new GlanceClient(short.url);
  const r = await sc.post('/v2/tasks', importTask('/disk.raw'), 'admin');
  assert.equal(r.status, 201);
  const end = Date.now() + 15_000;
  for (;;) {
    const s = await sc.get(`/v2/tasks/${r.body.id}`, 'admin');
    if (s.status === 404) break;
    assert.ok(Date.now() < end, `task never expired: ${JSON.stringify(s.body)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.deepEqual((await sc.get('/v2/tasks', 'admin')).body.tasks, []);
});
