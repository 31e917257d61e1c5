// Instances: RunInstances, DescribeInstances (filters, reservations, paging), the power actions,
// DescribeInstanceStatus, GetConsoleOutput and DescribeInstanceAttribute, on Nova's servers API.
import { createHash } from 'node:crypto';
import { isUniqueViolation } from '../../common/db/database.ts';
import { Ec2Error, invalidParameter, missingParameter } from '../errors.ts';
import { ec2IdFor, imageKind } from '../ids.ts';
import { bool, filters, indexed, int, list, required, tags as tagParams, type Filter } from '../params.ts';
import { el, node, set } from '../xml.ts';
import type { Reply } from '../downstream.ts';
import { messageOf } from '../downstream.ts';
import { type ActionContext, type ActionDef, checkId, decodeToken, encodeToken, matchAny, notFoundError, resolveIds } from './context.ts';
import { ec2State, instanceXml, soleReservationId, STATES, stateXml, tagsOf, type Ec2State } from './instance-view.ts';
import { checkTag } from './tags.ts';

const PAGE = 1000;

/** A server's 404 from Nova, for an id this cloud did issue: gone, or another project's. */
const serverNotFound = (id: string) => (r: Reply) => (r.status === 404 ? notFoundError('i', id) : undefined);

// --- reading servers -------------------------------------------------------------------------

interface Listed { servers: any[]; next?: string }

/** One page (or every page) of the caller's servers in Nova's order. */
async function listServers(c: ActionContext, o: { limit?: number; marker?: string; query?: string } = {}): Promise<Listed> {
  const out: any[] = [];
  let marker = o.marker;
  for (;;) {
    const limit = o.limit ? Math.min(o.limit - out.length, PAGE) : PAGE;
    const q = `limit=${limit}${marker ? `&marker=${marker}` : ''}${o.query ?? ''}`;
    const body = await c.compute.ok(c.caller.token, 'GET', `/servers/detail?${q}`, undefined, {
      onError: (r) => (r.status === 400 && marker && /marker/i.test(messageOf(r)) ? invalidParameter('Invalid NextToken: the instance it points at is gone') : undefined),
    });
    const page = body.servers as any[];
    out.push(...page);
    const full = page.length === limit;
    if (full) marker = page[page.length - 1].id;
    if (o.limit) return { servers: out, next: full && out.length === o.limit && body.servers_links?.length ? marker : undefined };
    if (!full) return { servers: out };
  }
}

/** How long a terminated instance stays visible by id (AWS: about an hour). */
const TERMINATED_VISIBLE_MS = 3600_000;

async function getServers(c: ActionContext, ec2Ids: string[]): Promise<any[]> {
  const uuids = await resolveIds(c, ec2Ids, ['i']);
  const got = await Promise.all(uuids.map((u) => c.compute.call(c.caller.token, 'GET', `/servers/${u}`)));
  const gone = await terminated(c, uuids.filter((_, i) => got[i].status === 404));
  const missing = ec2Ids.filter((_, i) => got[i].status === 404 && !gone.has(uuids[i]));
  if (missing.length) throw notFoundError('i', missing);
  return got.map((r, i) => {
    if (r.status === 404) return gone.get(uuids[i]);
    if (r.status !== 200) throw new Ec2Error('InternalError', `Compute answered ${r.status} for ${ec2Ids[i]}: ${messageOf(r)}`, 500);
    return r.body.server;
  });
}

/**
 * Instances RunInstances launched in the caller's project that compute no longer has, as
 * terminated stand-ins, for an hour after they were first found gone (a waiter for
 * "terminated" needs to see them; another project's ids never match here).
 */
async function terminated(c: ActionContext, uuids: string[]): Promise<Map<string, any>> {
  const out = new Map<string, any>();
  if (!uuids.length) return out;
  const rows = await c.db.selectFrom('ec2_reservations').selectAll().where('instance_uuid', 'in', uuids).where('project_id', '=', c.caller.projectId).execute();
  const now = Date.now();
  for (const r of rows) {
    if (!r.terminated_at) {
      r.terminated_at = new Date(now).toISOString();
      await c.db.updateTable('ec2_reservations').set({ terminated_at: r.terminated_at }).where('instance_uuid', '=', r.instance_uuid).execute();
    }
    if (now - Date.parse(r.terminated_at) > TERMINATED_VISIBLE_MS) continue;
    out.set(r.instance_uuid, { id: r.instance_uuid, tenant_id: r.project_id, 'OS-EXT-STS:vm_state': 'deleted', 'OS-EXT-STS:task_state': null, created: r.created_at, metadata: {}, flavor: {}, image: {} });
  }
  return out;
}

/** What rendering needs beside the servers: EC2 ids, reservations, images. Batched per call. */
async function refsFor(c: ActionContext, servers: any[]) {
  const uuids = servers.map((s) => s.id as string);
  const instanceIds = await c.ids.toEc2('i', uuids);
  const resv = new Map<string, { reservation_id: string; launch_index: number; project_id: string }>();
  for (let i = 0; i < uuids.length; i += 500) {
    const rows = await c.db.selectFrom('ec2_reservations').select(['instance_uuid', 'reservation_id', 'launch_index', 'project_id']).where('instance_uuid', 'in', uuids.slice(i, i + 500)).execute();
    for (const r of rows) resv.set(r.instance_uuid, r);
  }
  const unknown = servers.filter((s) => !resv.has(s.id) && s['OS-EXT-STS:vm_state'] !== 'deleted');
  if (unknown.length) for (const r of await adoptReservations(c, unknown)) resv.set(r.instance_uuid, r);
  const images = await imagesById(c, [...new Set(servers.map((s) => s.image?.id).filter((x): x is string => !!x))]);
  return { instanceIds, resv, images };
}

/**
 * Servers made through the Nova API: their reservation and launch index (which Nova shows
 * admins only, and the metadata service shows the guest) read once with this service's token
 * and recorded, so DescribeInstances groups them as the guest sees itself.
 */
async function adoptReservations(c: ActionContext, servers: any[]) {
  let admin: Map<string, any>;
  try {
    const token = await c.serviceToken();
    if (servers.length <= 20) {
      const got = await Promise.all(servers.map((s) => c.compute.call(token, 'GET', `/servers/${s.id}`)));
      admin = new Map(got.filter((r) => r.status === 200).map((r) => [r.body.server.id, r.body.server]));
    } else {
      admin = new Map();
      const want = new Set(servers.map((s) => s.id));
      let marker: string | undefined;
      for (;;) {
        const page = (await c.compute.ok(token, 'GET', `/servers/detail?all_tenants=True&project_id=${encodeURIComponent(c.caller.projectId)}&limit=${PAGE}${marker ? `&marker=${marker}` : ''}`)).servers as any[];
        for (const s of page) if (want.has(s.id)) admin.set(s.id, s);
        if (page.length < PAGE || admin.size === want.size) break;
        marker = page[page.length - 1].id;
      }
    }
  } catch {
    return []; // no admin view: these servers show as reservations of their own until next time
  }
  const now = new Date().toISOString();
  const rows = [...admin.values()].filter((s) => typeof s['OS-EXT-SRV-ATTR:reservation_id'] === 'string' && s.tenant_id === c.caller.projectId).map((s) => ({
    instance_uuid: s.id as string, reservation_id: s['OS-EXT-SRV-ATTR:reservation_id'] as string, project_id: c.caller.projectId,
    launch_index: Number(s['OS-EXT-SRV-ATTR:launch_index'] ?? 0), user_data: (s['OS-EXT-SRV-ATTR:user_data'] as string | null) ?? null, created_at: now, terminated_at: null,
  }));
  for (let i = 0; i < rows.length; i += 200) {
    const chunk = rows.slice(i, i + 200);
    try {
      await c.db.insertInto('ec2_reservations').values(chunk).execute();
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      for (const r of chunk) await c.db.insertInto('ec2_reservations').values(r).execute().catch((e2) => { if (!isUniqueViolation(e2)) throw e2; });
    }
  }
  return rows;
}

interface ImageInfo { id: string; kind: 'ami' | 'aki' | 'ari'; architecture?: string; kernel?: string; ramdisk?: string }

async function imagesById(c: ActionContext, ids: string[]): Promise<Map<string, ImageInfo>> {
  const out = new Map<string, ImageInfo>();
  const found = await Promise.all(ids.slice(0, 50).map((id) => c.image.call(c.caller.token, 'GET', `/v2/images/${id}`)));
  for (const [i, r] of found.entries()) {
    if (r.status !== 200) continue;
    const img = r.body;
    out.set(ids[i], { id: ids[i], kind: imageKind(img.container_format) as ImageInfo['kind'], architecture: img.architecture, kernel: img.kernel_id, ramdisk: img.ramdisk_id });
  }
  return out;
}

interface Row { s: any; xml?: string; instanceId: string; reservationId: string; launchIndex: number; imageId?: string; arch?: string; ownerId: string }

async function rowsFor(c: ActionContext, servers: any[]): Promise<Row[]> {
  const { instanceIds, resv, images } = await refsFor(c, servers);
  const imageIds = new Map<string, string>();
  for (const [uuid, info] of images) imageIds.set(uuid, await c.ids.one(info.kind, uuid));
  return servers.map((s, i) => {
    const r = resv.get(s.id);
    const imgUuid = s.image?.id as string | undefined;
    return {
      s, instanceId: instanceIds[i],
      reservationId: r?.reservation_id ?? s['OS-EXT-SRV-ATTR:reservation_id'] ?? soleReservationId(s.id),
      launchIndex: r?.launch_index ?? s['OS-EXT-SRV-ATTR:launch_index'] ?? 0,
      imageId: imgUuid ? imageIds.get(imgUuid) ?? ec2IdFor('ami', imgUuid) : undefined,
      arch: imgUuid ? images.get(imgUuid)?.architecture : undefined,
      ownerId: s.tenant_id,
    };
  });
}

function renderRow(r: Row): string {
  const img = r.s.image?.id;
  return r.xml ??= instanceXml(r.s, {
    instanceId: r.instanceId, imageId: r.imageId, launchIndex: r.launchIndex, architecture: r.arch,
    kernelId: img && r.s['OS-EXT-SRV-ATTR:kernel_id'] ? ec2IdFor('aki', r.s['OS-EXT-SRV-ATTR:kernel_id']) : undefined,
    ramdiskId: img && r.s['OS-EXT-SRV-ATTR:ramdisk_id'] ? ec2IdFor('ari', r.s['OS-EXT-SRV-ATTR:ramdisk_id']) : undefined,
  });
}

/** Rows grouped by reservation, in the order their first instance appears. */
function reservationsXml(rows: Row[]): string {
  const groups = new Map<string, Row[]>();
  for (const r of rows) { const g = groups.get(r.reservationId); if (g) g.push(r); else groups.set(r.reservationId, [r]); }
  let x = '<reservationSet>';
  for (const [rid, g] of groups) {
    g.sort((a, b) => a.launchIndex - b.launchIndex);
    x += `<item>${el('reservationId', rid)}${el('ownerId', g[0].ownerId)}<groupSet/>${set('instancesSet', g, renderRow)}</item>`;
  }
  return `${x}</reservationSet>`;
}

// --- filters ---------------------------------------------------------------------------------

type RowTest = (r: Row, values: string[]) => boolean;
const INSTANCE_FILTERS: Record<string, RowTest> = {
  'instance-id': (r, v) => matchAny(v, r.instanceId),
  'instance-state-name': (r, v) => matchAny(v, ec2State(r.s).name),
  'instance-state-code': (r, v) => matchAny(v, String(ec2State(r.s).code)),
  'instance-type': (r, v) => matchAny(v, r.s.flavor?.original_name),
  'image-id': (r, v) => matchAny(v, r.imageId),
  'key-name': (r, v) => matchAny(v, r.s.key_name),
  'availability-zone': (r, v) => matchAny(v, r.s['OS-EXT-AZ:availability_zone']),
  'reservation-id': (r, v) => matchAny(v, r.reservationId),
  'launch-index': (r, v) => matchAny(v, String(r.launchIndex)),
  'owner-id': (r, v) => matchAny(v, r.ownerId),
  'private-dns-name': (r, v) => matchAny(v, r.s['OS-EXT-SRV-ATTR:hostname'] ?? r.s.name),
  architecture: (r, v) => matchAny(v, r.arch),
  'root-device-type': (_r, v) => matchAny(v, 'instance-store'),
  'tag-key': (r, v) => tagsOf(r.s).some((t) => matchAny(v, t.key)),
  'tag-value': (r, v) => tagsOf(r.s).some((t) => matchAny(v, t.value)),
};

function rowFilter(fs: Filter[], extra: Record<string, RowTest> = {}): (r: Row) => boolean {
  const tests = fs.map((f) => {
    if (!f.values.length) throw invalidParameter(`The filter '${f.name}' has no values`);
    if (f.name.startsWith('tag:')) {
      const key = f.name.slice(4);
      return (r: Row) => tagsOf(r.s).some((t) => t.key === key && matchAny(f.values, t.value));
    }
    const t = extra[f.name] ?? INSTANCE_FILTERS[f.name];
    if (!t) throw invalidParameter(`The filter '${f.name}' is invalid`);
    return (r: Row) => t(r, f.values);
  });
  return (r) => tests.every((t) => t(r));
}

// --- DescribeInstances -----------------------------------------------------------------------

async function describeInstances(c: ActionContext): Promise<string> {
  const ids = list(c.p, 'InstanceId');
  const max = int(c.p, 'MaxResults', { min: 5, max: 1000 });
  const token = c.p.NextToken;
  if (ids.length && (max !== undefined || token !== undefined)) throw invalidParameter('The parameter instancesSet cannot be used with the parameter maxResults');
  const keep = rowFilter(filters(c.p));
  let servers: any[];
  let next: string | undefined;
  if (ids.length) servers = await getServers(c, ids);
  else ({ servers, next } = await listServers(c, { limit: max, marker: token !== undefined ? decodeToken(token) : undefined }));
  const rows = (await rowsFor(c, servers)).filter(keep);
  return reservationsXml(rows) + (next ? el('nextToken', encodeToken(next)) : '');
}

// --- RunInstances ----------------------------------------------------------------------------

function decodeUserData(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  const clean = v.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) throw invalidParameter('Invalid BASE64 encoding of user data.');
  if (clean.length > 65535) throw invalidParameter('User data is limited to 16384 bytes');
  return clean;
}

async function flavorByName(c: ActionContext, name: string): Promise<any> {
  const body = await c.compute.ok(c.caller.token, 'GET', '/flavors/detail?is_public=None');
  const f = (body.flavors as any[]).find((x) => x.name === name);
  if (!f) throw invalidParameter(`Invalid value '${name}' for InstanceType.`);
  return f;
}

async function runInstances(c: ActionContext): Promise<string> {
  const imageEc2 = required(c.p, 'ImageId');
  checkId(imageEc2, ['ami']);
  const minCount = int(c.p, 'MinCount', { min: 1 });
  const maxCount = int(c.p, 'MaxCount', { min: 1 });
  if (minCount === undefined) throw missingParameter('MinCount');
  if (maxCount === undefined) throw missingParameter('MaxCount');
  if (minCount > maxCount) throw invalidParameter(`MinCount (${minCount}) must be less than or equal to MaxCount (${maxCount})`);
  const userData = decodeUserData(c.p.UserData);
  const clientToken = c.p.ClientToken;
  if (clientToken !== undefined && (clientToken.length < 1 || clientToken.length > 64 || !/^[\x21-\x7e]+$/.test(clientToken))) throw invalidParameter('ClientToken must be 1 to 64 printable ASCII characters');
  const instanceTags = indexed(c.p, 'TagSpecification').flatMap((n) => {
    const type = c.p[`TagSpecification.${n}.ResourceType`];
    if (type !== 'instance') throw invalidParameter(`TagSpecification.${n}.ResourceType '${type ?? ''}' is not supported (only 'instance')`);
    return tagParams(c.p, `TagSpecification.${n}.Tag`);
  });
  for (const t of instanceTags) checkTag(t);
  for (const k of Object.keys(c.p)) {
    // Networking, security groups and block devices are Neutron's and Cinder's: not offered here.
    if (/^(SecurityGroup|SecurityGroupId|NetworkInterface|BlockDeviceMapping|SubnetId|PrivateIpAddress|IamInstanceProfile|ElasticGpuSpecification)(\.|$)/.test(k)) {
      throw new Ec2Error('UnsupportedOperation', `The parameter ${k.split('.')[0]} is not supported by this cloud`);
    }
  }

  if (clientToken !== undefined) {
    const hash = createHash('sha256').update(JSON.stringify(Object.entries(c.p).filter(([k]) => !['ClientToken', 'Action', 'Version', 'Signature', 'Timestamp', 'AWSAccessKeyId', 'SignatureVersion', 'SignatureMethod', 'Expires'].includes(k) && !k.startsWith('X-Amz-')).sort())).digest('hex');
    const prior = await claimClientToken(c, clientToken, hash);
    if (prior) return reservationResponse(c, prior, clientToken);
    try {
      const rid = await launch(c, { imageEc2, minCount, maxCount, userData, instanceTags });
      await c.db.updateTable('ec2_client_tokens').set({ reservation_id: rid }).where('project_id', '=', c.caller.projectId).where('client_token', '=', clientToken).execute();
      return reservationResponse(c, rid, clientToken);
    } catch (e) {
      await c.db.deleteFrom('ec2_client_tokens').where('project_id', '=', c.caller.projectId).where('client_token', '=', clientToken).execute();
      throw e;
    }
  }
  return reservationResponse(c, await launch(c, { imageEc2, minCount, maxCount, userData, instanceTags }));
}

/** Records the token; answers the reservation an earlier identical request made, if any. */
async function claimClientToken(c: ActionContext, token: string, hash: string): Promise<string | undefined> {
  const key = (q: any) => q.where('project_id', '=', c.caller.projectId).where('client_token', '=', token);
  try {
    await c.db.insertInto('ec2_client_tokens').values({ project_id: c.caller.projectId, client_token: token, params_hash: hash, reservation_id: null, created_at: new Date().toISOString() }).execute();
    return undefined;
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
  }
  // The same token: the same request must not launch twice. Wait for a launch still under way.
  for (let i = 0; i < 100; i++) {
    const row = await key(c.db.selectFrom('ec2_client_tokens').selectAll()).executeTakeFirst();
    if (!row) return claimClientToken(c, token, hash);
    if (row.params_hash !== hash) throw new Ec2Error('IdempotentParameterMismatch', `The client token '${token}' was already used with different parameters`);
    if (row.reservation_id) return row.reservation_id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Ec2Error('IdempotentParameterMismatch', `The request with client token '${token}' is still in progress`);
}

interface LaunchSpec { imageEc2: string; minCount: number; maxCount: number; userData?: string; instanceTags: { key: string; value: string }[] }

async function launch(c: ActionContext, o: LaunchSpec): Promise<string> {
  const [imageUuid] = await resolveIds(c, [o.imageEc2], ['ami']);
  const flavor = await flavorByName(c, c.p.InstanceType ?? c.settings.defaultInstanceType);
  const metadata = Object.fromEntries(o.instanceTags.map((t) => [t.key, t.value]));
  const server: Record<string, unknown> = {
    name: metadata.Name || 'ec2-instance', imageRef: imageUuid, flavorRef: flavor.id, min_count: o.minCount, max_count: o.maxCount,
    return_reservation_id: true, networks: c.settings.network,
  };
  if (c.p.KeyName !== undefined) server.key_name = c.p.KeyName;
  if (o.userData) server.user_data = o.userData;
  if (c.p['Placement.AvailabilityZone']) server.availability_zone = c.p['Placement.AvailabilityZone'];
  if (o.instanceTags.length) server.metadata = metadata;
  const body = await c.compute.ok(c.caller.token, 'POST', '/servers', { server }, {
    onError: (r) => {
      const m = messageOf(r);
      if (r.status === 403 && /quota/i.test(m)) return new Ec2Error('InstanceLimitExceeded', `Your quota allows for 0 more running instance(s). You requested at least ${o.minCount}. (${m})`);
      if (r.status === 400 && /image/i.test(m) && /not found|could not be found|cannot find/i.test(m)) return notFoundError('ami', o.imageEc2);
      if (r.status === 400 && /key ?pair|key_name/i.test(m)) return new Ec2Error('InvalidKeyPair.NotFound', `The key pair '${c.p.KeyName}' does not exist`);
      if (r.status === 400 && /availability.zone/i.test(m)) return new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${c.p['Placement.AvailabilityZone']}]`);
      return undefined;
    },
  });
  const rid = body.reservation_id as string;
  const { servers } = await listServers(c, { query: `&reservation_id=${encodeURIComponent(rid)}` });
  // Nova's reservation ids (r- and 8 characters) are ours: each server's launch index is its
  // position in the boot request, which Nova names as <name>-<n> when there are several.
  const ordered = servers.map((s) => ({ s, idx: Number(/-(\d+)$/.exec(s.name)?.[1] ?? 1) - 1 })).sort((a, b) => a.idx - b.idx);
  const now = new Date().toISOString();
  if (ordered.length) {
    await c.db.insertInto('ec2_reservations').values(ordered.map((x, i) => ({
      instance_uuid: x.s.id, reservation_id: rid, project_id: c.caller.projectId, launch_index: servers.length > 1 ? x.idx : i, user_data: o.userData ?? null, created_at: now, terminated_at: null,
    }))).execute();
  }
  return rid;
}

async function reservationResponse(c: ActionContext, rid: string, clientToken?: string): Promise<string> {
  const recorded = await c.db.selectFrom('ec2_reservations').select(['instance_uuid']).where('reservation_id', '=', rid).where('project_id', '=', c.caller.projectId).orderBy('launch_index').execute();
  const got = await Promise.all(recorded.map((r) => c.compute.call(c.caller.token, 'GET', `/servers/${r.instance_uuid}`)));
  const servers = got.filter((r) => r.status === 200).map((r) => r.body.server);
  const rows = await rowsFor(c, servers);
  const items = rows.map((r) => instanceXml(r.s, {
    instanceId: r.instanceId, imageId: r.imageId, launchIndex: r.launchIndex, architecture: r.arch, clientToken,
  }));
  return el('reservationId', rid) + el('ownerId', c.caller.projectId) + '<groupSet/>' + set('instancesSet', items, (x) => x);
}

// --- state changes ---------------------------------------------------------------------------

interface Change { instanceId: string; previous: Ec2State; current: Ec2State }

const changesXml = (cs: Change[]) => set('instancesSet', cs, (x) => el('instanceId', x.instanceId) + stateXml('currentState', x.current) + stateXml('previousState', x.previous));

async function powerAction(c: ActionContext, o: { action: 'start' | 'stop' | 'terminate' }): Promise<Change[]> {
  const ids = list(c.p, 'InstanceId');
  if (!ids.length) throw missingParameter('InstanceId');
  const servers = await getServers(c, ids);
  return Promise.all(servers.map(async (s, i) => {
    const previous = ec2State(s);
    const id = ids[i];
    if (previous.name === 'terminated' && s['OS-EXT-STS:vm_state'] === 'deleted') {
      if (o.action === 'terminate') return { instanceId: id, previous, current: previous };
      throw new Ec2Error('IncorrectInstanceState', `The instance '${id}' is terminated`);
    }
    if (o.action === 'terminate') {
      await c.compute.ok(c.caller.token, 'DELETE', `/servers/${s.id}`, undefined, { onError: serverNotFound(id) });
      return { instanceId: id, previous, current: STATES.shuttingDown };
    }
    const [want, verb, body] = o.action === 'stop' ? [STATES.stopped, STATES.stopping, { 'os-stop': null }] : [STATES.running, STATES.pending, { 'os-start': null }];
    if (previous.name === want.name) return { instanceId: id, previous, current: previous };
    await c.compute.ok(c.caller.token, 'POST', `/servers/${s.id}/action`, body, {
      onError: (r) => serverNotFound(id)(r) ?? (r.status === 409 ? new Ec2Error('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be ${o.action === 'stop' ? 'stopped' : 'started'} (${messageOf(r)})`) : undefined),
    });
    return { instanceId: id, previous, current: verb };
  }));
}

async function rebootInstances(c: ActionContext): Promise<string> {
  const ids = list(c.p, 'InstanceId');
  if (!ids.length) throw missingParameter('InstanceId');
  const servers = await getServers(c, ids);
  servers.forEach((s, i) => { if (s['OS-EXT-STS:vm_state'] === 'deleted') throw new Ec2Error('IncorrectInstanceState', `The instance '${ids[i]}' is terminated`); });
  await Promise.all(servers.map((s, i) => c.compute.ok(c.caller.token, 'POST', `/servers/${s.id}/action`, { reboot: { type: 'SOFT' } }, {
    onError: (r) => serverNotFound(ids[i])(r) ?? (r.status === 409 ? new Ec2Error('IncorrectInstanceState', `The instance '${ids[i]}' is not in a state from which it can be rebooted (${messageOf(r)})`) : undefined),
  })));
  return '<return>true</return>';
}

// --- status, console, attributes -------------------------------------------------------------

async function describeInstanceStatus(c: ActionContext): Promise<string> {
  const ids = list(c.p, 'InstanceId');
  const all = bool(c.p, 'IncludeAllInstances') ?? false;
  const max = int(c.p, 'MaxResults', { min: 5, max: 1000 });
  const keep = rowFilter(filters(c.p), {
    'instance-status.status': (_r, v) => matchAny(v, 'ok'), 'system-status.status': (_r, v) => matchAny(v, 'ok'),
  });
  let servers: any[];
  let next: string | undefined;
  if (ids.length) servers = await getServers(c, ids);
  else ({ servers, next } = await listServers(c, { limit: max, marker: c.p.NextToken !== undefined ? decodeToken(c.p.NextToken) : undefined }));
  const rows = (await rowsFor(c, servers)).filter((r) => keep(r) && (all || ec2State(r.s).name === 'running'));
  const ok = '<status>ok</status><details><item><name>reachability</name><status>passed</status></item></details>';
  return set('instanceStatusSet', rows, (r) => {
    const st = ec2State(r.s);
    const status = st.name === 'running' ? ok : '<status>not-applicable</status>';
    return el('instanceId', r.instanceId) + el('availabilityZone', r.s['OS-EXT-AZ:availability_zone'] ?? '') + stateXml('instanceState', st)
      + node('systemStatus', status) + node('instanceStatus', status);
  }) + (next ? el('nextToken', encodeToken(next)) : '');
}

async function getConsoleOutput(c: ActionContext): Promise<string> {
  const id = required(c.p, 'InstanceId');
  const [uuid] = await resolveIds(c, [id], ['i']);
  const body = await c.compute.ok(c.caller.token, 'POST', `/servers/${uuid}/action`, { 'os-getConsoleOutput': { length: null } }, {
    onError: (r) => serverNotFound(id)(r) ?? (r.status === 409 ? new Ec2Error('IncorrectInstanceState', `The instance '${id}' has no console output in its state (${messageOf(r)})`) : undefined),
  });
  return el('instanceId', id) + el('timestamp', new Date().toISOString()) + el('output', Buffer.from(String(body.output ?? '')).toString('base64'));
}

const ATTRIBUTES = ['instanceType', 'kernel', 'ramdisk', 'userData', 'disableApiTermination', 'instanceInitiatedShutdownBehavior', 'rootDeviceName',
  'blockDeviceMapping', 'productCodes', 'sourceDestCheck', 'groupSet', 'ebsOptimized', 'sriovNetSupport', 'enaSupport', 'enclaveOptions', 'disableApiStop'];

async function describeInstanceAttribute(c: ActionContext): Promise<string> {
  const id = required(c.p, 'InstanceId');
  const attr = required(c.p, 'Attribute');
  if (!ATTRIBUTES.includes(attr)) throw invalidParameter(`Value (${attr}) for parameter attribute is invalid. Unknown attribute.`);
  const [s] = await getServers(c, [id]);
  const value = (v: string | undefined) => (v === undefined ? `<${attr}/>` : node(attr, el('value', v)));
  switch (attr) {
    case 'instanceType': return el('instanceId', id) + value(s.flavor?.original_name);
    case 'userData': {
      const row = await c.db.selectFrom('ec2_reservations').select(['user_data']).where('instance_uuid', '=', s.id).executeTakeFirst();
      return el('instanceId', id) + value(row?.user_data ?? s['OS-EXT-SRV-ATTR:user_data'] ?? undefined);
    }
    case 'rootDeviceName': return el('instanceId', id) + value('/dev/vda');
    case 'disableApiTermination': return el('instanceId', id) + value(String(!!s.locked));
    case 'instanceInitiatedShutdownBehavior': return el('instanceId', id) + value('stop');
    default: throw new Ec2Error('UnsupportedOperation', `The instance attribute '${attr}' is not supported by this cloud`);
  }
}

export const instanceActions: Record<string, ActionDef> = {
  DescribeInstances: { handler: describeInstances },
  RunInstances: { handler: runInstances },
  TerminateInstances: { handler: async (c) => changesXml(await powerAction(c, { action: 'terminate' })) },
  StopInstances: { handler: async (c) => changesXml(await powerAction(c, { action: 'stop' })) },
  StartInstances: { handler: async (c) => changesXml(await powerAction(c, { action: 'start' })) },
  RebootInstances: { handler: rebootInstances },
  DescribeInstanceStatus: { handler: describeInstanceStatus },
  GetConsoleOutput: { handler: getConsoleOutput },
  DescribeInstanceAttribute: { handler: describeInstanceAttribute },
};

export { listServers, rowsFor };

export async function discoverInstances(c: ActionContext): Promise<void> {
  const { servers } = await listServers(c);
  await c.ids.toEc2('i', servers.map((s) => s.id));
}
