// The conductor's periodic reconciler: the audit's consistency findings (src/compute/audit/)
// put right without an operator, as Nova's periodic tasks and heal_allocations would —
//   - allocations of consumers that are no live instance on that host: removed;
//   - live instances on a host without their flavor's allocation: healed;
//   - instance mappings of deleted instances still counted in quota: marked queued_for_delete;
//     builds deleted by their user while the conductor wrote them into a cell: deleted;
//   - instances stuck in `deleting` (longer than one reconcile interval, seen twice): on a compute
//     host that is down, deleted locally (what Nova's API does for a delete on a down host, done
//     later for deletes that raced the host's death); on a host that is up, terminate_instance is
//     cast again (the first cast was lost, or its host could not finish: terminate is idempotent);
//   - build requests older than the build timeout whose instance is in no cell (the conductor
//     scheduling them died before writing it, or the cast was lost): put in ERROR in cell0 with
//     the reason, as a build that found no host (Nova leaves these to the operator).
// A finding is acted on only when two runs one interval apart both saw it, so nothing in flight
// (a claim before its instance row, a delete between its steps) is "fixed" under its feet; every
// fix is idempotent, so two conductors reconciling at once do no harm. Each fix is logged with
// its own request id.
import { randomUUID } from 'node:crypto';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import type { Cells } from '../cells.ts';
import type { PlacementClient } from '../clients.ts';
import { TASK, VM } from '../objects.ts';
import { findInstance, serviceIsUp, updateInstance } from '../store.ts';
import { systemContext, type CellTransports } from '../rpc.ts';
import type { RequestContext } from '../../common/rpc/transport.ts';
import { castTerminate, localDelete } from '../service/delete.ts';
import { auditDeployment, type Finding } from '../audit/invariants.ts';
import { deleteOrphanAllocations, fixQueuedForDelete, healAllocations, mapInstances, racedBuildDeletes } from '../audit/repair.ts';

export interface ReconcilerDeps { config: Config; logger: Logger; cells: Cells; placement: PlacementClient; cellTransports: CellTransports }

const key = (f: Finding) => `${f.kind}:${f.subject}:${f.provider ?? ''}`;

export class Reconciler {
  private previous = new Set<string>();
  private timer?: NodeJS.Timeout;
  private running = false;

  /** `buryStaleBuild`: the conductor's way to put a never-scheduled build in ERROR (true when it did). */
  constructor(private readonly d: ReconcilerDeps, private readonly buryStaleBuild?: (ctx: RequestContext, uuid: string, message: string) => Promise<boolean>) {}

  start(): void {
    const every = this.d.config.get<number>('DEFAULT', 'reconcile_interval');
    if (every <= 0) return;
    this.timer = setInterval(() => { this.run().catch((err) => this.d.logger.warn({ err }, 'reconciling failed')); }, every * 1000);
    this.timer.unref();
  }

  stop(): void { clearInterval(this.timer); }

  /** One pass; returns the findings fixed. */
  async run(): Promise<Finding[]> {
    if (this.running) return [];
    this.running = true;
    try {
      const d = this.d;
      const build = (d.config.get<number>('DEFAULT', 'instance_build_timeout') || 600) * 1000;
      const every = d.config.get<number>('DEFAULT', 'reconcile_interval') * 1000;
      const findings = await auditDeployment(d.cells, d.placement, { buildTimeoutMs: build, taskTimeoutMs: build, deleteTimeoutMs: every });
      const confirmed = findings.filter((f) => this.previous.has(key(f)));
      this.previous = new Set(findings.map(key));
      const fixed: Finding[] = [];
      const log = (f: Finding, what: string) => { d.logger.warn({ requestId: `req-${randomUUID()}`, kind: f.kind, subject: f.subject, provider: f.provider }, `reconciler: ${what}: ${f.detail}`); fixed.push(f); };
      await deleteOrphanAllocations(d.placement, confirmed, (f) => log(f, 'removed allocation'));
      for (const f of confirmed.filter((x) => x.kind === 'missing_allocation' || x.kind === 'allocation_mismatch')) {
        const r = await healAllocations(d.cells, d.placement, { instance: f.subject, force: f.kind === 'allocation_mismatch' });
        if (r.healed.length) log(f, 'healed allocation');
      }
      if (confirmed.some((f) => f.kind === 'quota_drift')) {
        for (const u of await fixQueuedForDelete(d.cells)) log({ kind: 'quota_drift', subject: u, detail: `instance ${u}: its mapping's quota count now matches its cell`, fix: '' }, 'fixed quota');
        for (const u of await racedBuildDeletes(d.cells)) {
          const done = await this.finishDelete(u, true);
          if (done) log({ kind: 'quota_drift', subject: u, detail: `build ${u} was deleted by its user while it was being scheduled`, fix: '' }, done);
        }
      }
      if (confirmed.some((f) => f.kind === 'unmapped_instance')) {
        const only = new Set(confirmed.filter((f) => f.kind === 'unmapped_instance').map((f) => f.subject));
        for (const u of await mapInstances(d.cells, { only })) log({ kind: 'unmapped_instance', subject: u, detail: `instance ${u} mapped to its cell again`, fix: '' }, 'mapped instance');
      }
      for (const f of confirmed.filter((x) => x.kind === 'stuck_instance')) {
        const done = await this.finishDelete(f.subject);
        if (done) log(f, done);
      }
      for (const f of this.buryStaleBuild ? confirmed.filter((x) => x.kind === 'stuck_build_request') : []) {
        const ctx = systemContext({ requestId: `req-${randomUUID()}` });
        const message = `Build of instance ${f.subject} was never scheduled within instance_build_timeout (${build / 1000} s): the conductor handling it died before writing the instance, or its request was lost.`;
        if (await this.buryStaleBuild!(ctx, f.subject, message)) log(f, `put in ERROR in cell0 (${ctx.requestId})`);
      }
      return fixed;
    } finally {
      this.running = false;
    }
  }

  /**
   * A delete stuck in `deleting` (or, with `start`, a build whose delete never reached its
   * instance): finished here when its host is down, else cast to the host again.
   */
  private async finishDelete(uuid: string, start = false): Promise<string | undefined> {
    const l = await findInstance(this.d.cells, uuid);
    if (l && start && l.row.task_state !== TASK.DELETING) {
      l.row = await updateInstance(l.db, uuid, { task_state: TASK.DELETING }, { vm_state: [VM.BUILDING] }).catch(() => l!.row);
    }
    if (!l || l.row.task_state !== TASK.DELETING) return undefined;
    const ctx = systemContext();
    const svc = l.row.host ? await l.db.selectFrom('services').selectAll().where('host', '=', l.row.host).where('binary', '=', 'nova-compute').executeTakeFirst() : undefined;
    if (svc && serviceIsUp(svc, this.d.config.get<number>('DEFAULT', 'service_down_time'))) {
      await castTerminate(this.d, ctx, l);
      return `cast terminate_instance to ${l.row.host} again (${ctx.requestId})`;
    }
    await localDelete(this.d, { ctx, isAdmin: true }, l);
    return `deleted locally (${ctx.requestId})`;
  }
}
