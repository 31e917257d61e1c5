// Every error from every layer — fastify's router (bad percent-escapes, over-long ids, unknown
// routes), its body parser (media type, size, malformed or 10,000-deep JSON), Node's HTTP parser
// (oversized headers, before any routing) and the handlers — comes back in the service's own
// error shape with the request id, on a real all-in-one and on a service running alone.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { useCloud, type TestCloud } from './helpers/cloud.ts';
import { startTestService, type TestService } from './helpers/service.ts';
import { placementService } from '../src/placement/index.ts';
import { imageService } from '../src/image/index.ts';

type Shape = 'keystone' | 'nova' | 'placement' | 'glance';
interface Answer { status: number; headers: Record<string, string>; text: string }

let cloud: TestCloud;
let token: string;
useCloud((c, t) => { cloud = c; token = t; });

/** One raw HTTP/1.1 exchange, so malformed requests reach the server as sent. */
function rawRequest(base: string, head: string, body = ''): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(head + body));
    const chunks: Buffer[] = [];
    s.on('data', (b) => chunks.push(b));
    s.on('error', reject);
    s.on('close', () => {
      const all = Buffer.concat(chunks).toString('utf8');
      const [h, ...rest] = all.split('\r\n\r\n');
      const [statusLine, ...lines] = h.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: rest.join('\r\n\r\n') });
    });
  });
}

async function send(base: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: string; rawPath?: boolean } = {}): Promise<Answer> {
  const headers: Record<string, string> = { host: 'localhost', connection: 'close', ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  const a = await rawRequest(base, head, opts.body ?? '');
  // Chunked replies: the body tests below only need the JSON/HTML text, so undo the framing.
  if (a.headers['transfer-encoding'] === 'chunked') {
    let out = '';
    let rest = a.text;
    for (;;) {
      const i = rest.indexOf('\r\n');
      const n = parseInt(rest.slice(0, i), 16);
      if (!n) break;
      out += rest.slice(i + 2, i + 2 + n);
      rest = rest.slice(i + 2 + n + 2);
    }
    a.text = out;
  }
  return a;
}

/** Asserts the body is in `shape` for `status` and the request id is on the response. */
function assertShape(shape: Shape, status: number, a: Answer, what: string, accept?: string): void {
  const where = `${what}: ${a.status} ${a.text.slice(0, 300)}`;
  assert.equal(a.status, status, where);
  const rid = a.headers['x-openstack-request-id'];
  assert.match(rid ?? '', /^req-[0-9a-f-]{36}$/, `${where}: request id`);
  assert.doesNotMatch(a.text, /FST_ERR|"statusCode"/, `${where}: fastify's own body`);
  const body = () => { try { return JSON.parse(a.text); } catch { assert.fail(`${where}: not JSON`); } };
  switch (shape) {
    case 'keystone': {
      const b = body();
      assert.deepEqual(Object.keys(b), ['error'], where);
      assert.equal(b.error.code, status, where);
      assert.equal(typeof b.error.title, 'string', where);
      assert.equal(typeof b.error.message, 'string', where);
      break;
    }
    case 'nova': {
      const b = body();
      const keys = Object.keys(b);
      assert.equal(keys.length, 1, where);
      assert.equal(b[keys[0]].code, status, where);
      assert.equal(typeof b[keys[0]].message, 'string', where);
      assert.equal(a.headers['x-compute-request-id'], rid, `${where}: x-compute-request-id`);
      break;
    }
    case 'placement': {
      const b = body();
      assert.equal(b.errors.length, 1, where);
      assert.equal(b.errors[0].status, status, where);
      assert.equal(typeof b.errors[0].detail, 'string', where);
      assert.equal(b.errors[0].request_id, rid, where);
      break;
    }
    case 'glance':
      if (accept === 'application/json') {
        const b = body();
        assert.match(b.code, new RegExp(`^${status} `), where);
        assert.equal(typeof b.message, 'string', where);
      } else {
        assert.match(a.headers['content-type'], /^text\/html/, where);
        assert.match(a.text, new RegExp(`<title>${status} `), where);
      }
  }
}

const deepObject = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
const deepArray = '['.repeat(10_000) + ']'.repeat(10_000);

const SERVICES: { shape: Shape; base: string; collection: string; item: string; create: string; mv?: string; mediaStatus: number; wrongMethod?: [string, string] }[] = [
  { shape: 'keystone', base: '/identity', collection: '/identity/v3/projects', item: '/identity/v3/projects/', create: '/identity/v3/projects', mediaStatus: 415 },
  { shape: 'nova', base: '/compute', collection: '/compute/v2.1/servers', item: '/compute/v2.1/servers/', create: '/compute/v2.1/servers', mediaStatus: 415 },
  // Placement's ids are UUIDs: an over-long one is simply not found, as upstream.
  { shape: 'placement', base: '/placement', collection: '/placement/resource_providers', item: '/placement/resource_providers/', create: '/placement/allocations', mv: 'placement 1.39', mediaStatus: 415, wrongMethod: ['PATCH', '/placement/resource_providers'] },
  // Glance reads any body as JSON whatever its declared type (a 400 for XML, not a 415).
  { shape: 'glance', base: '/image', collection: '/image/v2/images', item: '/image/v2/images/', create: '/image/v2/images', mediaStatus: 400, wrongMethod: ['PATCH', '/image/v2/images'] },
];

for (const s of SERVICES) {
  test(`${s.shape}: every framework error class in the service's shape with the request id`, async () => {
    const auth = { 'x-auth-token': token, ...(s.mv ? { 'openstack-api-version': s.mv } : {}) };
    const accepts = s.shape === 'glance' ? [undefined, 'application/json'] : [undefined];
    for (const accept of accepts) {
      const h = { ...auth, ...(accept ? { accept } : {}) };
      const check = (status: number, a: Answer, what: string) => assertShape(s.shape, status, a, `${s.shape} ${what}`, accept);
      check(400, await send(cloud.url, 'GET', `${s.item}%zz`, { headers: h }), 'bad percent-escape');
      check(s.shape === 'placement' ? 404 : 414, await send(cloud.url, 'GET', `${s.item}${'x'.repeat(1500)}`, { headers: h }), 'id over the parameter length limit');
      check(431, await send(cloud.url, 'GET', s.collection, { headers: { ...h, 'x-padding': 'a'.repeat(20_000) } }), 'oversized headers');
      check(404, await send(cloud.url, 'GET', `${s.base}/no/such/route`, { headers: h }), 'unknown route');
      check(404, await send(cloud.url, 'PROPFIND', s.collection + '/x/y/z', { headers: h }), 'unknown method and route');
      if (s.wrongMethod) check(405, await send(cloud.url, s.wrongMethod[0], s.wrongMethod[1], { headers: h }), 'method not allowed');
      check(s.mediaStatus, await send(cloud.url, 'POST', s.create, { headers: { ...h, 'content-type': 'application/xml' }, body: '<a/>' }), 'unsupported media type');
      check(413, await send(cloud.url, 'POST', s.create, { headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ x: 'y'.repeat(300_000) }) }), 'body too large');
      check(400, await send(cloud.url, 'POST', s.create, { headers: { ...h, 'content-type': 'application/json' }, body: '{"bad' }), 'malformed JSON');
    }
  });
}

// A 401 is keystonemiddleware's, so Keystone-shaped whatever the service.
test('401s are in Keystone\'s shape for every service', async () => {
  for (const s of SERVICES) {
    const a = await send(cloud.url, 'GET', s.collection, { headers: { accept: 'application/json' } });
    assertShape('keystone', 401, a, `${s.shape} 401`);
  }
});

test('a 10,000-deep JSON body is a 400 in the service\'s shape on every service (not a 500)', async () => {
  const serverId = '3cdcb878-1440-4848-a392-ac3f85176036';
  const probes: [Shape, string, string, Record<string, string>?][] = [
    ['keystone', 'POST', '/identity/v3/projects'],
    ['nova', 'PUT', `/compute/v2.1/servers/${serverId}`],
    ['nova', 'POST', '/compute/v2.1/flavors'],
    ['placement', 'POST', '/placement/allocations', { 'openstack-api-version': 'placement 1.39' }],
    ['glance', 'POST', '/image/v2/images'],
    ['glance', 'POST', '/image/v2/metadefs/namespaces'],
    ['glance', 'PATCH', '/image/v2/images/3cdcb878-1440-4848-a392-ac3f85176036', { 'content-type': 'application/openstack-images-v2.1-json-patch' }],
  ];
  for (const [shape, method, path, extra] of probes) {
    for (const body of [deepObject, deepArray]) {
      const a = await send(cloud.url, method, path, { headers: { 'x-auth-token': token, 'content-type': 'application/json', ...(extra ?? {}) }, body });
      assertShape(shape, 400, a, `${method} ${path} deep`);
      assert.match(a.text, /deeper than 100 levels/, path);
    }
  }
});

test('a service running alone renders framework errors and unknown routes in its own shape', async (t) => {
  const services: [Shape, TestService][] = [['placement', await startTestService(placementService)], ['glance', await startTestService(imageService)]];
  t.after(async () => { for (const [, s] of services) { s.app.server.closeAllConnections(); await s.close(); } });
  for (const [shape, svc] of services) {
    const h = { 'x-auth-token': 'admin' };
    assertShape(shape, 400, await send(svc.url, 'GET', '/%zz', { headers: h }), `${shape} alone: bad escape`);
    assertShape(shape, 404, await send(svc.url, 'GET', '/no/such/thing', { headers: h }), `${shape} alone: unknown route`);
    assertShape(shape, 431, await send(svc.url, 'GET', '/', { headers: { ...h, 'x-padding': 'a'.repeat(20_000) } }), `${shape} alone: oversized headers`);
  }
});
