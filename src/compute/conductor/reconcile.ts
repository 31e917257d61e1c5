// The conductor's periodic reconciler: the audit's consistency findings (src/compute/audit/)
// put right without an operator, as Nova's periodic tasks and heal_allocations would —
//   - allocations of consumers that are no live instance on that host: removed;
//   - live instances on a host without their flavor's allocation: healed;
//   - instance mappings of deleted instances still counted in quota: marked queued_for_delete;
//   - instances stuck in `deleting` on a compute host that is down: deleted locally (what Nova's
//     API does for a delete on a down host, done later for deletes that raced the host's death).
// A finding is acted on only when two runs one interval apart both saw it, so nothing in flight
// (a claim before its instance row, a delete between its steps) is "fixed" under its feet; every
// fix is idempotent, so two conductors reconciling at once do no harm. Each fix is logged with
// its own request id.
import { randomUUID } from 'node:crypto';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import type { Cells } from '../cells.ts';
import type { PlacementClient } from '../clients.ts';
import { TASK } from '../objects.ts';
import { markDeleted, serviceIsUp } from '../store.ts';
import { auditDeployment, type Finding } from '../audit/invariants.ts';
import { deleteOrphanAllocations, fixQueuedForDelete, healAllocations } from '../audit/repair.ts';

export interface ReconcilerDeps { config: Config; logger: Logger; cells: Cells; placement: PlacementClient }

const key = (f: Finding) => `${f.kind}:${f.subject}:${f.provider ?? ''}`;

export class Reconciler {
  private previous = new Set<string>();
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(private readonly d: ReconcilerDeps) {}

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
      const findings = await auditDeployment(d.cells, d.placement, { buildTimeoutMs: build, taskTimeoutMs: build });
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
        for (const u of await fixQueuedForDelete(d.cells)) log({ kind: 'quota_drift', subject: u, detail: `instance ${u} is deleted; its mapping no longer counts in quota`, fix: '' }, 'fixed quota');
      }
      for (const f of confirmed.filter((x) => x.kind === 'stuck_instance')) if (await this.deleteOnDownHost(f.subject)) log(f, 'deleted locally');
      return fixed;
    } finally {
      this.running = false;
    }
  }

  private async deleteOnDownHost(uuid: string): Promise<boolean> {
    const where = await this.d.cells.cellOfInstance(uuid);
    if (!where) return false;
    const row = await where.db.selectFrom('instances').select(['host', 'task_state']).where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
    if (!row || row.task_state !== TASK.DELETING) return false;
    if (row.host) {
      const svc = await where.db.selectFrom('services').selectAll().where('host', '=', row.host).where('binary', '=', 'nova-compute').executeTakeFirst();
      if (svc && serviceIsUp(svc, this.d.config.get<number>('DEFAULT', 'service_down_time'))) return false; // its agent will finish it
    }
    if (!(await markDeleted(where.db, uuid))) return false;
    await this.d.placement.deleteAllocations(uuid);
    await this.d.cells.db.updateTable('instance_mappings').set({ queued_for_delete: 1 }).where('instance_uuid', '=', uuid).execute();
    await this.d.cells.db.deleteFrom('request_specs').where('instance_uuid', '=', uuid).execute();
    return true;
  }
}
