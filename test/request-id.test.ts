// A server boot's request id travels end to end (Nova's global_request_id): the id a client sends
// as X-OpenStack-Request-ID is in the conductor's, the scheduler's, the compute agent's and
// placement's log lines for that boot, and placement's request log shows it for the claim.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';
import { tempDir } from './helpers/backends.ts';

let cloud: TestCloud;
let token: string;
const logDir = tempDir('stratus-reqid-');
const logFile = join(logDir.path, 'stratus.log');
const { api, waitFor } = computeApi(() => cloud, () => token);

before(async () => {
  process.env.STRATUS_LOG_LEVEL = 'info';
  cloud = await startCloud({ config: { DEFAULT: { log_file: logFile } } });
  token = await cloud.adminToken();
});
after(async () => {
  await cloud?.stop();
  logDir.remove();
});

const lines = () => readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

test('a boot with X-OpenStack-Request-ID: the id reaches conductor, scheduler, agent and placement', async () => {
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'reqid', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  const given = `req-${randomUUID()}`;
  const r = await api('POST', '/servers', { server: { name: 'reqid', imageRef: img.body.id, flavorRef: '1', networks: 'none' } }, { ...mv('2.37'), 'X-OpenStack-Request-ID': given });
  assert.equal(r.status, 202, r.text);
  // The compute API answers with its own id (the given one is the chain's global id, as Nova).
  assert.match(r.headers.get('x-openstack-request-id') ?? '', /^req-/);
  assert.notEqual(r.headers.get('x-openstack-request-id'), given);
  await waitFor(r.body.server.id, ['ACTIVE']);
  await new Promise((res) => setTimeout(res, 300)); // the file logger writes asynchronously

  const mine = lines().filter((l) => l.global_request_id === given);
  const by = (service: string) => mine.filter((l) => l.service === service);
  assert.ok(by('conductor').some((l) => l.msg === 'instance scheduled; casting the build to its host' && l.instance === r.body.server.id), 'conductor');
  assert.ok(by('scheduler').some((l) => l.msg === 'selected destinations'), 'scheduler');
  assert.ok(by('compute').some((l) => String(l.msg).startsWith('Took ') && l.instance === r.body.server.id), 'compute agent');
  // Placement's request log: the allocation candidates and the claim of this boot.
  const placement = by('placement').filter((l) => l.msg === 'access');
  assert.ok(placement.some((l) => l.method === 'GET' && String(l.url).includes('/allocation_candidates')), 'placement candidates');
  assert.ok(placement.some((l) => l.method === 'PUT' && l.url === `/placement/allocations/${r.body.server.id}`), 'placement claim');
  // The image service was asked with the same id (the API's image lookup).
  assert.ok(by('image').some((l) => l.msg === 'access' && String(l.url).includes(img.body.id)), 'image');
});

test('a malformed X-OpenStack-Request-ID is ignored (oslo.middleware accepts only req-<uuid>)', async () => {
  const r = await api('GET', '/flavors', undefined, { 'X-OpenStack-Request-ID': 'not-an-id' });
  assert.equal(r.status, 200);
  const r2 = await api('GET', '/flavors', undefined, { 'X-OpenStack-Request-ID': 'req-1234' });
  assert.equal(r2.status, 200);
  await new Promise((res) => setTimeout(res, 300));
  assert.ok(!lines().some((l) => l.global_request_id === 'req-1234'));
});
