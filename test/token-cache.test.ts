// Services other than Identity validate tokens through Identity and cache the answer; a
// revocation announced on the bus must stop a cached token at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';

let cloud: TestCloud;
before(async () => { cloud = await startCloud(); });
after(async () => { await cloud?.stop(); });

test('a revoked token is refused by placement and image right after the revocation', async () => {
  const admin = await cloud.adminToken();
  const t = (await cloud.login('admin', cloud.adminPassword, 'admin')).token;
  assert.equal((await cloud.req('GET', '/placement/resource_providers', { token: t })).status, 200);
  assert.equal((await cloud.req('GET', '/image/v2/images', { token: t })).status, 200);
  assert.equal((await cloud.req('DELETE', '/identity/v3/auth/tokens', { token: admin, headers: { 'x-subject-token': t } })).status, 204);
  // The fanout is asynchronous; it must land well within a second.
  const deadline = Date.now() + 1000;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await cloud.req('GET', '/placement/resource_providers', { token: t })).status;
    if (status === 401) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(status, 401);
  const img = await cloud.req('GET', '/image/v2/images', { token: t });
  assert.equal(img.status, 401);
});

test('a missing or garbage token is 401 in each service\'s error shape', async () => {
  const p = await cloud.req('GET', '/placement/resource_providers', { token: 'garbage' });
  assert.equal(p.status, 401);
  assert.equal(p.body.error.code, 401);
  assert.match(p.headers.get('www-authenticate')!, /^Keystone uri="http:\/\/127\.0\.0\.1:\d+\/identity"$/);
  const i = await cloud.req('GET', '/image/v2/images');
  assert.equal(i.status, 401);
  assert.equal(i.body.error.code, 401);
  assert.ok(i.headers.get('www-authenticate'));
});

test('healthcheck and metrics', async () => {
  const h = await cloud.req('GET', '/healthcheck');
  assert.equal(h.status, 200);
  assert.equal(h.text, 'OK');
  const m = await cloud.req('GET', '/metrics');
  assert.match(m.text, /stratus_http_requests_total\{service="identity",method="POST",route="\/identity\/v3\/auth\/tokens",status="201"\} \d+/);
  assert.match(m.text, /stratus_http_request_duration_seconds_bucket\{/);
});
