// Operator-facing resources: os-services, os-hypervisors, os-availability-zone, limits,
// os-quota-sets and os-quota-class-sets, os-server-groups, extensions.
import { randomUUID } from 'node:crypto';
import { BadRequest, Conflict, NotFound, OverQuota } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { isoMicro, isUuid, normUuid, now, parseJson } from '../util.ts';
import { serviceIsUp, insertId } from '../store.ts';
import { RESOURCES, LEGACY_RESOURCES, classLimits, countUsage, quotaLimits, type Resource } from '../quota.ts';
import type { CellMapping } from '../cells.ts';
import { validate, P, toBool } from './validation.ts';
import { pageParams, q1, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { RESPONSES } from './response-schemas.ts';
import { hostAzMap } from './servers.ts';
import type { CellDb } from '../db/tables.ts';

// --- services ---
interface SvcRow { id: number; uuid: string; host: string; binary: string; topic: string | null; report_count: number; disabled: number; disabled_reason: string | null; forced_down: number; last_seen_up: string | null; version: number; created_at: string; updated_at: string | null }

async function allServices(c: Ctx): Promise<{ svc: SvcRow; cell: CellMapping; db: CellDb }[]> {
  const out: { svc: SvcRow; cell: CellMapping; db: CellDb }[] = [];
  for (const { cell, db } of await c.api.cells.all()) {
    for (const s of await db.selectFrom('services').selectAll().orderBy('id').execute()) out.push({ svc: s as SvcRow, cell, db });
  }
  return out;
}

function svcView(c: Ctx, s: SvcRow, azs: Map<string, string>) {
  const downTime = c.api.config.get<number>('DEFAULT', 'service_down_time');
  const zone = s.binary === 'nova-compute' ? (azs.get(s.host) ?? c.api.config.get<string>('DEFAULT', 'default_availability_zone')) : c.api.config.get<string>('DEFAULT', 'internal_service_availability_zone');
  const o: Record<string, unknown> = {
    binary: s.binary, host: s.host, id: c.v.atLeast('2.53') ? s.uuid : s.id, zone,
    status: s.disabled ? 'disabled' : 'enabled', state: serviceIsUp(s, downTime) ? 'up' : 'down',
    updated_at: isoMicro(s.updated_at ?? s.last_seen_up), disabled_reason: s.disabled_reason,
  };
  if (c.v.atLeast('2.11')) o.forced_down = !!s.forced_down;
  return o;
}

async function servicesList(c: Ctx) {
  c.enforce('os_compute_api:os-services:list');
  const host = q1(c.query, 'host');
  const binary = q1(c.query, 'binary');
  const azs = await hostAzMap(c.api.cells.db);
  const rows = (await allServices(c)).filter(({ svc }) => (!host || svc.host === host) && (!binary || svc.binary === binary));
  return { services: rows.map(({ svc }) => svcView(c, svc, azs)) };
}

/** As Nova: a disabled compute's providers carry COMPUTE_STATUS_DISABLED, so placement skips them at once. */
export async function syncDisabledTrait(c: Ctx, db: CellDb, svc: Pick<SvcRow, 'id' | 'host' | 'binary'>, disabled: boolean): Promise<void> {
  if (svc.binary !== 'nova-compute') return;
  const nodes = await db.selectFrom('compute_nodes').select('uuid').where('service_id', '=', svc.id).execute();
  for (const n of nodes) {
    await c.api.placement.setTraits(n.uuid, disabled ? ['COMPUTE_STATUS_DISABLED'] : [], disabled ? [] : ['COMPUTE_STATUS_DISABLED'])
      .catch((e) => c.api.logger.warn({ err: e, host: svc.host }, 'could not update COMPUTE_STATUS_DISABLED in placement'));
  }
}

async function findService(c: Ctx, host: string, binary: string) {
  const all = await allServices(c);
  const hostRows = all.filter((x) => x.svc.host === host);
  if (!hostRows.length) throw new NotFound(`Host '${host}' is not mapped to any cell`);
  const s = hostRows.find((x) => x.svc.binary === binary);
  if (!s) throw new NotFound(`Service ${binary} on host ${host} could not be found.`);
  return s;
}

async function servicesAction(c: Ctx) {
  c.enforce('os_compute_api:os-services:update');
  const action = c.params.id;
  const base = { host: { type: 'string', minLength: 1, maxLength: 255 }, binary: { type: 'string', minLength: 1, maxLength: 255 } };
  if (action === 'enable' || action === 'disable') {
    const b = validate({ type: 'object', properties: base, required: ['host', 'binary'], additionalProperties: false }, c.body);
    const s = await findService(c, b.host, b.binary);
    await s.db.updateTable('services').set({ disabled: action === 'disable' ? 1 : 0, disabled_reason: null, updated_at: now() }).where('id', '=', s.svc.id).execute();
    await syncDisabledTrait(c, s.db, s.svc, action === 'disable');
    return { service: { host: b.host, binary: b.binary, status: action === 'disable' ? 'disabled' : 'enabled' } };
  }
  if (action === 'disable-log-reason') {
    const b = validate({ type: 'object', properties: { ...base, disabled_reason: { type: 'string', minLength: 1, maxLength: 255 } }, required: ['host', 'binary', 'disabled_reason'], additionalProperties: false }, c.body);
    const s = await findService(c, b.host, b.binary);
    await s.db.updateTable('services').set({ disabled: 1, disabled_reason: b.disabled_reason, updated_at: now() }).where('id', '=', s.svc.id).execute();
    await syncDisabledTrait(c, s.db, s.svc, true);
    return { service: { host: b.host, binary: b.binary, status: 'disabled', disabled_reason: b.disabled_reason } };
  }
  if (action === 'force-down' && c.v.atLeast('2.11')) {
    const b = validate({ type: 'object', properties: { ...base, forced_down: P.bool }, required: ['host', 'binary', 'forced_down'], additionalProperties: false }, c.body);
    const s = await findService(c, b.host, b.binary);
    await s.db.updateTable('services').set({ forced_down: toBool(b.forced_down) ? 1 : 0, updated_at: now() }).where('id', '=', s.svc.id).execute();
    return { service: { host: b.host, binary: b.binary, forced_down: toBool(b.forced_down) } };
  }
  throw new NotFound('Unknown action');
}

async function serviceUpdate253(c: Ctx) {
  c.enforce('os_compute_api:os-services:update');
  const b = validate({ type: 'object', properties: { status: { type: 'string', enum: ['enabled', 'disabled'] }, disabled_reason: { type: 'string', minLength: 1, maxLength: 255 }, forced_down: P.bool }, additionalProperties: false }, c.body ?? {});
  if (!isUuid(c.params.id)) throw new BadRequest(`Invalid uuid ${c.params.id}`);
  const s = (await allServices(c)).find((x) => x.svc.uuid === normUuid(c.params.id));
  if (!s) throw new NotFound(`Service ${c.params.id} could not be found.`);
  if (b.disabled_reason !== undefined && b.status !== 'disabled') throw new BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.");
  if (b.status === undefined && b.forced_down === undefined) throw new BadRequest("At least one of 'status' or 'forced_down' must be specified in the request body.");
  if (s.svc.binary !== 'nova-compute') throw new BadRequest(`Updating a ${s.svc.binary} service is not supported. Only nova-compute services can be updated.`);
  const upd: Record<string, unknown> = { updated_at: now() };
  if (b.status !== undefined) { upd.disabled = b.status === 'disabled' ? 1 : 0; upd.disabled_reason = b.status === 'disabled' ? (b.disabled_reason ?? null) : null; }
  if (b.forced_down !== undefined) upd.forced_down = toBool(b.forced_down) ? 1 : 0;
  await s.db.updateTable('services').set(upd).where('id', '=', s.svc.id).execute();
  if (b.status !== undefined) await syncDisabledTrait(c, s.db, s.svc, b.status === 'disabled');
  const row = await s.db.selectFrom('services').selectAll().where('id', '=', s.svc.id).executeTakeFirst();
  return { service: svcView(c, row as SvcRow, await hostAzMap(c.api.cells.db)) };
}

async function serviceDelete(c: Ctx) {
  c.enforce('os_compute_api:os-services:delete');
  const id = c.params.id;
  const all = await allServices(c);
  let s;
  if (c.v.atLeast('2.53')) {
    if (!isUuid(id)) throw new BadRequest(`Invalid uuid ${id}`);
    s = all.find((x) => x.svc.uuid === normUuid(id));
  } else {
    if (!/^\d+$/.test(id)) throw new BadRequest(`Service id in request ${id} is invalid.`);
    s = all.find((x) => x.svc.id === Number(id));
  }
  if (!s) throw new NotFound(`Service ${id} could not be found.`);
  if (s.svc.binary === 'nova-compute') {
    const inst = await s.db.selectFrom('instances').select('id').where('host', '=', s.svc.host).where('deleted', '=', 0).limit(1).execute();
    if (inst.length) throw new Conflict(`Unable to delete compute service that is hosting instances. Migrate or delete the instances first.`);
    const nodes = await s.db.selectFrom('compute_nodes').select('uuid').where('service_id', '=', s.svc.id).execute();
    // As Nova: a provider placement cannot delete (still has allocations) is left for the operator, with a log line.
    for (const n of nodes) {
      await c.api.placement.deleteProvider(n.uuid).catch((err) => c.api.logger.warn({ err, provider: n.uuid, host: s.svc.host, requestId: c.req.id }, 'could not delete the resource provider of a deleted compute service'));
    }
    await s.db.deleteFrom('compute_nodes').where('service_id', '=', s.svc.id).execute();
    await c.api.cells.db.deleteFrom('host_mappings').where('host', '=', s.svc.host).execute();
  }
  await s.db.deleteFrom('services').where('id', '=', s.svc.id).execute();
  return { status: 204 };
}

// --- hypervisors ---
async function allNodes(c: Ctx) {
  const out: { node: any; svc: SvcRow | undefined; db: CellDb }[] = [];
  for (const { db } of await c.api.cells.all({ includeCell0: false })) {
    const nodes = await db.selectFrom('compute_nodes').selectAll().orderBy('id').execute();
    const svcs = await db.selectFrom('services').selectAll().where('binary', '=', 'nova-compute').execute() as SvcRow[];
    for (const n of nodes) out.push({ node: n, svc: svcs.find((s) => s.id === n.service_id), db });
  }
  return out;
}

function hvView(c: Ctx, n: any, svc: SvcRow | undefined, detail: boolean, servers?: { name: string; uuid: string }[]) {
  const downTime = c.api.config.get<number>('DEFAULT', 'service_down_time');
  const uuidIds = c.v.atLeast('2.53');
  const o: Record<string, unknown> = {
    id: uuidIds ? n.uuid : n.id, hypervisor_hostname: n.hypervisor_hostname,
    state: svc && serviceIsUp(svc, downTime) ? 'up' : 'down', status: svc?.disabled ? 'disabled' : 'enabled',
  };
  if (detail) {
    o.hypervisor_type = n.hypervisor_type;
    o.hypervisor_version = n.hypervisor_version;
    o.host_ip = n.host_ip;
    o.service = { id: uuidIds ? svc?.uuid : svc?.id, host: n.host, disabled_reason: svc?.disabled_reason ?? null };
    if (c.v.atMost('2.87')) {
      Object.assign(o, {
        vcpus: n.vcpus, memory_mb: n.memory_mb, local_gb: n.local_gb, vcpus_used: n.vcpus_used, memory_mb_used: n.memory_mb_used,
        local_gb_used: n.local_gb_used, free_ram_mb: n.memory_mb - n.memory_mb_used, free_disk_gb: n.local_gb - n.local_gb_used,
        current_workload: 0, running_vms: n.running_vms, disk_available_least: n.local_gb - n.local_gb_used,
        cpu_info: c.v.atLeast('2.28') ? parseJson(n.cpu_info, {}) : n.cpu_info,
      });
    } else {
      o.uptime = null;
    }
  }
  if (servers !== undefined) o.servers = servers;
  return o;
}

async function serversOn(db: CellDb, host: string, node: string) {
  const rows = await db.selectFrom('instances').select(['uuid', 'display_name']).where('host', '=', host).where('node', '=', node).where('deleted', '=', 0).execute();
  return rows.map((r) => ({ name: r.display_name ?? '', uuid: r.uuid }));
}

async function hypervisorsList(c: Ctx, detail: boolean) {
  c.enforce(detail ? 'os_compute_api:os-hypervisors:list-detail' : 'os_compute_api:os-hypervisors:list');
  let nodes = await allNodes(c);
  const v253 = c.v.atLeast('2.53');
  const pattern = v253 ? q1(c.query, 'hypervisor_hostname_pattern') : undefined;
  const withServers = v253 && q1(c.query, 'with_servers') !== undefined && toBool(q1(c.query, 'with_servers'));
  if (pattern !== undefined) {
    nodes = nodes.filter((x) => x.node.hypervisor_hostname.includes(pattern));
    if (!nodes.length) throw new NotFound(`No hypervisor matching '${pattern}' could be found.`);
  }
  if (c.v.atLeast('2.33') && pattern === undefined) {
    const { limit, marker } = pageParams(c.query);
    if (marker !== undefined) {
      const i = nodes.findIndex((x) => String(v253 ? x.node.uuid : x.node.id) === marker);
      if (i < 0) throw new BadRequest(`marker [${marker}] not found`);
      nodes = nodes.slice(i + 1);
    }
    const more = nodes.length > limit;
    nodes = nodes.slice(0, limit);
    const body: Record<string, unknown> = { hypervisors: await Promise.all(nodes.map(async (x) => hvView(c, x.node, x.svc, detail, withServers ? await serversOn(x.db, x.node.host, x.node.hypervisor_hostname) : undefined))) };
    if (more) body.hypervisors_links = [{ rel: 'next', href: `${c.api.publicUrl}/v2.1/os-hypervisors${detail ? '/detail' : ''}?limit=${limit}&marker=${v253 ? nodes[nodes.length - 1].node.uuid : nodes[nodes.length - 1].node.id}` }];
    return body;
  }
  return { hypervisors: await Promise.all(nodes.map(async (x) => hvView(c, x.node, x.svc, detail, withServers ? await serversOn(x.db, x.node.host, x.node.hypervisor_hostname) : undefined))) };
}

async function findNode(c: Ctx, id: string) {
  const nodes = await allNodes(c);
  if (c.v.atLeast('2.53')) {
    if (!isUuid(id)) throw new BadRequest(`Invalid uuid ${id}`);
    const x = nodes.find((n) => n.node.uuid === normUuid(id));
    if (!x) throw new NotFound(`Hypervisor with ID '${id}' could not be found.`);
    return x;
  }
  const x = /^\d+$/.test(id) ? nodes.find((n) => n.node.id === Number(id)) : undefined;
  if (!x) throw new NotFound(`Hypervisor with ID '${id}' could not be found.`);
  return x;
}

const hypervisorRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-hypervisors', policy: 'os_compute_api:os-hypervisors:list', errors: [], handler: (c) => hypervisorsList(c, false) },
  { method: 'GET', path: '/os-hypervisors/detail', policy: 'os_compute_api:os-hypervisors:list-detail', errors: [], handler: (c) => hypervisorsList(c, true) },
  { method: 'GET', path: '/os-hypervisors/statistics', policy: 'os_compute_api:os-hypervisors:statistics', errors: [], until: '2.87', handler: async (c) => {
    c.enforce('os_compute_api:os-hypervisors:statistics');
    const s = { count: 0, vcpus: 0, memory_mb: 0, local_gb: 0, vcpus_used: 0, memory_mb_used: 0, local_gb_used: 0, free_ram_mb: 0, free_disk_gb: 0, current_workload: 0, running_vms: 0, disk_available_least: 0 };
    for (const { node: n } of await allNodes(c)) {
      s.count++; s.vcpus += n.vcpus; s.memory_mb += n.memory_mb; s.local_gb += n.local_gb; s.vcpus_used += n.vcpus_used;
      s.memory_mb_used += n.memory_mb_used; s.local_gb_used += n.local_gb_used; s.free_ram_mb += n.memory_mb - n.memory_mb_used;
      s.free_disk_gb += n.local_gb - n.local_gb_used; s.running_vms += n.running_vms; s.disk_available_least += n.local_gb - n.local_gb_used;
    }
    return { hypervisor_statistics: s };
  } },
  { method: 'GET', path: '/os-hypervisors/:id', policy: 'os_compute_api:os-hypervisors:show', errors: [], handler: async (c) => {
    c.enforce('os_compute_api:os-hypervisors:show');
    const withServers = c.v.atLeast('2.53') && q1(c.query, 'with_servers') !== undefined && toBool(q1(c.query, 'with_servers'));
    const x = await findNode(c, c.params.id);
    return { hypervisor: hvView(c, x.node, x.svc, true, withServers ? await serversOn(x.db, x.node.host, x.node.hypervisor_hostname) : undefined) };
  } },
  { method: 'GET', path: '/os-hypervisors/:id/uptime', policy: 'os_compute_api:os-hypervisors:uptime', errors: [501], until: '2.87', handler: async (c) => {
    c.enforce('os_compute_api:os-hypervisors:uptime');
    const x = await findNode(c, c.params.id);
    return { hypervisor: { ...hvView(c, x.node, x.svc, false), uptime: ' 00:00:00 up 1 day,  0 users,  load average: 0.00, 0.00, 0.00' } };
  } },
  { method: 'GET', path: '/os-hypervisors/:id/search', policy: 'os_compute_api:os-hypervisors:search', errors: [], until: '2.52', handler: async (c) => {
    c.enforce('os_compute_api:os-hypervisors:search');
    const nodes = (await allNodes(c)).filter((x) => x.node.hypervisor_hostname.includes(c.params.id));
    if (!nodes.length) throw new NotFound(`No hypervisor matching '${c.params.id}' could be found.`);
    return { hypervisors: nodes.map((x) => hvView(c, x.node, x.svc, false)) };
  } },
  { method: 'GET', path: '/os-hypervisors/:id/servers', policy: 'os_compute_api:os-hypervisors:servers', errors: [], until: '2.52', handler: async (c) => {
    c.enforce('os_compute_api:os-hypervisors:servers');
    const nodes = (await allNodes(c)).filter((x) => x.node.hypervisor_hostname.includes(c.params.id));
    if (!nodes.length) throw new NotFound(`No hypervisor matching '${c.params.id}' could be found.`);
    return { hypervisors: await Promise.all(nodes.map(async (x) => {
      const s = await serversOn(x.db, x.node.host, x.node.hypervisor_hostname);
      return { ...hvView(c, x.node, x.svc, false), ...(s.length ? { servers: s } : {}) };
    })) };
  } },
];

// --- availability zones ---
async function azList(c: Ctx, detail: boolean) {
  c.enforce(detail ? 'os_compute_api:os-availability-zone:detail' : 'os_compute_api:os-availability-zone:list');
  const downTime = c.api.config.get<number>('DEFAULT', 'service_down_time');
  const dflt = c.api.config.get<string>('DEFAULT', 'default_availability_zone');
  const internal = c.api.config.get<string>('DEFAULT', 'internal_service_availability_zone');
  const azs = await hostAzMap(c.api.cells.db);
  const zones = new Map<string, { available: boolean; hosts: Record<string, Record<string, unknown>> }>();
  for (const { svc } of await allServices(c)) {
    const zone = svc.binary === 'nova-compute' ? (azs.get(svc.host) ?? dflt) : internal;
    if (!detail && zone === internal) continue;
    const z = zones.get(zone) ?? { available: false, hosts: {} };
    const up = serviceIsUp(svc, downTime);
    if (!svc.disabled && up) z.available = true;
    (z.hosts[svc.host] ??= {})[svc.binary] = { available: up, active: !svc.disabled, updated_at: isoMicro(svc.updated_at ?? svc.last_seen_up) };
    zones.set(zone, z);
  }
  return {
    availabilityZoneInfo: [...zones.entries()].map(([name, z]) => ({ zoneName: name, zoneState: { available: z.available }, hosts: detail ? z.hosts : null })),
  };
}

// --- limits and quotas ---
const LEGACY_NETWORK = ['floating_ips', 'fixed_ips', 'security_groups', 'security_group_rules'];

async function limits(c: Ctx) {
  c.enforce('os_compute_api:limits');
  let project = c.auth.projectId ?? '';
  const other = q1(c.query, 'tenant_id');
  if (other !== undefined && other !== project) { c.enforce('os_compute_api:limits:other_project'); project = other; }
  const l = await quotaLimits(c.api, project);
  const u = await countUsage(c.api.cells, project);
  const abs: Record<string, number> = {
    maxTotalInstances: l.instances, maxTotalCores: l.cores, maxTotalRAMSize: l.ram, maxServerMeta: l.metadata_items, maxImageMeta: l.metadata_items,
    maxPersonality: l.injected_files, maxPersonalitySize: l.injected_file_content_bytes, maxTotalKeypairs: l.key_pairs,
    maxServerGroups: l.server_groups, maxServerGroupMembers: l.server_group_members,
    maxTotalFloatingIps: -1, maxSecurityGroups: -1, maxSecurityGroupRules: -1,
    totalRAMUsed: u.ram, totalCoresUsed: u.cores, totalInstancesUsed: u.instances, totalFloatingIpsUsed: 0, totalSecurityGroupsUsed: 0, totalServerGroupsUsed: u.server_groups,
  };
  if (c.v.atLeast('2.36')) for (const k of ['maxTotalFloatingIps', 'maxSecurityGroups', 'maxSecurityGroupRules', 'totalFloatingIpsUsed', 'totalSecurityGroupsUsed']) delete abs[k];
  if (c.v.atLeast('2.57')) for (const k of ['maxPersonality', 'maxPersonalitySize']) delete abs[k];
  return { limits: { rate: [], absolute: abs } };
}

function visibleResources(c: Ctx): string[] {
  let r: string[] = [...RESOURCES];
  if (c.v.atMost('2.35')) r = [...r, ...LEGACY_NETWORK];
  if (c.v.atLeast('2.57')) r = r.filter((x) => !x.startsWith('injected_file'));
  return r;
}

function quotaBody(c: Ctx, values: Record<string, number>, id?: string) {
  const o: Record<string, unknown> = id !== undefined ? { id } : {};
  for (const r of visibleResources(c)) o[r] = LEGACY_NETWORK.includes(r) ? (values[r] ?? -1) : values[r];
  return o;
}

async function quotaShow(c: Ctx, detail: boolean) {
  c.enforce(detail ? 'os_compute_api:os-quota-sets:detail' : 'os_compute_api:os-quota-sets:show', { project_id: c.params.project });
  const userId = q1(c.query, 'user_id');
  const l = await quotaLimits(c.api, c.params.project, userId);
  if (!detail) return { quota_set: quotaBody(c, l, c.params.project) };
  const u = await countUsage(c.api.cells, c.params.project, userId);
  const kp = userId ? Number((await c.api.cells.db.selectFrom('key_pairs').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).executeTakeFirst())?.n ?? 0) : 0;
  const used: Record<string, number> = { instances: u.instances, cores: u.cores, ram: u.ram, server_groups: u.server_groups, key_pairs: kp };
  const o: Record<string, unknown> = { id: c.params.project };
  for (const r of visibleResources(c)) o[r] = { in_use: used[r] ?? 0, limit: LEGACY_NETWORK.includes(r) ? -1 : (l as Record<string, number>)[r], reserved: 0 };
  return { quota_set: o };
}

function quotaUpdateSchema(c: Ctx, withForce: boolean) {
  const props: Record<string, unknown> = {};
  for (const r of visibleResources(c)) props[r] = { type: ['integer', 'string'], pattern: '^-?[0-9]+$', minimum: -1, maximum: 2147483647 };
  if (c.v.atMost('2.35')) props.networks = props.fixed_ips;
  if (withForce) props.force = P.bool;
  return props;
}

async function quotaUpdate(c: Ctx) {
  c.enforce('os_compute_api:os-quota-sets:update', { project_id: c.params.project });
  const b = validate({ type: 'object', properties: { quota_set: { type: 'object', properties: quotaUpdateSchema(c, true), additionalProperties: false } }, required: ['quota_set'], additionalProperties: false }, c.body).quota_set;
  const userId = q1(c.query, 'user_id');
  const force = b.force !== undefined && toBool(b.force);
  const db = c.api.cells.db;
  const usage = await countUsage(c.api.cells, c.params.project, userId);
  for (const [k, raw] of Object.entries(b)) {
    if (k === 'force' || !((RESOURCES as readonly string[]).includes(k) || LEGACY_RESOURCES.includes(k))) continue;
    const limit = Number(raw);
    const used = (usage as unknown as Record<string, number>)[k];
    if (!force && limit >= 0 && used !== undefined && limit < used) {
      throw new BadRequest(`Quota limit ${limit} for ${k} must be greater than or equal to already used and reserved ${used}.`);
    }
    const table = userId ? 'project_user_quotas' : 'quotas';
    let uq = db.updateTable(table).set({ hard_limit: limit }).where('project_id', '=', c.params.project).where('resource', '=', k);
    if (userId) uq = uq.where('user_id', '=', userId);
    const r = await uq.executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      try {
        await db.insertInto(table).values({ project_id: c.params.project, resource: k, hard_limit: limit, ...(userId ? { user_id: userId } : {}) }).execute();
      } catch (e) { if (!isUniqueViolation(e)) throw e; }
    }
  }
  return { quota_set: quotaBody(c, await quotaLimits(c.api, c.params.project, userId)) };
}

async function quotaClassShow(c: Ctx) {
  c.enforce('os_compute_api:os-quota-class-sets:show');
  const l = await classLimits(c.api.cells.db, c.api.config, c.params.id);
  return { quota_class_set: quotaBody(c, l, c.params.id) };
}

async function quotaClassUpdate(c: Ctx) {
  c.enforce('os_compute_api:os-quota-class-sets:update');
  if (!/^[a-zA-Z0-9 _-]{1,255}$/.test(c.params.id)) throw new BadRequest(`Invalid quota class name ${c.params.id}`);
  const b = validate({ type: 'object', properties: { quota_class_set: { type: 'object', properties: quotaUpdateSchema(c, false), additionalProperties: false } }, required: ['quota_class_set'], additionalProperties: false }, c.body).quota_class_set;
  const db = c.api.cells.db;
  for (const [k, raw] of Object.entries(b)) {
    if (!((RESOURCES as readonly string[]).includes(k) || LEGACY_RESOURCES.includes(k))) continue;
    const r = await db.updateTable('quota_classes').set({ hard_limit: Number(raw) }).where('class_name', '=', c.params.id).where('resource', '=', k).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) await db.insertInto('quota_classes').values({ class_name: c.params.id, resource: k, hard_limit: Number(raw) }).execute();
  }
  return { quota_class_set: quotaBody(c, await classLimits(db, c.api.config, c.params.id)) };
}

// --- server groups ---
const POLICIES = ['affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity'];

async function groupView(c: Ctx, g: any) {
  const members = (await c.api.cells.db.selectFrom('instance_group_members').select('instance_uuid').where('group_id', '=', g.id).orderBy('id').execute()).map((m) => m.instance_uuid);
  const o: Record<string, unknown> = { id: g.uuid, name: g.name };
  if (c.v.atLeast('2.64')) {
    o.policy = g.policy;
    o.rules = parseJson(g.rules, {});
    o.members = members;
  } else {
    o.policies = [g.policy];
    o.members = members;
    o.metadata = {};
  }
  if (c.v.atLeast('2.13')) { o.project_id = g.project_id; o.user_id = g.user_id; }
  return o;
}

async function getGroup(c: Ctx, id: string) {
  const g = await c.api.cells.db.selectFrom('instance_groups').selectAll().where('uuid', '=', id).executeTakeFirst();
  if (!g || (!c.isAdmin && g.project_id !== c.auth.projectId)) throw new NotFound(`Instance group ${id} could not be found.`);
  return g;
}

const groupRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-server-groups', policy: 'os_compute_api:os-server-groups:index', errors: [], handler: async (c) => {
    c.enforce('os_compute_api:os-server-groups:index');
    let qb = c.api.cells.db.selectFrom('instance_groups').selectAll().orderBy('id');
    const allProjects = q1(c.query, 'all_projects') !== undefined && (q1(c.query, 'all_projects') === '' || toBool(q1(c.query, 'all_projects')));
    // As Nova: all_projects from a non-admin is not refused, it lists the caller's own groups.
    if (allProjects && c.isAdmin) c.enforce('os_compute_api:os-server-groups:index:all_projects');
    else qb = qb.where('project_id', '=', c.auth.projectId ?? '');
    let rows = await qb.execute();
    const offset = Number(q1(c.query, 'offset') ?? 0);
    const limit = q1(c.query, 'limit') !== undefined ? Number(q1(c.query, 'limit')) : undefined;
    if (!Number.isInteger(offset) || offset < 0) throw new BadRequest('Invalid input for query parameters offset.');
    rows = rows.slice(offset, limit !== undefined ? offset + limit : undefined);
    return { server_groups: await Promise.all(rows.map((g) => groupView(c, g))) };
  } },
  { method: 'GET', path: '/os-server-groups/:id', policy: 'os_compute_api:os-server-groups:show', errors: [], handler: async (c) => {
    const g = await getGroup(c, c.params.id);
    c.enforce('os_compute_api:os-server-groups:show', { project_id: g.project_id });
    return { server_group: await groupView(c, g) };
  } },
  { method: 'POST', path: '/os-server-groups', policy: 'os_compute_api:os-server-groups:create', errors: [409], handler: async (c) => {
    c.enforce('os_compute_api:os-server-groups:create');
    const v264 = c.v.atLeast('2.64');
    const props: Record<string, unknown> = { name: P.name };
    if (v264) {
      props.policy = { type: 'string', enum: POLICIES };
      props.rules = { type: 'object', properties: { max_server_per_host: P.positiveInt }, additionalProperties: false };
    } else {
      props.policies = { type: 'array', items: { type: 'string', enum: c.v.atLeast('2.15') ? POLICIES : POLICIES.slice(0, 2) }, uniqueItems: true, minItems: 1, maxItems: 1 };
    }
    const b = validate({ type: 'object', properties: { server_group: { type: 'object', properties: props, required: ['name', v264 ? 'policy' : 'policies'], additionalProperties: false } }, required: ['server_group'], additionalProperties: false }, c.body).server_group;
    const policy: string = v264 ? b.policy : b.policies[0];
    if (b.rules && Object.keys(b.rules).length && policy !== 'anti-affinity') throw new BadRequest("Only anti-affinity policy supports rules.");
    const limit = (await quotaLimits(c.api, c.auth.projectId ?? '', c.auth.userId)).server_groups;
    const used = (await countUsage(c.api.cells, c.auth.projectId ?? '')).server_groups;
    if (limit >= 0 && used + 1 > limit) throw new OverQuota('Quota exceeded, too many server groups.');
    const uuid = randomUUID();
    await insertId(c.api.cells.db, 'instance_groups', { uuid, name: b.name, user_id: c.auth.userId, project_id: c.auth.projectId ?? '', policy, rules: b.rules ? JSON.stringify(Object.fromEntries(Object.entries(b.rules).map(([k, v]) => [k, Number(v)]))) : null, created_at: now() });
    return { server_group: await groupView(c, await getGroup(c, uuid)) };
  } },
  { method: 'DELETE', path: '/os-server-groups/:id', policy: 'os_compute_api:os-server-groups:delete', errors: [], handler: async (c) => {
    const g = await getGroup(c, c.params.id);
    c.enforce('os_compute_api:os-server-groups:delete', { project_id: g.project_id });
    await c.api.cells.db.deleteFrom('instance_group_members').where('group_id', '=', g.id).execute();
    await c.api.cells.db.deleteFrom('instance_groups').where('id', '=', g.id).execute();
    return { status: 204 };
  } },
];

// --- extensions (the v2.1 API's fixed list) ---
const EXTENSIONS = [
  ['AdminActions', 'os-admin-actions'], ['AdminPassword', 'os-admin-password'], ['AvailabilityZone', 'os-availability-zone'],
  ['ConsoleOutput', 'os-console-output'], ['DiskConfig', 'OS-DCF'], ['ExtendedAvailabilityZone', 'OS-EXT-AZ'],
  ['ExtendedServerAttributes', 'OS-EXT-SRV-ATTR'], ['ExtendedStatus', 'OS-EXT-STS'], ['ExtendedVolumes', 'os-extended-volumes'],
  ['FlavorAccess', 'os-flavor-access'], ['FlavorExtraData', 'OS-FLV-EXT-DATA'], ['FlavorExtraSpecs', 'os-flavor-extra-specs'],
  ['FlavorManage', 'os-flavor-manage'], ['FlavorDisabled', 'OS-FLV-DISABLED'], ['Flavors', 'flavors'], ['Hypervisors', 'os-hypervisors'],
  ['InstanceActions', 'os-instance-actions'], ['Keypairs', 'os-keypairs'], ['Limits', 'limits'], ['LockServer', 'os-lock-server'],
  ['PauseServer', 'os-pause-server'], ['QuotaClasses', 'os-quota-class-sets'], ['Quotas', 'os-quota-sets'], ['ServerGroups', 'os-server-groups'],
  ['ServerMetadata', 'server-metadata'], ['ServerPassword', 'os-server-password'], ['ServerUsage', 'OS-SRV-USG'], ['Servers', 'servers'],
  ['Services', 'os-services'], ['SuspendServer', 'os-suspend-server'], ['Versions', 'versions'],
  ['Hosts', 'os-hosts'], ['Consoles', 'os-consoles'], ['Shelve', 'os-shelve'], ['ServerTags', 'os-server-tags'],
  ['Aggregates', 'os-aggregates'], ['Rescue', 'os-rescue'], ['MultipleCreate', 'os-multiple-create'], ['SchedulerHints', 'OS-SCH-HNT'],
  ['SecurityGroups', 'os-security-groups'], ['UserData', 'os-user-data'], ['ConfigDrive', 'os-config-drive'], ['Evacuate', 'os-evacuate'],
  ['DeferredDelete', 'os-deferred-delete'], ['FlavorRxtx', 'os-flavor-rxtx'], ['ImageSize', 'OS-EXT-IMG-SIZE'], ['Images', 'images'],
  ['AccessIPs', 'os-access-ips'], ['ExtendedIps', 'OS-EXT-IPS'], ['ExtendedIpsMac', 'OS-EXT-IPS-MAC'], ['HideServerAddresses', 'os-hide-server-addresses'],
  ['Migrations', 'os-migrations'], ['ServerDiagnostics', 'os-server-diagnostics'], ['SimpleTenantUsage', 'os-simple-tenant-usage'],
].map(([name, alias]) => ({ name, alias, description: `${name} support.`, namespace: `http://docs.openstack.org/compute/ext/fake_xml`, updated: '2014-12-03T00:00:00Z', links: [] as unknown[] }));

export const adminRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-services', policy: 'os_compute_api:os-services:list', errors: [], handler: servicesList },
  { method: 'PUT', path: '/os-services/:id', policy: 'os_compute_api:os-services:update', errors: [], until: '2.52', handler: servicesAction },
  { method: 'PUT', path: '/os-services/:id', policy: 'os_compute_api:os-services:update', errors: [], since: '2.53', handler: serviceUpdate253 },
  { method: 'DELETE', path: '/os-services/:id', policy: 'os_compute_api:os-services:delete', errors: [409], handler: serviceDelete },
  ...hypervisorRoutes,
  { method: 'GET', path: '/os-availability-zone', policy: 'os_compute_api:os-availability-zone:list', errors: [], handler: (c) => azList(c, false) },
  { method: 'GET', path: '/os-availability-zone/detail', policy: 'os_compute_api:os-availability-zone:detail', errors: [], handler: (c) => azList(c, true) },
  { method: 'GET', path: '/limits', policy: 'os_compute_api:limits', errors: [], response: RESPONSES.limits, handler: limits },
  { method: 'GET', path: '/os-quota-sets/:project', policy: 'os_compute_api:os-quota-sets:show', errors: [], handler: (c) => quotaShow(c, false) },
  { method: 'GET', path: '/os-quota-sets/:project/detail', policy: 'os_compute_api:os-quota-sets:detail', errors: [], handler: (c) => quotaShow(c, true) },
  { method: 'GET', path: '/os-quota-sets/:project/defaults', policy: 'os_compute_api:os-quota-sets:defaults', errors: [], handler: async (c) => {
    c.enforce('os_compute_api:os-quota-sets:defaults');
    return { quota_set: quotaBody(c, await classLimits(c.api.cells.db, c.api.config), c.params.project) };
  } },
  { method: 'PUT', path: '/os-quota-sets/:project', policy: 'os_compute_api:os-quota-sets:update', errors: [], handler: quotaUpdate },
  { method: 'DELETE', path: '/os-quota-sets/:project', policy: 'os_compute_api:os-quota-sets:delete', errors: [], handler: async (c) => {
    c.enforce('os_compute_api:os-quota-sets:delete', { project_id: c.params.project });
    await c.api.cells.db.deleteFrom('quotas').where('project_id', '=', c.params.project).execute();
    await c.api.cells.db.deleteFrom('project_user_quotas').where('project_id', '=', c.params.project).execute();
    return { status: 202 };
  } },
  { method: 'GET', path: '/os-quota-class-sets/:id', policy: 'os_compute_api:os-quota-class-sets:show', errors: [], handler: quotaClassShow },
  { method: 'PUT', path: '/os-quota-class-sets/:id', policy: 'os_compute_api:os-quota-class-sets:update', errors: [], handler: quotaClassUpdate },
  ...groupRoutes,
  { method: 'GET', path: '/extensions', policy: 'os_compute_api:extensions', errors: [], handler: async (c) => { c.enforce('os_compute_api:extensions'); return { extensions: EXTENSIONS }; } },
  { method: 'GET', path: '/extensions/:alias', policy: 'os_compute_api:extensions', errors: [], handler: async (c) => {
    c.enforce('os_compute_api:extensions');
    const e = EXTENSIONS.find((x) => x.alias === c.params.alias);
    if (!e) throw new NotFound('The resource could not be found.');
    return { extension: e };
  } },
];
export type { Resource };
