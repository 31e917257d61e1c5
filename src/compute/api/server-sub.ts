// Sub-resources of a server: metadata, tags, instance actions with events, password.
import { BadRequest, Conflict, NotFound, OverQuota } from '../../common/errors.ts';
import { VM } from '../objects.ts';
import { hostId } from '../objects.ts';
import { isoMicro, isoZ, isUuid, normUuid } from '../util.ts';
import { findInstance, metadataOf, setMetadata, tagsOf, type Located } from '../store.ts';
import { quotaLimits } from '../quota.ts';
import { validate, P } from './validation.ts';
import { pageParams, q1, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { getLiveServer, getServer, type ServerRef } from './servers.ts';
import { addressesOf, vifsOf } from '../network-info.ts';
import { parseJson } from '../util.ts';

const MD_STATES = [VM.ACTIVE, VM.PAUSED, VM.SUSPENDED, VM.STOPPED, VM.SHELVED, VM.SHELVED_OFFLOADED, VM.BUILDING];

async function mdTarget(c: Ctx, rule: string, write: boolean): Promise<Located> {
  const l = await getLiveServer(c, c.params.id);
  c.enforce(rule, { project_id: l.row.project_id });
  if (write) {
    if (l.row.locked_by && !c.isAdmin) throw new Conflict(`Instance ${l.row.uuid} is locked`);
    if (!MD_STATES.includes(l.row.vm_state as never)) {
      throw new Conflict(`Cannot 'update metadata' instance ${l.row.uuid} while it is in vm_state ${l.row.vm_state}`);
    }
    // Nova's check_instance_state names the attribute that did not match.
    if (l.row.task_state && l.row.vm_state !== VM.BUILDING) {
      throw new Conflict(`Cannot 'update metadata' instance ${l.row.uuid} while it is in task_state ${l.row.task_state}`);
    }
  }
  return l;
}

async function checkMdQuota(c: Ctx, l: Located, md: Record<string, string>, replace: boolean): Promise<void> {
  const limit = (await quotaLimits(c.api, l.row.project_id)).metadata_items;
  if (limit < 0) return;
  const cur = (await metadataOf(l.db, [l.row.uuid])).get(l.row.uuid) ?? {};
  const n = replace ? Object.keys(md).length : new Set([...Object.keys(cur), ...Object.keys(md)]).size;
  if (n > limit) throw new OverQuota(`Quota exceeded for metadata_items: Requested ${Object.keys(md).length}, but already used ${replace ? 0 : Object.keys(cur).length} of ${limit} metadata_items`);
}

const mdBody = { type: 'object', properties: { metadata: P.metadata }, required: ['metadata'], additionalProperties: false };
const current = async (l: Located) => (await metadataOf(l.db, [l.row.uuid])).get(l.row.uuid) ?? {};

const metadataRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers/:id/metadata', policy: 'os_compute_api:server-metadata:index', errors: [], handler: async (c) => ({ metadata: await current(await mdTarget(c, 'os_compute_api:server-metadata:index', false)) }) },
  { method: 'POST', path: '/servers/:id/metadata', policy: 'os_compute_api:server-metadata:create', errors: [409], handler: async (c) => {
    const md = validate(mdBody, c.body).metadata;
    const l = await mdTarget(c, 'os_compute_api:server-metadata:create', true);
    await checkMdQuota(c, l, md, false);
    await setMetadata(l.db, l.row.uuid, md, false);
    return { metadata: await current(l) };
  } },
  { method: 'PUT', path: '/servers/:id/metadata', policy: 'os_compute_api:server-metadata:update_all', errors: [409], handler: async (c) => {
    const md = validate(mdBody, c.body).metadata;
    const l = await mdTarget(c, 'os_compute_api:server-metadata:update_all', true);
    await checkMdQuota(c, l, md, true);
    await setMetadata(l.db, l.row.uuid, md, true);
    return { metadata: await current(l) };
  } },
  { method: 'GET', path: '/servers/:id/metadata/:key', policy: 'os_compute_api:server-metadata:show', errors: [], handler: async (c) => {
    const md = await current(await mdTarget(c, 'os_compute_api:server-metadata:show', false));
    if (!(c.params.key in md)) throw new NotFound('Metadata item was not found');
    return { meta: { [c.params.key]: md[c.params.key] } };
  } },
  { method: 'PUT', path: '/servers/:id/metadata/:key', policy: 'os_compute_api:server-metadata:update', errors: [409], handler: async (c) => {
    const meta = validate({ type: 'object', properties: { meta: { ...P.metadata, minProperties: 1, maxProperties: 1 } }, required: ['meta'], additionalProperties: false }, c.body).meta as Record<string, string>;
    if (!(c.params.key in meta)) throw new BadRequest('Request body and URI mismatch');
    const l = await mdTarget(c, 'os_compute_api:server-metadata:update', true);
    await checkMdQuota(c, l, meta, false);
    await setMetadata(l.db, l.row.uuid, meta, false);
    return { meta };
  } },
  { method: 'DELETE', path: '/servers/:id/metadata/:key', policy: 'os_compute_api:server-metadata:delete', errors: [409], handler: async (c) => {
    const l = await mdTarget(c, 'os_compute_api:server-metadata:delete', true);
    const r = await l.db.deleteFrom('instance_metadata').where('instance_uuid', '=', l.row.uuid).where('key', '=', c.params.key).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound('Metadata item was not found');
    return { status: 204 };
  } },
];

// --- tags (2.26) ---
const TAG = { type: 'string', minLength: 1, maxLength: 60, pattern: '^[^,/]*$' };
const MAX_TAGS = 50;
async function tagTarget(c: Ctx, rule: string, write: boolean): Promise<Located> {
  const l = await getLiveServer(c, c.params.id);
  c.enforce(rule, { project_id: l.row.project_id });
  if (write && ![VM.ACTIVE, VM.PAUSED, VM.SUSPENDED, VM.STOPPED, VM.SHELVED, VM.SHELVED_OFFLOADED, VM.BUILDING, VM.ERROR].includes(l.row.vm_state as never)) {
    throw new Conflict(`Cannot 'update tags' instance ${l.row.uuid} while it is in vm_state ${l.row.vm_state}`);
  }
  return l;
}
const tagsNow = async (l: Located) => (await tagsOf(l.db, [l.row.uuid])).get(l.row.uuid) ?? [];

const tagRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers/:id/tags', policy: 'os_compute_api:os-server-tags:index', errors: [], since: '2.26', handler: async (c) => ({ tags: await tagsNow(await tagTarget(c, 'os_compute_api:os-server-tags:index', false)) }) },
  { method: 'PUT', path: '/servers/:id/tags', policy: 'os_compute_api:os-server-tags:update_all', errors: [409], since: '2.26', handler: async (c) => {
    const tags = validate({ type: 'object', properties: { tags: { type: 'array', items: TAG } }, required: ['tags'], additionalProperties: false }, c.body).tags as string[];
    if (tags.length > MAX_TAGS) throw new BadRequest(`The number of tags exceeded the per-server limit ${MAX_TAGS}`);
    const l = await tagTarget(c, 'os_compute_api:os-server-tags:update_all', true);
    await l.db.deleteFrom('instance_tags').where('instance_uuid', '=', l.row.uuid).execute();
    for (const t of [...new Set(tags)]) await l.db.insertInto('instance_tags').values({ instance_uuid: l.row.uuid, tag: t }).execute();
    return { tags: await tagsNow(l) };
  } },
  { method: 'DELETE', path: '/servers/:id/tags', policy: 'os_compute_api:os-server-tags:delete_all', errors: [409], since: '2.26', handler: async (c) => {
    const l = await tagTarget(c, 'os_compute_api:os-server-tags:delete_all', true);
    await l.db.deleteFrom('instance_tags').where('instance_uuid', '=', l.row.uuid).execute();
    return { status: 204 };
  } },
  { method: 'GET', path: '/servers/:id/tags/:tag', policy: 'os_compute_api:os-server-tags:show', errors: [], since: '2.26', handler: async (c) => {
    const l = await tagTarget(c, 'os_compute_api:os-server-tags:show', false);
    if (!(await tagsNow(l)).includes(c.params.tag)) throw new NotFound(`Tag ${c.params.tag} could not be found.`);
    return { status: 204 };
  } },
  { method: 'PUT', path: '/servers/:id/tags/:tag', policy: 'os_compute_api:os-server-tags:update', errors: [409], since: '2.26', handler: async (c) => {
    validate(TAG, c.params.tag);
    const l = await tagTarget(c, 'os_compute_api:os-server-tags:update', true);
    const tags = await tagsNow(l);
    const location = { location: `${c.api.publicUrl}/v2.1/servers/${l.row.uuid}/tags/${encodeURIComponent(c.params.tag)}` };
    if (tags.includes(c.params.tag)) return { status: 204, headers: location };
    if (tags.length >= MAX_TAGS) throw new BadRequest(`The number of tags exceeded the per-server limit ${MAX_TAGS}`);
    await l.db.insertInto('instance_tags').values({ instance_uuid: l.row.uuid, tag: c.params.tag }).execute();
    return { status: 201, headers: location };
  } },
  { method: 'DELETE', path: '/servers/:id/tags/:tag', policy: 'os_compute_api:os-server-tags:delete', errors: [409], since: '2.26', handler: async (c) => {
    const l = await tagTarget(c, 'os_compute_api:os-server-tags:delete', true);
    const r = await l.db.deleteFrom('instance_tags').where('instance_uuid', '=', l.row.uuid).where('tag', '=', c.params.tag).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`Tag ${c.params.tag} could not be found.`);
    return { status: 204 };
  } },
];

// --- instance actions ---
async function actionTarget(c: Ctx, rule: string): Promise<Located | undefined> {
  const id = c.params.id;
  if (!isUuid(id)) throw new NotFound(`Instance ${id} could not be found.`);
  // From 2.21 the actions of deleted servers stay readable.
  const l = await findInstance(c.api.cells, normUuid(id), { readDeleted: c.v.atLeast('2.21') });
  if (!l || (!c.isAdmin && l.row.project_id !== c.auth.projectId)) {
    // Not a cell instance: maybe still a build request; anything but "not found" is a real error.
    const s = await getServer(c, id).catch((e) => { if (e instanceof NotFound) return undefined; throw e; });
    if (s?.build) { c.enforce(rule, { project_id: s.build.row.project_id }); return undefined; }
    throw new NotFound(`Instance ${id} could not be found.`);
  }
  c.enforce(rule, { project_id: l.row.project_id });
  return l;
}

function actionView(c: Ctx, a: any) {
  const o: Record<string, unknown> = {
    action: a.action, instance_uuid: a.instance_uuid, message: a.message, project_id: a.project_id,
    request_id: a.request_id, start_time: isoMicro(a.start_time), user_id: a.user_id,
  };
  if (c.v.atLeast('2.58')) o.updated_at = isoMicro(a.updated_at);
  return o;
}

const actionsRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers/:id/os-instance-actions', policy: 'os_compute_api:os-instance-actions:list', errors: [], handler: async (c) => {
    const l = await actionTarget(c, 'os_compute_api:os-instance-actions:list');
    if (!l) return { instanceActions: [] };
    let qb = l.db.selectFrom('instance_actions').selectAll().where('instance_uuid', '=', l.row.uuid).orderBy('start_time', 'desc').orderBy('id', 'desc');
    const body: Record<string, unknown> = {};
    if (c.v.atLeast('2.58')) {
      const { limit, marker } = pageParams(c.query);
      const cs = q1(c.query, 'changes-since');
      const cb = c.v.atLeast('2.66') ? q1(c.query, 'changes-before') : undefined;
      for (const [k, v] of [['changes-since', cs], ['changes-before', cb]] as const) if (v !== undefined && Number.isNaN(Date.parse(v))) throw new BadRequest(`Invalid input for query parameters ${k}. Value: ${v}. '${v}' is not a 'date-time'`);
      if (cs) qb = qb.where('updated_at', '>=', new Date(cs).toISOString());
      if (cb) qb = qb.where('updated_at', '<=', new Date(cb).toISOString());
      let rows = await qb.execute();
      if (marker !== undefined) {
        const i = rows.findIndex((r) => r.request_id === marker);
        if (i < 0) throw new BadRequest(`Marker ${marker} could not be found.`);
        rows = rows.slice(i + 1);
      }
      const page = rows.slice(0, limit);
      body.instanceActions = page.map((a) => actionView(c, a));
      if (rows.length > limit) body.links = [{ rel: 'next', href: `${c.api.publicUrl}/v2.1/servers/${l.row.uuid}/os-instance-actions?limit=${limit}&marker=${page[page.length - 1].request_id}` }];
      return body;
    }
    return { instanceActions: (await qb.execute()).map((a) => actionView(c, a)) };
  } },
  { method: 'GET', path: '/servers/:id/os-instance-actions/:req', policy: 'os_compute_api:os-instance-actions:show', errors: [], handler: async (c) => {
    const l = await actionTarget(c, 'os_compute_api:os-instance-actions:show');
    const a = l && await l.db.selectFrom('instance_actions').selectAll().where('instance_uuid', '=', l.row.uuid).where('request_id', '=', c.params.req).orderBy('id', 'desc').executeTakeFirst();
    if (!l || !a) throw new NotFound(`Action for request_id ${c.params.req} on instance ${c.params.id} not found`);
    const o = actionView(c, a);
    const admin = c.api.policy.check('os_compute_api:os-instance-actions:events', c.creds, { project_id: l.row.project_id });
    if (admin || c.v.atLeast('2.51')) {
      const evs = await l.db.selectFrom('instance_actions_events').selectAll().where('action_id', '=', a.id).orderBy('id').execute();
      o.events = evs.map((e) => {
        const ev: Record<string, unknown> = { event: e.event, start_time: isoMicro(e.start_time), finish_time: isoMicro(e.finish_time), result: e.result };
        if (admin) ev.traceback = e.traceback;
        if (c.v.atLeast('2.62')) {
          if (admin) ev.host = e.host ?? '';
          ev.hostId = e.host ? hostId(l.row.project_id, e.host) : '';
        }
        if (c.v.atLeast('2.84') && c.api.policy.check('os_compute_api:os-instance-actions:events:details', c.creds, { project_id: l.row.project_id })) ev.details = e.details;
        return ev;
      });
    }
    return { instanceAction: o };
  } },
];

const passwordRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers/:id/os-server-password', policy: 'os_compute_api:os-server-password:show', errors: [], handler: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-server-password:show', { project_id: l.row.project_id });
    const r = await l.db.selectFrom('instance_passwords').select('password').where('instance_uuid', '=', l.row.uuid).executeTakeFirst();
    return { password: r?.password ?? '' };
  } },
  { method: 'DELETE', path: '/servers/:id/os-server-password', policy: 'os_compute_api:os-server-password:clear', errors: [], handler: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-server-password:clear', { project_id: l.row.project_id });
    await l.db.deleteFrom('instance_passwords').where('instance_uuid', '=', l.row.uuid).execute();
    return { status: 204 };
  } },
];

/** The server (live or still building) and the policy target; its addresses from network_info. */
async function addressTarget(c: Ctx, rule: string): Promise<{ ref: ServerRef; addresses: ReturnType<typeof addressesOf> }> {
  const ref = await getServer(c, c.params.id);
  const row = (ref.located ?? ref.build)!.row;
  c.enforce(rule, { project_id: row.project_id });
  return { ref, addresses: addressesOf(vifsOf(parseJson<Record<string, unknown>>(row.system_metadata, {})), { extended: false }) };
}

// Nova's ips controller: the networks of the server (version and addr only); no network service
// here, so only the `networks: auto` NIC, under the network name `user`.
const ipRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers/:id/ips', policy: 'os_compute_api:ips:index', errors: [], handler: async (c) => ({ addresses: (await addressTarget(c, 'os_compute_api:ips:index')).addresses }) },
  { method: 'GET', path: '/servers/:id/ips/:network', policy: 'os_compute_api:ips:show', errors: [], handler: async (c) => {
    const { addresses } = await addressTarget(c, 'os_compute_api:ips:show');
    const ips = Object.prototype.hasOwnProperty.call(addresses, c.params.network) ? addresses[c.params.network] : undefined;
    if (!ips) throw new NotFound('Instance is not a member of specified network');
    return { [c.params.network]: ips };
  } },
  // Interface attachments are network service ports; without one, a server has none.
  { method: 'GET', path: '/servers/:id/os-interface', policy: 'os_compute_api:os-attach-interfaces:list', errors: [], handler: async (c) => {
    await addressTarget(c, 'os_compute_api:os-attach-interfaces:list');
    return { interfaceAttachments: [] };
  } },
  { method: 'GET', path: '/servers/:id/os-interface/:port', policy: 'os_compute_api:os-attach-interfaces:show', errors: [], handler: async (c) => {
    await addressTarget(c, 'os_compute_api:os-attach-interfaces:show');
    throw new NotFound(`Port ${c.params.port} could not be found.`);
  } },
];

export const serverSubRoutes: ComputeRow[] = [...metadataRoutes, ...tagRoutes, ...actionsRoutes, ...passwordRoutes, ...ipRoutes];
export { isoZ };
