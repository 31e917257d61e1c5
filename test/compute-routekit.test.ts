// Compute on the route kit, on a real all-in-one: response schemas against the captured Zed
// responses and Stratus's own; one test per class of bad input (405 with Allow, unknown path,
// wrong microversion, malformed JSON, wrong types, deep nesting, oversized body, no token);
// policies before the body is read and before an action's 501; and every compute row driven with
// hostile input as an admin, another project's member and a reader — never a 5xx, never a status
// the row does not declare.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { COMPUTE, computeApi, mv, projectUser } from './helpers/compute.ts';
import { checkResponse, registeredTables, undeclaredStatuses, type RouteRow } from '../src/common/http/route-kit.ts';

const REF = new URL('./fixtures/reference/openstack-zed/', import.meta.url);
const capture = (name: string) => JSON.parse(readFileSync(new URL(`${name}.json`, REF), 'utf8'));

let cloud: TestCloud;
let token: string;
const tokens: Record<string, string> = {};
const { api, waitFor } = computeApi(() => cloud, () => token);

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  tokens.admin = token;
  tokens.memberB = await projectUser(cloud, token, 'rk-b', 'rk-member-b', 'member');
  tokens.readerA = await projectUser(cloud, token, 'admin', 'rk-reader-a', 'reader');
});
after(async () => { await cloud?.stop(); });

const rows = () => {
  const t = registeredTables.get('/compute/v2.1');
  assert.ok(t, `compute table not registered: ${[...registeredTables.keys()]}`);
  return t;
};
const row = (method: string, path: string): RouteRow<unknown> => {
  const r = rows().find((x) => x.method === method && x.path === path);
  assert.ok(r, `${method} ${path}`);
  return r;
};
const novaError = (res: { status: number; body: any; headers: Headers }, status: number, key: string) => {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body?.[key]?.code, status, JSON.stringify(res.body));
  assert.equal(typeof res.body[key].message, 'string');
  assert.ok(res.headers.get('x-compute-request-id')?.startsWith('req-'), 'request id');
};

test('response schemas: the captured Zed responses and Stratus\'s own validate; a broken one does not', async () => {
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'rk', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1024) });
  const kp = await api('POST', '/os-keypairs', { keypair: { name: 'rk-key' } }, mv('2.10'));
  assert.equal(kp.status, 201, kp.text);
  const boot = await api('POST', '/servers', { server: { name: 'rk-vm', imageRef: img.body.id, flavorRef: '1', networks: 'none', key_name: 'rk-key', metadata: { a: 'b' } } }, mv('2.37'));
  assert.equal(boot.status, 202, boot.text);
  const id = boot.body.server.id;
  await waitFor(id, ['ACTIVE']);
  const checks: [RouteRow<unknown>, number, unknown, string][] = [
    [row('GET', '/servers/:id'), 200, capture('26-nova-server-show-2.1'), 'zed show 2.1'],
    [row('GET', '/servers/:id'), 200, capture('27-nova-server-show-max'), 'zed show max'],
    [row('GET', '/servers'), 200, capture('28-nova-servers-list'), 'zed list'],
    [row('GET', '/servers/detail'), 200, capture('29-nova-servers-detail'), 'zed detail'],
    [row('GET', '/servers/detail'), 200, capture('30-nova-servers-detail-max'), 'zed detail max'],
    [row('GET', '/flavors/detail'), 200, capture('11-nova-flavors-detail'), 'zed flavors detail'],
    [row('GET', '/flavors/detail'), 200, capture('12-nova-flavors-detail-max'), 'zed flavors detail max'],
    [row('POST', '/os-keypairs'), 201, capture('13-nova-keypair-create'), 'zed keypair create'],
    [row('GET', '/os-keypairs'), 200, capture('14-nova-keypairs-list'), 'zed keypairs'],
    [row('GET', '/os-keypairs'), 200, capture('15-nova-keypairs-list-max'), 'zed keypairs max'],
    [row('GET', '/limits'), 200, capture('34-nova-limits'), 'zed limits'],
    [row('POST', '/os-keypairs'), 201, kp.body, 'stratus keypair create 2.10'],
  ];
  for (const v of ['2.1', '2.47', '2.75', 'latest']) {
    for (const [path, r] of [[`/servers/${id}`, row('GET', '/servers/:id')], ['/servers', row('GET', '/servers')], ['/servers/detail', row('GET', '/servers/detail')],
      ['/flavors', row('GET', '/flavors')], ['/flavors/detail', row('GET', '/flavors/detail')], ['/flavors/1', row('GET', '/flavors/:id')],
      ['/os-keypairs', row('GET', '/os-keypairs')], ['/limits', row('GET', '/limits')]] as const) {
      const res = await api('GET', path, undefined, mv(v));
      assert.equal(res.status, 200, `${path} at ${v}: ${res.text}`);
      checks.push([r, 200, res.body, `stratus ${path} at ${v}`]);
    }
  }
  for (const [r, status, body, what] of checks) assert.deepEqual(checkResponse(r, status, body), [], what);
  // Schemas that can fail.
  const broken = capture('27-nova-server-show-max');
  delete broken.server.status;
  assert.notDeepEqual(checkResponse(row('GET', '/servers/:id'), 200, broken), []);
  const extra = capture('28-nova-servers-list');
  extra.servers[0].status = 'ACTIVE';
  assert.notDeepEqual(checkResponse(row('GET', '/servers'), 200, extra), []);
  await api('DELETE', `/servers/${id}`);
});

test('a known path with another method: 405 in Nova\'s shape with a sorted Allow, whoever asks (after authentication)', async () => {
  const byPath = new Map<string, Set<string>>();
  for (const r of rows()) byPath.set(r.path, (byPath.get(r.path) ?? new Set()).add(r.method));
  for (const [p, methods] of byPath) {
    const other = ['PATCH', 'PUT', 'DELETE', 'POST'].find((m) => !methods.has(m))!;
    for (const who of ['admin', 'readerA']) {
      const res = await cloud.req(other, `${COMPUTE}${p.replace(/:[A-Za-z_]+/g, 'x')}`, { token: tokens[who], headers: mv('2.1') });
      novaError(res, 405, 'badMethod');
      assert.equal(res.headers.get('allow'), [...methods].sort().join(', '), `${other} ${p}`);
    }
  }
  // No token: 401 before routing goes any further.
  assert.equal((await cloud.req('PATCH', `${COMPUTE}/servers`)).status, 401);
});

test('unknown paths: 404 in Nova\'s shape', async () => {
  for (const p of ['/nothing-here', '/servers/x/nothing', '/flavors/1/os-extra_specs/a/b']) {
    novaError(await api('GET', p), 404, 'itemNotFound');
  }
});

test('microversions: out of range 406, malformed 400, a route outside its range 404, the version echoed', async () => {
  const high = await api('GET', '/servers', undefined, mv('2.999'));
  novaError(high, 406, 'computeFault' in (high.body ?? {}) ? 'computeFault' : Object.keys(high.body)[0]);
  assert.equal(high.headers.get('openstack-api-version'), 'compute 2.999');
  const bad = await api('GET', '/servers', undefined, mv('two'));
  assert.equal(bad.status, 400, bad.text);
  // os-hosts is gone after 2.42; server tags start at 2.26.
  novaError(await api('GET', '/os-hosts', undefined, mv('2.43')), 404, 'itemNotFound');
  novaError(await api('GET', '/servers/3cdcb878-1440-4848-a392-ac3f85176036/tags', undefined, mv('2.25')), 404, 'itemNotFound');
  const ok = await api('GET', '/flavors', undefined, mv('2.60'));
  assert.equal(ok.headers.get('openstack-api-version'), 'compute 2.60');
  assert.equal(ok.headers.get('x-openstack-nova-api-version'), '2.60');
});

test('bodies: malformed JSON, wrong types, deep nesting and oversized bodies are 4xx in Nova\'s shape, never 500', async () => {
  const raw = (method: string, path: string, text: string, tok = token) =>
    cloud.req(method, `${COMPUTE}${path}`, { token: tok, raw: text, headers: { 'content-type': 'application/json', ...mv('2.93') } });
  novaError(await raw('POST', '/servers', '{"server": '), 400, 'badRequest');
  novaError(await raw('POST', '/os-keypairs', '[1, 2'), 400, 'badRequest');
  // Wrong types, in Nova's (Python jsonschema's) words.
  const t = await api('POST', '/os-aggregates', { aggregate: { name: 5 } });
  novaError(t, 400, 'badRequest');
  assert.equal(t.body.badRequest.message, 'Invalid input for field/attribute name. Value: 5. 5 is not of type \'string\'');
  const f = await api('POST', '/flavors', { flavor: { name: 'x', ram: 'lots', vcpus: 1, disk: 1 } });
  novaError(f, 400, 'badRequest');
  assert.match(f.body.badRequest.message, /^Invalid input for field\/attribute ram\. Value: lots\./);
  const a = await api('POST', '/servers/3cdcb878-1440-4848-a392-ac3f85176036/action', { 'os-resetState': { state: 7 } });
  novaError(a, 400, 'badRequest');
  // 10,000 levels deep, in the server update body, os-hosts and flavor extra specs (issue 9 item 8).
  const deep = '['.repeat(10_000) + ']'.repeat(10_000);
  for (const [method, path] of [['PUT', '/servers/3cdcb878-1440-4848-a392-ac3f85176036'], ['POST', '/flavors/1/os-extra_specs'], ['POST', '/servers/x/action']] as const) {
    novaError(await raw(method, path, `{"a": ${deep}}`), 400, 'badRequest');
  }
  const big = await raw('POST', '/os-keypairs', `{"keypair": {"name": "${'x'.repeat(2 * 1024 * 1024)}"}}`);
  assert.equal(big.status, 413, big.text.slice(0, 200));
  assert.equal(big.body?.overLimit?.code, 413, big.text.slice(0, 200));
});

test('no token, or a garbage one: 401 in Keystone\'s shape on every compute row', async () => {
  for (const r of rows()) {
    const path = `${COMPUTE}${r.path.replace(/:[A-Za-z_]+/g, 'x')}`;
    for (const tok of [undefined, 'garbage']) {
      const res = await cloud.req(r.method, path, { token: tok });
      assert.equal(res.status, 401, `${r.method} ${r.path}`);
      assert.equal(res.body?.error?.code, 401, `${r.method} ${r.path}`);
    }
  }
});

test('policies run first: a reader with a malformed body gets 403; a reader asking for an unbuilt action 403, an admin 404 then 501', async () => {
  const bad = { raw: '{bad', headers: { 'content-type': 'application/json' } };
  for (const [method, path] of [['POST', '/servers'], ['POST', '/flavors'], ['POST', '/os-aggregates'], ['PUT', '/os-quota-sets/x']] as const) {
    novaError(await cloud.req(method, `${COMPUTE}${path}`, { token: tokens.readerA, ...bad }), 403, 'forbidden');
    novaError(await cloud.req(method, `${COMPUTE}${path}`, { token, ...bad }), 400, 'badRequest');
  }
  const missing = '/servers/3cdcb878-1440-4848-a392-ac3f85176036/action';
  // An action whose schema the body breaks: the policy still answers first.
  novaError(await api('POST', missing, { 'os-resetState': { state: 7 } }, {}, tokens.readerA), 403, 'forbidden');
  novaError(await api('POST', missing, { evacuate: {} }, {}, tokens.readerA), 403, 'forbidden');
  // Built actions validate their body before looking the server up (Nova's wsgi order); an unbuilt one finds no server.
  novaError(await api('POST', missing, { evacuate: {} }), 400, 'badRequest');
  novaError(await api('POST', missing, { evacuate: { onSharedStorage: false } }), 404, 'itemNotFound');
  novaError(await api('POST', missing, { addFixedIp: {} }), 404, 'itemNotFound');
  // Keys that are not actions (an object's own prototype keys included) are refused as Nova does.
  for (const key of ['constructor', 'toString', 'nope']) {
    const r = await api('POST', missing, { [key]: {} });
    novaError(r, 400, 'badRequest');
    assert.equal(r.body.badRequest.message, `There is no such action: ${key}`);
  }
  // The os-hosts power actions: policy, then the host (404), then 501.
  novaError(await api('GET', '/os-hosts/nohost/reboot', undefined, {}, tokens.readerA), 403, 'forbidden');
  novaError(await api('GET', '/os-hosts/nohost/reboot'), 404, 'itemNotFound');
});

test('every compute row, driven with hostile input as admin, another project\'s member and a reader: no 5xx, no undeclared status', async () => {
  const ids = ['3cdcb878-1440-4848-a392-ac3f85176036', 'x'];
  const bodies = [undefined, '{bad', '[]', '{}', '{"server": 1, "flavor": [], "keypair": "x", "reboot": 1}', '['.repeat(5000)];
  let n = 0;
  for (const r of rows()) {
    for (const idv of ids) {
      const path = COMPUTE + r.path.replace(/:[A-Za-z_]+/g, idv);
      for (const who of ['admin', 'memberB', 'readerA']) {
        for (const body of r.method === 'GET' || r.method === 'DELETE' ? [undefined] : bodies) {
          const res = await cloud.req(r.method, path, { token: tokens[who], raw: body, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...mv('latest') } });
          n++;
          assert.ok(res.status < 500 || (res.status === 501 && (r.path === '/servers/:id/action' || r.path.startsWith('/os-hosts'))), `${r.method} ${path} as ${who} with ${body?.slice(0, 20)} → ${res.status} ${res.text.slice(0, 200)}`);
        }
      }
    }
  }
  assert.ok(n > 1000, `${n} requests`);
  const mine = [...undeclaredStatuses].filter(([k]) => rows().some((r) => `${r.method} ${r.path}` === k));
  assert.deepEqual(Object.fromEntries(mine.map(([k, v]) => [k, [...v]])), {}, 'statuses answered that compute rows do not declare');
});
