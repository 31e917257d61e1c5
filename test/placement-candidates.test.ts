// GET /allocation_candidates: filters, granular groups, trees, sharing providers and the
// response shape of each microversion. Candidates are compared as sorted strings such as
// "cn1:MEMORY_MB=1024,VCPU=2 + pf0:SRIOV_NET_VF=1" for readability.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from './helpers/service.ts';
import { placementService } from '../src/placement/index.ts';
import { PlacementClient, assertSubset } from '../src/placement/testing.ts';

let svc: TestService;
let client: PlacementClient;
const names = new Map<string, string>();
const ids: Record<string, string> = {};

const AGG_A = 'aaaaaaaa-0000-4000-8000-00000000000a';
const AGG_B = 'bbbbbbbb-0000-4000-8000-00000000000b';
const AGG_S = 'cccccccc-0000-4000-8000-00000000000c';

async function rp(name: string, opts: Parameters<PlacementClient['provider']>[1] = {}) {
  const u = await client.provider(name, opts);
  names.set(u, name);
  ids[name] = u;
  return u;
}

/** "name:RC=n,RC=n + name:…" for each allocation request, sorted. */
function summarize(body: any): string[] {
  return body.allocation_requests.map((ar: any) => {
    const allocs = Array.isArray(ar.allocations)
      ? ar.allocations.map((a: any) => [a.resource_provider.uuid, a.resources])
      : Object.entries(ar.allocations).map(([u, a]: [string, any]) => [u, a.resources]);
    return allocs.map(([u, res]: [string, Record<string, number>]) => `${names.get(u) ?? u}:${Object.entries(res).sort().map(([k, v]) => `${k}=${v}`).join(',')}`)
      .sort().join(' + ');
  }).sort();
}

function mappingsOf(body: any): string[] {
  return body.allocation_requests.map((ar: any) => Object.entries(ar.mappings as Record<string, string[]>).sort()
    .map(([s, us]) => `${s || '-'}=${us.map((u) => names.get(u)).sort().join('.')}`).join(' ')).sort();
}

async function candidates(query: string, version = 'latest', status = 200) {
  const r = await client.get(`/allocation_candidates?${query}`, version);
  assert.equal(r.status, status, `${query} @${version}: ${r.text.slice(0, 400)}`);
  return r.body;
}

before(async () => {
  svc = await startTestService(placementService);
  client = new PlacementClient(svc.url);
});
after(async () => { await svc?.close(); });

test('flat providers: resources, traits, aggregates, limit, version shapes', async (t) => {
  await rp('cn1', { inventory: { VCPU: 8, MEMORY_MB: 4096, DISK_GB: 100 }, traits: ['COMPUTE_NODE', 'HW_CPU_X86_AVX2'], aggregates: [AGG_A] });
  await rp('cn2', { inventory: { VCPU: 4, MEMORY_MB: 2048 }, traits: ['COMPUTE_NODE', 'CUSTOM_FAST'], aggregates: [AGG_B] });
  await rp('cn3', { inventory: { VCPU: 1, MEMORY_MB: 512 }, traits: ['COMPUTE_NODE'] });
  const q = 'resources=VCPU:2,MEMORY_MB:1024';

  await t.test('capacity filters', async () => {
    assert.deepEqual(summarize(await candidates(q)), ['cn1:MEMORY_MB=1024,VCPU=2', 'cn2:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates('resources=VCPU:6')), ['cn1:VCPU=6']);
    assert.deepEqual(summarize(await candidates('resources=VCPU:9')), []);
  });
  await t.test('required and forbidden traits', async () => {
    assert.deepEqual(summarize(await candidates(`${q}&required=HW_CPU_X86_AVX2`)), ['cn1:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates(`${q}&required=!HW_CPU_X86_AVX2`)), ['cn2:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates(`${q}&required=COMPUTE_NODE,!CUSTOM_FAST`)), ['cn1:MEMORY_MB=1024,VCPU=2']);
    await candidates(`${q}&required=!HW_CPU_X86_AVX2`, '1.21', 400);
    await candidates(`${q}&required=COMPUTE_NODE`, '1.16', 400);
  });
  await t.test('any-of traits (in:) and repeated required from 1.39', async () => {
    assert.deepEqual(summarize(await candidates(`${q}&required=in:HW_CPU_X86_AVX2,CUSTOM_FAST`)), ['cn1:MEMORY_MB=1024,VCPU=2', 'cn2:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates(`${q}&required=in:HW_CPU_X86_AVX2,CUSTOM_FAST&required=!CUSTOM_FAST`)), ['cn1:MEMORY_MB=1024,VCPU=2']);
    await candidates(`${q}&required=in:HW_CPU_X86_AVX2,CUSTOM_FAST`, '1.38', 400);
    // Before 1.39 only the last required counts.
    assert.deepEqual(summarize(await candidates(`${q}&required=CUSTOM_FAST&required=HW_CPU_X86_AVX2`, '1.38')), ['cn1:MEMORY_MB=1024,VCPU=2']);
  });
  await t.test('member_of', async () => {
    assert.deepEqual(summarize(await candidates(`${q}&member_of=${AGG_A}`)), ['cn1:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates(`${q}&member_of=in:${AGG_A},${AGG_B}`)), ['cn1:MEMORY_MB=1024,VCPU=2', 'cn2:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates(`${q}&member_of=!${AGG_A}`)), ['cn2:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates(`${q}&member_of=${AGG_A}&member_of=${AGG_B}`)), []);
    assert.deepEqual(summarize(await candidates(`${q}&member_of=${AGG_S}`)), []);
    await candidates(`${q}&member_of=${AGG_A}`, '1.20', 400);
  });
  await t.test('in_tree and root_required', async () => {
    assert.deepEqual(summarize(await candidates(`${q}&in_tree=${ids.cn2}`)), ['cn2:MEMORY_MB=1024,VCPU=2']);
    await candidates(`${q}&in_tree=${ids.cn2}`, '1.30', 400);
    assert.deepEqual(summarize(await candidates(`${q}&root_required=HW_CPU_X86_AVX2`)), ['cn1:MEMORY_MB=1024,VCPU=2']);
    assert.deepEqual(summarize(await candidates(`${q}&root_required=COMPUTE_NODE,!HW_CPU_X86_AVX2`)), ['cn2:MEMORY_MB=1024,VCPU=2']);
    await candidates(`${q}&root_required=COMPUTE_NODE`, '1.34', 400);
  });
  await t.test('limit trims requests and summaries', async () => {
    const b = await candidates(`${q}&limit=1`);
    assert.equal(b.allocation_requests.length, 1);
    assert.equal(Object.keys(b.provider_summaries).length, 1);
    assert.deepEqual(Object.keys(b.provider_summaries), Object.keys(b.allocation_requests[0].allocations));
    await candidates(`${q}&limit=0`, 'latest', 400);
    await candidates(`${q}&limit=1`, '1.15', 400);
  });
  await t.test('1.10 shape: list of allocations, requested classes only, no traits', async () => {
    const b = await candidates('resources=VCPU:1,MEMORY_MB:512&required=!CUSTOM_FAST'.replace('&required=!CUSTOM_FAST', ''), '1.10');
    const cn1 = ids.cn1;
    const req = b.allocation_requests.find((r: any) => r.allocations[0].resource_provider.uuid === cn1);
    assert.deepEqual(req, { allocations: [{ resource_provider: { uuid: cn1 }, resources: { VCPU: 1, MEMORY_MB: 512 } }] });
    assert.deepEqual(b.provider_summaries[cn1], { resources: { VCPU: { capacity: 8, used: 0 }, MEMORY_MB: { capacity: 4096, used: 0 } } });
  });
  await t.test('1.12 dict, 1.17 traits, 1.27 all classes, 1.29 tree uuids, 1.34 mappings', async () => {
    const cn1 = ids.cn1;
    let b = await candidates(q, '1.12');
    assert.deepEqual(b.allocation_requests.find((r: any) => r.allocations[cn1]), { allocations: { [cn1]: { resources: { VCPU: 2, MEMORY_MB: 1024 } } } });
    assert.equal(b.provider_summaries[cn1].traits, undefined);
    b = await candidates(q, '1.17');
    assert.deepEqual(b.provider_summaries[cn1].traits, ['COMPUTE_NODE', 'HW_CPU_X86_AVX2']);
    assert.deepEqual(Object.keys(b.provider_summaries[cn1].resources).sort(), ['MEMORY_MB', 'VCPU']);
    b = await candidates(q, '1.27');
    assert.deepEqual(Object.keys(b.provider_summaries[cn1].resources).sort(), ['DISK_GB', 'MEMORY_MB', 'VCPU']);
    assert.equal(b.provider_summaries[cn1].root_provider_uuid, undefined);
    b = await candidates(q, '1.29');
    assertSubset(b.provider_summaries[cn1], { parent_provider_uuid: null, root_provider_uuid: cn1 });
    assert.equal(b.allocation_requests[0].mappings, undefined);
    b = await candidates(q, '1.34');
    assert.deepEqual(b.allocation_requests.find((r: any) => r.allocations[cn1]).mappings, { '': [cn1] });
  });
  await t.test('usage shows in summaries and shrinks capacity', async () => {
    const consumer = '77777777-0000-4000-8000-000000000001';
    const r = await client.put(`/allocations/${consumer}`, { allocations: { [ids.cn2]: { resources: { VCPU: 3, MEMORY_MB: 1024 } } }, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' });
    assert.equal(r.status, 204, r.text);
    const b = await candidates(q);
    assert.deepEqual(summarize(b), ['cn1:MEMORY_MB=1024,VCPU=2']);
    const one = await candidates('resources=VCPU:1');
    assertSubset(one.provider_summaries[ids.cn2].resources, { VCPU: { capacity: 4, used: 3 } });
    assert.equal((await client.delete(`/allocations/${consumer}`)).status, 204);
  });
  for (const id of ['cn1', 'cn2', 'cn3']) await client.delete(`/resource_providers/${ids[id]}`);
});

test('nested trees: spread unsuffixed group, granular groups, isolate, same_subtree', async (t) => {
  const cn = await rp('host', { inventory: { MEMORY_MB: 8192 }, traits: ['COMPUTE_NODE'] });
  const numa0 = await rp('numa0', { parent: cn, inventory: { VCPU: 4 }, traits: ['HW_NUMA_ROOT'] });
  const numa1 = await rp('numa1', { parent: cn, inventory: { VCPU: 4 }, traits: ['HW_NUMA_ROOT'] });
  await rp('pf0', { parent: numa0, inventory: { SRIOV_NET_VF: 2 }, traits: ['CUSTOM_PHYSNET_A'] });
  await rp('pf1', { parent: numa1, inventory: { SRIOV_NET_VF: 2 }, traits: ['CUSTOM_PHYSNET_B'] });
  void numa1;

  await t.test('unsuffixed group spreads over the tree from 1.29', async () => {
    assert.deepEqual(summarize(await candidates('resources=VCPU:1,SRIOV_NET_VF:1')), [
      'numa0:VCPU=1 + pf0:SRIOV_NET_VF=1', 'numa0:VCPU=1 + pf1:SRIOV_NET_VF=1', 'numa1:VCPU=1 + pf0:SRIOV_NET_VF=1', 'numa1:VCPU=1 + pf1:SRIOV_NET_VF=1',
    ]);
    // Before 1.29 a candidate may not use two providers of one tree.
    assert.deepEqual(summarize(await candidates('resources=VCPU:1,SRIOV_NET_VF:1', '1.28')), []);
    assert.deepEqual(summarize(await candidates('resources=VCPU:1', '1.28')), ['numa0:VCPU=1', 'numa1:VCPU=1']);
  });
  await t.test('traits of the unsuffixed group are checked across the providers used', async () => {
    assert.deepEqual(summarize(await candidates('resources=VCPU:1,SRIOV_NET_VF:1&required=CUSTOM_PHYSNET_B')), [
      'numa0:VCPU=1 + pf1:SRIOV_NET_VF=1', 'numa1:VCPU=1 + pf1:SRIOV_NET_VF=1',
    ]);
    assert.deepEqual(summarize(await candidates('resources=VCPU:1,SRIOV_NET_VF:1&required=!CUSTOM_PHYSNET_A')), [
      'numa0:VCPU=1 + pf1:SRIOV_NET_VF=1', 'numa1:VCPU=1 + pf1:SRIOV_NET_VF=1',
    ]);
  });
  await t.test('summaries cover the whole tree with parents', async () => {
    const b = await candidates('resources=VCPU:1,SRIOV_NET_VF:1');
    assert.equal(Object.keys(b.provider_summaries).length, 5);
    assertSubset(b.provider_summaries[ids.pf0], { parent_provider_uuid: numa0, root_provider_uuid: cn, traits: ['CUSTOM_PHYSNET_A'] });
  });
  await t.test('granular group pins a resource to one provider with its traits', async () => {
    const b = await candidates('resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1=CUSTOM_PHYSNET_A');
    assert.deepEqual(summarize(b), ['numa0:VCPU=1 + pf0:SRIOV_NET_VF=1', 'numa1:VCPU=1 + pf0:SRIOV_NET_VF=1']);
    assert.deepEqual(mappingsOf(b), ['-=numa0 1=pf0', '-=numa1 1=pf0']);
  });
  await t.test('granular groups before 1.25 are unknown parameters', async () => {
    await candidates('resources=VCPU:1&resources1=SRIOV_NET_VF:1', '1.24', 400);
  });
  await t.test('two granular groups need group_policy', async () => {
    const r = await client.get('/allocation_candidates?resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1');
    assert.equal(r.status, 400);
    assert.match(r.body.errors[0].detail, /group_policy/);
  });
  await t.test('group_policy=isolate puts granular groups on different providers', async () => {
    const iso = await candidates('resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=isolate');
    assert.deepEqual(mappingsOf(iso), ['1=pf0 2=pf1', '1=pf1 2=pf0']);
    const none = await candidates('resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=none');
    // Same resources through different groups are different candidates (mappings differ).
    assert.deepEqual(summarize(none), ['pf0:SRIOV_NET_VF=1 + pf1:SRIOV_NET_VF=1', 'pf0:SRIOV_NET_VF=1 + pf1:SRIOV_NET_VF=1', 'pf0:SRIOV_NET_VF=2', 'pf1:SRIOV_NET_VF=2']);
    assert.deepEqual(mappingsOf(none), ['1=pf0 2=pf0', '1=pf0 2=pf1', '1=pf1 2=pf0', '1=pf1 2=pf1']);
  });
  await t.test('folded amounts are re-checked against capacity', async () => {
    assert.deepEqual(summarize(await candidates('resources1=SRIOV_NET_VF:2&resources2=SRIOV_NET_VF:1&group_policy=none')),
      ['pf0:SRIOV_NET_VF=1 + pf1:SRIOV_NET_VF=2', 'pf0:SRIOV_NET_VF=2 + pf1:SRIOV_NET_VF=1']);
  });
  await t.test('string suffixes from 1.33', async () => {
    const b = await candidates('resources_CPU=VCPU:1&resources_NET=SRIOV_NET_VF:1&required_NET=CUSTOM_PHYSNET_B&group_policy=none');
    assert.deepEqual(mappingsOf(b), ['_CPU=numa0 _NET=pf1', '_CPU=numa1 _NET=pf1']);
    await candidates('resources_CPU=VCPU:1', '1.32', 400);
  });
  await t.test('same_subtree keeps groups under one of their providers', async () => {
    const b = await candidates('resources_CPU=VCPU:1&resources_NET=SRIOV_NET_VF:1&same_subtree=_CPU,_NET&group_policy=none');
    assert.deepEqual(mappingsOf(b), ['_CPU=numa0 _NET=pf0', '_CPU=numa1 _NET=pf1']);
    await candidates('resources_CPU=VCPU:1&resources_NET=SRIOV_NET_VF:1&same_subtree=_CPU,_NET&group_policy=none', '1.35', 400);
  });
  await t.test('resourceless groups in same_subtree (1.36)', async () => {
    const b = await candidates('required_NUMA=HW_NUMA_ROOT&resources_NET=SRIOV_NET_VF:1&required_NET=CUSTOM_PHYSNET_A&same_subtree=_NUMA,_NET&group_policy=none');
    assert.deepEqual(mappingsOf(b), ['_NET=pf0 _NUMA=numa0']);
    assert.deepEqual(summarize(b), ['pf0:SRIOV_NET_VF=1']);
    const bad = await client.get('/allocation_candidates?required_NUMA=HW_NUMA_ROOT&resources_NET=SRIOV_NET_VF:1&group_policy=none');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].code, 'placement.query.bad_value');
    const none = await client.get('/allocation_candidates?required_NUMA=HW_NUMA_ROOT&same_subtree=_NUMA');
    assert.equal(none.status, 400);
    assert.equal(none.body.errors[0].code, 'placement.query.missing_value');
  });
  await t.test('root_required applies to the tree root, in_tree to the tree', async () => {
    assert.equal(summarize(await candidates('resources=VCPU:1&root_required=COMPUTE_NODE')).length, 2);
    assert.deepEqual(summarize(await candidates('resources=VCPU:1&root_required=!COMPUTE_NODE')), []);
    assert.equal(summarize(await candidates(`resources=VCPU:1&in_tree=${ids.pf1}`)).length, 2);
    assert.deepEqual(summarize(await candidates(`resources1=VCPU:1&in_tree1=${ids.numa0}&resources2=SRIOV_NET_VF:1&in_tree2=${ids.pf0}&group_policy=none`)).length, 4);
  });
});

test('sharing providers serve every tree in their aggregate', async (t) => {
  const s1 = await rp('shr-cn1', { inventory: { VCPU: 4 }, aggregates: [AGG_S] });
  await rp('shr-cn2', { inventory: { VCPU: 4 }, aggregates: [AGG_S] });
  await rp('shr-lonely', { inventory: { VCPU: 4 } });
  await rp('nfs', { inventory: { DISK_GB: 1000 }, traits: ['MISC_SHARES_VIA_AGGREGATE'], aggregates: [AGG_S] });
  await t.test('compute plus shared disk', async () => {
    const b = await candidates('resources=VCPU:1,DISK_GB:10');
    assert.deepEqual(summarize(b), ['nfs:DISK_GB=10 + shr-cn1:VCPU=1', 'nfs:DISK_GB=10 + shr-cn2:VCPU=1']);
    assert.ok(b.provider_summaries[ids.nfs]);
    assert.ok(b.provider_summaries[s1]);
  });
  await t.test('shared disk alone is one candidate', async () => {
    assert.deepEqual(summarize(await candidates('resources=DISK_GB:10')), ['nfs:DISK_GB=10']);
  });
  await t.test('granular group on the sharing provider', async () => {
    assert.deepEqual(summarize(await candidates('resources=VCPU:1&resources1=DISK_GB:10')), ['nfs:DISK_GB=10 + shr-cn1:VCPU=1', 'nfs:DISK_GB=10 + shr-cn2:VCPU=1']);
  });
});

test('bad candidate queries', async () => {
  const cases: [string, string | undefined, RegExp][] = [
    ['resources=VCPU:1&bogus=1', undefined, /Additional properties/],
    ['resources=NOPE:1', undefined, /No such resource class NOPE/],
    ['resources=VCPU', undefined, /Badly formed resources parameter/],
    ['resources=VCPU:x', undefined, /expected positive integer/],
    ['resources=VCPU:0', undefined, /requires amount >= 1/],
    ['resources=', undefined, /empty string/],
    ['resources=VCPU:1&required=CUSTOM_NOPE', undefined, /No such trait/],
    ['resources=VCPU:1&required=CUSTOM_X,!CUSTOM_X', undefined, /Conflicting required and forbidden/],
    ['resources=VCPU:1&required=in:CUSTOM_X,!CUSTOM_Y', undefined, /does not support forbidden/],
    ['resources=VCPU:1&required=', undefined, /empty trait/],
    ['resources=VCPU:1&member_of=not-a-uuid', undefined, /valid UUID/],
    ['resources=VCPU:1&member_of=aaaaaaaa-0000-4000-8000-00000000000a,bbbbbbbb-0000-4000-8000-00000000000b', undefined, /must be prefixed/],
    ['resources=VCPU:1&in_tree=nope', undefined, /in_tree/],
    ['resources=VCPU:1&group_policy=sometimes', undefined, /not one of/],
    ['resources=VCPU:1&limit=-1', undefined, /does not match/],
    ['required1=COMPUTE_NODE&resources=VCPU:1', 'placement.query.bad_value', /Resourceless suffixed group/],
    ['resources=VCPU:1&root_required=COMPUTE_NODE&root_required=COMPUTE_NODE', 'placement.query.duplicate_key', /only once/],
    ['resources=VCPU:1&root_required=COMPUTE_NODE,!COMPUTE_NODE', 'placement.query.bad_value', /Conflicting/],
    ['resources_A=VCPU:1&same_subtree=_A,', 'placement.query.bad_value', /Empty string/],
    ['resources_A=VCPU:1&same_subtree=_A,_B', 'placement.query.bad_value', /Real suffixes/],
  ];
  for (const [q, code, msg] of cases) {
    const r = await client.get(`/allocation_candidates?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.match(r.body.errors[0].detail, msg, q);
    assert.equal(r.body.errors[0].code, code ?? 'placement.undefined_code', q);
  }
  const old = await client.get('/allocation_candidates?required1=COMPUTE_NODE&resources=VCPU:1', '1.35');
  assert.equal(old.status, 400);
  assert.match(old.body.errors[0].detail, /orphaned traits keys: required1/);
  const noResources = await client.get('/allocation_candidates?limit=1', '1.24');
  assert.equal(noResources.status, 400);
});

// The summaries' traits come from a per-(provider, generation) cache (model/provider-trait-cache.ts).
// A second placement process on the same database changes them behind the first one's back.
test('summary traits follow every change of the set, made by this process or another on the same database', async () => {
  const peerSvc = await startTestService(placementService, { shareDatabasesOf: svc });
  try {
    const peer = new PlacementClient(peerSvc.url);
    assert.equal((await client.put('/resource_classes/CUSTOM_TRAIT_CACHE')).status, 201);
    const traitsOf = async (uuid: string) => {
      const b = await candidates('resources=CUSTOM_TRAIT_CACHE:1&required=!COMPUTE_STATUS_DISABLED&limit=1000', '1.36');
      return b.provider_summaries[uuid]?.traits;
    };
    const setTraits = async (via: PlacementClient, uuid: string, traits: string[]) => {
      const gen = (await via.get(`/resource_providers/${uuid}`)).body.generation;
      const r = await via.put(`/resource_providers/${uuid}/traits`, { traits, resource_provider_generation: gen });
      assert.equal(r.status, 200, r.text);
    };
    const cn = await rp('tc-cn', { inventory: { CUSTOM_TRAIT_CACHE: 4 }, traits: ['COMPUTE_NODE', 'COMPUTE_IMAGE_TYPE_RAW'] });
    assert.deepEqual(await traitsOf(cn), ['COMPUTE_IMAGE_TYPE_RAW', 'COMPUTE_NODE']);
    // The summaries are rendered as text (pre-rendered trait lists): the same bytes as
    // JSON.stringify of the parsed answer, in every version's shape.
    for (const version of ['1.10', '1.12', '1.17', '1.27', '1.29', '1.34', '1.36', 'latest']) {
      const r = await client.get('/allocation_candidates?resources=CUSTOM_TRAIT_CACHE:1', version);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, JSON.stringify(r.body), `canonical JSON at ${version}`);
      assert.equal(r.body.provider_summaries[cn] !== undefined, true);
    }
    assert.deepEqual(await traitsOf(cn), ['COMPUTE_IMAGE_TYPE_RAW', 'COMPUTE_NODE'], 'the same answer from the cache');

    await setTraits(peer, cn, ['COMPUTE_NODE', 'COMPUTE_IMAGE_TYPE_QCOW2', 'HW_CPU_X86_AVX2']);
    assert.deepEqual(await traitsOf(cn), ['COMPUTE_IMAGE_TYPE_QCOW2', 'COMPUTE_NODE', 'HW_CPU_X86_AVX2'], 'changed by the other process');
    assert.equal((await client.delete(`/resource_providers/${cn}/traits`)).status, 204);
    assert.deepEqual(await traitsOf(cn), [], 'all removed by this process');

    // An allocation bumps the generation without changing the traits.
    await setTraits(client, cn, ['COMPUTE_NODE']);
    assert.deepEqual(await traitsOf(cn), ['COMPUTE_NODE']);
    const consumer = 'dddddddd-0000-4000-8000-00000000000d';
    const a = await peer.put(`/allocations/${consumer}`, { allocations: { [cn]: { resources: { CUSTOM_TRAIT_CACHE: 1 } } }, project_id: 'p', user_id: 'u', consumer_generation: null }, '1.36');
    assert.equal(a.status, 204, a.text);
    assert.deepEqual(await traitsOf(cn), ['COMPUTE_NODE']);
    assert.equal((await peer.delete(`/allocations/${consumer}`)).status, 204);

    // Deleted and created again under the same uuid, back at the same generation with other
    // traits: the cache must not take it for the provider it knew.
    const again = await rp('tc-again', { inventory: { CUSTOM_TRAIT_CACHE: 4 }, traits: ['COMPUTE_NODE', 'COMPUTE_DEVICE_TAGGING'] });
    const gen = (await client.get(`/resource_providers/${again}`)).body.generation;
    assert.deepEqual(await traitsOf(again), ['COMPUTE_DEVICE_TAGGING', 'COMPUTE_NODE']);
    assert.equal((await peer.delete(`/resource_providers/${again}`)).status, 204);
    assert.equal(await traitsOf(again), undefined);
    await peer.provider('tc-again', { uuid: again, inventory: { CUSTOM_TRAIT_CACHE: 4 }, traits: ['COMPUTE_NODE', 'COMPUTE_RESCUE_BFV'] });
    assert.equal((await client.get(`/resource_providers/${again}`)).body.generation, gen, 'the same generation as before the delete');
    assert.deepEqual(await traitsOf(again), ['COMPUTE_NODE', 'COMPUTE_RESCUE_BFV']);
  } finally {
    await peerSvc.close();
  }
});
