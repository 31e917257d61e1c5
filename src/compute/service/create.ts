// Server create in the service layer (Nova's compute_api.create): what needs the databases and
// the other services — flavor (with access), image (the caller's token), keypair, networks,
// zone, server group (the caller's project unless admin), quota (max_count shrinks to what is
// allowed, never below min_count), then per instance a build request, a RequestSpec and an
// instance mapping, a quota re-check, and the cast to the conductor with the build secrets.
// The handler (api/servers.ts) has parsed the body and authorized the caller, forced
// destinations included.
import { randomUUID } from 'node:crypto';
import { BadRequest, OverQuota } from '../../common/errors.ts';
import type { RequestContext } from '../../common/rpc/transport.ts';
import { conductorRpc } from '../rpc.ts';
import { REQUEST_SPEC_VERSION, type RequestSpec } from '../request-spec.ts';
import { VM, TASK, type InstanceRow } from '../objects.ts';
import { canonicalIpv6, generatePassword, isUuid, normUuid, now, parseJson, reservationId } from '../util.ts';
import { checkInstanceQuota, countUsage, quotaLimits } from '../quota.ts';
import { imageProps, imageSystemMetadata } from '../image-props.ts';
import { autoVif } from '../network-info.ts';
import { toBool } from '../api/validation.ts';
import type { ComputeApi } from '../api/context.ts';
import { embedFlavor, extraSpecsOf } from '../api/flavors.ts';
import { getKeypair } from '../api/keypairs.ts';
import { hostAzMap } from '../availability-zones.ts';
import type { Insertable } from 'kysely';
import type { ApiDb, BuildRequestsTable, FlavorRow, InstanceGroupMembersTable, InstanceMappingsTable, RequestSpecsTable } from '../db/tables.ts';
import { retryOnConnectionError, retryOnDeadlock } from '../../common/db/database.ts';

export interface CreateCaller { ctx: RequestContext; isAdmin: boolean; projectId: string; userId: string; token: string; requestId: string }

export interface CreateRequest {
  /** The validated `server` object of the request body. */
  server: Record<string, any>; // the schema (api/servers.ts createSchema) typed it at runtime; its shape varies per microversion
  hints: Record<string, unknown>;
  minCount: number; maxCount: number;
  az: string | undefined; forcedHost: string | undefined; forcedNode: string | undefined;
}

export interface Created { uuids: string[]; reservationId: string; adminPass: string | undefined }

/** A flavor the caller may boot: public, or the caller's project has access, or an admin. */
async function bootFlavor(db: ApiDb, flavorid: string, who: CreateCaller): Promise<FlavorRow> {
  const f = await db.selectFrom('flavors').selectAll().where('flavorid', '=', flavorid).executeTakeFirst();
  if (f && (f.is_public || who.isAdmin || await db.selectFrom('flavor_projects').select('id').where('flavor_id', '=', f.id).where('project_id', '=', who.projectId).executeTakeFirst())) return f;
  throw new BadRequest('Invalid flavorRef provided.');
}

export async function createServers(api: ComputeApi, who: CreateCaller, req: CreateRequest): Promise<Created> {
  const { server: s, hints, minCount, maxCount, az, forcedHost, forcedNode } = req;
  // Flavor, image, keypair, availability zone, networks.
  const flavorRef = String(s.flavorRef).replace(/^.*\/flavors\//, '');
  const flavor = await bootFlavor(api.cells.db, flavorRef, who);
  if (flavor.disabled) throw new BadRequest('Flavor is disabled.');
  const specs = (await extraSpecsOf(api.cells.db, [flavor.id])).get(flavor.id) ?? {};
  const emb = embedFlavor(flavor, specs);
  const imageRef = String(s.imageRef ?? '');
  if (!imageRef) {
    const bdm = (s.block_device_mapping_v2 ?? s.block_device_mapping ?? []) as unknown[];
    throw new BadRequest(bdm.length ? 'Block device mapping is not supported: Stratus has no block storage service.' : 'Missing imageRef attribute');
  }
  const image = await api.images.get(who.token, imageRef);
  if (!image) throw new BadRequest(`Image ${imageRef} could not be found.`);
  if (image.status !== 'active') throw new BadRequest(`Image ${imageRef} is not active.`);
  const props = imageProps(image);
  const GiB = 1024 ** 3;
  if (Number(image.min_ram ?? 0) > flavor.memory_mb) throw new BadRequest("Flavor's memory is too small for requested image.");
  if (flavor.root_gb > 0) {
    if (Number(image.min_disk ?? 0) > flavor.root_gb) {
      throw new BadRequest(`Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is ${flavor.root_gb * GiB} bytes, minimum size is ${Number(image.min_disk) * GiB} bytes.`);
    }
    const size = Number(image.virtual_size ?? image.size ?? 0);
    if (size > flavor.root_gb * GiB) {
      throw new BadRequest(`Flavor's disk is too small for requested image. Flavor disk is ${flavor.root_gb * GiB} bytes, image is ${size} bytes.`);
    }
  }
  let keyData: string | null = null;
  if (s.key_name !== undefined) {
    const kp = await getKeypair(api.cells.db, who.userId, s.key_name);
    if (!kp) throw new BadRequest('Invalid key_name provided.');
    keyData = kp.public_key;
  }
  for (const g of (s.security_groups ?? []) as { name?: string }[]) {
    if (g.name !== undefined && g.name !== 'default') throw new BadRequest(`Security group ${g.name} not found for project ${who.projectId}.`);
  }
  if (Array.isArray(s.networks)) {
    for (const n of s.networks) {
      if (n.port) throw new BadRequest(`Port ${n.port} could not be found.`);
      if (n.uuid !== undefined) {
        if (!isUuid(n.uuid)) throw new BadRequest(`Bad networks format: network uuid is not in proper format (${n.uuid})`);
        throw new BadRequest(`Network ${n.uuid} could not be found.`);
      }
    }
  }
  if (az) {
    const zones = await availabilityZones(api);
    if (!zones.has(az)) throw new BadRequest('The requested availability zone is not available');
  }
  let group: { id: number; uuid: string; policy: string; rules: string | null } | undefined;
  if (hints.group !== undefined) {
    // As Nova's InstanceGroup.get_by_uuid: a non-admin sees only its own project's groups, so
    // another project's group is "not found" (400), never joined.
    const g = String(Array.isArray(hints.group) ? hints.group[0] : hints.group);
    let q = api.cells.db.selectFrom('instance_groups').select(['id', 'uuid', 'policy', 'rules']).where('uuid', '=', normUuid(g));
    if (!who.isAdmin) q = q.where('project_id', '=', who.projectId);
    group = await q.executeTakeFirst();
    if (!group) throw new BadRequest(`Instance group ${g} could not be found.`);
  }
  const metadata = (s.metadata ?? {}) as Record<string, string>;
  const limits = await quotaLimits(api, who.projectId, who.userId);
  if (limits.metadata_items >= 0 && Object.keys(metadata).length > limits.metadata_items) {
    throw new OverQuota('Quota exceeded for metadata_items: Requested ' + `${Object.keys(metadata).length}, but already used 0 of ${limits.metadata_items} metadata_items`);
  }
  if (s.personality && limits.injected_files >= 0 && s.personality.length > limits.injected_files) {
    throw new OverQuota('Quota exceeded, too many injected files.');
  }

  // How many: as Nova, max_count shrinks to what the quota allows, but never below min_count.
  let count = maxCount;
  {
    const usage = await countUsage(api.cells, who.projectId);
    let allowed = maxCount;
    for (const [r, per] of [['instances', 1], ['cores', flavor.vcpus], ['ram', flavor.memory_mb]] as const) {
      if (limits[r] < 0 || per === 0) continue;
      allowed = Math.min(allowed, Math.floor((limits[r] - usage[r]) / per));
    }
    if (allowed < minCount) await checkInstanceQuota(api, who.projectId, who.userId, { instances: minCount, cores: minCount * flavor.vcpus, ram: minCount * flavor.memory_mb });
    count = Math.max(minCount, Math.min(maxCount, allowed));
  }
  if (group) {
    const gl = limits.server_group_members;
    if (gl >= 0) {
      const n = await api.cells.db.selectFrom('instance_group_members').select((eb) => eb.fn.countAll<number>().as('n')).where('group_id', '=', group.id).executeTakeFirst();
      if (Number(n?.n ?? 0) + count > gl) throw new OverQuota('Quota exceeded, too many servers in group');
    }
  }

  const resv = reservationId();
  const adminPass = s.adminPass ?? (api.config.get<boolean>('DEFAULT', 'enable_instance_password') ? generatePassword() : undefined);
  const t = now();
  const uuids: string[] = [];
  const userData: string | null = s.user_data ?? null;
  const configDrive = s.config_drive !== undefined && toBool(s.config_drive) ? 'True' : '';
  const imageMeta = {
    id: image.id, name: image.name, min_ram: image.min_ram ?? 0, min_disk: image.min_disk ?? 0, size: image.size ?? 0,
    disk_format: image.disk_format, container_format: image.container_format, properties: props,
  };
  const imageSm = imageSystemMetadata(image);
  const db = api.cells.db;
  // Each instance's mapping, build request and request spec, and all of a request's instances,
  // are written in one transaction: a database that fails half-way (a restart) leaves no mapping
  // without its build request, which quota would count forever, and no build request without its spec.
  const rows: { mapping: Insertable<InstanceMappingsTable>; build: Insertable<BuildRequestsTable>; spec: Insertable<RequestSpecsTable>; member?: Insertable<InstanceGroupMembersTable> }[] = [];
  for (let i = 0; i < count; i++) {
    const uuid = randomUUID();
    const name = count > 1 ? `${s.name}-${i + 1}` : String(s.name);
    const row: Partial<InstanceRow> & Record<string, unknown> = {
      id: 0, uuid, display_name: name, display_description: s.description ?? null, project_id: who.projectId, user_id: who.userId,
      image_ref: image.id, flavor: JSON.stringify(emb), instance_type_id: flavor.flavorid, vcpus: flavor.vcpus, memory_mb: flavor.memory_mb,
      root_gb: flavor.root_gb, ephemeral_gb: flavor.ephemeral_gb, key_name: s.key_name ?? null, key_data: keyData, user_data: userData,
      hostname: s.hostname ?? sanitizeHostname(name, `server-${uuid}`), host: null, node: null, availability_zone: az ?? null,
      vm_state: VM.BUILDING, task_state: TASK.SCHEDULING, power_state: 0, config_drive: configDrive, reservation_id: resv, launch_index: i,
      locked_by: null, locked_reason: null, access_ip_v4: s.accessIPv4 ?? null, access_ip_v6: s.accessIPv6 !== undefined ? canonicalIpv6(s.accessIPv6) : null,
      auto_disk_config: s['OS-DCF:diskConfig'] === 'AUTO' ? 1 : 0, progress: 0, root_device_name: null, kernel_id: null, ramdisk_id: null,
      // The image as it is now and the NIC (contracts.md); the admin password is NOT stored: it
      // travels in the build messages only.
      system_metadata: JSON.stringify({ ...imageSm, network_info: JSON.stringify(s.networks === 'auto' ? [autoVif(uuid)] : []) }), launched_at: null, terminated_at: null,
      created_at: t, updated_at: null, deleted_at: null, deleted: 0,
      metadata_json: JSON.stringify(metadata), tags_list: s.tags ?? [], server_groups: group ? [group.uuid] : [],
    };
    rows.push({
      mapping: { instance_uuid: uuid, cell_id: null, project_id: who.projectId, user_id: who.userId, queued_for_delete: 0, created_at: t },
      build: { instance_uuid: uuid, project_id: who.projectId, user_id: who.userId, vcpus: flavor.vcpus, memory_mb: flavor.memory_mb, instance: JSON.stringify(row), created_at: t },
      spec: {
        instance_uuid: uuid,
        spec: JSON.stringify({
          version: REQUEST_SPEC_VERSION,
          instance_uuid: uuid, project_id: who.projectId, user_id: who.userId, flavor: emb, image: imageMeta, availability_zone: az ?? null,
          scheduler_hints: hints, num_instances: count, instance_group: group ? { uuid: group.uuid, policy: group.policy, rules: parseJson(group.rules, {}) } : null,
          force_hosts: forcedHost ? [forcedHost] : [], force_nodes: forcedNode ? [forcedNode] : [], ignore_hosts: [], num_attempts: 0,
        } satisfies RequestSpec),
      },
      member: group ? { group_id: group.id, instance_uuid: uuid } : undefined,
    });
    uuids.push(uuid);
  }
  // A request that fails after this point must leave nothing behind (the client retries it: a
  // leftover would be a second server, never scheduled). The removal itself waits out a database
  // restart; so does the quota re-check, rather than failing the request.
  const forget = async (e: unknown): Promise<'claimed'> => {
    const claimed = await retryOnConnectionError(async () => {
      let n = 0;
      for (const u of uuids) if (!(await forgetBuild(db, u))) n++;
      return n;
    }).catch((err) => { api.logger.warn({ err, instances: uuids, requestId: who.ctx.requestId }, 'could not remove the build requests of a failed create'); return 0; });
    if (!claimed) throw e;
    // The cast reached a conductor after all (its confirm was lost with the connection): the
    // build is under way, so the request succeeded — an error now would make the client's retry
    // a second server.
    api.logger.warn({ err: String(e), instances: uuids, requestId: who.ctx.requestId }, 'the cast of a create failed, but a conductor had already taken the build: answered as accepted');
    return 'claimed';
  };
  // A lost COMMIT acknowledgement fails the request though the rows may be there: forget them too.
  await retryOnDeadlock(() => db.transaction().execute(async (trx) => {
    for (const r of rows) {
      await trx.insertInto('instance_mappings').values(r.mapping).execute();
      await trx.insertInto('build_requests').values(r.build).execute();
      await trx.insertInto('request_specs').values(r.spec).execute();
      if (r.member) await trx.insertInto('instance_group_members').values(r.member).execute();
    }
  })).catch(forget);
  // Re-check now that our own build requests count (another request may have raced us).
  await retryOnConnectionError(() => checkInstanceQuota(api, who.projectId, who.userId, { instances: count, cores: count * flavor.vcpus, ram: count * flavor.memory_mb }, true)).catch(forget);
  // Not sent (the broker is unreachable): the caller gets an error, so no server may remain.
  await conductorRpc(() => api.transport()).cast(who.ctx, 'schedule_and_build_instances', {
    instance_uuids: uuids, admin_password: adminPass ?? null, injected_files: (s.personality ?? []).map((p: { path?: string; contents?: string }) => ({ path: String(p.path ?? ''), contents: String(p.contents ?? '') })),
  }).catch(forget);

  return { uuids, reservationId: resv, adminPass };
}

/** Nova's sanitize_hostname (before 2.94): spaces, underscores and dots become dashes. */
export function sanitizeHostname(name: string, fallback: string): string {
  let h = name.replace(/[^\x00-\xff]/g, '').replace(/[ _.]/g, '-').replace(/[^\w.-]+/g, '').toLowerCase();
  h = h.slice(0, 63).replace(/^[.-]+|[.-]+$/g, '');
  return h || fallback;
}

/**
 * Removes the rows of a build no conductor has taken yet; false when one has (its instance
 * mapping points at a cell: the build goes on, and its rows are the conductor's). The mapping is
 * removed first and only while it has no cell, so a conductor that takes the build at the same
 * moment either finds no mapping to claim (and stands down) or keeps everything.
 */
export async function forgetBuild(db: ApiDb, uuid: string): Promise<boolean> {
  const m = await db.deleteFrom('instance_mappings').where('instance_uuid', '=', uuid).where('cell_id', 'is', null).executeTakeFirst();
  if (Number(m.numDeletedRows) === 0 && (await db.selectFrom('instance_mappings').select('cell_id').where('instance_uuid', '=', uuid).executeTakeFirst())) return false;
  await db.deleteFrom('build_requests').where('instance_uuid', '=', uuid).execute();
  await db.deleteFrom('request_specs').where('instance_uuid', '=', uuid).execute();
  await db.deleteFrom('instance_group_members').where('instance_uuid', '=', uuid).execute();
  return true;
}

/** Zones with at least one compute host, plus the default zone. */
export async function availabilityZones(api: Pick<ComputeApi, 'config' | 'cells'>): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const dflt = api.config.get<string>('DEFAULT', 'default_availability_zone');
  const aggs = await hostAzMap(api.cells.db);
  for (const { db } of await api.cells.all({ includeCell0: false })) {
    const svcs = await db.selectFrom('services').select(['host']).where('binary', '=', 'nova-compute').execute();
    for (const s of svcs) {
      const z = aggs.get(s.host) ?? dflt;
      out.set(z, [...(out.get(z) ?? []), s.host]);
    }
  }
  if (!out.size) out.set(dflt, []);
  return out;
}

