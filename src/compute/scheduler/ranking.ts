// The per-instance loop of select_destinations, once placement has answered: filters, weighers,
// then a claim per instance, in order, each instance seeing the hosts as the previous ones left
// them. Between two instances of a request only the host just claimed changes (its free capacity
// and instance count) and, with a server group, the group's hosts; so rather than re-filtering
// and re-sorting every candidate for every instance:
//   - each host keeps the index of the first filter that rejects it, re-evaluated only for the
//     host that changed (for every host when the request has a server group: the affinity
//     filters read the group's hosts, which move with every pick). Filters are pure functions of
//     (host state, spec view), so this is exactly what running them in order over all hosts gives;
//   - the weighed scores are recomputed in one pass (the normalisation to 0..1 depends on the
//     lowest and highest value among the hosts that pass, which the claimed host may change, so
//     the ranking itself can change: it is not kept, but it is only needed in full when a claim
//     fails). The best host, the ties and the host_subset_size pool are found in linear time;
//     the rest of the order is sorted only if every host of the pool lost its claim.
// The choices are those of a full re-sort (stable, by score, descending; ties, or else the
// host_subset_size best, tried first in random order): ranking.test.ts checks this against the
// former implementation on random inputs.
import type { HostState } from './host-state.ts';
import { FILTERS, type SpecView, type Weigher } from './filters.ts';
import { NoValidHost } from '../errors.ts';

export interface Candidate {
  state: HostState;
  /** The allocation request placement proposed for this host (what a claim writes). */
  alloc: Record<string, { resources: Record<string, number> }>;
}

export interface ActiveWeigher { mult: number; weigh: Weigher }

export interface PickOptions<C extends Candidate> {
  /** Names of the enabled filters, in order (unknown names are ignored). */
  filters: string[];
  weighers: ActiveWeigher[];
  /** [filter_scheduler] host_subset_size */
  subset: number;
  /** The request as the filters see it; `group.hosts` grows with every pick. */
  view: SpecView;
  /** What one instance needs: a claimed host without that much left is dropped. */
  resources: Record<string, number>;
  /** Earlier eliminations (tried hosts, forced hosts) for the NoValidHost message. */
  notes: string[];
  /** The claim in placement; false when the host lost its capacity to another request. */
  claim: (uuid: string, c: C) => Promise<boolean>;
  random?: () => number;
}

/**
 * Picks and claims a host for each instance in turn; every successful claim is appended to
 * `chosen` (the caller releases them if this throws). Throws NoValidHost.
 */
export async function pickHosts<C extends Candidate>(candidates: C[], uuids: string[], o: PickOptions<C>, chosen: C[]): Promise<void> {
  const set = new CandidateHosts(candidates, o);
  const random = o.random ?? Math.random;
  for (const uuid of uuids) {
    const order = set.order(random);
    if (!order) {
      const parts = set.rejections().map((r) => `${r.filter} rejected ${[...r.reasons.values()].reduce((a, b) => a + b, 0)} of ${r.total} hosts: ${[...r.reasons.entries()].map(([why, n]) => (r.reasons.size > 1 ? `${why} (${n})` : why)).join('; ')}`);
      throw new NoValidHost(`No valid host was found. ${[...o.notes, ...parts].join('. ')}.`);
    }
    let picked: C | undefined;
    for (const h of order) {
      if (await o.claim(uuid, h)) { picked = h; break; }
      set.remove(h); // lost a race for its capacity
    }
    if (!picked) throw new NoValidHost(`No valid host was found. Every candidate host ran out of capacity while claiming (concurrent requests).`);
    chosen.push(picked);
    // Consume locally so the next instance of this request weighs the hosts as they now are.
    const st = picked.state;
    for (const [rc, n] of Object.entries(Object.values(picked.alloc)[0]?.resources ?? {})) st.free[rc] = (st.free[rc] ?? 0) - n;
    st.numInstances++;
    set.changed(picked);
    if (!Object.entries(o.resources).every(([rc, n]) => (st.free[rc] ?? 0) >= n)) set.remove(picked);
    if (o.view.group) o.view.group.hosts.push(st.host);
  }
}

interface Slot<C> { c: C; alive: boolean; /** index of the first filter that rejects it, -1 if none */ fail: number; dirty: boolean }

/** The candidate hosts of one request: filter results kept per host, ranking per instance. */
export class CandidateHosts<C extends Candidate> {
  private readonly slots: Slot<C>[];
  private readonly bySlot = new Map<C, Slot<C>>();
  private readonly filters: { name: string; fn: (typeof FILTERS)[string] }[];
  private dirty: Slot<C>[];

  constructor(candidates: C[], private readonly o: Pick<PickOptions<C>, 'filters' | 'weighers' | 'subset' | 'view'>) {
    this.filters = o.filters.filter((f) => FILTERS[f]).map((name) => ({ name, fn: FILTERS[name] }));
    this.slots = candidates.map((c) => ({ c, alive: true, fail: -1, dirty: true }));
    for (const s of this.slots) this.bySlot.set(s.c, s);
    this.dirty = [...this.slots];
  }

  /** The host's state changed: run the filters on it again before the next ranking. */
  changed(c: C): void {
    const s = this.bySlot.get(c);
    if (s && !s.dirty) { s.dirty = true; this.dirty.push(s); }
  }

  remove(c: C): void {
    const s = this.bySlot.get(c);
    if (s) s.alive = false;
  }

  private evaluate(s: Slot<C>): void {
    s.dirty = false;
    s.fail = -1;
    for (let i = 0; i < this.filters.length; i++) {
      if (this.filters[i].fn(s.c.state, this.o.view) !== undefined) { s.fail = i; return; }
    }
  }

  /**
   * The order in which to try the hosts for the next instance, or undefined when no host passes
   * the filters. Lazy: a snapshot taken now, unaffected by remove() while it is iterated.
   */
  order(random: () => number): Iterable<C> | undefined {
    if (this.o.view.group) {
      for (const s of this.slots) if (s.alive) this.evaluate(s);
    } else {
      for (const s of this.dirty) if (s.alive) this.evaluate(s);
    }
    for (const s of this.dirty) s.dirty = false;
    this.dirty = [];
    const pass: C[] = [];
    for (const s of this.slots) if (s.alive && s.fail < 0) pass.push(s.c);
    const n = pass.length;
    if (!n) return undefined;

    // Weighers: normalised to 0..1 across the hosts that pass, times their multiplier (the
    // same floating-point operations, in the same order, as a per-host sum).
    const score = new Float64Array(n);
    const vals = new Float64Array(n);
    for (const w of this.o.weighers) {
      if (!w.mult) continue;
      let lo = Infinity; let hi = -Infinity;
      for (let i = 0; i < n; i++) { const v = w.weigh(pass[i].state); vals[i] = v; lo = Math.min(lo, v); hi = Math.max(hi, v); }
      for (let i = 0; i < n; i++) score[i] = score[i] + w.mult * (hi === lo ? 0 : (vals[i] - lo) / (hi - lo));
    }
    // A stable sort by descending score is this comparison on (score, position).
    const cmp = (a: number, b: number) => (score[b] - score[a]) || (a - b);
    let best = 0;
    for (let i = 1; i < n; i++) if (cmp(i, best) < 0) best = i;
    const top = score[best];
    const ties: number[] = [];
    for (let i = 0; i < n; i++) if (score[i] === top) ties.push(i);
    let sorted: number[] | undefined;
    const sortAll = () => (sorted ??= Array.from({ length: n }, (_, i) => i).sort(cmp));
    // Ties (and host_subset_size) are broken at random so parallel schedulers spread.
    const pool = ties.length > 1 ? ties : this.o.subset > 1 ? sortAll().slice(0, this.o.subset) : [best];
    return {
      *[Symbol.iterator]() {
        const p = pool.slice();
        for (let i = 0; i < p.length; i++) {
          // Fisher-Yates, one step per host actually tried.
          if (p.length - i > 1) { const j = i + Math.floor(random() * (p.length - i)); const t = p[i]; p[i] = p[j]; p[j] = t; }
          yield pass[p[i]];
        }
        const inPool = new Uint8Array(n);
        for (const i of pool) inPool[i] = 1;
        for (const i of sortAll()) if (!inPool[i]) yield pass[i];
      },
    };
  }

  /** Why no host passes: each filter in turn over the hosts left by the ones before it. */
  rejections(): { filter: string; total: number; reasons: Map<string, number> }[] {
    let pass = this.slots.filter((s) => s.alive).map((s) => s.c.state);
    const out: { filter: string; total: number; reasons: Map<string, number> }[] = [];
    for (const f of this.filters) {
      const total = pass.length;
      const reasons = new Map<string, number>();
      pass = pass.filter((h) => {
        const r = f.fn(h, this.o.view);
        if (r !== undefined) reasons.set(r, (reasons.get(r) ?? 0) + 1);
        return r === undefined;
      });
      if (reasons.size) out.push({ filter: f.name, total, reasons });
      if (!pass.length) break;
    }
    return out;
  }
}
