// Placement API behaviour, gabbi style: each step is a request and the response it must give.
// Runs on the backend chosen by STRATUS_TEST_DB.
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

const RP1 = 'a1b2c3d4-0000-4000-8000-000000000001';
const AGG1 = '11111111-aaaa-4bbb-8ccc-000000000001';
const AGG2 = '11111111-aaaa-4bbb-8ccc-000000000002';

test('version document, headers, microversion negotiation, auth and policy', async (t) => {
  await runTable(t, client, [
    { name: 'root needs no token', url: '/', token: null, version: null, status: 200,
      expect: { versions: [{ id: 'v1.0', max_version: '1.39', min_version: '1.0', status: 'CURRENT', links: [{ rel: 'self', href: '' }] }] },
      responseHeaders: { 'openstack-api-version': 'placement 1.0', vary: 'openstack-api-version', 'x-openstack-request-id': /^req-/ } },
    { name: 'latest is 1.39', url: '/', version: 'latest', status: 200, responseHeaders: { 'openstack-api-version': 'placement 1.39' } },
    { name: 'unsupported version is 406 with min and max', url: '/resource_providers', version: '1.99', status: 406,
      expect: { errors: [{ status: 406, max_version: '1.39', min_version: '1.0' }] } },
    { name: 'malformed version is 400', url: '/resource_providers', version: 'one.two', status: 400 },
    { name: 'no token is 401', url: '/resource_providers', token: null, status: 401 },
    { name: 'bad token is 401', url: '/resource_providers', token: 'nope', status: 401 },
    { name: 'member role is forbidden', url: '/resource_providers', token: 'member-a', status: 403, code: 'placement.undefined_code',
      check: (b) => assert.match(b.errors[0].detail, /Policy does not allow placement:resource_providers:list/) },
    { name: 'reader role is forbidden', url: '/traits', token: 'reader-a', status: 403 },
    { name: 'service role is allowed', url: '/resource_providers', token: 'service', status: 200 },
    { name: 'error codes hidden before 1.23', url: '/resource_providers/nope', version: '1.22', status: 404,
      check: (b) => assert.equal(b.errors[0].code, undefined) },
    { name: 'error codes shown from 1.23', url: '/resource_providers/nope', version: '1.23', status: 404, code: 'placement.undefined_code' },
    { name: 'unknown path is a placement 404', url: '/nothing/here', status: 404, responseHeaders: { 'openstack-api-version': 'placement 1.39' } },
    { name: 'wrong method is 405 with Allow', method: 'PATCH', url: '/resource_providers', status: 405, responseHeaders: { allow: 'GET, POST' } },
    { name: 'candidates below 1.10 are 404', url: '/allocation_candidates?resources=VCPU:1', version: '1.9', status: 404 },
    { name: 'Accept that excludes JSON is 406', url: '/resource_providers', headers: { accept: 'text/html' }, status: 406 },
    { name: 'last-modified from 1.15', url: '/resource_classes', version: '1.15', status: 200, responseHeaders: { 'cache-control': 'no-cache', 'last-modified': /GMT$/ } },
    { name: 'no last-modified before 1.15', url: '/resource_classes', version: '1.14', status: 200, responseHeaders: { 'last-modified': null } },
  ]);
});

test('resource providers: create, show, list filters, update, trees, delete', async (t) => {
  await runTable(t, client, [
    { name: 'create at 1.0 is 201 with Location and no body', method: 'POST', url: '/resource_providers', version: '1.0',
      body: { name: 'rp-old', uuid: RP1 }, status: 201, responseHeaders: { location: new RegExp(`^http://127\\.0\\.0\\.1:\\d+/resource_providers/${RP1}$`) }, check: (b) => assert.equal(b, undefined) },
    { name: 'create at 1.20 returns the provider', method: 'POST', url: '/resource_providers', version: '1.20', body: { name: 'cn1' }, status: 200,
      expect: { name: 'cn1', generation: 0, parent_provider_uuid: null }, save: { cn1: (b) => b.uuid } },
    { name: 'duplicate name is 409 duplicate_name', method: 'POST', url: '/resource_providers', body: { name: 'cn1' }, status: 409, code: 'placement.duplicate_name' },
    { name: 'duplicate uuid is 409 duplicate_name', method: 'POST', url: '/resource_providers', body: { name: 'other', uuid: RP1 }, status: 409, code: 'placement.duplicate_name' },
    { name: 'uuid without dashes is normalised', method: 'POST', url: '/resource_providers', body: { name: 'nodash', uuid: 'A1B2C3D4000040008000000000000099' }, status: 200,
      expect: { uuid: 'a1b2c3d4-0000-4000-8000-000000000099' } },
    { name: 'child provider', method: 'POST', url: '/resource_providers', body: { name: 'numa0', parent_provider_uuid: '{cn1}' }, status: 200,
      expect: { parent_provider_uuid: '{cn1}', root_provider_uuid: '{cn1}' }, save: { numa0: (b) => b.uuid } },
    { name: 'grandchild provider', method: 'POST', url: '/resource_providers', body: { name: 'pf0', parent_provider_uuid: '{numa0}' }, status: 200,
      expect: { parent_provider_uuid: '{numa0}', root_provider_uuid: '{cn1}' }, save: { pf0: (b) => b.uuid } },
    { name: 'parent must exist', method: 'POST', url: '/resource_providers', body: { name: 'orphan', parent_provider_uuid: AGG1 }, status: 400 },
    { name: 'parent_provider_uuid unknown before 1.14', method: 'POST', url: '/resource_providers', version: '1.13', body: { name: 'x', parent_provider_uuid: '{cn1}' }, status: 400 },
    { name: 'show at 1.0 has no tree fields and 2 links', url: '/resource_providers/{cn1}', version: '1.0', status: 200,
      check: (b) => { assert.equal(b.root_provider_uuid, undefined); assert.deepEqual(b.links.map((l: any) => l.rel), ['self', 'inventories', 'usages']); } },
    { name: 'show at latest has all links', url: '/resource_providers/{cn1}', status: 200,
      check: (b) => assert.deepEqual(b.links.map((l: any) => l.rel), ['self', 'inventories', 'usages', 'aggregates', 'traits', 'allocations']) },
    { name: 'unknown provider is 404', url: `/resource_providers/${AGG2}`, status: 404 },
    { name: 'list by name', url: '/resource_providers?name=cn1', status: 200, check: (b) => assert.equal(b.resource_providers.length, 1) },
    { name: 'list by uuid', url: '/resource_providers?uuid={numa0}', status: 200, expect: { resource_providers: [{ name: 'numa0' }] } },
    { name: 'list in_tree', url: '/resource_providers?in_tree={pf0}', status: 200,
      check: (b) => assert.deepEqual(b.resource_providers.map((p: any) => p.name), ['cn1', 'numa0', 'pf0']) },
    { name: 'in_tree of an unknown provider is empty', url: `/resource_providers?in_tree=${AGG2}`, status: 200, expect: { resource_providers: [] } },
    { name: 'in_tree unknown before 1.14', url: '/resource_providers?in_tree={cn1}', version: '1.13', status: 400 },
    { name: 'unknown filter is 400', url: '/resource_providers?colour=red', status: 400 },
    { name: 'rename', method: 'PUT', url: '/resource_providers/{numa0}', body: { name: 'numa-0', parent_provider_uuid: '{cn1}' }, status: 200, expect: { name: 'numa-0' } },
    { name: 're-parenting refused before 1.37', method: 'PUT', url: '/resource_providers/{pf0}', version: '1.36', body: { name: 'pf0', parent_provider_uuid: '{cn1}' }, status: 400 },
    { name: 'un-parenting refused before 1.37', method: 'PUT', url: '/resource_providers/{pf0}', version: '1.36', body: { name: 'pf0', parent_provider_uuid: null }, status: 400 },
    { name: 'loops refused', method: 'PUT', url: '/resource_providers/{cn1}', body: { name: 'cn1', parent_provider_uuid: '{pf0}' }, status: 400 },
    { name: 're-parenting from 1.37', method: 'PUT', url: '/resource_providers/{pf0}', version: '1.37', body: { name: 'pf0', parent_provider_uuid: '{cn1}' }, status: 200,
      expect: { parent_provider_uuid: '{cn1}', root_provider_uuid: '{cn1}' } },
    { name: 'un-parenting moves the subtree to a new root', method: 'PUT', url: '/resource_providers/{numa0}', body: { name: 'numa-0', parent_provider_uuid: null }, status: 200,
      expect: { parent_provider_uuid: null, root_provider_uuid: '{numa0}' } },
    { name: 'rename to an existing name is 409', method: 'PUT', url: '/resource_providers/{numa0}', body: { name: 'cn1' }, status: 409, code: 'placement.duplicate_name' },
    { name: 'parent with children cannot be deleted', method: 'DELETE', url: '/resource_providers/{cn1}', status: 409, code: 'placement.resource_provider.cannot_delete_parent' },
    { name: 'delete child', method: 'DELETE', url: '/resource_providers/{pf0}', status: 204 },
    { name: 'delete parent', method: 'DELETE', url: '/resource_providers/{cn1}', status: 204 },
    { name: 'deleted is gone', url: '/resource_providers/{cn1}', status: 404 },
    { name: 'delete unknown is 404', method: 'DELETE', url: '/resource_providers/{cn1}', status: 404 },
  ]);
});

test('inventories: set, per class, generations, capacity rules, in use', async (t) => {
  const rp = await client.provider('inv-host');
  const vars = { rp };
  await runTable(t, client, [
    { name: 'empty inventory', url: '/resource_providers/{rp}/inventories', status: 200, expect: { resource_provider_generation: 0, inventories: {} } },
    { name: 'set all', method: 'PUT', url: '/resource_providers/{rp}/inventories', status: 200,
      body: { resource_provider_generation: 0, inventories: { VCPU: { total: 8, allocation_ratio: 16 }, MEMORY_MB: { total: 4096, reserved: 512 } } },
      expect: { resource_provider_generation: 1, inventories: { VCPU: { total: 8, reserved: 0, min_unit: 1, max_unit: 2147483647, step_size: 1, allocation_ratio: 16 }, MEMORY_MB: { total: 4096, reserved: 512 } } } },
    { name: 'stale generation is 409 concurrent_update', method: 'PUT', url: '/resource_providers/{rp}/inventories', status: 409, code: 'placement.concurrent_update',
      body: { resource_provider_generation: 0, inventories: {} } },
    { name: 'show one class', url: '/resource_providers/{rp}/inventories/VCPU', status: 200, expect: { total: 8, resource_provider_generation: 1 } },
    { name: 'missing class is 404', url: '/resource_providers/{rp}/inventories/DISK_GB', status: 404 },
    { name: 'post one class', method: 'POST', url: '/resource_providers/{rp}/inventories', status: 201, body: { resource_class: 'DISK_GB', total: 100 },
      expect: { total: 100, resource_provider_generation: 2 }, responseHeaders: { location: /^http:\/\/127\.0\.0\.1:\d+\/resource_providers\/[-0-9a-f]+\/inventories\/DISK_GB$/ } },
    { name: 'post an existing class is 409', method: 'POST', url: '/resource_providers/{rp}/inventories', status: 409, body: { resource_class: 'DISK_GB', total: 100 } },
    { name: 'update one class', method: 'PUT', url: '/resource_providers/{rp}/inventories/DISK_GB', status: 200,
      body: { resource_provider_generation: 2, total: 200, step_size: 10 }, expect: { total: 200, step_size: 10, resource_provider_generation: 3 } },
    { name: 'update a class the provider lacks is 400', method: 'PUT', url: '/resource_providers/{rp}/inventories/VGPU', status: 400,
      body: { resource_provider_generation: 3, total: 2 } },
    { name: 'update one class with a stale generation', method: 'PUT', url: '/resource_providers/{rp}/inventories/DISK_GB', status: 409, code: 'placement.concurrent_update',
      body: { resource_provider_generation: 2, total: 200 } },
    { name: 'reserved == total refused before 1.26', method: 'PUT', url: '/resource_providers/{rp}/inventories/DISK_GB', version: '1.25', status: 400,
      body: { resource_provider_generation: 3, total: 200, reserved: 200 } },
    { name: 'reserved == total allowed from 1.26', method: 'PUT', url: '/resource_providers/{rp}/inventories/DISK_GB', version: '1.26', status: 200,
      body: { resource_provider_generation: 3, total: 200, reserved: 200 } },
    { name: 'delete one class', method: 'DELETE', url: '/resource_providers/{rp}/inventories/DISK_GB', status: 204 },
    { name: 'delete it again is 404', method: 'DELETE', url: '/resource_providers/{rp}/inventories/DISK_GB', status: 404 },
    { name: 'generation moved with every change', url: '/resource_providers/{rp}', status: 200, expect: { generation: 5 } },
    { name: 'allocate some VCPU', method: 'PUT', url: '/allocations/99999999-0000-4000-8000-000000000001', status: 204,
      body: { allocations: { '{rp}': { resources: { VCPU: 4 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } },
    { name: 'removing an allocated class is 409 inventory.inuse', method: 'PUT', url: '/resource_providers/{rp}/inventories', status: 409, code: 'placement.inventory.inuse',
      body: { resource_provider_generation: 6, inventories: { MEMORY_MB: { total: 4096 } } },
      check: (b) => assert.match(b.errors[0].detail, /Inventory for 'VCPU' on resource provider '.*' in use\./) },
    { name: 'deleting an allocated class is 409 inventory.inuse', method: 'DELETE', url: '/resource_providers/{rp}/inventories/VCPU', status: 409, code: 'placement.inventory.inuse' },
    { name: 'DELETE all inventories is 405 before 1.5', method: 'DELETE', url: '/resource_providers/{rp}/inventories', version: '1.4', status: 405 },
    { name: 'DELETE all with allocations is 409', method: 'DELETE', url: '/resource_providers/{rp}/inventories', status: 409, code: 'placement.inventory.inuse' },
    { name: 'shrinking below usage is accepted (upstream behaviour)', method: 'PUT', url: '/resource_providers/{rp}/inventories', status: 200,
      body: { resource_provider_generation: 6, inventories: { VCPU: { total: 2 }, MEMORY_MB: { total: 4096 } } } },
    { name: 'usage shows the allocation', url: '/resource_providers/{rp}/usages', status: 200, expect: { resource_provider_generation: 7, usages: { VCPU: 4, MEMORY_MB: 0 } } },
    { name: 'free the allocation', method: 'DELETE', url: '/allocations/99999999-0000-4000-8000-000000000001', status: 204 },
    { name: 'DELETE all inventories', method: 'DELETE', url: '/resource_providers/{rp}/inventories', status: 204 },
    { name: 'inventory is empty', url: '/resource_providers/{rp}/inventories', status: 200, expect: { resource_provider_generation: 8, inventories: {} } },
  ], vars);
});

test('resource classes', async (t) => {
  await runTable(t, client, [
    { name: 'standard classes are listed', url: '/resource_classes', status: 200,
      check: (b) => { const names = b.resource_classes.map((r: any) => r.name); for (const n of ['VCPU', 'MEMORY_MB', 'DISK_GB', 'PCI_DEVICE', 'SRIOV_NET_VF', 'NUMA_CORE', 'IPV4_ADDRESS', 'VGPU', 'PCPU']) assert.ok(names.includes(n), n); } },
    { name: 'not before 1.2', url: '/resource_classes', version: '1.1', status: 404 },
    { name: 'create custom', method: 'POST', url: '/resource_classes', body: { name: 'CUSTOM_GPU' }, status: 201, responseHeaders: { location: /^http:\/\/127\.0\.0\.1:\d+\/resource_classes\/CUSTOM_GPU$/ } },
    { name: 'create it again is 409', method: 'POST', url: '/resource_classes', body: { name: 'CUSTOM_GPU' }, status: 409, code: 'placement.duplicate_name' },
    { name: 'non-custom name is 400', method: 'POST', url: '/resource_classes', body: { name: 'GPU' }, status: 400 },
    { name: 'lowercase is 400', method: 'POST', url: '/resource_classes', body: { name: 'CUSTOM_gpu' }, status: 400 },
    { name: 'show', url: '/resource_classes/CUSTOM_GPU', status: 200, expect: { name: 'CUSTOM_GPU', links: [{ rel: 'self', href: '/resource_classes/CUSTOM_GPU' }] } },
    { name: 'show unknown is 404', url: '/resource_classes/CUSTOM_NOPE', status: 404 },
    { name: 'PUT creates from 1.7', method: 'PUT', url: '/resource_classes/CUSTOM_FPGA_X', status: 201 },
    { name: 'PUT again is 204', method: 'PUT', url: '/resource_classes/CUSTOM_FPGA_X', status: 204 },
    { name: 'PUT of a standard name is 400', method: 'PUT', url: '/resource_classes/VCPU', status: 400 },
    { name: 'PUT renames before 1.7', method: 'PUT', url: '/resource_classes/CUSTOM_FPGA_X', version: '1.6', body: { name: 'CUSTOM_FPGA_Y' }, status: 200, expect: { name: 'CUSTOM_FPGA_Y' } },
    { name: 'cannot rename a standard class', method: 'PUT', url: '/resource_classes/VCPU', version: '1.6', body: { name: 'CUSTOM_CPU' }, status: 400 },
    { name: 'cannot delete a standard class', method: 'DELETE', url: '/resource_classes/VCPU', status: 400 },
    { name: 'delete custom', method: 'DELETE', url: '/resource_classes/CUSTOM_FPGA_Y', status: 204 },
    { name: 'delete unknown is 404', method: 'DELETE', url: '/resource_classes/CUSTOM_FPGA_Y', status: 404 },
  ]);
  const rp = await client.provider('rc-user', { inventory: { CUSTOM_GPU: 2 } });
  await runTable(t, client, [
    { name: 'a class in use by inventory cannot be deleted', method: 'DELETE', url: '/resource_classes/CUSTOM_GPU', status: 409 },
    { name: 'clean up', method: 'DELETE', url: `/resource_providers/${rp}`, status: 204 },
  ]);
});

test('traits', async (t) => {
  const rp = await client.provider('trait-host');
  await runTable(t, client, [
    { name: 'standard traits exist', url: '/traits?name=in:COMPUTE_NODE,HW_CPU_X86_AVX2,STORAGE_DISK_SSD,MISC_SHARES_VIA_AGGREGATE', status: 200,
      expect: { traits: ['COMPUTE_NODE', 'HW_CPU_X86_AVX2', 'MISC_SHARES_VIA_AGGREGATE', 'STORAGE_DISK_SSD'] } },
    { name: 'startswith filter', url: '/traits?name=startswith:STORAGE_DISK', status: 200, expect: { traits: ['STORAGE_DISK_HDD', 'STORAGE_DISK_SSD'] } },
    { name: 'bad name filter is 400', url: '/traits?name=COMPUTE_NODE', status: 400 },
    { name: 'not before 1.6', url: '/traits', version: '1.5', status: 404 },
    { name: 'create custom trait', method: 'PUT', url: '/traits/CUSTOM_FAST', status: 201, responseHeaders: { location: /^http:\/\/127\.0\.0\.1:\d+\/traits\/CUSTOM_FAST$/ } },
    { name: 'create again is 204', method: 'PUT', url: '/traits/CUSTOM_FAST', status: 204 },
    { name: 'non-custom trait is 400', method: 'PUT', url: '/traits/FAST', status: 400 },
    { name: 'show is 204', url: '/traits/CUSTOM_FAST', status: 204 },
    { name: 'show unknown is 404', url: '/traits/CUSTOM_SLOW', status: 404 },
    { name: 'provider traits empty', url: `/resource_providers/${rp}/traits`, status: 200, expect: { traits: [], resource_provider_generation: 0 } },
    { name: 'set provider traits', method: 'PUT', url: `/resource_providers/${rp}/traits`, status: 200,
      body: { traits: ['CUSTOM_FAST', 'HW_CPU_X86_AVX2'], resource_provider_generation: 0 }, expect: { traits: ['CUSTOM_FAST', 'HW_CPU_X86_AVX2'], resource_provider_generation: 1 } },
    { name: 'same set again does not bump', method: 'PUT', url: `/resource_providers/${rp}/traits`, status: 200,
      body: { traits: ['HW_CPU_X86_AVX2', 'CUSTOM_FAST'], resource_provider_generation: 1 }, expect: { resource_provider_generation: 1 } },
    { name: 'stale generation is 409', method: 'PUT', url: `/resource_providers/${rp}/traits`, status: 409, code: 'placement.concurrent_update',
      body: { traits: [], resource_provider_generation: 0 } },
    { name: 'unknown trait is 400', method: 'PUT', url: `/resource_providers/${rp}/traits`, status: 400, body: { traits: ['CUSTOM_NOPE'], resource_provider_generation: 1 } },
    { name: 'associated filter', url: '/traits?associated=true&name=startswith:CUSTOM_', status: 200, expect: { traits: ['CUSTOM_FAST'] } },
    { name: 'trait in use cannot be deleted', method: 'DELETE', url: '/traits/CUSTOM_FAST', status: 409 },
    { name: 'standard trait cannot be deleted', method: 'DELETE', url: '/traits/COMPUTE_NODE', status: 400 },
    { name: 'delete provider traits bumps generation', method: 'DELETE', url: `/resource_providers/${rp}/traits`, status: 204 },
    { name: 'generation is 2', url: `/resource_providers/${rp}`, status: 200, expect: { generation: 2 } },
    { name: 'delete custom trait', method: 'DELETE', url: '/traits/CUSTOM_FAST', status: 204 },
    { name: 'provider list by required trait', url: '/resource_providers?required=HW_CPU_X86_AVX2', status: 200, expect: { resource_providers: [] } },
    { name: 'required unknown trait is 400', url: '/resource_providers?required=CUSTOM_NOPE', status: 400 },
    { name: 'required not before 1.18', url: '/resource_providers?required=HW_CPU_X86_AVX2', version: '1.17', status: 400 },
  ]);
});

test('aggregates: list form before 1.19, generations from 1.19', async (t) => {
  const rp = await client.provider('agg-host');
  await runTable(t, client, [
    { name: 'not before 1.1', url: `/resource_providers/${rp}/aggregates`, version: '1.0', status: 404 },
    { name: 'empty at 1.1', url: `/resource_providers/${rp}/aggregates`, version: '1.1', status: 200, check: (b) => assert.deepEqual(b, { aggregates: [] }) },
    { name: 'PUT a list at 1.1, no generation bump', method: 'PUT', url: `/resource_providers/${rp}/aggregates`, version: '1.1', body: [AGG1], status: 200,
      check: (b) => assert.deepEqual(b, { aggregates: [AGG1] }) },
    { name: 'generation unchanged', url: `/resource_providers/${rp}`, status: 200, expect: { generation: 0 } },
    { name: 'GET at 1.19 has the generation', url: `/resource_providers/${rp}/aggregates`, status: 200, expect: { aggregates: [AGG1], resource_provider_generation: 0 } },
    { name: 'list form refused at 1.19', method: 'PUT', url: `/resource_providers/${rp}/aggregates`, body: [AGG2], status: 400 },
    { name: 'stale generation is 409', method: 'PUT', url: `/resource_providers/${rp}/aggregates`, body: { aggregates: [AGG2], resource_provider_generation: 5 }, status: 409, code: 'placement.concurrent_update' },
    { name: 'PUT with generation bumps it', method: 'PUT', url: `/resource_providers/${rp}/aggregates`, body: { aggregates: [AGG1, AGG2], resource_provider_generation: 0 }, status: 200,
      expect: { aggregates: [AGG1, AGG2], resource_provider_generation: 1 } },
    { name: 'non-uuid aggregate is 400', method: 'PUT', url: `/resource_providers/${rp}/aggregates`, body: { aggregates: ['not-a-uuid'], resource_provider_generation: 1 }, status: 400 },
    { name: 'member_of filter', url: `/resource_providers?member_of=${AGG2}`, status: 200, expect: { resource_providers: [{ uuid: rp }] } },
    { name: 'member_of in:', url: `/resource_providers?member_of=in:${AGG2},${RP1}`, status: 200, check: (b) => assert.equal(b.resource_providers.length, 1) },
    { name: 'forbidden member_of', url: `/resource_providers?member_of=!${AGG2}&name=agg-host`, status: 200, expect: { resource_providers: [] } },
    { name: 'forbidden member_of refused before 1.32', url: `/resource_providers?member_of=!${AGG2}`, version: '1.31', status: 400 },
    { name: 'repeated member_of refused before 1.24', url: `/resource_providers?member_of=${AGG1}&member_of=${AGG2}`, version: '1.23', status: 400 },
    { name: 'repeated member_of is AND from 1.24', url: `/resource_providers?member_of=${AGG1}&member_of=${AGG2}`, status: 200, expect: { resource_providers: [{ uuid: rp }] } },
    { name: 'member_of with a bad uuid is 400', url: '/resource_providers?member_of=nope', status: 400 },
    { name: 'clear', method: 'PUT', url: `/resource_providers/${rp}/aggregates`, body: { aggregates: [], resource_provider_generation: 1 }, status: 200, expect: { aggregates: [], resource_provider_generation: 2 } },
  ]);
});

test('resources filter on the provider list', async (t) => {
  const small = await client.provider('small', { inventory: { VCPU: 2, MEMORY_MB: { total: 2048, max_unit: 1024 } } });
  const big = await client.provider('big', { inventory: { VCPU: 64, MEMORY_MB: 65536 } });
  await runTable(t, client, [
    { name: 'fits both', url: '/resource_providers?resources=VCPU:1,MEMORY_MB:512', status: 200,
      check: (b) => assert.deepEqual(b.resource_providers.map((p: any) => p.uuid).filter((u: string) => u === small || u === big).sort(), [small, big].sort()) },
    { name: 'max_unit excludes the small one', url: '/resource_providers?resources=MEMORY_MB:2048', status: 200,
      check: (b) => assert.deepEqual(b.resource_providers.map((p: any) => p.uuid), [big]) },
    { name: 'unknown class is 400', url: '/resource_providers?resources=NOPE:1', status: 400 },
    { name: 'not before 1.4', url: '/resource_providers?resources=VCPU:1', version: '1.3', status: 400 },
  ]);
});
