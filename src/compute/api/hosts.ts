// os-hosts (deprecated in Nova, gone after 2.42): enabled services by host with their zone, a
// compute host's resources (total, used now, used by its instances, per project), enabling and
// disabling a compute host (its nova-compute service); maintenance mode and host power actions
// are not supported by this cloud's drivers and answer 501 as with most of Nova's.
import { BadRequest, NotFound, NotImplementedYet } from '../../common/errors.ts';
import { now } from '../util.ts';
import { serviceIsUp } from '../store.ts';
import { validate } from './validation.ts';
import { q1, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { hostAzMap } from './servers.ts';
import { syncDisabledTrait } from './admin.ts';
import type { CellDb } from '../db/tables.ts';

const NOT_SUPPORTED = 'The requested functionality is not supported.';

async function index(c: Ctx) {
  c.enforce('os_compute_api:os-hosts:list', {});
  const zone = q1(c.query, 'zone');
  const azs = await hostAzMap(c.api.cells.db);
  const dfltAz = c.api.config.get<string>('DEFAULT', 'default_availability_zone');
  const internal = c.api.config.get<string>('DEFAULT', 'internal_service_availability_zone');
  const hosts: { host_name: string; service: string; zone: string }[] = [];
  for (const { db } of await c.api.cells.all()) {
    for (const s of await db.selectFrom('services').selectAll().where('disabled', '=', 0).orderBy('id').execute()) {
      if (s.binary === 'nova-osapi_compute' || s.binary === 'nova-metadata') continue;
      const z = s.binary === 'nova-compute' ? (azs.get(s.host) ?? dfltAz) : internal;
      if (zone && z !== zone) continue;
      hosts.push({ host_name: s.host, service: s.topic ?? String(s.binary).replace(/^nova-/, ''), zone: z });
    }
  }
  return { hosts };
}

/** The cell database of a host through its host mapping (HostMappingNotFound → 404). */
async function hostCell(c: Ctx, host: string): Promise<CellDb> {
  const cell = await c.api.cells.cellOfHost(host);
  if (!cell) throw new NotFound(`Host '${host}' is not mapped to any cell`);
  return c.api.cells.cellDb(cell);
}

/** Nova's _assert_host_exists: the host's nova-compute service, up when asked. */
async function computeService(c: Ctx, host: string, mustBeUp: boolean) {
  const db = await hostCell(c, host);
  const svc = await db.selectFrom('services').selectAll().where('host', '=', host).where('binary', '=', 'nova-compute').executeTakeFirst();
  if (!svc) throw new NotFound(`Compute host ${host} could not be found.`);
  if (mustBeUp && !serviceIsUp(svc, c.api.config.get<number>('DEFAULT', 'service_down_time'))) throw new BadRequest(`Compute service of ${host} is unavailable at this time.`);
  return { db, svc };
}

async function show(c: Ctx) {
  c.enforce('os_compute_api:os-hosts:show', {});
  const host = c.params.host;
  const db = await hostCell(c, host);
  const node = await db.selectFrom('compute_nodes').selectAll().where('host', '=', host).orderBy('id').executeTakeFirst();
  if (!node) throw new NotFound(`Compute host ${host} could not be found.`);
  const instances = await db.selectFrom('instances').select(['project_id', 'vcpus', 'memory_mb', 'root_gb', 'ephemeral_gb']).where('host', '=', host).where('deleted', '=', 0).orderBy('id').execute();
  const res = (project: string, cpu: number, memory_mb: number, disk_gb: number) => ({ resource: { host, project, cpu, memory_mb, disk_gb } });
  const out = [res('(total)', node.vcpus, node.memory_mb, node.local_gb), res('(used_now)', node.vcpus_used, node.memory_mb_used, node.local_gb_used)];
  const max = { cpu: 0, mem: 0, disk: 0 };
  const byProject = new Map<string, { cpu: number; mem: number; disk: number }>();
  for (const i of instances) {
    const p = byProject.get(i.project_id) ?? { cpu: 0, mem: 0, disk: 0 };
    byProject.set(i.project_id, p);
    for (const t of [max, p]) { t.cpu += i.vcpus; t.mem += i.memory_mb; t.disk += i.root_gb + i.ephemeral_gb; }
  }
  out.push(res('(used_max)', max.cpu, max.mem, max.disk));
  for (const [project, p] of byProject) out.push(res(project, p.cpu, p.mem, p.disk));
  return { host: out };
}

const ENABLE = ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE'];
const UPDATE_SCHEMA = {
  type: 'object',
  properties: { status: { type: 'string', enum: ENABLE }, maintenance_mode: { type: 'string', enum: ENABLE } },
  anyOf: [{ required: ['status'] }, { required: ['maintenance_mode'] }],
  additionalProperties: false,
};

async function update(c: Ctx) {
  const b = validate<{ status?: string; maintenance_mode?: string }>(UPDATE_SCHEMA, c.body);
  c.enforce('os_compute_api:os-hosts:update', {});
  const host = c.params.host;
  const result: Record<string, string> = { host };
  if (b.status !== undefined) {
    const enabled = b.status.trim().toLowerCase() === 'enable';
    const { db, svc } = await computeService(c, host, true);
    // Maintenance mode (evacuating a host) is not supported: refuse before changing anything.
    if (b.maintenance_mode !== undefined) throw new NotImplementedYet(NOT_SUPPORTED);
    await db.updateTable('services').set({ disabled: enabled ? 0 : 1, disabled_reason: null, updated_at: now() }).where('id', '=', svc.id).execute();
    // As os-services does: placement stops offering a disabled host's providers at once.
    await syncDisabledTrait(c, db, svc as { id: number; host: string; binary: string }, !enabled);
    result.status = enabled ? 'enabled' : 'disabled';
  }
  if (b.maintenance_mode !== undefined) {
    await computeService(c, host, true);
    throw new NotImplementedYet(NOT_SUPPORTED);
  }
  // Wrapped: a bare body with a `status` key would be read as a Result.
  return { body: result };
}

/** Host power actions: 403 (the row's policy), then 404 for an unknown host as Nova (Tempest checks both), then 501. */
function powerAction(action: 'startup' | 'shutdown' | 'reboot', rule: string): ComputeRow {
  return {
    method: 'GET', path: `/os-hosts/:host/${action}`, until: '2.42', policy: `os_compute_api:os-hosts:${rule}`, errors: [501], handler: async (c) => {
      await computeService(c, c.params.host, false);
      throw new NotImplementedYet(NOT_SUPPORTED);
    },
  };
}

export const hostRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-hosts', policy: 'os_compute_api:os-hosts:list', errors: [], until: '2.42', handler: index },
  { method: 'GET', path: '/os-hosts/:host', policy: 'os_compute_api:os-hosts:show', errors: [], until: '2.42', handler: show },
  { method: 'PUT', path: '/os-hosts/:host', policy: 'os_compute_api:os-hosts:update', errors: [501], until: '2.42', handler: update },
  powerAction('startup', 'start'),
  powerAction('shutdown', 'shutdown'),
  powerAction('reboot', 'reboot'),
];
