// Quotas as Nova's DB driver counts them: limits from per-project (and per-user) rows, then the
// 'default' quota class, then [quota] in the config; usage counted from the databases at the
// time of the check (instance mappings for servers, cell instances plus pending build requests
// for cores and RAM), so there is no usage table to drift.
import type { Kysely } from 'kysely';
import type { Config } from '../common/config.ts';
import { OverQuota } from '../common/errors.ts';
import type { Cells } from './cells.ts';
import type { ApiDb } from './db/tables.ts';

export const RESOURCES = [
  'instances', 'cores', 'ram', 'metadata_items', 'injected_files', 'injected_file_content_bytes',
  'injected_file_path_bytes', 'key_pairs', 'server_groups', 'server_group_members',
] as const;
export type Resource = typeof RESOURCES[number];

const CONFIG_NAME: Record<Resource, string> = {
  instances: 'instances', cores: 'cores', ram: 'ram', metadata_items: 'metadata_items', injected_files: 'injected_files',
  injected_file_content_bytes: 'injected_file_content_bytes', injected_file_path_bytes: 'injected_file_path_length',
  key_pairs: 'key_pairs', server_groups: 'server_groups', server_group_members: 'server_group_members',
};

/** Network quotas the API showed before 2.36: stored and echoed, never enforced (no network service). */
export const LEGACY_RESOURCES = ['floating_ips', 'fixed_ips', 'security_groups', 'security_group_rules', 'networks'];

export async function classLimits(db: ApiDb, config: Config, className = 'default'): Promise<Record<Resource, number>> {
  const out = Object.fromEntries(RESOURCES.map((r) => [r, config.get<number>('quota', CONFIG_NAME[r])])) as Record<Resource, number>;
  const rows = await db.selectFrom('quota_classes').select(['resource', 'hard_limit']).where('class_name', '=', className).execute();
  for (const r of rows) if ((RESOURCES as readonly string[]).includes(r.resource) || LEGACY_RESOURCES.includes(r.resource)) (out as Record<string, number>)[r.resource] = r.hard_limit;
  return out;
}

export async function quotaLimits(api: { cells: Cells; config: Config }, projectId: string, userId?: string): Promise<Record<Resource, number>> {
  const db = api.cells.db;
  const out = await classLimits(db, api.config);
  for (const r of await db.selectFrom('quotas').select(['resource', 'hard_limit']).where('project_id', '=', projectId).execute()) {
    if ((RESOURCES as readonly string[]).includes(r.resource) || LEGACY_RESOURCES.includes(r.resource)) (out as Record<string, number>)[r.resource] = r.hard_limit;
  }
  if (userId) {
    for (const r of await db.selectFrom('project_user_quotas').select(['resource', 'hard_limit']).where('project_id', '=', projectId).where('user_id', '=', userId).execute()) {
      if ((RESOURCES as readonly string[]).includes(r.resource)) out[r.resource as Resource] = r.hard_limit;
    }
  }
  return out;
}

export interface Usage { instances: number; cores: number; ram: number; server_groups: number; key_pairs?: number }

export async function countUsage(cells: Cells, projectId: string, userId?: string): Promise<Usage> {
  const db = cells.db;
  let im = db.selectFrom('instance_mappings').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).where('queued_for_delete', '=', 0);
  if (userId) im = im.where('user_id', '=', userId);
  let br = db.selectFrom('build_requests').select((eb) => [eb.fn.sum<number>('vcpus').as('c'), eb.fn.sum<number>('memory_mb').as('r')]).where('project_id', '=', projectId);
  if (userId) br = br.where('user_id', '=', userId);
  const [inst, pending, groups] = await Promise.all([
    im.executeTakeFirst(), br.executeTakeFirst(),
    db.selectFrom('instance_groups').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).executeTakeFirst(),
  ]);
  let cores = Number(pending?.c ?? 0);
  let ram = Number(pending?.r ?? 0);
  for (const { db: cdb } of await cells.all()) {
    let q = cdb.selectFrom('instances').select((eb) => [eb.fn.sum<number>('vcpus').as('c'), eb.fn.sum<number>('memory_mb').as('r')]).where('project_id', '=', projectId).where('deleted', '=', 0);
    if (userId) q = q.where('user_id', '=', userId);
    const r = await q.executeTakeFirst();
    cores += Number(r?.c ?? 0);
    ram += Number(r?.r ?? 0);
  }
  return { instances: Number(inst?.n ?? 0), cores, ram, server_groups: Number(groups?.n ?? 0) };
}

/**
 * Refuses a request that would go over the instances/cores/ram quota, in Nova's words. `extra`
 * is what the request adds; `alreadyCounted` when the request's own rows are already written
 * (the re-check after the build requests).
 */
export async function checkInstanceQuota(api: { cells: Cells; config: Config }, projectId: string, userId: string, extra: { instances: number; cores: number; ram: number }, alreadyCounted = false): Promise<void> {
  const limits = await quotaLimits(api, projectId, userId);
  const usage = await countUsage(api.cells, projectId);
  const over: ('instances' | 'cores' | 'ram')[] = [];
  for (const r of ['instances', 'cores', 'ram'] as const) {
    if (limits[r] < 0) continue;
    const total = usage[r] + (alreadyCounted ? 0 : extra[r]);
    if (total > limits[r]) over.push(r);
  }
  if (!over.length) return;
  const used = over.map((r) => usage[r] - (alreadyCounted ? extra[r] : 0));
  const req = over.map((r) => extra[r]);
  const allowed = over.map((r, i) => Math.max(0, limits[r] - used[i]));
  const word = over.includes('instances') ? 'instances' : over.includes('cores') ? 'cores' : 'ram';
  throw new OverQuota(
    `Quota exceeded for ${over.join(', ')}: Requested ${req.join(', ')}, but already used ${used.join(', ')} of ${over.map((r) => limits[r]).join(', ')} ${over.join(', ')}`,
    { code: `compute.over_quota.${word}:${allowed.join(',')}` },
  );
}
