// Bad input, class by class: every one is a 4xx in Placement's error body with the documented
// errors[].code — never a 500, a hang or a crash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from './helpers/service.ts';
import { placementService } from '../src/placement/index.ts';
import { PlacementClient, runTable, type Step } from '../src/placement/testing.ts';

let svc: TestService;
let client: PlacementClient;
const vars: Record<string, string> = {};
before(async () => {
  svc = await startTestService(placementService);
  client = new PlacementClient(svc.url);
  vars.rp = await client.provider('bad-input', { inventory: { VCPU: 4 } });
  vars.gen = '1';
});
after(async () => { await svc?.close(); });

const U = 'placement.undefined_code';
const inv = (inventories: unknown, generation: unknown = 1) => ({ resource_provider_generation: generation, inventories });
const alloc = (resources: unknown) => ({ allocations: { '{rp}': { resources } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' });
const C = '12345678-1234-4234-8234-123456789012';

const cases: Step[] = [
  // Unknown resource classes
  { name: 'unknown class in inventory', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ CUSTOM_UNKNOWN: { total: 1 } }), status: 400, code: U },
  { name: 'lowercase class in inventory', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ vcpu: { total: 1 } }), status: 400, code: U },
  { name: 'unknown class in allocation', method: 'PUT', url: `/allocations/${C}`, body: alloc({ CUSTOM_UNKNOWN: 1 }), status: 400, code: U },
  { name: 'unknown class in provider filter', url: '/resource_providers?resources=CUSTOM_UNKNOWN:1', status: 400, code: U },
  { name: 'unknown class in candidates', url: '/allocation_candidates?resources=CUSTOM_UNKNOWN:1', status: 400, code: U },
  { name: 'unknown class in inventory path', method: 'PUT', url: '/resource_providers/{rp}/inventories/CUSTOM_UNKNOWN', body: { resource_provider_generation: 1, total: 1 }, status: 404, code: U },
  // Malformed resources= strings
  ...['VCPU', 'VCPU:', 'VCPU:1:2', 'VCPU:one', 'VCPU:-1', 'VCPU:0', 'VCPU:1.5', ',', 'VCPU:1,,MEMORY_MB:1', ''].map((r): Step => (
    { name: `resources=${r}`, url: `/allocation_candidates?resources=${encodeURIComponent(r)}`, status: 400, code: U })),
  { name: 'resources with a huge amount', url: '/allocation_candidates?resources=VCPU:99999999999999999999', status: 400, code: U },
  // Non-UUID ids
  { name: 'provider uuid not a uuid', method: 'POST', url: '/resource_providers', body: { name: 'x', uuid: 'not-a-uuid' }, status: 400, code: U },
  { name: 'parent uuid not a uuid', method: 'POST', url: '/resource_providers', body: { name: 'x', parent_provider_uuid: 'nope' }, status: 400, code: U },
  { name: 'consumer uuid not a uuid', method: 'PUT', url: '/allocations/nope', body: alloc({ VCPU: 1 }), status: 400, code: U },
  { name: 'provider key not a uuid in allocations', method: 'PUT', url: `/allocations/${C}`, body: { allocations: { nope: { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' }, status: 400, code: U },
  { name: 'consumer key not a uuid in POST', method: 'POST', url: '/allocations', body: { nope: alloc({ VCPU: 1 }) }, status: 400, code: U },
  { name: 'aggregate not a uuid', method: 'PUT', url: '/resource_providers/{rp}/aggregates', body: { aggregates: ['nope'], resource_provider_generation: 1 }, status: 400, code: U },
  { name: 'uuid filter not a uuid', url: '/resource_providers?uuid=nope', status: 400, code: U },
  { name: 'in_tree not a uuid', url: '/resource_providers?in_tree=nope', status: 400, code: U },
  { name: 'member_of not a uuid', url: '/allocation_candidates?resources=VCPU:1&member_of=nope', status: 400, code: U },
  { name: 'provider path not a uuid is a 404', url: '/resource_providers/nope', status: 404, code: U },
  // An unknown provider is a 404 before anything wrong with the body (the writes read it only
  // inside their transaction; a body refused earlier checks it then).
  ...([
    ['traits not a list', 'traits', { traits: 'COMPUTE_NODE', resource_provider_generation: 0 }],
    ['unknown trait', 'traits', { traits: ['CUSTOM_NOBODY_MADE_THIS'], resource_provider_generation: 0 }],
    ['no generation', 'traits', { traits: [] }],
    ['inventories not an object', 'inventories', inv([], 0)],
    ['unknown class', 'inventories', inv({ CUSTOM_UNKNOWN: { total: 1 } }, 0)],
    ['zero total', 'inventories', inv({ VCPU: { total: 0 } }, 0)],
  ] as const).map(([what, sub, body]): Step => (
    { name: `${what} for an unknown provider (${sub})`, method: 'PUT', url: `/resource_providers/${C}/${sub}`, body, status: 404, code: U })),
  { name: 'unknown trait for a known provider', method: 'PUT', url: '/resource_providers/{rp}/traits', body: { traits: ['CUSTOM_NOBODY_MADE_THIS'], resource_provider_generation: 1 }, status: 400, code: U },
  { name: 'stale generation for the traits of a known provider', method: 'PUT', url: '/resource_providers/{rp}/traits', body: { traits: ['COMPUTE_NODE'], resource_provider_generation: 0 }, status: 409, code: 'placement.concurrent_update' },
  { name: 'stale generation for the inventory of a known provider', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4 } }, 0), status: 409, code: 'placement.concurrent_update' },
  // Negative or zero totals and other inventory limits
  { name: 'zero total', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 0 } }), status: 400, code: U },
  { name: 'negative total', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: -4 } }), status: 400, code: U },
  { name: 'total above MAX_INT', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 2147483648 } }), status: 400, code: U },
  { name: 'fractional total', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 1.5 } }), status: 400, code: U },
  { name: 'string total', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: '4' } }), status: 400, code: U },
  { name: 'negative reserved', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4, reserved: -1 } }), status: 400, code: U },
  { name: 'reserved above total', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4, reserved: 5 } }), status: 400, code: U },
  { name: 'zero step_size', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4, step_size: 0 } }), status: 400, code: U },
  { name: 'negative allocation_ratio', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4, allocation_ratio: -1 } }), status: 400, code: U },
  { name: 'unknown inventory field', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4, colour: 'red' } }), status: 400, code: U },
  { name: 'zero total on POST', method: 'POST', url: '/resource_providers/{rp}/inventories', body: { resource_class: 'DISK_GB', total: 0 }, status: 400, code: U },
  // min_unit > max_unit
  { name: 'min_unit above max_unit', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4, min_unit: 3, max_unit: 2 } }), status: 400, code: U,
    check: (b) => assert.match(b.errors[0].detail, /min_unit/) },
  { name: 'min_unit above max_unit on one class', method: 'PUT', url: '/resource_providers/{rp}/inventories/VCPU', body: { resource_provider_generation: 1, total: 4, min_unit: 8, max_unit: 4 }, status: 400, code: U },
  // Stale generations
  { name: 'stale generation on inventories', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4 } }, 0), status: 409, code: 'placement.concurrent_update' },
  { name: 'stale generation on one inventory', method: 'PUT', url: '/resource_providers/{rp}/inventories/VCPU', body: { resource_provider_generation: 7, total: 4 }, status: 409, code: 'placement.concurrent_update' },
  { name: 'stale generation on traits', method: 'PUT', url: '/resource_providers/{rp}/traits', body: { traits: [], resource_provider_generation: 0 }, status: 409, code: 'placement.concurrent_update' },
  { name: 'stale generation on aggregates', method: 'PUT', url: '/resource_providers/{rp}/aggregates', body: { aggregates: [], resource_provider_generation: 0 }, status: 409, code: 'placement.concurrent_update' },
  { name: 'stale consumer generation', method: 'PUT', url: `/allocations/${C}`, body: { ...alloc({ VCPU: 1 }), consumer_generation: 3 }, status: 409, code: 'placement.concurrent_update' },
  { name: 'generation of the wrong type', method: 'PUT', url: '/resource_providers/{rp}/inventories', body: inv({ VCPU: { total: 4 } }, '1'), status: 400, code: U },
  // Microversion-gated parameters below their version
  { name: 'required on candidates at 1.16', url: '/allocation_candidates?resources=VCPU:1&required=COMPUTE_NODE', version: '1.16', status: 400, code: undefined },
  { name: 'forbidden trait at 1.21', url: '/allocation_candidates?resources=VCPU:1&required=!COMPUTE_NODE', version: '1.21', status: 400 },
  { name: 'member_of on candidates at 1.20', url: `/allocation_candidates?resources=VCPU:1&member_of=${C}`, version: '1.20', status: 400 },
  { name: 'granular group at 1.24', url: '/allocation_candidates?resources1=VCPU:1', version: '1.24', status: 400 },
  { name: 'in_tree on candidates at 1.30', url: `/allocation_candidates?resources=VCPU:1&in_tree=${C}`, version: '1.30', status: 400, code: U },
  { name: 'forbidden aggregate at 1.31', url: `/allocation_candidates?resources=VCPU:1&member_of=!${C}`, version: '1.31', status: 400, code: U },
  { name: 'string suffix at 1.32', url: '/allocation_candidates?resources_X=VCPU:1', version: '1.32', status: 400, code: U },
  { name: 'root_required at 1.34', url: '/allocation_candidates?resources=VCPU:1&root_required=COMPUTE_NODE', version: '1.34', status: 400, code: U },
  { name: 'same_subtree at 1.35', url: '/allocation_candidates?resources_X=VCPU:1&same_subtree=_X', version: '1.35', status: 400, code: U },
  { name: 'any-of traits at 1.38', url: '/allocation_candidates?resources=VCPU:1&required=in:COMPUTE_NODE,CUSTOM_X', version: '1.38', status: 400, code: U },
  { name: 'consumer_type in usages at 1.37', url: '/usages?project_id=p&consumer_type=all', version: '1.37', status: 400, code: U },
  { name: 'parent_provider_uuid at 1.13', method: 'POST', url: '/resource_providers', version: '1.13', body: { name: 'x', parent_provider_uuid: C }, status: 400 },
  { name: 'consumer_type in PUT at 1.37', method: 'PUT', url: `/allocations/${C}`, version: '1.37', body: alloc({ VCPU: 1 }), status: 400, code: U },
  { name: 'mappings in PUT at 1.33', method: 'PUT', url: `/allocations/${C}`, version: '1.33', body: { allocations: { '{rp}': { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, mappings: { '': ['{rp}'] } }, status: 400, code: U },
  // Bodies
  { name: 'malformed JSON', method: 'POST', url: '/resource_providers', body: '{"name": ', status: 400, code: U },
  { name: 'JSON that is not an object', method: 'POST', url: '/resource_providers', body: '[1,2]', status: 400, code: U },
  { name: 'empty body', method: 'POST', url: '/resource_providers', body: '', status: 400, code: U },
  { name: 'wrong media type', method: 'POST', url: '/resource_providers', body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: U },
  { name: 'missing media type on PUT', method: 'PUT', url: '/traits/CUSTOM_OK_TRAIT', status: 201 },
  { name: 'name too long', method: 'POST', url: '/resource_providers', body: { name: 'x'.repeat(201) }, status: 400, code: U },
  { name: 'empty name', method: 'POST', url: '/resource_providers', body: { name: '' }, status: 400, code: U },
  { name: 'extra property', method: 'POST', url: '/resource_providers', body: { name: 'x', colour: 'red' }, status: 400, code: U },
  { name: 'oversized body', method: 'POST', url: '/resource_providers', body: { name: 'x', pad: 'y'.repeat(200_000) }, status: 413, code: U },
  { name: 'duplicate traits', method: 'PUT', url: '/resource_providers/{rp}/traits', body: { traits: ['COMPUTE_NODE', 'COMPUTE_NODE'], resource_provider_generation: 1 }, status: 400, code: U },
  { name: 'lowercase trait', method: 'PUT', url: '/resource_providers/{rp}/traits', body: { traits: ['compute_node'], resource_provider_generation: 1 }, status: 400, code: U },
  { name: 'trait name too long', method: 'PUT', url: `/traits/CUSTOM_${'X'.repeat(260)}`, status: 400, code: U },
  { name: 'unicode trait name', method: 'PUT', url: `/traits/CUSTOM_${encodeURIComponent('Ü')}`, status: 400, code: U },
  { name: 'allocation amount zero', method: 'PUT', url: `/allocations/${C}`, body: alloc({ VCPU: 0 }), status: 400, code: U },
  { name: 'allocation amount as string', method: 'PUT', url: `/allocations/${C}`, body: alloc({ VCPU: '1' }), status: 400, code: U },
  { name: 'project_id too long', method: 'PUT', url: `/allocations/${C}`, body: { ...alloc({ VCPU: 1 }), project_id: 'p'.repeat(256) }, status: 400, code: U },
  { name: 'bad consumer_type', method: 'PUT', url: `/allocations/${C}`, body: { ...alloc({ VCPU: 1 }), consumer_type: 'lower case' }, status: 400, code: U },
  { name: 'bad query on /usages', url: '/usages?project_id=', status: 400, code: U },
  { name: 'unknown query on /traits', url: '/traits?bogus=1', status: 400, code: U },
  { name: 'associated not a boolean', url: '/traits?associated=maybe', status: 400, code: U },
  // Nothing above may have changed the provider.
  { name: 'provider untouched', url: '/resource_providers/{rp}/inventories', status: 200, expect: { resource_provider_generation: 1, inventories: { VCPU: { total: 4 } } } },
];

test('bad input gets the documented 4xx and code', async (t) => {
  await runTable(t, client, cases, vars);
});

test('the service still answers after all that', async () => {
  const r = await client.get('/resource_providers');
  assert.equal(r.status, 200);
});
