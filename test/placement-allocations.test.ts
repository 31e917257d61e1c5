// Allocations, consumers, usages and the reshaper, across the microversions that change them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from './helpers/service.ts';
import { placementService } from '../src/placement/index.ts';
import { PlacementClient, runTable } from '../src/placement/testing.ts';

let svc: TestService;
let client: PlacementClient;
before(async () => {
  svc = await startTestService(placementService);
  client = new PlacementClient(svc.url);
});
after(async () => { await svc?.close(); });

const C1 = 'c0000000-0000-4000-8000-000000000001';
const C2 = 'c0000000-0000-4000-8000-000000000002';
const C3 = 'c0000000-0000-4000-8000-000000000003';
const C4 = 'c0000000-0000-4000-8000-000000000004';

test('allocation lifecycle across microversions', async (t) => {
  const rp1 = await client.provider('alloc-1', { inventory: { VCPU: { total: 4, allocation_ratio: 2 }, MEMORY_MB: { total: 4096, min_unit: 256, step_size: 256, max_unit: 2048 }, DISK_GB: 100 } });
  const rp2 = await client.provider('alloc-2', { inventory: { VCPU: 4, MEMORY_MB: 4096 } });
  const vars = { rp1, rp2 };
  await runTable(t, client, [
    { name: '1.0 list form without project', method: 'PUT', url: `/allocations/${C1}`, version: '1.0', status: 204,
      body: { allocations: [{ resource_provider: { uuid: '{rp1}' }, resources: { VCPU: 1 } }] } },
    { name: '1.0 GET has no project', url: `/allocations/${C1}`, version: '1.0', status: 200,
      check: (b) => { assert.deepEqual(Object.keys(b), ['allocations']); assert.deepEqual(b.allocations[rp1].resources, { VCPU: 1 }); } },
    { name: 'incomplete consumer gets the configured project', url: `/allocations/${C1}`, version: '1.12', status: 200,
      expect: { project_id: '00000000-0000-0000-0000-000000000000', user_id: '00000000-0000-0000-0000-000000000000' } },
    { name: '1.8 needs project and user', method: 'PUT', url: `/allocations/${C1}`, version: '1.8', status: 400,
      body: { allocations: [{ resource_provider: { uuid: '{rp1}' }, resources: { VCPU: 1 } }] } },
    { name: '1.8 list form with project', method: 'PUT', url: `/allocations/${C1}`, version: '1.8', status: 204,
      body: { allocations: [{ resource_provider: { uuid: '{rp1}' }, resources: { VCPU: 2 } }], project_id: 'proj-a', user_id: 'user-a' } },
    { name: 'list form refused from 1.12', method: 'PUT', url: `/allocations/${C1}`, version: '1.12', status: 400,
      body: { allocations: [{ resource_provider: { uuid: '{rp1}' }, resources: { VCPU: 2 } }], project_id: 'proj-a', user_id: 'user-a' } },
    { name: '1.12 dict form', method: 'PUT', url: `/allocations/${C1}`, version: '1.12', status: 204,
      body: { allocations: { '{rp1}': { resources: { VCPU: 2, MEMORY_MB: 512 } } }, project_id: 'proj-a', user_id: 'user-a' } },
    { name: '1.12 empty allocations refused', method: 'PUT', url: `/allocations/${C1}`, version: '1.12', status: 400,
      body: { allocations: {}, project_id: 'proj-a', user_id: 'user-a' } },
    { name: '1.28 GET shows the consumer generation', url: `/allocations/${C1}`, version: '1.28', status: 200,
      expect: { allocations: { '{rp1}': { resources: { VCPU: 2, MEMORY_MB: 512 } } }, project_id: 'proj-a', user_id: 'user-a', consumer_generation: 3 },
      check: (b) => assert.equal(b.consumer_type, undefined) },
    { name: '1.28 requires consumer_generation', method: 'PUT', url: `/allocations/${C1}`, version: '1.28', status: 400,
      body: { allocations: { '{rp1}': { resources: { VCPU: 1 } } }, project_id: 'proj-a', user_id: 'user-a' } },
    { name: 'null generation for an existing consumer is 409', method: 'PUT', url: `/allocations/${C1}`, version: '1.28', status: 409, code: 'placement.concurrent_update',
      body: { allocations: { '{rp1}': { resources: { VCPU: 1 } } }, project_id: 'proj-a', user_id: 'user-a', consumer_generation: null },
      // Tried as a new consumer first (no lookup); the duplicate sends it the general way.
      check: (b) => assert.match(b.errors[0].detail, /consumer generation conflict - expected 3 but got None/) },
    { name: 'stale generation is 409', method: 'PUT', url: `/allocations/${C1}`, version: '1.28', status: 409, code: 'placement.concurrent_update',
      body: { allocations: { '{rp1}': { resources: { VCPU: 1 } } }, project_id: 'proj-a', user_id: 'user-a', consumer_generation: 2 } },
    { name: 'generation for a new consumer must be null', method: 'PUT', url: `/allocations/${C2}`, version: '1.28', status: 409, code: 'placement.concurrent_update',
      body: { allocations: { '{rp1}': { resources: { VCPU: 1 } } }, project_id: 'proj-a', user_id: 'user-a', consumer_generation: 1 } },
    { name: 'matching generation replaces', method: 'PUT', url: `/allocations/${C1}`, version: '1.28', status: 204,
      body: { allocations: { '{rp1}': { resources: { VCPU: 3, MEMORY_MB: 1024 } } }, project_id: 'proj-a', user_id: 'user-a', consumer_generation: 3 } },
    { name: '1.38 requires consumer_type', method: 'PUT', url: `/allocations/${C2}`, version: '1.38', status: 400,
      body: { allocations: { '{rp1}': { resources: { VCPU: 1 } } }, project_id: 'proj-a', user_id: 'user-b', consumer_generation: null } },
    { name: '1.38 new consumer with a type', method: 'PUT', url: `/allocations/${C2}`, version: '1.38', status: 204,
      body: { allocations: { '{rp1}': { resources: { VCPU: 1 } }, '{rp2}': { resources: { VCPU: 1 } } }, project_id: 'proj-a', user_id: 'user-b', consumer_generation: null, consumer_type: 'MIGRATION' } },
    { name: '1.38 GET shows the type; older consumers are unknown', url: `/allocations/${C1}`, status: 200, expect: { consumer_type: 'unknown', consumer_generation: 4 } },
    { name: "'unknown' sent back means no type (osc-placement round trip)", method: 'PUT', url: `/allocations/${C1}`, status: 204,
      body: { allocations: { '{rp1}': { resources: { VCPU: 3, MEMORY_MB: 1024 } } }, project_id: 'proj-a', user_id: 'user-a', consumer_generation: 4, consumer_type: 'unknown' } },
    { name: 'still unknown', url: `/allocations/${C1}`, status: 200, expect: { consumer_type: 'unknown', consumer_generation: 5 } },
    { name: 'provider allocations', url: '/resource_providers/{rp1}/allocations', status: 200,
      expect: { allocations: { [C1]: { resources: { VCPU: 3, MEMORY_MB: 1024 }, consumer_generation: 5 }, [C2]: { resources: { VCPU: 1 }, consumer_generation: 1 } } } },
    { name: 'provider allocations of an unknown provider is 404', url: `/resource_providers/${C4}/allocations`, status: 404 },
    { name: 'provider usages', url: '/resource_providers/{rp1}/usages', status: 200, expect: { usages: { VCPU: 4, MEMORY_MB: 1024, DISK_GB: 0 } } },
    { name: 'project usages before 1.38', url: '/usages?project_id=proj-a', version: '1.37', status: 200,
      check: (b) => assert.deepEqual(b, { usages: { VCPU: 5, MEMORY_MB: 1024 } }) },
    { name: 'project and user usages', url: '/usages?project_id=proj-a&user_id=user-b', version: '1.9', status: 200,
      check: (b) => assert.deepEqual(b, { usages: { VCPU: 2 } }) },
    { name: 'usages grouped by consumer type from 1.38', url: '/usages?project_id=proj-a', status: 200,
      check: (b) => assert.deepEqual(b, { usages: { unknown: { consumer_count: 1, VCPU: 3, MEMORY_MB: 1024 }, MIGRATION: { consumer_count: 1, VCPU: 2 } } }) },
    { name: 'consumer_type=all', url: '/usages?project_id=proj-a&consumer_type=all', status: 200,
      check: (b) => assert.deepEqual(b, { usages: { all: { consumer_count: 2, VCPU: 5, MEMORY_MB: 1024 } } }) },
    { name: 'consumer_type=unknown', url: '/usages?project_id=proj-a&consumer_type=unknown', status: 200,
      check: (b) => assert.deepEqual(b, { usages: { unknown: { consumer_count: 1, VCPU: 3, MEMORY_MB: 1024 } } }) },
    { name: 'consumer_type filter', url: '/usages?project_id=proj-a&consumer_type=MIGRATION', status: 200,
      check: (b) => assert.deepEqual(b, { usages: { MIGRATION: { consumer_count: 1, VCPU: 2 } } }) },
    { name: 'consumer_type unknown before 1.38', url: '/usages?project_id=proj-a&consumer_type=all', version: '1.37', status: 400 },
    { name: 'usages need project_id', url: '/usages', status: 400 },
    { name: 'usages not before 1.9', url: '/usages?project_id=proj-a', version: '1.8', status: 404 },
    { name: 'over capacity is 409', method: 'PUT', url: `/allocations/${C3}`, status: 409,
      body: { allocations: { '{rp1}': { resources: { VCPU: 5 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' },
      check: (b) => assert.match(b.errors[0].detail, /exceed the capacity/) },
    { name: 'exactly the remaining capacity fits (ratio 2: 8 VCPU)', method: 'PUT', url: `/allocations/${C3}`, status: 204,
      body: { allocations: { '{rp1}': { resources: { VCPU: 4 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'step_size violation is 409', method: 'PUT', url: `/allocations/${C4}`, status: 409,
      body: { allocations: { '{rp1}': { resources: { MEMORY_MB: 300 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' },
      check: (b) => assert.match(b.errors[0].detail, /violate inventory constraints/) },
    { name: 'max_unit violation is 409', method: 'PUT', url: `/allocations/${C4}`, status: 409,
      body: { allocations: { '{rp1}': { resources: { MEMORY_MB: 2304 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'min_unit violation is 409, and fails the other provider too', method: 'PUT', url: `/allocations/${C4}`, status: 409,
      body: { allocations: { '{rp2}': { resources: { VCPU: 1 } }, '{rp1}': { resources: { MEMORY_MB: 128 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'zero amounts are refused by the schema', method: 'PUT', url: `/allocations/${C4}`, status: 400,
      body: { allocations: { '{rp1}': { resources: { MEMORY_MB: 0 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'class without inventory is 409', method: 'PUT', url: `/allocations/${C4}`, status: 409,
      body: { allocations: { '{rp2}': { resources: { DISK_GB: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'unknown class is 400', method: 'PUT', url: `/allocations/${C4}`, status: 400,
      body: { allocations: { '{rp2}': { resources: { CUSTOM_NOPE: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'unknown provider is 400', method: 'PUT', url: `/allocations/${C4}`, status: 400,
      body: { allocations: { [C1]: { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'a failed write leaves nothing behind', url: `/allocations/${C4}`, status: 200, check: (b) => assert.deepEqual(b, { allocations: {} }) },
    { name: 'usages unchanged by failures', url: '/resource_providers/{rp1}/usages', status: 200, expect: { usages: { VCPU: 8, MEMORY_MB: 1024 } } },
    { name: 'malformed consumer uuid is 400', method: 'PUT', url: '/allocations/not-a-uuid', status: 400,
      body: { allocations: { '{rp2}': { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'safe delete with an empty PUT', method: 'PUT', url: `/allocations/${C3}`, status: 204,
      body: { allocations: {}, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'INSTANCE' } },
    { name: 'the consumer is gone', url: `/allocations/${C3}`, status: 200, check: (b) => assert.deepEqual(b, { allocations: {} }) },
    { name: 'DELETE allocations', method: 'DELETE', url: `/allocations/${C2}`, status: 204 },
    { name: 'DELETE again is 404', method: 'DELETE', url: `/allocations/${C2}`, status: 404 },
    { name: 'usages after deletes', url: '/resource_providers/{rp1}/usages', status: 200, expect: { usages: { VCPU: 3, MEMORY_MB: 1024 } } },
  ], vars);
});

test('provider generations move as upstream: allocation writes bump the providers written to', async () => {
  const a = await client.provider('gen-a', { inventory: { VCPU: 8 } });
  const b = await client.provider('gen-b', { inventory: { VCPU: 8 } });
  const gen = async (u: string) => (await client.get(`/resource_providers/${u}`)).body.generation as number;
  const [a0, b0] = [await gen(a), await gen(b)];
  const consumer = 'd0000000-0000-4000-8000-000000000001';
  let r = await client.put(`/allocations/${consumer}`, { allocations: { [a]: { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' });
  assert.equal(r.status, 204, r.text);
  assert.equal(await gen(a), a0 + 1);
  // Moving the allocation bumps the new provider only (upstream bumps the providers in the new set).
  r = await client.put(`/allocations/${consumer}`, { allocations: { [b]: { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'INSTANCE' });
  assert.equal(r.status, 204, r.text);
  assert.deepEqual([await gen(a), await gen(b)], [a0 + 1, b0 + 1]);
  // Emptying through PUT {} bumps the providers it had.
  r = await client.put(`/allocations/${consumer}`, { allocations: {}, project_id: 'p', user_id: 'u', consumer_generation: 2, consumer_type: 'INSTANCE' });
  assert.equal(r.status, 204, r.text);
  assert.equal(await gen(b), b0 + 2);
  // DELETE /allocations does not bump (upstream behaviour).
  r = await client.put(`/allocations/${consumer}`, { allocations: { [a]: { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' });
  const before = await gen(a);
  assert.equal((await client.delete(`/allocations/${consumer}`)).status, 204);
  assert.equal(await gen(a), before);
});

test('POST /allocations moves allocations between consumers atomically (migration shape)', async (t) => {
  const src = await client.provider('mig-src', { inventory: { VCPU: 4, MEMORY_MB: 2048 } });
  const dst = await client.provider('mig-dst', { inventory: { VCPU: 4, MEMORY_MB: 2048 } });
  const inst = 'e0000000-0000-4000-8000-000000000001';
  const mig = 'e0000000-0000-4000-8000-000000000002';
  const vars = { src, dst };
  await runTable(t, client, [
    { name: 'instance on the source', method: 'PUT', url: `/allocations/${inst}`, status: 204,
      body: { allocations: { '{src}': { resources: { VCPU: 2, MEMORY_MB: 1024 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'not before 1.13', method: 'POST', url: '/allocations', version: '1.12', status: 404, body: {} },
    { name: 'empty body is 400', method: 'POST', url: '/allocations', status: 400, body: {} },
    { name: 'swap: migration holds the source, instance the destination', method: 'POST', url: '/allocations', status: 204, body: {
      [mig]: { allocations: { '{src}': { resources: { VCPU: 2, MEMORY_MB: 1024 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'MIGRATION' },
      [inst]: { allocations: { '{dst}': { resources: { VCPU: 2, MEMORY_MB: 1024 } } }, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'INSTANCE' },
    } },
    { name: 'source usage held by the migration', url: '/resource_providers/{src}/allocations', status: 200, expect: { allocations: { [mig]: { resources: { VCPU: 2, MEMORY_MB: 1024 } } } } },
    { name: 'a failing consumer fails the whole request', method: 'POST', url: '/allocations', status: 409, body: {
      [mig]: { allocations: {}, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'MIGRATION' },
      [inst]: { allocations: { '{dst}': { resources: { VCPU: 99 } } }, project_id: 'p', user_id: 'u', consumer_generation: 2, consumer_type: 'INSTANCE' },
    } },
    { name: 'nothing changed', url: `/allocations/${mig}`, status: 200, expect: { consumer_generation: 1 } },
    { name: 'confirm: drop the migration', method: 'POST', url: '/allocations', status: 204, body: {
      [mig]: { allocations: {}, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'MIGRATION' },
    } },
    { name: 'source is free', url: '/resource_providers/{src}/usages', status: 200, expect: { usages: { VCPU: 0, MEMORY_MB: 0 } } },
    { name: 'destination holds the instance', url: '/resource_providers/{dst}/usages', status: 200, expect: { usages: { VCPU: 2, MEMORY_MB: 1024 } } },
  ], vars);
});

test('reshaper moves inventory and allocations to a child provider atomically', async (t) => {
  const cn = await client.provider('reshape-cn', { inventory: { VCPU: 8, VGPU: 4 } });
  const consumer = 'f0000000-0000-4000-8000-000000000001';
  let r = await client.put(`/allocations/${consumer}`, { allocations: { [cn]: { resources: { VCPU: 1, VGPU: 2 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' });
  assert.equal(r.status, 204, r.text);
  r = await client.post('/resource_providers', { name: 'reshape-gpu', parent_provider_uuid: cn });
  const gpu = r.body.uuid as string;
  const cnGen = (await client.get(`/resource_providers/${cn}`)).body.generation;
  const vars = { cn, gpu, cnGen: String(cnGen) };
  const body = (cnGeneration: number) => ({
    inventories: {
      [cn]: { resource_provider_generation: cnGeneration, inventories: { VCPU: { total: 8 } } },
      [gpu]: { resource_provider_generation: 0, inventories: { VGPU: { total: 4 } } },
    },
    allocations: {
      [consumer]: { allocations: { [cn]: { resources: { VCPU: 1 } }, [gpu]: { resources: { VGPU: 2 } } }, project_id: 'p', user_id: 'u', consumer_generation: 1, consumer_type: 'INSTANCE' },
    },
  });
  await runTable(t, client, [
    { name: 'not before 1.30', method: 'POST', url: '/reshaper', version: '1.29', status: 404, body: body(cnGen) },
    { name: 'stale generation is 409 and changes nothing', method: 'POST', url: '/reshaper', status: 409, code: 'placement.concurrent_update', body: body(cnGen - 1) },
    { name: 'inventory unchanged', url: '/resource_providers/{cn}/inventories', status: 200, check: (b) => assert.deepEqual(Object.keys(b.inventories).sort(), ['VCPU', 'VGPU']) },
    { name: 'reshape', method: 'POST', url: '/reshaper', status: 204, body: body(cnGen) },
    { name: 'VGPU moved off the compute node', url: '/resource_providers/{cn}/inventories', status: 200, check: (b) => assert.deepEqual(Object.keys(b.inventories), ['VCPU']) },
    { name: 'allocations follow', url: `/allocations/${consumer}`, status: 200,
      expect: { allocations: { '{cn}': { resources: { VCPU: 1 } }, '{gpu}': { resources: { VGPU: 2 } } }, consumer_generation: 2 } },
    { name: 'child usage', url: '/resource_providers/{gpu}/usages', status: 200, expect: { resource_provider_generation: 1, usages: { VGPU: 2 } } },
  ], vars);
});
