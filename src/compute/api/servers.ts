// Servers: create (build requests + request specs + instance mappings in the API database, then
// the conductor), list/detail across cells with filters, sort and paging, show, update, delete.
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { statesForStatus, type InstanceRow } from '../objects.ts';
import { isUuid, normUuid, parseJson } from '../util.ts';
import { findInstance, metadataOf, tagsOf, faultsOf, serviceIsUp, setMetadata, updateInstance, type Located } from '../store.ts';
import { hostAzMap } from '../availability-zones.ts';
import { canonicalIpv6 } from '../util.ts';
import { validate, P, toBool } from './validation.ts';
import { pageParams, q1, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { RESPONSES } from './response-schemas.ts';
import { createServers, sanitizeHostname, availabilityZones } from '../service/create.ts';
import { deleteInstance, type InstanceRef } from '../service/delete.ts';
import { detailView, summaryView, type ViewExtras } from './server-view.ts';
import type { CellDb } from '../db/tables.ts';

// --- lookup ----------------------------------------------------------------------------------

export type ServerRef = InstanceRef;

/** The caller's server (admins: any), live or still a build request; 404 in Nova's words. */
export async function getServer(c: Ctx, id: string): Promise<ServerRef> {
  const nf = () => new NotFound(`Instance ${id} could not be found.`);
  if (!isUuid(id)) throw nf();
  const uuid = normUuid(id);
  const cells = c.api.cells;
  const mapping = await cells.db.selectFrom('instance_mappings').selectAll().where('instance_uuid', '=', uuid).executeTakeFirst();
  if (!mapping) throw nf();
  if (!c.isAdmin && mapping.project_id !== c.auth.projectId) throw nf();
  if (mapping.cell_id === null) {
    const br = await cells.db.selectFrom('build_requests').selectAll().where('instance_uuid', '=', uuid).executeTakeFirst();
    if (br) return { build: { row: JSON.parse(br.instance) } };
    // The conductor may have just moved it into a cell.
    const again = await findInstance(cells, uuid);
    if (again) return { located: again };
    throw nf();
  }
  const located = await findInstance(cells, uuid);
  if (!located) throw nf();
  return { located };
}

export async function getLiveServer(c: Ctx, id: string): Promise<Located> {
  const s = await getServer(c, id);
  if (s.located) return s.located;
  throw new Conflict(`Cannot perform the action on instance ${id} while it is being built (still in the BUILD state without a host).`);
}

export function hostStatusOf(svc: any | undefined, downTime: number): string {
  if (!svc) return '';
  if (!serviceIsUp(svc, downTime)) return 'DOWN';
  if (svc.disabled) return 'MAINTENANCE';
  return 'UP';
}

async function hostStatuses(db: CellDb, hosts: string[], downTime: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!hosts.length) return out;
  const rows = await db.selectFrom('services').selectAll().where('binary', '=', 'nova-compute').where('host', 'in', hosts).execute();
  for (const h of hosts) out.set(h, hostStatusOf(rows.find((r) => r.host === h), downTime));
  return out;
}

export async function extrasFor(c: Ctx, db: CellDb, rows: InstanceRow[], opts: { groups?: boolean } = {}): Promise<Map<string, ViewExtras>> {
  const uuids = rows.map((r) => r.uuid);
  const errs = rows.filter((r) => r.vm_state === 'error' || r.vm_state === 'deleted').map((r) => r.uuid);
  const [md, tags, faults, hs] = await Promise.all([
    metadataOf(db, uuids),
    c.v.atLeast('2.26') ? tagsOf(db, uuids) : Promise.resolve(new Map<string, string[]>()),
    faultsOf(db, errs),
    c.v.atLeast('2.16') ? hostStatuses(db, [...new Set(rows.map((r) => r.host).filter((h): h is string => !!h))], c.api.config.get<number>('DEFAULT', 'service_down_time')) : Promise.resolve(new Map<string, string>()),
  ]);
  const out = new Map<string, ViewExtras>();
  let groups: Map<string, string[]> | undefined;
  if (opts.groups) {
    groups = new Map();
    const gm = await c.api.cells.db.selectFrom('instance_group_members').innerJoin('instance_groups', 'instance_groups.id', 'instance_group_members.group_id')
      .select(['instance_group_members.instance_uuid', 'instance_groups.uuid']).where('instance_group_members.instance_uuid', 'in', uuids.length ? uuids : ['-']).execute();
    for (const g of gm) groups.set(g.instance_uuid, [...(groups.get(g.instance_uuid) ?? []), g.uuid]);
  }
  for (const r of rows) {
    out.set(r.uuid, {
      metadata: md.get(r.uuid) ?? {}, tags: tags.get(r.uuid) ?? [], fault: faults.get(r.uuid),
      hostStatus: r.host ? hs.get(r.host) ?? '' : '', serverGroups: groups ? groups.get(r.uuid) ?? [] : undefined,
    });
  }
  return out;
}

export async function renderServer(c: Ctx, ref: ServerRef, opts: { groups?: boolean } = { groups: true }): Promise<Record<string, unknown>> {
  const tmpl = c.api.config.get<string>('DEFAULT', 'instance_name_template');
  if (ref.build) {
    const row = ref.build.row;
    const md = parseJson<Record<string, string>>((row as any).metadata_json, {});
    return detailView(c, row, { metadata: md, tags: (row as any).tags_list ?? [], hostStatus: '', serverGroups: opts.groups ? (row as any).server_groups ?? [] : undefined }, tmpl);
  }
  const { db, row } = ref.located!;
  const x = (await extrasFor(c, db, [row], opts)).get(row.uuid)!;
  return detailView(c, withHostAz(row, await hostAzMap(c.api.cells.db), c.api.config.get<string>('DEFAULT', 'default_availability_zone')), x, tmpl);
}

/** As Nova's get_instance_availability_zone: a server on a host shows the host's zone now (aggregates can move hosts), else the zone it asked for. */
export function withHostAz<T extends { host?: string | null; availability_zone?: string | null }>(row: T, azs: Map<string, string>, dflt: string): T {
  if (!row.host) return row;
  const az = azs.get(row.host) ?? dflt;
  return az === row.availability_zone ? row : { ...row, availability_zone: az };
}

async function show(c: Ctx) {
  c.enforce('os_compute_api:servers:show');
  const ref = await getServer(c, c.params.id);
  return { server: await renderServer(c, ref) };
}

// --- create ----------------------------------------------------------------------------------

function createSchema(c: Ctx) {
  const v = c.v;
  const netItem: Record<string, unknown> = {
    type: 'object',
    properties: {
      fixed_ip: { type: 'string' }, port: { type: ['string', 'null'], format: 'uuid' }, uuid: { type: 'string' },
      ...(v.atLeast('2.32') ? { tag: { type: 'string', minLength: 1, maxLength: 60, pattern: '^[^,/]*$' } } : {}),
    },
    additionalProperties: false,
  };
  const networks = v.atLeast('2.37')
    ? { oneOf: [{ type: 'array', items: netItem }, { type: 'string', enum: ['none', 'auto'] }] }
    : { type: 'array', items: netItem };
  const server: Record<string, any> = {
    type: 'object',
    properties: {
      name: v.atLeast('2.0') ? P.name : P.name,
      imageRef: { oneOf: [{ type: 'string', format: 'uuid' }, { type: 'string', maxLength: 0 }] },
      flavorRef: { type: ['string', 'integer'], minLength: 1 },
      adminPass: { type: 'string' },
      metadata: P.metadata,
      networks,
      'OS-DCF:diskConfig': { type: 'string', enum: ['AUTO', 'MANUAL'] },
      accessIPv4: { type: 'string', format: 'ipv4' },
      accessIPv6: { type: 'string', format: 'ipv6' },
      key_name: { type: 'string', minLength: 1, maxLength: 255 },
      user_data: { type: 'string', format: 'base64', maxLength: 65535 },
      availability_zone: { type: 'string', minLength: 1, maxLength: 255 },
      block_device_mapping: { type: 'array' },
      block_device_mapping_v2: { type: 'array' },
      security_groups: { type: 'array', items: { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 255 } }, additionalProperties: false } },
      config_drive: P.bool,
      min_count: P.positiveInt,
      max_count: P.positiveInt,
      return_reservation_id: P.bool,
    },
    required: v.atLeast('2.37') ? ['name', 'flavorRef', 'networks'] : ['name', 'flavorRef'],
    additionalProperties: false,
  };
  if (v.atMost('2.56')) server.properties.personality = { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, contents: { type: 'string', format: 'base64' } }, additionalProperties: false } };
  if (v.atLeast('2.19')) server.properties.description = P.description;
  if (v.atLeast('2.52')) server.properties.tags = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 60, pattern: '^[^,/]*$' }, maxItems: 50 };
  if (v.atLeast('2.63')) server.properties.trusted_image_certificates = { type: ['array', 'null'], minItems: 1, maxItems: 50, uniqueItems: true, items: { type: 'string', minLength: 1 } };
  if (v.atLeast('2.74')) { server.properties.host = { type: 'string', minLength: 1, maxLength: 255 }; server.properties.hypervisor_hostname = { type: 'string', minLength: 1, maxLength: 255 }; }
  if (v.atLeast('2.90')) server.properties.hostname = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$' };
  return {
    type: 'object',
    properties: {
      server,
      'os:scheduler_hints': SCHEDULER_HINTS,
      'OS-SCH-HNT:scheduler_hints': SCHEDULER_HINTS,
    },
    required: ['server'],
    additionalProperties: false,
  };
}

/** Nova's scheduler hints schema where it constrains a hint (the others pass through to the filters). */
const SCHEDULER_HINTS = {
  type: 'object',
  properties: {
    group: { oneOf: [{ type: 'array', items: { type: 'string', format: 'uuid' } }, { type: 'string', format: 'uuid' }] },
  },
};

function base64Ok(s: string): boolean {
  const t = s.replace(/\s/g, '');
  return /^[A-Za-z0-9+/]*={0,2}$/.test(t) && t.length % 4 === 0;
}

async function create(c: Ctx) {
  c.enforce('os_compute_api:servers:create');
  const body = validate(createSchema(c), c.body);
  const s = body.server;
  if (s.user_data !== undefined && !base64Ok(s.user_data)) throw new BadRequest(`Invalid input for field/attribute user_data. Value: ${s.user_data}. '${s.user_data}' is not a 'base64'`);
  for (const p of s.personality ?? []) if (p.contents !== undefined && !base64Ok(p.contents)) throw new BadRequest('Personality content could not be Base64 decoded.');
  const projectId = c.auth.projectId;
  if (!projectId) throw new Forbidden('A project-scoped token is required to create servers.');
  const minCount = Number(s.min_count ?? 1);
  const maxCount = Number(s.max_count ?? minCount);
  if (minCount > maxCount) throw new BadRequest('min_count must be <= max_count');
  const returnResv = s.return_reservation_id !== undefined && toBool(s.return_reservation_id);

  // The forced destination is authorized before anything is looked up (Nova's controller does
  // it before compute_api.create).
  let az: string | undefined = s.availability_zone ?? c.api.config.get<string | undefined>('DEFAULT', 'default_schedule_zone');
  let forcedHost: string | undefined;
  let forcedNode: string | undefined;
  if (az && az.includes(':')) {
    const [zone, host, node] = az.split(':');
    c.enforce('os_compute_api:servers:create:forced_host');
    az = zone || undefined;
    forcedHost = host || undefined;
    forcedNode = node || undefined;
  }
  if (s.host || s.hypervisor_hostname) {
    c.enforce('os_compute_api:servers:create:requested_destination');
    forcedHost = s.host ?? forcedHost;
    forcedNode = s.hypervisor_hostname ?? forcedNode;
  }
  const hints = (body['os:scheduler_hints'] ?? body['OS-SCH-HNT:scheduler_hints'] ?? {}) as Record<string, unknown>;
  const { uuids, reservationId: resv, adminPass } = await createServers(c.api, {
    ctx: c.rpcContext(), isAdmin: c.isAdmin, projectId, userId: c.auth.userId, token: c.auth.token, requestId: c.req.id,
  }, { server: s, hints, minCount, maxCount, az, forcedHost, forcedNode });
  const api = c.api;
  if (returnResv) return { status: 202, body: { reservation_id: resv } };
  const server: Record<string, unknown> = {
    id: uuids[0], links: c.link(`/servers/${uuids[0]}`), 'OS-DCF:diskConfig': s['OS-DCF:diskConfig'] === 'AUTO' ? 'AUTO' : 'MANUAL',
    security_groups: (s.security_groups ?? [{ name: 'default' }]).map((g: { name: string }) => ({ name: g.name })),
  };
  if (adminPass) server.adminPass = adminPass;
  return { status: 202, body: { server }, headers: { location: `${api.publicUrl}/v2.1/servers/${uuids[0]}` } };
}


export { hostAzMap, sanitizeHostname, availabilityZones };

// --- list ------------------------------------------------------------------------------------

const SORT_KEYS: Record<string, string> = {
  created_at: 'created_at', updated_at: 'updated_at', display_name: 'display_name', uuid: 'uuid', vm_state: 'vm_state',
  task_state: 'task_state', power_state: 'power_state', host: 'host', node: 'node', launched_at: 'launched_at', terminated_at: 'terminated_at',
  availability_zone: 'availability_zone', key_name: 'key_name', project_id: 'project_id', user_id: 'user_id', image_ref: 'image_ref',
  instance_type_id: 'instance_type_id', hostname: 'hostname', display_description: 'display_description', locked: 'locked_by',
  access_ip_v4: 'access_ip_v4', access_ip_v6: 'access_ip_v6', kernel_id: 'kernel_id', ramdisk_id: 'ramdisk_id',
  launch_index: 'launch_index', reservation_id: 'reservation_id', root_device_name: 'root_device_name', config_drive: 'config_drive',
  progress: 'progress', vcpus: 'vcpus', memory_mb: 'memory_mb', root_gb: 'root_gb', ephemeral_gb: 'ephemeral_gb', id: 'uuid',
};
const ADMIN_ONLY_SORT = new Set(['host', 'node', 'project_id', 'user_id', 'hostname', 'kernel_id', 'ramdisk_id', 'launch_index', 'reservation_id', 'root_device_name']);

function parseTime(v: string, name: string): string {
  const iso = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+ -]\d{2}(:?\d{2})?)?$/.test(v);
  const t = iso ? Date.parse(v.replace(/ (\d{2}(:?\d{2})?)$/, '+$1')) : NaN;
  if (Number.isNaN(t)) throw new BadRequest(`Invalid input for query parameters ${name}. Value: ${v}. '${v}' is not a 'date-time'`);
  return new Date(t).toISOString();
}

async function list(c: Ctx, detail: boolean) {
  c.enforce(detail ? 'os_compute_api:servers:detail' : 'os_compute_api:servers:index');
  const query = c.query;
  const api = c.api;
  const { limit, marker } = pageParams(query);
  const allFilters = c.isAdmin || api.policy.check('os_compute_api:servers:allow_all_filters', c.creds, {});
  const get = (k: string) => q1(query, k);
  const allTenants = get('all_tenants') !== undefined && (get('all_tenants') === '' || toBool(get('all_tenants')));
  if (allTenants) c.enforce(detail ? 'os_compute_api:servers:detail:get_all_tenants' : 'os_compute_api:servers:index:get_all_tenants');
  // As Nova: project_id/tenant_id filters count only together with all_tenants.
  let project: string | undefined = c.auth.projectId;
  if (allTenants) project = allFilters ? (get('project_id') ?? get('tenant_id')) : undefined;

  // Sorting: Nova's default is created_at desc, then id desc; uuid breaks ties across cells.
  const sortKeys = (Array.isArray(query.sort_key) ? query.sort_key : query.sort_key ? [query.sort_key] : []) as string[];
  const sortDirs = (Array.isArray(query.sort_dir) ? query.sort_dir : query.sort_dir ? [query.sort_dir] : []) as string[];
  for (const k of sortKeys) {
    if (!SORT_KEYS[k]) throw new BadRequest(`Invalid input for query parameters sort_key. Value: ${k}. '${k}' is not one of ${Object.keys(SORT_KEYS).join(', ')}`);
    if (ADMIN_ONLY_SORT.has(k) && !allFilters) throw new Forbidden(`Only administrators can sort servers by ${k}`);
  }
  for (const d of sortDirs) if (d !== 'asc' && d !== 'desc') throw new BadRequest(`Invalid input for query parameters sort_dir. Value: ${d}. '${d}' is not one of ['asc', 'desc']`);
  const sort = sortKeys.length ? sortKeys.map((k, i) => ({ col: SORT_KEYS[k], dir: (sortDirs[i] ?? sortDirs[0] ?? 'desc') as 'asc' | 'desc' })) : [{ col: 'created_at', dir: 'desc' as const }];
  if (!sort.some((s) => s.col === 'uuid')) sort.push({ col: 'uuid', dir: sort[0].dir });

  // Filters pushed to SQL.
  let vmStates: string[] | undefined;
  let taskStates: string[] | undefined;
  const status = get('status');
  if (status !== undefined) {
    const st = statesForStatus(status);
    if (!st) {
      if (c.v.atLeast('2.38')) throw new BadRequest(`Invalid status value`);
      return detail ? { servers: [] } : { servers: [] };
    }
    vmStates = st.vm;
    taskStates = st.task;
  }
  const changesSince = get('changes-since') !== undefined ? parseTime(get('changes-since')!, 'changes-since') : undefined;
  const changesBefore = c.v.atLeast('2.66') && get('changes-before') !== undefined ? parseTime(get('changes-before')!, 'changes-before') : undefined;
  if (changesSince && changesBefore && changesBefore < changesSince) throw new BadRequest('The value of changes-since must be less than or equal to changes-before.');
  const deletedQ = allFilters ? get('deleted') : undefined;
  const showDeleted = (deletedQ !== undefined && toBool(deletedQ)) || changesSince !== undefined || (vmStates?.includes('deleted') ?? false);
  const nameRe = get('name') !== undefined ? safeRegex(get('name')!) : undefined;
  const imageQ = get('image')?.replace(/^.*\/images\//, '');
  const flavorQ = get('flavor')?.replace(/^.*\/flavors\//, '');
  const tagsAll = c.v.atLeast('2.26') && get('tags') ? get('tags')!.split(',') : undefined;
  const tagsAny = c.v.atLeast('2.26') && get('tags-any') ? get('tags-any')!.split(',') : undefined;
  const notTags = c.v.atLeast('2.26') && get('not-tags') ? get('not-tags')!.split(',') : undefined;
  const notTagsAny = c.v.atLeast('2.26') && get('not-tags-any') ? get('not-tags-any')!.split(',') : undefined;
  const lockedQ = c.v.atLeast('2.73') ? get('locked') : undefined;
  if (lockedQ !== undefined && !['true', 'false', '1', '0', 'yes', 'no', 't', 'f', 'on', 'off'].includes(lockedQ.toLowerCase())) {
    throw new BadRequest(`Invalid input for query parameters locked. Value: ${lockedQ}.`);
  }

  const applyFilters = (qb: any) => {
    if (project) qb = qb.where('project_id', '=', project);
    if (!showDeleted) qb = qb.where('deleted', '=', 0);
    if (vmStates) qb = qb.where('vm_state', 'in', vmStates);
    if (taskStates) qb = qb.where('task_state', 'in', taskStates);
    if (changesSince) qb = qb.where('updated_at', '>=', changesSince);
    if (changesBefore) qb = qb.where('updated_at', '<=', changesBefore);
    if (imageQ) qb = qb.where('image_ref', '=', imageQ);
    if (flavorQ) qb = qb.where('instance_type_id', '=', flavorQ);
    if (get('reservation_id')) qb = qb.where('reservation_id', '=', get('reservation_id'));
    if (lockedQ !== undefined) qb = toBool(lockedQ) ? qb.where('locked_by', 'is not', null) : qb.where('locked_by', 'is', null);
    if (allFilters) {
      for (const [k, col] of [['host', 'host'], ['node', 'node'], ['availability_zone', 'availability_zone'], ['key_name', 'key_name'], ['user_id', 'user_id'], ['hostname', 'hostname'], ['uuid', 'uuid'], ['power_state', 'power_state'], ['task_state', 'task_state'], ['vm_state', 'vm_state']] as const) {
        const v = get(k);
        if (v !== undefined) qb = qb.where(col, '=', col === 'power_state' ? Number(v) : v);
      }
    } else {
      for (const [k, col] of [['availability_zone', 'availability_zone'], ['key_name', 'key_name']] as const) {
        const v = get(k);
        if (v !== undefined && c.v.atLeast('2.83')) qb = qb.where(col, '=', v);
      }
    }
    return qb;
  };

  // Pushing limit and marker into SQL works when only SQL filters apply.
  const jsOnly = !!(nameRe || tagsAll || tagsAny || notTags || notTagsAny || get('ip') || get('ip6') || get('description'));
  let markerRow: InstanceRow | undefined;
  if (marker !== undefined) {
    const m = await findAnywhere(c, marker);
    if (!m) throw new BadRequest(`marker [${marker}] not found`);
    markerRow = m;
  }
  const cmp = (a: any, b: any): number => {
    for (const s of sort) {
      const x = a[s.col] ?? null;
      const y = b[s.col] ?? null;
      if (x === y) continue;
      let r: number;
      if (x === null) r = -1; else if (y === null) r = 1; else r = x < y ? -1 : 1;
      return s.dir === 'asc' ? r : -r;
    }
    return 0;
  };

  const perCell = await Promise.all((await api.cells.all()).map(async ({ cell, db }) => {
    let qb = applyFilters(db.selectFrom('instances').selectAll());
    for (const s of sort) qb = qb.orderBy(s.col, s.dir);
    if (!jsOnly) {
      if (markerRow && sort.length === 2 && sort[0].col === 'created_at') {
        const m = markerRow;
        const op = sort[0].dir === 'desc' ? '<' : '>';
        qb = qb.where((eb: any) => eb.or([eb('created_at', op, m.created_at), eb.and([eb('created_at', '=', m.created_at), eb('uuid', op, m.uuid)])]));
        qb = qb.limit(limit + 1);
      } else if (!markerRow) qb = qb.limit(limit + 1);
    }
    return { cell, db, rows: await qb.execute() as InstanceRow[] };
  }));

  // Build requests (servers not in a cell yet) take part as BUILD servers.
  let brRows: InstanceRow[] = [];
  if (!vmStates || vmStates.includes('building')) {
    let bq = api.cells.db.selectFrom('build_requests').select(['instance']);
    if (project) bq = bq.where('project_id', '=', project);
    brRows = (await bq.execute()).map((r) => JSON.parse(r.instance) as InstanceRow)
      .filter((r) => (!imageQ || r.image_ref === imageQ) && (!flavorQ || r.instance_type_id === flavorQ) && (!get('reservation_id') || r.reservation_id === get('reservation_id')));
  }
  const where = new Map<string, CellDb>();
  let all: InstanceRow[] = [];
  const seen = new Set<string>();
  for (const p of perCell) for (const r of p.rows) { where.set(r.uuid, p.db); seen.add(r.uuid); all.push(r); }
  for (const r of brRows) if (!seen.has(r.uuid)) all.push(r);
  if (nameRe) all = all.filter((r) => nameRe.test(r.display_name ?? ''));
  if (get('description') !== undefined) all = all.filter((r) => r.display_description === get('description'));
  if (get('ip') || get('ip6')) all = [];
  if (tagsAll || tagsAny || notTags || notTagsAny) {
    const tagMap = new Map<string, string[]>();
    for (const p of perCell) for (const [u, t] of await tagsOf(p.db, p.rows.map((r) => r.uuid))) tagMap.set(u, t);
    for (const r of brRows) tagMap.set(r.uuid, (r as any).tags_list ?? []);
    all = all.filter((r) => {
      const t = tagMap.get(r.uuid) ?? [];
      if (tagsAll && !tagsAll.every((x) => t.includes(x))) return false;
      if (tagsAny && !tagsAny.some((x) => t.includes(x))) return false;
      if (notTags && notTags.every((x) => t.includes(x))) return false;
      if (notTagsAny && notTagsAny.some((x) => t.includes(x))) return false;
      return true;
    });
  }
  all.sort(cmp);
  if (markerRow) all = all.filter((r) => cmp(r, markerRow) > 0);
  const page = all.slice(0, limit);
  const body: Record<string, unknown> = {};
  if (!detail) {
    body.servers = page.map((r) => summaryView(c, r));
  } else {
    const tmpl = api.config.get<string>('DEFAULT', 'instance_name_template');
    const byDb = new Map<CellDb, InstanceRow[]>();
    for (const r of page) {
      const d = where.get(r.uuid);
      if (d) byDb.set(d, [...(byDb.get(d) ?? []), r]);
    }
    const extras = new Map<string, ViewExtras>();
    for (const [d, rows] of byDb) for (const [u, x] of await extrasFor(c, d, rows)) extras.set(u, x);
    const azs = await hostAzMap(api.cells.db);
    const dfltAz = api.config.get<string>('DEFAULT', 'default_availability_zone');
    body.servers = page.map((r) => {
      const x = extras.get(r.uuid) ?? { metadata: parseJson((r as any).metadata_json, {}), tags: (r as any).tags_list ?? [], hostStatus: '' };
      return detailView(c, withHostAz(r, azs, dfltAz), x, tmpl);
    });
  }
  if (limit > 0 && page.length === limit && all.length > limit) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (k !== 'marker') for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
    params.set('limit', String(limit));
    params.set('marker', page[page.length - 1].uuid);
    body.servers_links = [{ rel: 'next', href: `${api.publicUrl}/v2.1/servers${detail ? '/detail' : ''}?${params.toString()}` }];
  }
  return body;
}

function safeRegex(s: string): RegExp {
  try { return new RegExp(s); } catch { return new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')); }
}

async function findAnywhere(c: Ctx, id: string): Promise<InstanceRow | undefined> {
  if (!isUuid(id)) return undefined;
  const uuid = normUuid(id);
  const br = await c.api.cells.db.selectFrom('build_requests').select('instance').where('instance_uuid', '=', uuid).executeTakeFirst();
  if (br) return JSON.parse(br.instance);
  const l = await findInstance(c.api.cells, uuid, { readDeleted: true });
  return l?.row;
}

// --- update / delete -------------------------------------------------------------------------

async function update(c: Ctx) {
  const props: Record<string, unknown> = {
    name: P.name, accessIPv4: { type: 'string', format: 'ipv4' }, accessIPv6: { type: 'string', format: 'ipv6' },
    'OS-DCF:diskConfig': { type: 'string', enum: ['AUTO', 'MANUAL'] },
  };
  if (c.v.atLeast('2.19')) props.description = P.description;
  if (c.v.atLeast('2.90')) props.hostname = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$' };
  const body = validate({ type: 'object', properties: { server: { type: 'object', properties: props, additionalProperties: false } }, required: ['server'], additionalProperties: false }, c.body).server;
  const ref = await getServer(c, c.params.id);
  c.enforce('os_compute_api:servers:update', { project_id: (ref.located?.row ?? ref.build!.row).project_id });
  const upd: Partial<InstanceRow> = {};
  if (body.name !== undefined) upd.display_name = body.name;
  if (body.description !== undefined) upd.display_description = body.description;
  if (body.accessIPv4 !== undefined) upd.access_ip_v4 = body.accessIPv4;
  if (body.accessIPv6 !== undefined) upd.access_ip_v6 = canonicalIpv6(body.accessIPv6);
  if (body.hostname !== undefined) upd.hostname = body.hostname;
  if (body['OS-DCF:diskConfig'] !== undefined) upd.auto_disk_config = body['OS-DCF:diskConfig'] === 'AUTO' ? 1 : 0;
  if (ref.located) {
    const row = await updateInstance(ref.located.db, ref.located.row.uuid, upd);
    ref.located.row = row;
  } else {
    const row = { ...ref.build!.row, ...upd };
    await c.api.cells.db.updateTable('build_requests').set({ instance: JSON.stringify(row) }).where('instance_uuid', '=', row.uuid).execute();
    ref.build!.row = row;
  }
  const server = await renderServer(c, ref);
  if (c.v.atMost('2.74')) {
    // Before 2.75 update answers with the basic view (no extended attributes).
    for (const k of Object.keys(server)) if (/^(OS-EXT-|OS-SRV-USG|os-extended-volumes|config_drive|key_name|security_groups|host_status|server_groups|locked_reason|fault)/.test(k)) delete server[k];
  }
  return { server };
}

/** DELETE /servers/{id} and forceDelete: find, authorize against the server's project, let the service delete it. */
export async function deleteServer(c: Ctx, id: string, rule = 'os_compute_api:servers:delete'): Promise<void> {
  const ref = await getServer(c, id);
  c.enforce(rule, { project_id: (ref.located?.row ?? ref.build!.row).project_id });
  await deleteInstance(c.api, { ctx: c.rpcContext(), isAdmin: c.isAdmin }, ref);
}

export const serverRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers', policy: 'os_compute_api:servers:index', errors: [], response: RESPONSES.serverList, handler: (c) => list(c, false) },
  { method: 'GET', path: '/servers/detail', policy: 'os_compute_api:servers:detail', errors: [], response: RESPONSES.serverDetail, handler: (c) => list(c, true) },
  { method: 'GET', path: '/servers/:id', policy: 'os_compute_api:servers:show', errors: [], response: RESPONSES.serverShow, handler: show },
  { method: 'POST', path: '/servers', policy: 'os_compute_api:servers:create', errors: [409], handler: create },
  { method: 'PUT', path: '/servers/:id', policy: 'os_compute_api:servers:update', errors: [409], handler: update },
  { method: 'DELETE', path: '/servers/:id', policy: 'os_compute_api:servers:delete', errors: [409], handler: async (c) => { await deleteServer(c, c.params.id); return { status: 204 }; } },
];

export { setMetadata, isUniqueViolation };
