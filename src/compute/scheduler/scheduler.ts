// The scheduler (nova-scheduler): placement's allocation candidates, then the enabled filters,
// then the weighers, then a claim in placement per instance. Served on topic 'scheduler'. When
// nothing fits, NoValidHost says why: placement had no candidate for these resources and
// traits, or which filter rejected how many hosts and for what reason.
import { flavorResources } from '../flavor-resources.ts';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import type { RequestContext, RpcServer, Transport } from '../../common/rpc/transport.ts';
import type { Cells } from '../cells.ts';
import { discoverHosts } from '../cells.ts';
import type { PlacementClient } from '../clients.ts';
import { NoValidHost } from '../errors.ts';
import { registerOwnService, heartbeat } from '../conductor/conductor.ts';
import { serveApi } from '../../common/rpc/typed.ts';
import { schedulerApi, type Selection } from '../rpcapi/scheduler.ts';
import { loadRequestSpec, type RequestSpec } from '../request-spec.ts';
import { HostStateCache } from './host-state.ts';
import { FILTERS, WEIGHERS, type SpecView } from './filters.ts';
import { pickHosts, type Candidate } from './ranking.ts';
import { RecentClaims } from './recent-claims.ts';
import type { CellDb } from '../db/tables.ts';

export interface SchedulerDeps { config: Config; logger: Logger; cells: Cells; localCell: CellDb; transport: Transport; placement: PlacementClient }

export interface Decision { selections: Selection[]; ms: number }

export class Scheduler {
  private server?: RpcServer;
  private timers: NodeJS.Timeout[] = [];
  readonly hosts: HostStateCache;
  private readonly claims = new RecentClaims();
  /** Milliseconds of the last decisions (benchmarks read them). */
  readonly timings: number[] = [];

  constructor(private readonly d: SchedulerDeps) {
    this.hosts = new HostStateCache(d.cells, {
      refreshMs: d.config.get<number>('scheduler', 'host_state_refresh_seconds') * 1000,
      downTime: d.config.get<number>('DEFAULT', 'service_down_time'),
      defaultAz: d.config.get<string>('DEFAULT', 'default_availability_zone'),
    });
  }

  async start(host: string): Promise<void> {
    await registerOwnService(this.d.localCell, host, 'nova-scheduler', 'scheduler');
    this.server = await serveApi(this.d.transport, schedulerApi, { server: host }, {
      // A spec from an older conductor is upgraded (or refused) by loadRequestSpec.
      select_destinations: (ctx, a) => this.selectDestinations(ctx, loadRequestSpec(a.spec), a.instance_uuids),
    });
    const hb = setInterval(() => { heartbeat(this.d.localCell, host, 'nova-scheduler').catch((err) => this.d.logger.warn({ err, host }, 'scheduler heartbeat failed')); }, this.d.config.get<number>('DEFAULT', 'report_interval') * 1000);
    hb.unref();
    this.timers.push(hb);
    const every = this.d.config.get<number>('scheduler', 'discover_hosts_in_cells_interval');
    if (every > 0) {
      const t = setInterval(() => {
        discoverHosts(this.d.cells).then((found) => {
          if (found.length) { this.hosts.invalidate(); this.d.logger.info({ hosts: found.map((f) => f.host) }, 'discovered new compute hosts'); }
        }).catch((e) => this.d.logger.warn({ err: e }, 'periodic host discovery failed'));
      }, every * 1000);
      t.unref();
      this.timers.push(t);
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.server?.stop();
  }

  async selectDestinations(_ctx: RequestContext, spec: RequestSpec, uuids: string[]): Promise<Selection[]> {
    const t0 = process.hrtime.bigint();
    try {
      const before = Date.now();
      const cachedAt = this.hosts.loadedAt();
      let chosen: Selection[];
      try {
        chosen = await this.select(spec, uuids);
      } catch (e) {
        // "No valid host" is never answered from a stale view: a host enabled, un-forced-down or
        // restarted within host_state_refresh_seconds would be refused (Nova reads the services
        // on every request). Read them fresh and decide once more.
        if (!(e instanceof NoValidHost) || cachedAt === undefined || cachedAt >= before) throw e;
        this.hosts.invalidate();
        chosen = await this.select(spec, uuids);
      }
      this.d.logger.info({ instances: uuids, hosts: chosen.map((c) => c.host), ms: Math.round(Number(process.hrtime.bigint() - t0) / 1e5) / 10 }, 'selected destinations');
      return chosen;
    } finally {
      this.timings.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (this.timings.length > 10_000) this.timings.splice(0, 5_000);
    }
  }

  private async select(spec: RequestSpec, uuids: string[]): Promise<Selection[]> {
    const d = this.d;
    const flavor = spec.flavor;
    const resources = flavorResources(flavor, spec.image?.properties ?? {});
    const required: string[] = [];
    const forbidden: string[] = ['COMPUTE_STATUS_DISABLED'];
    for (const [k, v] of Object.entries({ ...(spec.image?.properties ?? {}), ...(flavor.extra_specs ?? {}) } as Record<string, string>)) {
      const tm = /^trait:([A-Z0-9_]+)$/.exec(k);
      if (tm && v === 'required') required.push(tm[1]);
      if (tm && v === 'forbidden') forbidden.push(tm[1]);
    }
    const want = Object.entries(resources).map(([k, v]) => `${k}:${v}`).join(',');
    const q = new URLSearchParams({ resources: want, limit: String(d.config.get<number>('scheduler', 'max_placement_results')) });
    q.set('required', [...required, ...forbidden.map((t) => `!${t}`)].join(','));
    const readAt = this.claims.now();
    const cands = await d.placement.allocationCandidates(q.toString());
    d.logger.debug({ instances: uuids, candidates: cands.allocation_requests.length }, 'placement answered the allocation candidates');
    const traitsText = [required.length ? `required traits: ${required.join(', ')}` : '', `forbidden traits: ${forbidden.join(', ')}`].filter(Boolean).join('; ');
    if (!cands.allocation_requests.length) {
      // Were there hosts with room that are only disabled? Then say so, as ComputeFilter would.
      const q2 = new URLSearchParams(q);
      const rest = [...required, ...forbidden.filter((t) => t !== 'COMPUTE_STATUS_DISABLED').map((t) => `!${t}`)];
      if (rest.length) q2.set('required', rest.join(',')); else q2.delete('required');
      // Only to explain the NoValidHost better: without an answer the plain message stands.
      const again = await d.placement.allocationCandidates(q2.toString()).catch((err) => { d.logger.warn({ err }, 'could not ask placement whether disabled hosts had room'); return undefined; });
      if (again?.allocation_requests.length) {
        this.hosts.invalidate(); // the reason was just set: read it fresh
        const known = await this.hosts.byProvider();
        const reasons = new Map<string, number>();
        for (const ar of again.allocation_requests) {
          const h = known.get(Object.keys(ar.allocations)[0]);
          const why = `service disabled${h?.disabledReason ? ` (${h.disabledReason})` : ''}`;
          reasons.set(why, (reasons.get(why) ?? 0) + 1);
        }
        const n = again.allocation_requests.length;
        throw new NoValidHost(`No valid host was found. ComputeFilter rejected ${n} of ${n} hosts: ${[...reasons.entries()].map(([w, k]) => (reasons.size > 1 ? `${w} (${k})` : w)).join('; ')}.`);
      }
      const short = await this.shortResources(resources, q).catch((err) => { d.logger.warn({ err }, 'could not ask placement which resource ran out'); return ''; });
      throw new NoValidHost(`No valid host was found. Placement returned no allocation candidates for ${want.replace(/,/g, ', ')} (${traitsText}): no compute host has that much free capacity or those traits.${short}`);
    }
    const known = await this.hosts.byProvider();
    const unseen = this.claims.unseen(readAt);
    // Candidate hosts: a single root provider per allocation request (no nested providers here).
    let hosts: Candidate[] = [];
    const unmapped: string[] = [];
    for (const ar of cands.allocation_requests) {
      const rps = Object.keys(ar.allocations);
      const rp = rps[0];
      const base = known.get(rp);
      if (!base) { unmapped.push(cands.provider_summaries[rp]?.resources ? rp : rp); continue; }
      const sum = cands.provider_summaries[rp]?.resources ?? {};
      const free: Record<string, number> = {};
      const capacity: Record<string, number> = {};
      const mine = unseen.get(rp) ?? {};
      for (const [rc, r] of Object.entries(sum as Record<string, { capacity: number; used: number }>)) { free[rc] = r.capacity - r.used - (mine[rc] ?? 0); capacity[rc] = r.capacity; }
      hosts.push({ state: { ...base, free, capacity }, alloc: ar.allocations });
    }
    if (spec.cell_uuid) hosts = hosts.filter((h) => h.state.cellUuid === spec.cell_uuid);
    const ignore = new Set<string>(spec.ignore_hosts ?? []);
    const forceHosts = new Set<string>(spec.force_hosts ?? []);
    const forceNodes = new Set<string>(spec.force_nodes ?? []);
    const notes: string[] = [];
    if (ignore.size) {
      const before = hosts.length;
      hosts = hosts.filter((h) => !ignore.has(h.state.host));
      if (before !== hosts.length) notes.push(`${before - hosts.length} host(s) already tried: ${[...ignore].join(', ')}`);
    }
    if (forceHosts.size || forceNodes.size) {
      hosts = hosts.filter((h) => (!forceHosts.size || forceHosts.has(h.state.host)) && (!forceNodes.size || forceNodes.has(h.state.nodename)));
      if (!hosts.length) notes.push(`requested host ${[...forceHosts, ...forceNodes].join(':')} has no capacity or is unknown`);
    }
    if (!hosts.length) {
      const why = unmapped.length ? `${unmapped.length} host(s) with capacity are not mapped to a cell yet (run \`stratus manage cell_v2 discover_hosts\`)` : notes.join('; ') || 'no candidate host';
      throw new NoValidHost(`No valid host was found. ${why}.`);
    }

    const enabled = d.config.get<string[]>('filter_scheduler', 'enabled_filters').filter((f) => FILTERS[f]);
    const weighers = d.config.get<string[]>('filter_scheduler', 'weight_classes').filter((w) => WEIGHERS[w]).map((w) => ({ ...WEIGHERS[w], mult: d.config.get<number>('filter_scheduler', WEIGHERS[w].option) }));
    const subset = d.config.get<number>('filter_scheduler', 'host_subset_size');
    const group = spec.instance_group ? { ...spec.instance_group, hosts: await this.groupHosts(spec.instance_group.uuid, uuids) } : undefined;
    const view: SpecView = { flavor, imageProps: spec.image?.properties ?? {}, availabilityZone: spec.availability_zone ?? null, group };

    // Filters, weighers and a claim per instance, one instance at a time (ranking.ts).
    const chosen: Candidate[] = [];
    try {
      await pickHosts(hosts, uuids, {
        filters: enabled, weighers, subset, view, resources, notes,
        claim: (uuid, h) => { d.logger.debug({ instance: uuid, host: h.state.host }, 'claiming in placement'); return this.claims.track(h.alloc, () => d.placement.claim(uuid, h.alloc, spec.project_id, spec.user_id)); },
      }, chosen);
    } catch (e) {
      // All or nothing, as Nova: release what this request already claimed.
      for (let i = 0; i < chosen.length; i++) {
        await d.placement.deleteAllocations(uuids[i]).catch((err) => d.logger.warn({ err, instance: uuids[i] }, 'could not release a claim of a failed multi-instance request'));
      }
      throw e;
    }
    return chosen.map((c) => ({ host: c.state.host, nodename: c.state.nodename, cell_uuid: c.state.cellUuid, allocations: c.alloc }));
  }

  /**
   * Only to explain a NoValidHost: the resource classes that no host (with the request's traits)
   * has enough of on its own, with the most any host has free, e.g. " Short on every host: VCPU
   * (1 requested, at most 0 of 8 free)." Each class is asked alone for 1 unit, whose provider
   * summaries give every such host's capacity and usage of it.
   */
  private async shortResources(resources: Record<string, number>, q: URLSearchParams): Promise<string> {
    const parts: string[] = [];
    for (const [rc, n] of Object.entries(resources)) {
      const one = new URLSearchParams(q);
      one.set('resources', `${rc}:1`);
      const c = await this.d.placement.allocationCandidates(one.toString());
      let best: { free: number; capacity: number } | undefined;
      for (const sum of Object.values(c.provider_summaries) as { resources?: Record<string, { capacity: number; used: number }> }[]) {
        const r = sum.resources?.[rc];
        if (r && (!best || r.capacity - r.used > best.free)) best = { free: r.capacity - r.used, capacity: r.capacity };
      }
      if (!best) parts.push(`${rc} (${n} requested, no host has any free)`);
      else if (best.free < n) parts.push(`${rc} (${n} requested, at most ${best.free} of ${best.capacity} free)`);
    }
    return parts.length ? ` Short on every host: ${parts.join(', ')}.` : '';
  }

  private async groupHosts(groupUuid: string, exclude: string[]): Promise<string[]> {
    const api = this.d.cells.db;
    const members = await api.selectFrom('instance_group_members').innerJoin('instance_groups', 'instance_groups.id', 'instance_group_members.group_id')
      .select('instance_group_members.instance_uuid').where('instance_groups.uuid', '=', groupUuid).execute();
    const uuids = members.map((m) => m.instance_uuid).filter((u) => !exclude.includes(u));
    if (!uuids.length) return [];
    const hosts: string[] = [];
    for (const { db } of await this.d.cells.all({ includeCell0: false })) {
      const rows = await db.selectFrom('instances').select('host').where('uuid', 'in', uuids).where('deleted', '=', 0).where('host', 'is not', null).execute();
      for (const r of rows) if (r.host) hosts.push(r.host);
    }
    return hosts;
  }
}
