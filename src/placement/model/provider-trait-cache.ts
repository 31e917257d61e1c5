// Each provider's trait names as last read, for the provider summaries of allocation candidates.
// Every compute node carries a dozen capability traits, so at 1,000 hosts the summaries were
// 12,000 trait rows read per request although they change only with the provider's traits.
//
// Why a hit is never stale, even with several placement processes on one database: every
// change of a provider's trait set bumps its generation in the same transaction
// (setProviderTraits), generations only grow, and provider ids are never reused (auto-increment
// keys). The candidate queries read (id, uuid, generation) first and the traits afterwards, so a
// set stored under generation g is the set of some moment at which the generation was already
// >= g; a later reader that still sees g sees a provider whose traits have not changed since.
// Allocation writes bump generations too: that only costs a re-read of the providers claimed.

interface Entry { uuid: string; generation: number; traits: readonly string[] }

export class ProviderTraitCache {
  private entries = new Map<number, Entry>();
  /** The sets themselves, shared: most providers of a deployment carry the same few. */
  private sets = new Map<string, readonly string[]>();
  /** The JSON of each shared set, rendered once: a dozen names per provider in every response. */
  private rendered = new WeakMap<readonly string[], string>();

  /** Bounded memory: beyond `max` providers the cache starts over (it is only a shortcut). */
  constructor(private readonly max = 200_000) {}

  /** The traits of provider `id` if they were read at this uuid and generation. */
  get(id: number, uuid: string, generation: number): readonly string[] | undefined {
    const e = this.entries.get(id);
    return e && e.generation === generation && e.uuid === uuid ? e.traits : undefined;
  }

  /** Remembers `traits` (sorted here) as read at least as late as `generation` was. */
  set(id: number, uuid: string, generation: number, traits: string[]): readonly string[] {
    if (this.entries.size >= this.max && !this.entries.has(id)) { this.entries.clear(); this.sets.clear(); }
    traits.sort();
    const key = traits.join(',');
    let shared = this.sets.get(key);
    if (!shared) { shared = Object.freeze(traits); this.sets.set(key, shared); }
    this.entries.set(id, { uuid, generation, traits: shared });
    return shared;
  }

  /** JSON.stringify(traits), from a cache for the sets this cache hands out. */
  json(traits: readonly string[]): string {
    let text = this.rendered.get(traits);
    if (text === undefined) {
      text = JSON.stringify(traits);
      if (Object.isFrozen(traits)) this.rendered.set(traits, text);
    }
    return text;
  }
}
