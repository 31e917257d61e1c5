// pickHosts (incremental filtering, linear ranking, lazy order) against the implementation it
// replaced (every filter over every host and a full re-sort for every instance), on random
// hosts, specs, weigher multipliers, host_subset_size values, server groups and lost claims:
// the same hosts must be tried in the same order and the same ones picked, or the same
// NoValidHost raised.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FILTERS, WEIGHERS, type SpecView } from './filters.ts';
import type { HostState } from './host-state.ts';
import { pickHosts, type ActiveWeigher, type Candidate } from './ranking.ts';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const hash = (s: string) => { let h = 2166136261; for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619); return h >>> 0; };

interface Case {
  hosts: Candidate[]; uuids: string[]; filters: string[]; weighers: ActiveWeigher[]; subset: number;
  view: SpecView; resources: Record<string, number>; failRate: number; seed: number;
}

function makeCase(seed: number): Case {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const n = 1 + Math.floor(r() * 40);
  const vcpus = pick([1, 2]); const ram = pick([512, 1024, 2048]); const disk = pick([1, 10]);
  const resources = { VCPU: vcpus, MEMORY_MB: ram, DISK_GB: disk };
  const hosts: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    const capacity = { VCPU: pick([4, 8, 16]), MEMORY_MB: pick([4096, 8192, 16384]), DISK_GB: pick([40, 100]) };
    // Few distinct values, so that ties are common.
    const free = { VCPU: pick([vcpus, 4, 8]), MEMORY_MB: pick([ram, 4096, 8192]), DISK_GB: pick([disk, 40, 100]) };
    const uuid = `rp-${i}`;
    const state: HostState = {
      host: `h${i}`, nodename: `h${i}`, uuid, cellUuid: 'cell1', serviceUp: r() > 0.05, serviceDisabled: r() < 0.05, disabledReason: r() < 0.5 ? 'maintenance' : null,
      az: r() < 0.8 ? 'nova' : 'az2', hypervisorType: 'fake', hypervisorVersion: 1000, cpuInfo: {},
      supportedInstances: r() < 0.9 ? [['x86_64', 'kvm', 'hvm']] : [['aarch64', 'kvm', 'hvm']],
      aggregates: r() < 0.5 ? [{ name: 'fast', metadata: { ssd: 'true' } }] : [], free, capacity, numInstances: Math.floor(r() * 4),
    };
    hosts.push({ state, alloc: { [uuid]: { resources: { ...resources } } } });
  }
  const extra = pick<Record<string, string>>([{}, {}, { 'capabilities:free_ram_mb': '>= 4096' }, { 'capabilities:num_instances': '<= 4' }, { 'aggregate_instance_extra_specs:ssd': 'true' }]);
  const group = pick([undefined, undefined, { uuid: 'g', policy: 'anti-affinity', rules: { max_server_per_host: pick([1, 2]) }, hosts: [] as string[] }, { uuid: 'g', policy: 'affinity', hosts: [] as string[] }]);
  const view: SpecView = {
    flavor: { vcpus, memory_mb: ram, root_gb: disk, ephemeral_gb: 0, swap: 0, extra_specs: extra },
    imageProps: pick<Record<string, string>>([{}, {}, { hw_architecture: 'x86_64' }]), availabilityZone: pick([null, null, 'az2']), group,
  };
  const mults = [-2, -1, 0, 0.5, 1, 1, 3];
  const weighers = Object.values(WEIGHERS).map((w) => ({ ...w, mult: pick(mults) }));
  return {
    hosts, uuids: Array.from({ length: 1 + Math.floor(r() * 25) }, (_, i) => `i${i}`), filters: [...Object.keys(FILTERS), 'NoSuchFilter'],
    weighers, subset: pick([1, 1, 2, 3, 5]), view, resources, failRate: pick([0, 0.1, 0.5]), seed,
  };
}

/** The former implementation, verbatim but for the shuffle (Fisher-Yates, as pickHosts does). */
async function reference(c: Case, claim: (uuid: string, h: Candidate) => Promise<boolean>, random: () => number, chosen: Candidate[]): Promise<void> {
  const { weighers, subset, view, resources, notes } = { ...c, notes: [] as string[] };
  const enabled = c.filters.filter((f) => FILTERS[f]);
  const group = view.group;
  let hosts = c.hosts;
  for (const uuid of c.uuids) {
    let pass = hosts;
    const rejections: { filter: string; total: number; reasons: Map<string, number> }[] = [];
    for (const f of enabled) {
      const total = pass.length;
      const reasons = new Map<string, number>();
      pass = pass.filter((h) => {
        const r = FILTERS[f](h.state, view);
        if (r !== undefined) reasons.set(r, (reasons.get(r) ?? 0) + 1);
        return r === undefined;
      });
      if (reasons.size) rejections.push({ filter: f, total, reasons });
      if (!pass.length) break;
    }
    if (!pass.length) {
      const parts = rejections.map((r) => `${r.filter} rejected ${[...r.reasons.values()].reduce((a, b) => a + b, 0)} of ${r.total} hosts: ${[...r.reasons.entries()].map(([why, n]) => (r.reasons.size > 1 ? `${why} (${n})` : why)).join('; ')}`);
      throw new Error(`No valid host was found. ${[...notes, ...parts].join('. ')}.`);
    }
    const scores = new Map<HostState, number>();
    for (const w of weighers) {
      if (!w.mult) continue;
      const vals = pass.map((h) => w.weigh(h.state));
      const lo = Math.min(...vals); const hi = Math.max(...vals);
      pass.forEach((h, i) => scores.set(h.state, (scores.get(h.state) ?? 0) + w.mult * (hi === lo ? 0 : (vals[i] - lo) / (hi - lo))));
    }
    const ranked = [...pass].sort((a, b) => (scores.get(b.state) ?? 0) - (scores.get(a.state) ?? 0));
    const top = scores.get(ranked[0].state) ?? 0;
    const ties = ranked.filter((h) => (scores.get(h.state) ?? 0) === top);
    const pool = ties.length > 1 ? ties : ranked.slice(0, Math.max(1, subset));
    const order = (function* () {
      const p = pool.slice();
      for (let i = 0; i < p.length; i++) {
        if (p.length - i > 1) { const j = i + Math.floor(random() * (p.length - i)); [p[i], p[j]] = [p[j], p[i]]; }
        yield p[i];
      }
      yield* ranked.filter((h) => !pool.includes(h));
    })();
    let picked: Candidate | undefined;
    for (const h of order) {
      if (await claim(uuid, h)) { picked = h; break; }
      hosts = hosts.filter((x) => x !== h);
    }
    if (!picked) throw new Error(`No valid host was found. Every candidate host ran out of capacity while claiming (concurrent requests).`);
    chosen.push(picked);
    for (const [rc, n] of Object.entries(Object.values(picked.alloc)[0]?.resources ?? {})) picked.state.free[rc] = (picked.state.free[rc] ?? 0) - n;
    picked.state.numInstances++;
    const still = Object.entries(resources).every(([rc, n]) => (picked!.state.free[rc] ?? 0) >= n);
    if (!still) hosts = hosts.filter((x) => x !== picked);
    if (group) group.hosts.push(picked.state.host);
  }
}

async function run(seed: number, which: 'new' | 'old'): Promise<{ tried: string[]; picked: string[]; error?: string }> {
  const c = makeCase(seed); // fresh host states for each run
  const tried: string[] = [];
  const claim = async (uuid: string, h: Candidate) => {
    tried.push(`${uuid}@${h.state.host}`);
    return hash(`${seed}:${uuid}:${h.state.host}`) / 4294967296 >= c.failRate;
  };
  const random = rng(seed * 7 + 1);
  const chosen: Candidate[] = [];
  try {
    if (which === 'new') {
      await pickHosts(c.hosts, c.uuids, { filters: c.filters, weighers: c.weighers, subset: c.subset, view: c.view, resources: c.resources, notes: [], claim, random }, chosen);
    } else {
      await reference(c, claim, random, chosen);
    }
  } catch (e) {
    return { tried, picked: chosen.map((h) => h.state.host), error: (e as Error).message };
  }
  return { tried, picked: chosen.map((h) => h.state.host) };
}

test('pickHosts tries and picks the hosts a full re-filter and re-sort per instance would', async () => {
  let picks = 0; let errors = 0; let fallbacks = 0;
  for (let seed = 1; seed <= 1500; seed++) {
    const a = await run(seed, 'new');
    const b = await run(seed, 'old');
    assert.deepEqual(a, b, `seed ${seed}`);
    picks += a.picked.length;
    if (a.error) errors++;
    if (a.tried.length > a.picked.length) fallbacks++;
  }
  // The random cases exercise every path: picks, NoValidHost, claims lost and retried.
  assert.ok(picks > 5000 && errors > 100 && fallbacks > 100, `${picks} picks, ${errors} errors, ${fallbacks} with lost claims`);
});

test('spread and stack: the best-weighed host first, ties and host_subset_size at random', async () => {
  const host = (name: string, ram: number): Candidate => ({
    state: {
      host: name, nodename: name, uuid: name, cellUuid: 'c', serviceUp: true, serviceDisabled: false, disabledReason: null, az: 'nova',
      hypervisorType: 'fake', hypervisorVersion: 1, cpuInfo: {}, supportedInstances: [], aggregates: [], free: { MEMORY_MB: ram, VCPU: 8 }, capacity: { MEMORY_MB: 8192, VCPU: 8 }, numInstances: 0,
    },
    alloc: { [name]: { resources: { MEMORY_MB: 1024, VCPU: 1 } } },
  });
  const go = async (mult: number, subset: number, rams: number[], n: number, random = Math.random) => {
    const chosen: Candidate[] = [];
    await pickHosts(rams.map((r, i) => host(`h${i}`, r)), Array.from({ length: n }, (_, i) => `u${i}`), {
      filters: ['ComputeFilter'], weighers: [{ ...WEIGHERS.RAMWeigher, mult }], subset, resources: { MEMORY_MB: 1024, VCPU: 1 }, notes: [],
      view: { flavor: { vcpus: 1, memory_mb: 1024, root_gb: 0, ephemeral_gb: 0, swap: 0, extra_specs: {} }, imageProps: {}, availabilityZone: null },
      claim: async () => true, random,
    }, chosen);
    return chosen.map((c) => c.state.host);
  };
  // Spread: always the host with the most free RAM; it loses 1024 MB per pick.
  assert.deepEqual(await go(1, 1, [2048, 8192, 5632], 5), ['h1', 'h1', 'h1', 'h2', 'h1']);
  // Stack: the fullest host that still fits, until it no longer does.
  assert.deepEqual(await go(-1, 1, [2048, 8192, 4096], 4), ['h0', 'h0', 'h2', 'h2']);
  // host_subset_size 2 picks among the two best; equal hosts are all in the pool.
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add((await go(1, 2, [1024, 8192, 4096], 1))[0]);
  assert.deepEqual([...seen].sort(), ['h1', 'h2']);
  seen.clear();
  for (let i = 0; i < 200; i++) seen.add((await go(1, 1, [4096, 4096, 4096, 2048], 1))[0]);
  assert.deepEqual([...seen].sort(), ['h0', 'h1', 'h2']);
});
