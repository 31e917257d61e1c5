// What the scheduler knows of a compute node: read from the cell databases (services, compute
// nodes, aggregates) and refreshed at most every [scheduler] host_state_refresh_seconds; usage
// comes fresh from placement's provider summaries with every request.
import type { Cells } from '../cells.ts';
import { CELL0_UUID } from '../cells.ts';
import { parseJson } from '../util.ts';
import { serviceIsUp } from '../store.ts';

export interface HostState {
  host: string;
  nodename: string;
  uuid: string;
  cellUuid: string;
  serviceUp: boolean;
  serviceDisabled: boolean;
  disabledReason: string | null;
  az: string;
  hypervisorType: string;
  hypervisorVersion: number;
  cpuInfo: Record<string, any>;
  supportedInstances: [string, string, string][];
  aggregates: { name: string; metadata: Record<string, string> }[];
  /** Free capacity from placement (capacity - used), per resource class. */
  free: Record<string, number>;
  capacity: Record<string, number>;
  numInstances: number;
}

export class HostStateCache {
  private cache?: { at: number; hosts: Map<string, Omit<HostState, 'free' | 'capacity'>> };
  private loading?: Promise<Map<string, Omit<HostState, 'free' | 'capacity'>>>;
  constructor(private readonly cells: Cells, private readonly o: { refreshMs: number; downTime: number; defaultAz: string }) {}

  invalidate(): void { this.cache = undefined; }

  /** When the cached view was read (undefined: nothing cached). */
  loadedAt(): number | undefined { return this.cache?.at; }

  /** Compute nodes by resource provider (= compute node) uuid. */
  async byProvider(): Promise<Map<string, Omit<HostState, 'free' | 'capacity'>>> {
    if (this.cache && Date.now() - this.cache.at < this.o.refreshMs) return this.cache.hosts;
    this.loading ??= this.load().finally(() => { this.loading = undefined; });
    return this.loading;
  }

  private async load() {
    const out = new Map<string, Omit<HostState, 'free' | 'capacity'>>();
    const api = this.cells.db;
    const aggRows = await api.selectFrom('aggregates').innerJoin('aggregate_hosts', 'aggregate_hosts.aggregate_id', 'aggregates.id').select(['aggregates.id', 'aggregates.name', 'aggregate_hosts.host']).execute();
    const aggMeta = await api.selectFrom('aggregate_metadata').select(['aggregate_id', 'key', 'value']).execute();
    const cells = (await this.cells.list()).filter((c) => c.uuid !== CELL0_UUID && !c.disabled);
    await Promise.all(cells.map(async (cell) => {
      const db = await this.cells.cellDb(cell);
      const [nodes, svcs, counts] = await Promise.all([
        db.selectFrom('compute_nodes').selectAll().where('mapped', '=', 1).execute(),
        db.selectFrom('services').selectAll().where('binary', '=', 'nova-compute').execute(),
        db.selectFrom('instances').select(['host', (eb) => eb.fn.countAll<number>().as('n')]).where('deleted', '=', 0).groupBy('host').execute(),
      ]);
      const svcByHost = new Map(svcs.map((s) => [s.host, s]));
      const countByHost = new Map(counts.map((c) => [c.host, Number(c.n)]));
      for (const n of nodes) {
        const svc = svcByHost.get(n.host);
        const aggs = aggRows.filter((a) => a.host === n.host).map((a) => ({ name: a.name, metadata: Object.fromEntries(aggMeta.filter((m) => m.aggregate_id === a.id).map((m) => [m.key, m.value])) }));
        out.set(n.uuid, {
          host: n.host, nodename: n.hypervisor_hostname, uuid: n.uuid, cellUuid: cell.uuid,
          serviceUp: !!svc && serviceIsUp(svc, this.o.downTime), serviceDisabled: !svc || !!svc.disabled, disabledReason: svc?.disabled_reason ?? null,
          az: aggs.find((a) => a.metadata.availability_zone)?.metadata.availability_zone ?? this.o.defaultAz,
          hypervisorType: n.hypervisor_type, hypervisorVersion: n.hypervisor_version, cpuInfo: parseJson(n.cpu_info, {}),
          supportedInstances: parseJson(n.supported_instances, []), aggregates: aggs, numInstances: countByHost.get(n.host) ?? 0,
        });
      }
    }));
    this.cache = { at: Date.now(), hosts: out };
    return out;
  }
}
