// os-simple-tenant-usage: hours, vCPU-hours, MB-hours and GB-hours per project over a period,
// from every instance (deleted ones included) that was running at some point in it, as Nova's
// simple_tenant_usage controller computes them; paging by instance from 2.40.
import { BadRequest, NotFound } from '../../common/errors.ts';
import { parseJson } from '../util.ts';
import type { InstanceRow } from '../objects.ts';
import { pageParams, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';

/** Microseconds since the epoch (Nova keeps microseconds in `start`/`stop`). */
type Us = number;

const MAX_LIMIT = 1000;

/** Python's strptime with Nova's three accepted formats; undefined when none matches. */
export function parseNovaTime(s: string, formats: ('T' | 'T.f' | ' .f' | ' ')[] = ['T', 'T.f', ' .f']): Us | undefined {
  for (const f of formats) {
    const sep = f.startsWith('T') ? 'T' : ' ';
    const frac = f.endsWith('.f');
    const re = new RegExp(`^(\\d{4})-(\\d{1,2})-(\\d{1,2})${sep}(\\d{1,2}):(\\d{1,2}):(\\d{1,2})${frac ? '\\.(\\d{1,6})' : ''}$`);
    const m = re.exec(s);
    if (!m) continue;
    const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 61) continue;
    const ms = Date.UTC(y, mo - 1, d, h, mi, Math.min(se, 59));
    if (new Date(ms).getUTCDate() !== d) continue;
    return ms * 1000 + (frac ? Number(m[7].padEnd(6, '0')) : 0);
  }
  return undefined;
}

/** oslo's PERFECT_TIME_FORMAT, how Nova serializes datetimes: 2026-11-24T15:33:28.123456 */
export function fmtMicro(us: Us): string {
  const ms = Math.floor(us / 1000);
  return `${new Date(ms).toISOString().slice(0, 19)}.${String(Math.round(us - Math.floor(us / 1e6) * 1e6)).padStart(6, '0')}`;
}

const toUs = (s: string | null): Us | undefined => (s ? Date.parse(s.endsWith('Z') || /[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`) * 1000 : undefined);
const nowUs = (): Us => Date.now() * 1000;

/** The query string as parse_qs sees it: first value of each key, blank values dropped. */
function qs(c: Ctx): Map<string, string> {
  const out = new Map<string, string>();
  const raw = c.req.url.includes('?') ? c.req.url.slice(c.req.url.indexOf('?') + 1) : '';
  for (const [k, v] of new URLSearchParams(raw)) if (v !== '' && !out.has(k)) out.set(k, v);
  return out;
}

function period(c: Ctx): { start: Us; stop: Us; detailed: boolean } {
  const q = qs(c);
  const parse = (v: string | undefined): Us => {
    if (v === undefined) return nowUs();
    const t = parseNovaTime(v);
    if (t === undefined) throw new BadRequest('Invalid datetime string: Datetime is in invalid format');
    return t;
  };
  const start = parse(q.get('start'));
  let stop = parse(q.get('end'));
  if (!q.has('end') && !q.has('start')) stop = start + 1;
  if (!(start < stop)) throw new BadRequest('Invalid start time. The start time cannot occur after the end time.');
  return { start, stop: Math.min(stop, nowUs()), detailed: q.get('detailed') === '1' };
}

function hoursFor(launched: Us | undefined, terminated: Us | undefined, start: Us, stop: Us): number {
  if (terminated !== undefined && terminated < start) return 0;
  if (launched === undefined || launched > stop) return 0;
  const from = Math.max(launched, start);
  const to = terminated !== undefined ? Math.min(stop, terminated) : stop;
  return (to - from) / 3.6e9;
}

interface Usage {
  tenant_id: string; server_usages?: Record<string, unknown>[];
  total_local_gb_usage: number; total_vcpus_usage: number; total_memory_mb_usage: number; total_hours: number;
  start: string; stop: string;
}

/** Instances active in the window, every cell, ordered by (created_at, uuid), after the marker. */
async function instancesInWindow(c: Ctx, start: Us, stop: Us, tenant: string | undefined, limit: number, marker: string | undefined): Promise<InstanceRow[]> {
  const rows: InstanceRow[] = [];
  let markerRow: InstanceRow | undefined;
  for (const { db } of await c.api.cells.all()) {
    let q = db.selectFrom('instances').selectAll().where('launched_at', 'is not', null);
    if (tenant !== undefined) q = q.where('project_id', '=', tenant);
    for (const r of await q.execute() as InstanceRow[]) {
      const term = toUs(r.terminated_at);
      if ((term === undefined || term > start) && toUs(r.launched_at)! < stop) rows.push(r);
    }
    if (marker !== undefined && !markerRow) markerRow = await db.selectFrom('instances').selectAll().where('uuid', '=', marker).executeTakeFirst() as InstanceRow | undefined;
  }
  const key = (r: InstanceRow) => `${new Date(Date.parse(r.created_at)).toISOString()} ${r.uuid}`;
  rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  let out = rows;
  if (marker !== undefined) {
    if (!markerRow) throw new BadRequest(`Marker ${marker} could not be found.`);
    const mk = key(markerRow);
    out = rows.filter((r) => key(r) > mk);
  }
  return out.slice(0, limit);
}

async function usagesForPeriod(c: Ctx, start: Us, stop: Us, tenant: string | undefined, detailed: boolean, limit: number, marker: string | undefined) {
  const byTenant = new Map<string, Usage>();
  const all: Record<string, unknown>[] = [];
  const now = nowUs();
  for (const inst of await instancesInWindow(c, start, stop, tenant, limit, marker)) {
    const launched = toUs(inst.launched_at)!;
    const terminated = toUs(inst.terminated_at);
    const flavor = parseJson<{ name?: string; memory_mb?: number; vcpus?: number; root_gb?: number; ephemeral_gb?: number }>(inst.flavor, {});
    const hours = hoursFor(launched, terminated, start, stop);
    const memory = flavor.memory_mb ?? inst.memory_mb;
    const disk = (flavor.root_gb ?? inst.root_gb) + (flavor.ephemeral_gb ?? inst.ephemeral_gb);
    const vcpus = flavor.vcpus ?? inst.vcpus;
    const state = terminated !== undefined ? 'terminated' : inst.vm_state;
    const info = {
      instance_id: inst.uuid, name: inst.display_name, hours, flavor: flavor.name ?? '', tenant_id: inst.project_id,
      memory_mb: memory, local_gb: disk, vcpus,
      started_at: fmtMicro(launched), ended_at: terminated !== undefined ? fmtMicro(terminated) : null, state,
      uptime: Math.trunc(((terminated ?? now) - launched) / 1e6),
    };
    let u = byTenant.get(inst.project_id);
    if (!u) {
      u = { tenant_id: inst.project_id, ...(detailed ? { server_usages: [] } : {}), total_local_gb_usage: 0, total_vcpus_usage: 0, total_memory_mb_usage: 0, total_hours: 0, start: fmtMicro(start), stop: fmtMicro(stop) };
      byTenant.set(inst.project_id, u);
    }
    u.total_local_gb_usage += disk * hours;
    u.total_vcpus_usage += vcpus * hours;
    u.total_memory_mb_usage += memory * hours;
    u.total_hours += hours;
    all.push(info);
    if (detailed) u.server_usages!.push(info);
  }
  return { usages: [...byTenant.values()], all };
}

/** Nova's _get_collection_links: a next link when the page is full. */
function nextLinks(c: Ctx, items: Record<string, unknown>[], path: string): { rel: string; href: string }[] | undefined {
  const asked = Number(qs(c).get('limit') ?? MAX_LIMIT);
  const max = Math.min(Number.isFinite(asked) ? asked : MAX_LIMIT, MAX_LIMIT);
  if (!max || max !== items.length) return undefined;
  const params = new URLSearchParams(c.req.url.includes('?') ? c.req.url.slice(c.req.url.indexOf('?') + 1) : '');
  params.set('marker', String(items[items.length - 1].instance_id));
  return [{ rel: 'next', href: `${c.api.publicUrl}/v2.1${path}?${params.toString()}` }];
}

/** From 2.75 the query schemas refuse parameters they do not name. */
function strictQuery(c: Ctx, allowed: string[]): void {
  if (!c.v.atLeast('2.75')) return;
  const extra = Object.keys(c.query).filter((k) => !allowed.includes(k));
  if (extra.length) throw new BadRequest(`Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
}

function paging(c: Ctx, links: boolean): { limit: number; marker?: string } {
  return links ? pageParams(c.query, MAX_LIMIT) : { limit: MAX_LIMIT };
}

async function index(c: Ctx, links: boolean) {
  // `/os-simple-tenant-usage/` is a show with an empty tenant id: no such route in Nova.
  if (c.req.url.split('?')[0].endsWith('/')) throw new NotFound('The resource could not be found.');
  strictQuery(c, ['start', 'end', 'detailed', 'limit', 'marker']);
  c.enforce('os_compute_api:os-simple-tenant-usage:list');
  const { start, stop, detailed } = period(c);
  const { limit, marker } = paging(c, links);
  const { usages, all } = await usagesForPeriod(c, start, stop, undefined, detailed, limit, marker);
  const body: Record<string, unknown> = { tenant_usages: usages };
  const l = links ? nextLinks(c, all, '/os-simple-tenant-usage') : undefined;
  if (l) body.tenant_usages_links = l;
  return body;
}

async function show(c: Ctx, links: boolean) {
  const tenant = c.params.tenant_id;
  strictQuery(c, ['start', 'end', 'limit', 'marker']);
  c.enforce('os_compute_api:os-simple-tenant-usage:show', { project_id: tenant });
  const { start, stop } = period(c);
  const { limit, marker } = paging(c, links);
  const { usages, all } = await usagesForPeriod(c, start, stop, tenant, true, limit, marker);
  const body: Record<string, unknown> = { tenant_usage: usages[0] ?? {} };
  const l = links ? nextLinks(c, all, `/os-simple-tenant-usage/${tenant}`) : undefined;
  if (l) body.tenant_usage_links = l;
  return body;
}

export const usageRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-simple-tenant-usage', policy: 'os_compute_api:os-simple-tenant-usage:list', errors: [], until: '2.39', handler: (c) => index(c, false) },
  { method: 'GET', path: '/os-simple-tenant-usage', policy: 'os_compute_api:os-simple-tenant-usage:list', errors: [], since: '2.40', handler: (c) => index(c, true) },
  { method: 'GET', path: '/os-simple-tenant-usage/:tenant_id', policy: 'os_compute_api:os-simple-tenant-usage:show', errors: [], until: '2.39', handler: (c) => show(c, false) },
  { method: 'GET', path: '/os-simple-tenant-usage/:tenant_id', policy: 'os_compute_api:os-simple-tenant-usage:show', errors: [], since: '2.40', handler: (c) => show(c, true) },
];
