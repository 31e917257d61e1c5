// The route kit's tables, checked as a whole: response schemas against the captured Zed
// responses and against Stratus's own; every row of Image and Placement driven with hostile
// input as an admin, a member of another project and a reader — never a 5xx, and never a status
// the row does not declare.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestService, type TestService } from './helpers/service.ts';
import { placementService } from '../src/placement/index.ts';
import { imageService } from '../src/image/index.ts';
import { checkResponse, registeredTables, undeclaredStatuses, type RouteRow } from '../src/common/http/route-kit.ts';

const REF = new URL('./fixtures/reference/openstack-zed/', import.meta.url);
const capture = (name: string) => JSON.parse(readFileSync(new URL(`${name}.json`, REF), 'utf8'));

let placement: TestService;
let image: TestService;
before(async () => {
  placement = await startTestService(placementService);
  image = await startTestService(imageService);
});
after(async () => {
  for (const s of [placement, image]) { s?.app.server.closeAllConnections(); await s?.close(); }
});

const table = (prefix: string) => {
  const t = registeredTables.get(prefix);
  assert.ok(t, `no table registered at ${JSON.stringify(prefix)}: ${[...registeredTables.keys()]}`);
  return t;
};
const row = (rows: RouteRow<unknown>[], method: string, path: string) => {
  const r = rows.find((x) => x.method === method && x.path === path);
  assert.ok(r, `${method} ${path}`);
  return r;
};

async function call(base: string, method: string, path: string, opts: { token?: string; body?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { accept: 'application/json', 'x-auth-token': opts.token ?? 'admin', ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(base + path, { method, headers, body: opts.body });
  const text = await res.text();
  let body: unknown;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body };
}

test('response schemas match the captured Zed responses and Stratus\'s own', async () => {
  const p = table('');
  const i = table('/v2');
  const checks: [RouteRow<unknown>, number, unknown, string][] = [
    [row(p, 'GET', '/'), 200, capture('04-placement-root'), 'zed placement root'],
    [row(p, 'GET', '/resource_providers'), 200, capture('41-placement-resource-providers'), 'zed providers 1.0'],
    [row(p, 'GET', '/resource_providers'), 200, capture('42-placement-resource-providers-latest'), 'zed providers latest'],
    [row(p, 'GET', '/allocation_candidates'), 200, capture('43-placement-allocation-candidates'), 'zed candidates latest'],
    [row(p, 'GET', '/allocation_candidates'), 200, capture('44-placement-allocation-candidates-1.10'), 'zed candidates 1.10'],
    [row(i, 'POST', '/images'), 201, capture('16-glance-image-create'), 'zed image create'],
    [row(i, 'GET', '/images/:id'), 200, capture('18-glance-image-show-active'), 'zed image show'],
    [row(i, 'GET', '/images'), 200, capture('20-glance-images-list'), 'zed image list'],
  ];
  // The same requests against Stratus, at the same microversions.
  const mv = (v: string) => ({ headers: { 'openstack-api-version': `placement ${v}` } });
  const rp = await call(placement.url, 'POST', '/resource_providers', { body: JSON.stringify({ name: 'schema-rp' }), ...mv('1.20') });
  assert.equal(rp.status, 200, JSON.stringify(rp.body));
  const uuid = (rp.body as { uuid: string }).uuid;
  const inv = await call(placement.url, 'PUT', `/resource_providers/${uuid}/inventories`, {
    body: JSON.stringify({ resource_provider_generation: 0, inventories: { VCPU: { total: 8 }, MEMORY_MB: { total: 4096 } } }),
  });
  assert.equal(inv.status, 200, JSON.stringify(inv.body));
  const q = '/allocation_candidates?resources=VCPU:1,MEMORY_MB:512';
  for (const [v, path, r] of [
    ['1.0', '/', row(p, 'GET', '/')], ['1.0', '/resource_providers', row(p, 'GET', '/resource_providers')],
    ['1.39', '/resource_providers', row(p, 'GET', '/resource_providers')], ['1.39', `/resource_providers/${uuid}`, row(p, 'GET', '/resource_providers/:uuid')],
    ['1.39', q, row(p, 'GET', '/allocation_candidates')], ['1.10', q, row(p, 'GET', '/allocation_candidates')],
  ] as const) {
    const res = await call(placement.url, 'GET', path, mv(v));
    assert.equal(res.status, 200, `${path} at ${v}`);
    checks.push([r, 200, res.body, `stratus ${path} at ${v}`]);
  }
  const created = await call(image.url, 'POST', '/v2/images', { body: JSON.stringify({ name: 'schema', disk_format: 'raw', container_format: 'bare', flavour: 'x' }) });
  checks.push([row(i, 'POST', '/images'), 201, created.body, 'stratus image create']);
  const id = (created.body as { id: string }).id;
  checks.push([row(i, 'GET', '/images/:id'), 200, (await call(image.url, 'GET', `/v2/images/${id}`)).body, 'stratus image show']);
  checks.push([row(i, 'GET', '/images'), 200, (await call(image.url, 'GET', '/v2/images?limit=1')).body, 'stratus image list']);
  for (const [r, status, body, what] of checks) assert.deepEqual(checkResponse(r, status, body), [], what);
  // A schema that can fail: the capture with a field removed does not validate.
  const broken = capture('18-glance-image-show-active');
  delete broken.status;
  assert.notDeepEqual(checkResponse(row(i, 'GET', '/images/:id'), 200, broken), []);
});

test('every row of Image and Placement, driven with hostile input: no 5xx, no undeclared status', async () => {
  const ids = ['3cdcb878-1440-4848-a392-ac3f85176036', 'x'];
  const bodies = [undefined, '{bad', '[]', '{}', '{"name": 1}', '['.repeat(5000)];
  let n = 0;
  for (const [svc, prefix, rows] of [[placement, '', table('')], [image, '/v2', table('/v2')]] as const) {
    for (const r of rows) {
      for (const idv of ids) {
        const path = prefix + r.path.replace(/:[a-z_]+/g, idv).replace('*', 'image');
        for (const token of ['admin', 'member-b', 'reader-a']) {
          for (const body of r.method === 'GET' || r.method === 'DELETE' ? [undefined] : bodies) {
            const headers: Record<string, string> = { 'openstack-api-version': 'placement latest' };
            if (r.method === 'PATCH') headers['content-type'] = 'application/openstack-images-v2.1-json-patch';
            if (path.endsWith('/file') || path.endsWith('/stage')) headers['content-type'] = 'application/octet-stream';
            const res = await call(svc.url, r.method, path, { token, body, headers });
            n++;
            assert.ok(res.status < 500, `${r.method} ${path} as ${token} with ${body?.slice(0, 20)} → ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
          }
        }
      }
    }
  }
  assert.ok(n > 500, `${n} requests`);
  assert.deepEqual(Object.fromEntries([...undeclaredStatuses].map(([k, v]) => [k, [...v]])), {}, 'statuses answered that their rows do not declare');
});
