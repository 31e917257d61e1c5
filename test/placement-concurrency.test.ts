// Racing writers: capacity is never exceeded and the cached usage stays equal to the sum of
// allocations, on whichever backend STRATUS_TEST_DB selects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startTestService, type TestService } from './helpers/service.ts';
import { placementService } from '../src/placement/index.ts';
import { PlacementClient } from '../src/placement/testing.ts';
import { openDatabase } from '../src/common/db/database.ts';
import { PlacementStore } from '../src/placement/model/store.ts';
import { usageMismatches } from '../src/placement/model/allocations.ts';
import type { PlacementDB } from '../src/placement/db/schema.ts';

let svc: TestService;
let client: PlacementClient;
let store: PlacementStore;
before(async () => {
  svc = await startTestService(placementService);
  client = new PlacementClient(svc.url);
  store = new PlacementStore(await openDatabase<PlacementDB>(svc.config.get<string>('placement_database', 'connection')));
});
after(async () => { await store?.close(); await svc?.close(); });

const body = (rp: string, n: number, generation: number | null = null) =>
  ({ allocations: { [rp]: { resources: { VCPU: n } } }, project_id: 'p', user_id: 'u', consumer_generation: generation, consumer_type: 'INSTANCE' });

test('20 clients racing for the last 5 units: exactly 5 win, the rest get 409', async () => {
  const rp = await client.provider('race', { inventory: { VCPU: 10 } });
  assert.equal((await client.put(`/allocations/${randomUUID()}`, body(rp, 5))).status, 204);
  const results = await Promise.all(Array.from({ length: 20 }, () => client.put(`/allocations/${randomUUID()}`, body(rp, 1))));
  const ok = results.filter((r) => r.status === 204).length;
  const refused = results.filter((r) => r.status === 409);
  assert.equal(ok, 5, results.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join('\n'));
  assert.equal(refused.length, 15);
  for (const r of refused) {
    const code = r.body.errors[0].code;
    assert.ok(code === 'placement.concurrent_update' || /exceed the capacity/.test(r.body.errors[0].detail), r.text);
  }
  const usage = await client.get(`/resource_providers/${rp}/usages`);
  assert.equal(usage.body.usages.VCPU, 10);
  const allocs = await client.get(`/resource_providers/${rp}/allocations`);
  const total = Object.values(allocs.body.allocations as Record<string, { resources: { VCPU: number } }>).reduce((s, a) => s + a.resources.VCPU, 0);
  assert.equal(total, 10);
  assert.deepEqual(await usageMismatches(store), []);
});

test('20 clients creating the same consumer: one wins, the rest are concurrent updates', async () => {
  const rp = await client.provider('race-consumer', { inventory: { VCPU: 100 } });
  const consumer = randomUUID();
  const results = await Promise.all(Array.from({ length: 20 }, () => client.put(`/allocations/${consumer}`, body(rp, 1))));
  assert.equal(results.filter((r) => r.status === 204).length, 1, results.map((r) => r.text.slice(0, 160)).join('\n'));
  for (const r of results.filter((x) => x.status !== 204)) {
    assert.equal(r.status, 409, r.text);
    assert.equal(r.body.errors[0].code, 'placement.concurrent_update', r.text);
  }
  assert.equal((await client.get(`/allocations/${consumer}`)).body.consumer_generation, 1);
});

test('writers spanning two providers in both orders neither deadlock nor overbook', async () => {
  const a = await client.provider('race-a', { inventory: { VCPU: 8, MEMORY_MB: 8192 } });
  const b = await client.provider('race-b', { inventory: { VCPU: 8, MEMORY_MB: 8192 } });
  const reqs = Array.from({ length: 24 }, (_, i) => {
    const [x, y] = i % 2 ? [a, b] : [b, a];
    return client.post('/allocations', {
      [randomUUID()]: { allocations: { [x]: { resources: { VCPU: 1 } }, [y]: { resources: { MEMORY_MB: 1024 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' },
    });
  });
  const results = await Promise.all(reqs);
  const ok = results.filter((r) => r.status === 204).length;
  for (const r of results) assert.ok(r.status === 204 || r.status === 409, `${r.status} ${r.text}`);
  // 24 writers, 16 VCPU and 16 GiB in total: at most 16 fit, and none may be lost to a deadlock.
  assert.equal(ok, 16, results.map((r) => `${r.status} ${r.text.slice(0, 160)}`).join('\n'));
  for (const rp of [a, b]) {
    const u = (await client.get(`/resource_providers/${rp}/usages`)).body.usages;
    assert.ok(u.VCPU <= 8 && u.MEMORY_MB <= 8192, JSON.stringify(u));
  }
  assert.deepEqual(await usageMismatches(store), []);
});

test('replacing and deleting under contention keeps usage exact', async () => {
  const rp = await client.provider('churn', { inventory: { VCPU: 16 } });
  const consumers = Array.from({ length: 8 }, () => randomUUID());
  for (const c of consumers) assert.equal((await client.put(`/allocations/${c}`, body(rp, 1))).status, 204);
  await Promise.all(consumers.flatMap((c, i) => [
    client.put(`/allocations/${c}`, body(rp, 2, 1)),
    i % 2 ? client.delete(`/allocations/${c}`) : client.put(`/allocations/${randomUUID()}`, body(rp, 1)),
  ]));
  assert.deepEqual(await usageMismatches(store), []);
  const u = (await client.get(`/resource_providers/${rp}/usages`)).body.usages.VCPU;
  assert.ok(u <= 16);
});
