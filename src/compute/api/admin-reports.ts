// Nova's operator reports: os-simple-tenant-usage (usage.ts), os-hosts (hosts.ts),
// os-server-external-events (external-events.ts), and here os-instance_usage_audit_log and
// os-migrations.
//
// This cloud runs no instance usage audit task (Nova's instance_usage_audit) and keeps no
// task_log, so every compute host is "not run" for the period. os-migrations reads each cell's
// `migrations` table (db/cell-002-migrations.ts), which stays empty until resize and migrate
// exist here.
import { BadRequest } from '../../common/errors.ts';
import { pageParams, q1, qAll, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { isoMicro, pyRepr } from '../util.ts';
import { toBool } from './validation.ts';
import { usageRoutes } from './usage.ts';
import { hostRoutes } from './hosts.ts';
import { externalEventRoutes } from './external-events.ts';

// --- os-instance_usage_audit_log ---

const pad = (n: number) => String(n).padStart(2, '0');
/** Python's str(datetime) for a whole second: 2026-10-01 00:00:00 */
const pyDate = (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

/** nova.utils.last_completed_audit_period with Nova's default unit, `month`. */
export function lastCompletedAuditPeriod(before: Date = new Date()): { begin: Date; end: Date } {
  const y = before.getUTCFullYear();
  const m = before.getUTCMonth();
  let end = new Date(Date.UTC(y, m, 1));
  if (end.getTime() >= before.getTime()) end = new Date(Date.UTC(y, m - 1, 1));
  const begin = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1));
  return { begin, end };
}

/** strptime "%Y-%m-%d %H:%M:%S[.%f]" → a Date (microseconds dropped), undefined when invalid. */
function parseBefore(id: string): Date | undefined {
  const m = (id.includes('.') ? /^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})\.(\d{1,6})$/ : /^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})$/).exec(id);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 61) return undefined;
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, Math.min(s, 59), m[7] ? Number(m[7].padEnd(6, '0')) / 1000 : 0));
  return t.getUTCDate() === d ? t : undefined;
}

async function auditLog(c: Ctx, before?: Date) {
  const { begin, end } = lastCompletedAuditPeriod(before);
  // Every compute host, disabled ones included (they can have instances); no task logs.
  const hosts = new Set<string>();
  for (const { db } of await c.api.cells.all({ includeCell0: false })) {
    for (const s of await db.selectFrom('services').select(['host', 'binary', 'topic']).execute()) {
      if ((s.topic ?? s.binary) === 'compute' || s.binary === 'nova-compute') hosts.add(s.host);
    }
  }
  const done = 0;
  const errors = 0;
  return {
    period_beginning: pyDate(begin), period_ending: pyDate(end),
    num_hosts: hosts.size, num_hosts_done: done, num_hosts_running: 0, num_hosts_not_run: hosts.size,
    hosts_not_run: [...hosts], total_instances: 0, total_errors: errors,
    overall_status: `${done === hosts.size ? 'ALL' : `${done} of ${hosts.size}`} hosts done. ${errors} errors.`,
    log: {},
  };
}

const auditRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-instance_usage_audit_log', policy: 'os_compute_api:os-instance-usage-audit-log:list', errors: [], handler: async (c) => {
    c.enforce('os_compute_api:os-instance-usage-audit-log:list', {});
    return { instance_usage_audit_logs: await auditLog(c) };
  } },
  { method: 'GET', path: '/os-instance_usage_audit_log/:before', policy: 'os_compute_api:os-instance-usage-audit-log:show', errors: [], handler: async (c) => {
    c.enforce('os_compute_api:os-instance-usage-audit-log:show', {});
    const before = parseBefore(c.params.before);
    if (!before) throw new BadRequest(`Invalid timestamp for date ${c.params.before}`);
    return { instance_usage_audit_log: await auditLog(c, before) };
  } },
];

// --- os-migrations ---

const V20_FILTERS = ['hidden', 'host', 'instance_uuid', 'source_compute', 'status', 'migration_type'];

function dateTime(c: Ctx, name: string): number | undefined {
  const v = q1(c.query, name);
  if (v === undefined) return undefined;
  const ok = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$/.test(v);
  const t = ok ? Date.parse(/([Zz]|[+-]\d{2}:\d{2})$/.test(v) ? v : `${v}Z`) : NaN;
  if (Number.isNaN(t)) throw new BadRequest(`Invalid input for query parameters ${name}. Value: ${v}. '${v}' is not a 'date-time'`);
  return t;
}

const LIVE_IN_PROGRESS = ['queued', 'preparing', 'running', 'post-migrating'];

function migrationView(c: Ctx, m: any) {
  const o: Record<string, unknown> = {
    id: m.id, status: m.status, created_at: isoMicro(m.created_at), updated_at: isoMicro(m.updated_at),
    source_node: m.source_node, source_compute: m.source_compute, dest_node: m.dest_node, dest_compute: m.dest_compute,
    dest_host: m.dest_host, old_instance_type_id: m.old_instance_type_id, new_instance_type_id: m.new_instance_type_id,
    instance_uuid: m.instance_uuid,
  };
  if (c.v.atLeast('2.23')) {
    o.migration_type = m.migration_type;
    if (m.migration_type === 'live-migration' && LIVE_IN_PROGRESS.includes(m.status)) o.links = c.link(`/servers/${m.instance_uuid}/migrations/${m.id}`);
  }
  if (c.v.atLeast('2.59')) o.uuid = m.uuid;
  if (c.v.atLeast('2.80')) { o.user_id = m.user_id; o.project_id = m.project_id; }
  return o;
}

async function migrationsIndex(c: Ctx) {
  c.enforce('os_compute_api:os-migrations:index', {});
  const v259 = c.v.atLeast('2.59');
  let limit = 1000;
  let marker: string | undefined;
  let since: number | undefined;
  let before: number | undefined;
  if (v259) {
    // From 2.59 the query schema refuses unknown parameters and repeated single ones.
    const allowed = new Set([...V20_FILTERS, 'limit', 'marker', 'changes-since']);
    if (c.v.atLeast('2.66')) allowed.add('changes-before');
    if (c.v.atLeast('2.80')) { allowed.add('user_id'); allowed.add('project_id'); }
    const extra = Object.keys(c.query).filter((k) => !allowed.has(k));
    if (extra.length) throw new BadRequest(`Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
    for (const k of ['limit', 'marker', 'changes-since', 'changes-before', 'user_id', 'project_id']) {
      const v = c.query[k];
      if (Array.isArray(v) && v.length > 1) throw new BadRequest(`Invalid input for query parameters ${k}. Value: ${pyRepr(v)}. ${pyRepr(v)} is too long`);
    }
    ({ limit, marker } = pageParams(c.query));
    since = dateTime(c, 'changes-since');
    before = c.v.atLeast('2.66') ? dateTime(c, 'changes-before') : undefined;
    if (since !== undefined && before !== undefined && before < since) throw new BadRequest('The value of changes-since must be less than or equal to changes-before.');
  }
  const f = (k: string): string => q1(c.query, k) ?? '';
  const statuses = qAll(c.query, 'status').flatMap((s) => s.split(','));
  let rows: any[] = [];
  let markerRow: any;
  for (const { db } of await c.api.cells.all()) {
    // Hidden migrations (the source side of a cross-cell move) are never shown, whatever `hidden` asks.
    let q = db.selectFrom('migrations').selectAll().where('deleted', '=', 0).where('hidden', '=', 0);
    const hidden = q1(c.query, 'hidden');
    if (hidden !== undefined && toBool(hidden)) q = q.where('hidden', '=', 1);
    if (f('host')) q = q.where((eb) => eb.or([eb('source_compute', '=', f('host')), eb('dest_compute', '=', f('host'))]));
    if (f('source_compute')) q = q.where('source_compute', '=', f('source_compute'));
    if (f('instance_uuid')) q = q.where('instance_uuid', '=', f('instance_uuid'));
    if (f('migration_type')) q = q.where('migration_type', '=', f('migration_type'));
    if (statuses.length) q = q.where('status', 'in', statuses);
    if (c.v.atLeast('2.80') && f('user_id')) q = q.where('user_id', '=', f('user_id'));
    if (c.v.atLeast('2.80') && f('project_id')) q = q.where('project_id', '=', f('project_id'));
    rows.push(...await q.orderBy('id').execute());
    if (marker !== undefined && !markerRow) markerRow = await db.selectFrom('migrations').selectAll().where('uuid', '=', marker).executeTakeFirst();
  }
  const upd = (m: any) => Date.parse(m.updated_at ?? m.created_at);
  if (since !== undefined) rows = rows.filter((m) => upd(m) >= since!);
  if (before !== undefined) rows = rows.filter((m) => upd(m) <= before!);
  if (!v259) return { migrations: rows.map((m) => migrationView(c, m)) };
  // 2.59: newest first (created_at, id descending), paged by uuid.
  const key = (m: any) => `${new Date(Date.parse(m.created_at)).toISOString()} ${String(m.id).padStart(12, '0')} ${m.uuid}`;
  rows.sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
  if (marker !== undefined) {
    if (!markerRow) throw new BadRequest(`Marker ${marker} could not be found.`);
    const mk = key(markerRow);
    rows = rows.filter((m) => key(m) < mk);
  }
  const page = rows.slice(0, limit);
  const body: Record<string, unknown> = { migrations: page.map((m) => migrationView(c, m)) };
  const asked = Math.min(Number(f('limit') ?? 1000), 1000);
  if (asked && page.length === asked) {
    const params = new URLSearchParams(c.req.url.includes('?') ? c.req.url.slice(c.req.url.indexOf('?') + 1) : '');
    params.set('marker', page[page.length - 1].uuid);
    body.migrations_links = [{ rel: 'next', href: `${c.api.publicUrl}/v2.1/os-migrations?${params.toString()}` }];
  }
  return body;
}

const migrationRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-migrations', policy: 'os_compute_api:os-migrations:index', errors: [], handler: migrationsIndex },
];

export const reportRoutes: ComputeRow[] = [...usageRoutes, ...hostRoutes, ...auditRoutes, ...migrationRoutes, ...externalEventRoutes];
