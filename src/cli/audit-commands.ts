// Operator commands over the consistency audit (src/compute/audit/):
//   stratus status audit [--format table|json] [--build-timeout S] [--task-timeout S]
//     every inconsistency with the command that fixes it; exit 0 clean, 1 only things stuck
//     (timeouts), 2 inconsistencies (allocations, quota, duplicates), 255 when the audit crashed.
//   stratus manage placement audit [--verbose] [--delete] [--resource_uuid U]  (nova-manage's:
//     0 no orphaned allocations, 3 found, 4 found and all deleted, 1 error, 127 invalid input)
//   stratus manage placement heal_allocations [--instance U] [--force] [--dry-run] [--max-count N]
//     [--verbose]  (nova-manage's: 0 healed some, 1 --max-count reached with more to do, 2 an
//     instance's compute node unknown, 3 placement refused, 4 nothing to do, 127 invalid input)
//   stratus manage db online_data_migrations  (populate_queued_for_delete: quota drift)
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { loadConfig } from '../common/config.ts';
import { openAuditTarget, runAudit, type AuditTarget } from '../compute/audit/operator.ts';
import { deleteOrphanAllocations, fixQueuedForDelete, healAllocations } from '../compute/audit/repair.ts';
import { summarize, type Finding } from '../compute/audit/invariants.ts';
import { isUuid } from '../compute/util.ts';
import { prettyTable } from './table.ts';

const configOpt = () => new Option('--config <file>', 'configuration file (default /etc/stratus/stratus.conf)');
const STUCK = new Set(['stuck_instance', 'stuck_build_request', 'stuck_image']);

async function withTarget(config: string | undefined, over: { buildTimeoutS?: number; taskTimeoutS?: number }, fn: (t: AuditTarget) => Promise<number>): Promise<number> {
  const t = await openAuditTarget(await loadConfig(config), over);
  try { return await fn(t); } finally { await t.close(); }
}

/** An error exit that prints one line, as nova-manage does, instead of a stack. */
function failed(code: number) {
  return (e: unknown): number => { console.error(`Error: ${(e as Error).message}`); return code; };
}

const seconds = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number of seconds ≥ 0.`);
  return n;
};

export function registerAuditCommands(status: Command, manage: Command): void {
  status.command('audit').description('Allocation, instance, quota and image consistency, with a fix command for each inconsistency').addOption(configOpt())
    .option('--format <fmt>', 'table or json', 'table')
    .option('--build-timeout <s>', 'a build older than this is stuck (default [DEFAULT] instance_build_timeout, 600 when 0)', seconds('--build-timeout'))
    .option('--task-timeout <s>', 'an instance task state unchanged this long is stuck (default: the build timeout)', seconds('--task-timeout'))
    .action(async (o: { config?: string; format: string; buildTimeout?: number; taskTimeout?: number }) => {
      process.exitCode = await withTarget(o.config, { buildTimeoutS: o.buildTimeout, taskTimeoutS: o.taskTimeout }, async (t) => {
        const findings = await runAudit(t);
        printFindings(findings, o.format === 'json');
        if (!findings.length) return 0;
        return findings.every((f) => STUCK.has(f.kind)) ? 1 : 2;
      }).catch(failed(255));
    });

  const placement = manage.command('placement').description('Placement consistency (nova-manage placement)');
  placement.command('audit').description('Find (and with --delete remove) allocations of consumers that are not live instances on that host').addOption(configOpt())
    .option('--verbose', 'print each orphaned allocation')
    .option('--delete', 'delete the orphaned allocations found')
    .option('--resource_uuid <uuid>', 'only allocations against this resource provider')
    .action(async (o: { config?: string; verbose?: boolean; delete?: boolean; resource_uuid?: string }) => {
      if (o.resource_uuid !== undefined && !isUuid(o.resource_uuid)) { console.error(`Invalid resource provider UUID: ${o.resource_uuid}`); process.exitCode = 127; return; }
      process.exitCode = await withTarget(o.config, {}, async (t) => {
        const orphans = (await runAudit(t)).filter((f) => (f.kind === 'orphan_allocation' || f.kind === 'allocation_wrong_host') && (!o.resource_uuid || f.provider === o.resource_uuid));
        for (const f of orphans) if (o.verbose) console.log(f.detail);
        if (!orphans.length) { if (o.verbose) console.log('No orphaned allocations found.'); return 0; }
        if (!o.delete) { console.log(`Found ${orphans.length} orphaned allocation(s). Run again with --delete to remove them.`); return 3; }
        const n = await deleteOrphanAllocations(t.placement, orphans, (f) => { if (o.verbose) console.log(`Deleted allocation of consumer ${f.subject} on resource provider ${f.provider}.`); });
        console.log(`Processed ${orphans.length} orphaned allocation(s): ${n} deleted.`);
        return 4;
      }).catch(failed(1));
    });

  placement.command('heal_allocations').description('Create the allocation of live instances that have none on their compute node').addOption(configOpt())
    .option('--instance <uuid>', 'only this instance')
    .option('--max-count <n>', 'stop after healing this many instances')
    .option('--dry-run', 'print what would be healed and change nothing')
    .option('--force', 'rewrite allocations that differ from the flavor too')
    .option('--verbose', 'print each instance healed')
    .action(async (o: { config?: string; instance?: string; maxCount?: string; dryRun?: boolean; force?: boolean; verbose?: boolean }) => {
      if (o.instance !== undefined && !isUuid(o.instance)) { console.error(`Invalid instance UUID: ${o.instance}`); process.exitCode = 127; return; }
      const max = o.maxCount === undefined ? undefined : Number(o.maxCount);
      if (max !== undefined && !(Number.isInteger(max) && max > 0)) { console.error('Must supply a positive integer for --max-count.'); process.exitCode = 127; return; }
      process.exitCode = await withTarget(o.config, {}, async (t) => {
        const r = await healAllocations(t.cells, t.placement, { instance: o.instance, force: o.force, dryRun: o.dryRun, maxCount: max });
        for (const u of r.healed) if (o.verbose || o.dryRun) console.log(`${o.dryRun ? '[dry-run] Would heal' : 'Healed'} allocations of instance ${u}.`);
        for (const u of r.noNode) console.error(`Unable to find the compute node record of instance ${u}.`);
        for (const f of r.failed) console.error(`Unable to create allocations for instance ${f.uuid}: ${f.reason}.`);
        console.log(`Processed ${r.healed.length} instance(s).`);
        if (r.failed.length) return 3;
        if (r.noNode.length) return 2;
        if (r.more) return 1;
        return r.healed.length ? 0 : 4;
      }).catch(failed(255));
    });

  const db = manage.commands.find((c) => c.name() === 'db') ?? manage.command('db');
  db.command('online_data_migrations').description('Run the online data migrations (populate_queued_for_delete: instance mappings of deleted instances stop counting in quota)').addOption(configOpt())
    .action(async (o: { config?: string }) => {
      process.exitCode = await withTarget(o.config, {}, async (t) => {
        const fixed = await fixQueuedForDelete(t.cells);
        console.log(prettyTable(['Migration', 'Total Needed', 'Completed'], [['populate_queued_for_delete', String(fixed.length), String(fixed.length)]]));
        return 0;
      }).catch(failed(1));
    });
}

function printFindings(findings: Finding[], json: boolean): void {
  if (json) { console.log(JSON.stringify({ summary: summarize(findings), findings }, null, 2)); return; }
  if (!findings.length) { console.log('No inconsistencies found.'); return; }
  console.log(prettyTable(['Kind', 'Subject', 'Detail', 'Fix'], findings.map((f) => [f.kind, f.subject, f.detail, f.fix]), 'l'));
}
