// The claims this scheduler made that a placement answer may not show yet. Concurrent requests
// each read the allocation candidates and then weigh them; without this, every request that read
// before the others' claims committed weighs the hosts as if nobody else had claimed, and a burst
// of boots piles onto the one host that ranked first (seen: 17 of 20 servers on one of two equal
// hosts). Nova keeps its in-memory HostState current with consume_from_request for the same reason.
import { performance } from 'node:perf_hooks';

type Alloc = Record<string, { resources: Record<string, number> }>;
interface Entry { alloc: Alloc; done?: number }

/** How long a finished claim is remembered: longer than any request takes from its read to its weighing. */
const KEEP_MS = 30_000;

export class RecentClaims {
  private entries: Entry[] = [];

  /** The moment a request reads placement: claims finished before it are in its answer. */
  now(): number { return performance.now(); }

  /** Wraps one claim: remembered while in flight and after it succeeded, forgotten if it failed. */
  async track(alloc: Alloc, claim: () => Promise<boolean>): Promise<boolean> {
    const e: Entry = { alloc };
    this.entries.push(e);
    let ok = false;
    try {
      ok = await claim();
    } finally {
      if (ok) e.done = performance.now();
      else this.entries.splice(this.entries.indexOf(e), 1);
    }
    return ok;
  }

  /**
   * Resources per provider claimed by this process that an answer read at `readAt` may not
   * count: claims still in flight or finished after the read began. Counting one that the answer
   * did include only makes that host look a little fuller for the weighers; placement itself
   * refuses a claim that does not fit.
   */
  unseen(readAt: number): Map<string, Record<string, number>> {
    const t = performance.now();
    this.entries = this.entries.filter((e) => e.done === undefined || t - e.done < KEEP_MS);
    const out = new Map<string, Record<string, number>>();
    for (const e of this.entries) {
      if (e.done !== undefined && e.done < readAt) continue;
      for (const [rp, { resources }] of Object.entries(e.alloc)) {
        const sum = out.get(rp) ?? {};
        for (const [rc, n] of Object.entries(resources)) sum[rc] = (sum[rc] ?? 0) + n;
        out.set(rp, sum);
      }
    }
    return out;
  }
}
