// The scheduler reuses what it read of the compute services for [scheduler]
// host_state_refresh_seconds; a "no valid host" must still never come from that cached view. A
// host forced down and brought back (or enabled again) is schedulable at once, as in Nova, which
// reads the services on every request. Seen in CI: a live migration to a host un-forced-down a
// moment before ended in error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv, uploadImage } from './helpers/compute.ts';

let cloud: TestCloud;
let token: string;
let imageId: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });

before(async () => {
  // A refresh period far longer than the test: every decision after the first is from the cache.
  cloud = await startCloud({ computeHosts: 2, config: { scheduler: { host_state_refresh_seconds: '600' } } });
  token = await cloud.adminToken();
  imageId = await uploadImage(cloud, token, { name: 'fresh-img' });
});
after(async () => { await cloud?.stop(); });

const forceDown = (host: string, down: boolean) => api('PUT', '/os-services/force-down', { host, binary: 'nova-compute', forced_down: down }, mv('2.11'));
const boot = (name: string, az?: string) => api('POST', '/servers', { server: { name, imageRef: imageId, flavorRef: '1', networks: 'none', ...(az ? { availability_zone: az } : {}) } }, mv('2.37'));

test('a host brought back from forced down is schedulable at once, although the scheduler cached it as down', async () => {
  assert.equal((await forceDown('compute2', true)).status, 200);
  const a = await boot('fresh-a');
  assert.equal(a.status, 202, a.text);
  const sa = await waitFor(a.body.server.id, ['ACTIVE']); // this decision cached compute2 as down
  assert.equal(sa['OS-EXT-SRV-ATTR:host'], 'compute1');
  assert.equal((await forceDown('compute2', false)).status, 200);
  const b = await boot('fresh-b', 'nova:compute2');
  assert.equal(b.status, 202, b.text);
  const sb = await waitFor(b.body.server.id, ['ACTIVE', 'ERROR']);
  assert.equal(sb.status, 'ACTIVE', JSON.stringify(sb.fault));
  assert.equal(sb['OS-EXT-SRV-ATTR:host'], 'compute2');
  for (const id of [a.body.server.id, b.body.server.id]) await api('DELETE', `/servers/${id}`);
});

test('a request no host can take still fails, after the fresh read (an unknown forced host)', async () => {
  const c = await boot('fresh-c', 'nova:compute9');
  if (c.status === 202) {
    const sc = await waitFor(c.body.server.id, ['ACTIVE', 'ERROR']);
    assert.equal(sc.status, 'ERROR');
    assert.match(sc.fault.message, /No valid host/);
    await api('DELETE', `/servers/${c.body.server.id}`);
  } else {
    assert.equal(c.status, 400, c.text); // refused up front by the API
  }
});
