// POST /servers/{id}/action: start, stop, reboot, pause, suspend, lock, rebuild, password,
// rescue/unrescue, reset state, force delete, console output. The API checks the state, records
// the instance action, sets the task state and casts to the instance's compute host (Nova's
// compute/api.py).
import { BadRequest, Conflict, NotFound, NotImplementedYet, OverQuota, ServiceUnavailable } from '../../common/errors.ts';
import { conductorRpc } from '../rpc.ts';
import { VM, TASK, type InstanceRow } from '../objects.ts';
import { ComputeActions, SIMPLE_ACTIONS, type Caller, type CastArgs, type SimpleAction } from '../service/actions.ts';
import { checkInstanceState, INSTANCE_STATES } from '../service/instance-states.ts';
import { generatePassword, parseJson } from '../util.ts';
import { setMetadata } from '../store.ts';
import { imageProps, imageSystemMetadata, snapshotProperties, withoutImageSystemMetadata } from '../image-props.ts';
import { validate, P } from './validation.ts';
import type { Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { getLiveServer, getServer, deleteServer, renderServer } from './servers.ts';
import { CONSOLE_ACTIONS } from '../console/api.ts';
import { MOVE_ACTIONS } from './server-moves.ts';

/**
 * One server action: the policy rule(s) Nova checks (the dispatcher checks them with the caller's
 * project as target before anything else; `run` checks them again against the server), the
 * microversion range, the body schema when it does not depend on the version, and what it does.
 */
export interface ServerAction {
  policy: string | string[];
  since?: string;
  until?: string;
  schema?: Record<string, unknown>;
  run(c: Ctx, arg: any): Promise<unknown>;
}

/** The service layer for this request (it knows nothing of HTTP). */
const service = (c: Ctx) => new ComputeActions({ cellTransports: c.api.cellTransports });
const caller = (c: Ctx): Caller => ({ ctx: c.rpcContext(), isAdmin: c.isAdmin });

/** A simple action: find the server, authorize, and let the service do the rest. */
async function simple<A extends SimpleAction>(c: Ctx, rule: string, action: A, args: CastArgs<(typeof SIMPLE_ACTIONS)[A]['rpc']>) {
  const l = await getLiveServer(c, c.params.id);
  c.enforce(rule, { project_id: l.row.project_id });
  await service(c).simple(caller(c), l, action, args);
  return { status: 202 };
}

const IMAGE_NAME = { type: 'string', minLength: 1, maxLength: 255, pattern: '^(?! )[\\s\\S]*(?<! )$' };
const IMAGE_METADATA = { type: 'object', maxProperties: 128, propertyNames: { minLength: 1, maxLength: 255 }, additionalProperties: { type: 'string', maxLength: 255 } };

/**
 * The queued image a snapshot or backup of the instance fills (Nova's compute API
 * _create_image): the instance's image properties, `props` over them, Nova's snapshot
 * properties; then the task state and the instance action (`remember`: the system_metadata
 * key that keeps the image's id). Returns the image's id.
 */
async function snapshotInto(c: Ctx, l: Awaited<ReturnType<typeof getLiveServer>>, action: 'create_image' | 'backup' | 'shelve', o: { name: string; task: string; record: string; props: Record<string, string>; remember?: string }): Promise<string> {
  if (!l.row.host) throw new Conflict(`Instance ${l.row.uuid} has no host: cannot ${INSTANCE_STATES[action].method}.`);
  const sm = parseJson<Record<string, unknown>>(l.row.system_metadata, {});
  const str = (k: string) => (typeof sm[k] === 'string' ? sm[k] as string : undefined);
  const img = await c.api.images.request(c.auth.token, 'POST', '/v2/images', {
    ...snapshotProperties(sm), ...o.props, name: o.name,
    disk_format: str('image_disk_format') ?? 'raw', container_format: str('image_container_format') ?? 'bare',
    min_ram: Number(str('image_min_ram') ?? 0), min_disk: Math.max(Number(str('image_min_disk') ?? 0), l.row.root_gb ?? 0),
    instance_uuid: l.row.uuid, base_image_ref: l.row.image_ref ?? '', user_id: c.auth.userId, visibility: 'private',
  });
  if (img.status === 403 || img.status === 413) throw new OverQuota(`Quota exceeded for images: ${img.body?.message ?? img.status}`);
  if (img.status === 400) throw new BadRequest(`Invalid image metadata: ${String(img.body?.message ?? '').replace(/<br \/>[\s\S]*$/, '').trim()}`);
  if (img.status !== 201) throw new ServiceUnavailable(`The image service could not create the snapshot image (${img.status})`);
  const imageId = img.body.id as string;
  if (o.remember) sm[o.remember] = imageId;
  await service(c).begin(caller(c), l, action, { task: o.task, record: o.record, updates: o.remember ? { system_metadata: JSON.stringify(sm) } : undefined }).catch(async (e) => {
    await c.api.images.request(c.auth.token, 'DELETE', `/v2/images/${imageId}`)
      .catch((err) => c.api.logger.warn({ err, image: imageId, instance: l.row.uuid }, `could not delete the image of a refused ${o.record}`));
    throw e;
  });
  return imageId;
}

/** 2.45 answers the image's id in the body; before, only in Location (when `located`). */
async function imageAccepted(c: Ctx, imageId: string, located: boolean) {
  if (c.v.atLeast('2.45')) return { status: 202, body: { image_id: imageId } };
  return located ? { status: 202, headers: { location: await c.api.images.imageUrl(imageId) } } : { status: 202 };
}

const ACTIONS: Record<string, ServerAction> = {
  'os-start': { policy: 'os_compute_api:servers:start', run: (c) => simple(c, 'os_compute_api:servers:start', 'start', {}) },
  'os-stop': { policy: 'os_compute_api:servers:stop', run: (c) => simple(c, 'os_compute_api:servers:stop', 'stop', {}) },
  reboot: { policy: 'os_compute_api:servers:reboot',
    schema: { type: 'object', properties: { reboot: { type: 'object', properties: { type: { type: 'string', enum: ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft'] } }, required: ['type'], additionalProperties: false } }, required: ['reboot'], additionalProperties: false },
    run: async (c, arg) => {
    const hard = String(arg.type).toUpperCase() === 'HARD';
    return simple(c, 'os_compute_api:servers:reboot', hard ? 'reboot_hard' : 'reboot', { reboot_type: hard ? 'HARD' : 'SOFT' });
  } },
  pause: { policy: 'os_compute_api:os-pause-server:pause', run: (c) => simple(c, 'os_compute_api:os-pause-server:pause', 'pause', {}) },
  unpause: { policy: 'os_compute_api:os-pause-server:unpause', run: (c) => simple(c, 'os_compute_api:os-pause-server:unpause', 'unpause', {}) },
  suspend: { policy: 'os_compute_api:os-suspend-server:suspend', run: (c) => simple(c, 'os_compute_api:os-suspend-server:suspend', 'suspend', {}) },
  resume: { policy: 'os_compute_api:os-suspend-server:resume', run: (c) => simple(c, 'os_compute_api:os-suspend-server:resume', 'resume', {}) },
  lock: { policy: 'os_compute_api:os-lock-server:lock', run: async (c, arg) => {
    let reason: string | null = null;
    if (c.v.atLeast('2.73') && arg && typeof arg === 'object') {
      validate({ type: 'object', properties: { lock: { type: ['object', 'null'], properties: { locked_reason: { type: 'string', minLength: 1, maxLength: 255 } }, additionalProperties: false } } }, { lock: arg });
      reason = arg.locked_reason ?? null;
    }
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-lock-server:lock', { project_id: l.row.project_id });
    await service(c).lock(caller(c), l, reason);
    return { status: 202 };
  } },
  unlock: { policy: 'os_compute_api:os-lock-server:unlock', run: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-lock-server:unlock', { project_id: l.row.project_id });
    const svc = service(c);
    if (svc.unlockNeedsOverride(caller(c), l)) c.enforce('os_compute_api:os-lock-server:unlock:unlock_override', { project_id: l.row.project_id });
    await svc.unlock(caller(c), l);
    return { status: 202 };
  } },
  'os-getConsoleOutput': { policy: 'os_compute_api:os-console-output',
    schema: { type: 'object', properties: { 'os-getConsoleOutput': { type: ['object', 'null'], properties: { length: { type: ['integer', 'string', 'null'], pattern: '^-?[0-9]+$', minimum: -1 } }, additionalProperties: false } } },
    run: async (c, arg) => {
    const a = arg as { length?: number | string | null } | null;
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-console-output', { project_id: l.row.project_id });
    let length: number | undefined = a?.length === undefined || a?.length === null ? undefined : Number(a.length);
    if (length === -1) length = undefined;
    if (length !== undefined && length < 0) throw new BadRequest(`Invalid input for field/attribute length. Value: ${a?.length}. ${a?.length} is less than the minimum of -1`);
    return { status: 200, body: { output: await service(c).consoleOutput(caller(c), l, length) } };
  } },
  changePassword: { policy: 'os_compute_api:os-admin-password',
    schema: { type: 'object', properties: { changePassword: { type: 'object', properties: { adminPass: { type: 'string' } }, required: ['adminPass'], additionalProperties: false } }, required: ['changePassword'] },
    run: async (c, arg) => {
    return simple(c, 'os_compute_api:os-admin-password', 'set_admin_password', { new_pass: arg.adminPass });
  } },
  rebuild: { policy: 'os_compute_api:servers:rebuild', run: async (c, arg) => {
    const props: Record<string, unknown> = {
      imageRef: { type: 'string', format: 'uuid' }, name: P.name, adminPass: { type: 'string' }, metadata: P.metadata,
      preserve_ephemeral: P.bool, 'OS-DCF:diskConfig': { type: 'string', enum: ['AUTO', 'MANUAL'] },
      accessIPv4: { type: 'string', format: 'ipv4' }, accessIPv6: { type: 'string', format: 'ipv6' },
    };
    if (c.v.atMost('2.56')) props.personality = { type: 'array' };
    if (c.v.atLeast('2.19')) props.description = P.description;
    if (c.v.atLeast('2.54')) props.key_name = { type: ['string', 'null'], minLength: 1, maxLength: 255 };
    if (c.v.atLeast('2.57')) props.user_data = { type: ['string', 'null'], maxLength: 65535 };
    if (c.v.atLeast('2.63')) props.trusted_image_certificates = { type: ['array', 'null'] };
    if (c.v.atLeast('2.90')) props.hostname = { type: 'string', minLength: 1, maxLength: 63 };
    const a = validate({ type: 'object', properties: { rebuild: { type: 'object', properties: props, required: ['imageRef'], additionalProperties: false } }, required: ['rebuild'] }, { rebuild: arg }).rebuild;
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:servers:rebuild', { project_id: l.row.project_id });
    const svc = service(c);
    svc.checkLock(caller(c), l);
    checkInstanceState(l.row, 'rebuild');
    const image = await c.api.images.get(c.auth.token, a.imageRef);
    if (!image) throw new BadRequest(`Image ${a.imageRef} could not be found.`);
    if (image.status !== 'active') throw new BadRequest(`Image ${a.imageRef} is not active.`);
    imageProps(image);
    // The new image replaces the old one in system_metadata (what later starts and reboots use).
    const sm = { ...withoutImageSystemMetadata(parseJson<Record<string, unknown>>(l.row.system_metadata, {})), ...imageSystemMetadata(image) };
    const upd: Partial<InstanceRow> = { image_ref: image.id, system_metadata: JSON.stringify(sm) };
    if (a.name !== undefined) upd.display_name = a.name;
    if (a.description !== undefined) upd.display_description = a.description;
    if (a['OS-DCF:diskConfig'] !== undefined) upd.auto_disk_config = a['OS-DCF:diskConfig'] === 'AUTO' ? 1 : 0;
    if (a.accessIPv4 !== undefined) upd.access_ip_v4 = a.accessIPv4;
    if (a.accessIPv6 !== undefined) upd.access_ip_v6 = a.accessIPv6;
    if (a.user_data !== undefined) upd.user_data = a.user_data;
    if (a.hostname !== undefined) upd.hostname = a.hostname;
    if (a.key_name !== undefined) {
      if (a.key_name === null) { upd.key_name = null; upd.key_data = null; } else {
        const kp = await c.api.cells.db.selectFrom('key_pairs').selectAll().where('user_id', '=', c.auth.userId).where('name', '=', a.key_name).executeTakeFirst();
        if (!kp) throw new BadRequest('Invalid key_name provided.');
        upd.key_name = kp.name; upd.key_data = kp.public_key;
      }
    }
    await svc.begin(caller(c), l, 'rebuild', { task: TASK.REBUILDING, record: 'rebuild', updates: upd });
    if (a.metadata !== undefined) await setMetadata(l.db, l.row.uuid, a.metadata, true);
    const adminPass = a.adminPass ?? (c.api.config.get<boolean>('DEFAULT', 'enable_instance_password') ? generatePassword() : undefined);
    const files = ((a.personality ?? []) as { path?: string; contents?: string }[]).map((p) => ({ path: String(p.path ?? ''), contents: String(p.contents ?? '') }));
    await svc.cast(caller(c), l, 'rebuild_instance', { image_ref: image.id, orig_vm_state: l.row.vm_state, admin_password: adminPass ?? null, injected_files: files });
    const ref = await getServer(c, l.row.uuid);
    const server = await renderServer(c, ref, { groups: c.v.atLeast('2.71') });
    // Before 2.75 rebuild answers with the basic view; key_name (2.54) and user_data (2.57) join it.
    if (c.v.atMost('2.74')) for (const k of Object.keys(server)) if (/^(OS-EXT-|OS-SRV-USG|os-extended-volumes|config_drive|key_name|host_status|locked_reason|fault|server_groups)/.test(k)) delete server[k];
    if (c.v.atLeast('2.54')) server.key_name = ref.located!.row.key_name;
    if (c.v.atLeast('2.57')) { server.user_data = ref.located!.row.user_data; delete server['OS-EXT-SRV-ATTR:user_data']; }
    if (adminPass) server.adminPass = adminPass;
    return { status: 202, body: { server } };
  } },
  'os-resetState': {
    policy: 'os_compute_api:os-admin-actions:reset_state',
    schema: { type: 'object', properties: { 'os-resetState': { type: 'object', properties: { state: { type: 'string', enum: ['active', 'error'] } }, required: ['state'], additionalProperties: false } } },
    run: async (c, arg: { state: 'active' | 'error' }) => {
      const l = await getLiveServer(c, c.params.id);
      c.enforce('os_compute_api:os-admin-actions:reset_state', { project_id: l.row.project_id });
      await service(c).resetState(caller(c), l, arg.state);
      return { status: 202 };
    },
  },
  // Nova's shelve: the server is snapshotted by its host into an image named "<server>-shelved"
  // (its id kept in system_metadata), then powered off and, after shelved_offload_time, offloaded.
  shelve: { policy: 'os_compute_api:os-shelve:shelve', run: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-shelve:shelve', { project_id: l.row.project_id });
    service(c).checkLock(caller(c), l);
    checkInstanceState(l.row, 'shelve');
    await snapshotInto(c, l, 'shelve', { name: `${l.row.display_name ?? ''}-shelved`, task: 'shelving', record: 'shelve', props: { image_type: 'snapshot' }, remember: 'shelved_image_id' });
    await service(c).cast(caller(c), l, 'shelve_instance', {});
    return { status: 202 };
  } },
  // A shelved server still on its host is offloaded now; an offloaded one is left as it is.
  shelveOffload: { policy: 'os_compute_api:os-shelve:shelve_offload', run: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-shelve:shelve_offload', { project_id: l.row.project_id });
    checkInstanceState(l.row, 'shelve_offload');
    if (l.row.vm_state === VM.SHELVED && l.row.host) {
      await service(c).begin(caller(c), l, 'shelve_offload', { task: TASK.SHELVING_OFFLOADING, record: 'shelveOffload' });
      await service(c).cast(caller(c), l, 'shelve_offload_instance', {});
    }
    return { status: 202 };
  } },
  // The conductor powers a shelved server on where it is, or schedules an offloaded one; its
  // host boots it from the shelved image and deletes that image afterwards (as Nova).
  unshelve: { policy: 'os_compute_api:os-shelve:unshelve', run: async (c, arg) => {
    if (arg !== null && arg !== undefined) validate({ type: 'object', properties: { unshelve: { type: ['object', 'null'], properties: { availability_zone: { type: ['string', 'null'] } }, additionalProperties: false } } }, { unshelve: arg });
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-shelve:unshelve', { project_id: l.row.project_id });
    const svc = service(c);
    svc.checkLock(caller(c), l);
    checkInstanceState(l.row, 'unshelve');
    await svc.begin(caller(c), l, 'unshelve', { task: 'unshelving', record: 'unshelve' });
    await conductorRpc(() => c.api.transport()).cast(c.rpcContext(), 'unshelve_instance', { instance_uuid: l.row.uuid });
    return { status: 202 };
  } },
  // Nova's rescue: lock, then state (active, stopped, error with no task), then the rescue image;
  // 200 with the password the rescue image gets (omitted when instance passwords are disabled).
  rescue: { policy: 'os_compute_api:os-rescue', run: async (c, arg) => {
    const a = validate({
      type: 'object', properties: { rescue: { type: ['object', 'null'], properties: { adminPass: { type: 'string' }, rescue_image_ref: { type: 'string', format: 'uuid' } }, additionalProperties: false } },
      required: ['rescue'], additionalProperties: false,
    }, { rescue: arg }).rescue ?? {};
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-rescue', { project_id: l.row.project_id, user_id: l.row.user_id });
    const svc = service(c);
    svc.checkLock(caller(c), l);
    checkInstanceState(l.row, 'rescue');
    if (a.rescue_image_ref) {
      const image = await c.api.images.get(c.auth.token, a.rescue_image_ref);
      if (!image) throw new BadRequest(`Requested rescue image '${a.rescue_image_ref}' is not supported`);
    }
    const password: string = a.adminPass ?? generatePassword();
    await svc.begin(caller(c), l, 'rescue', { task: TASK.RESCUING, record: 'rescue' });
    await svc.cast(caller(c), l, 'rescue_instance', { rescue_password: password, rescue_image_ref: a.rescue_image_ref ?? null });
    return { status: 200, body: c.api.config.get<boolean>('DEFAULT', 'enable_instance_password') ? { adminPass: password } : {} };
  } },
  unrescue: { policy: 'os_compute_api:os-unrescue', run: (c) => simple(c, 'os_compute_api:os-unrescue', 'unrescue', {}) },
  forceDelete: { policy: 'os_compute_api:os-deferred-delete:force', run: async (c) => { await deleteServer(c, c.params.id, 'os_compute_api:os-deferred-delete:force'); return { status: 202 }; } },
  restore: { policy: 'os_compute_api:os-deferred-delete:restore', run: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-deferred-delete:restore', { project_id: l.row.project_id });
    await service(c).restore(caller(c), l);
    return { status: 202 };
  } },
  // Nova's snapshot (servers:create_image): a queued image owned by the caller's project with the
  // instance's image properties and the given metadata, filled by the host's driver.
  createImage: { policy: 'os_compute_api:servers:create_image', run: async (c, arg) => {
    const a = validate({
      type: 'object', properties: { createImage: { type: 'object', properties: { name: IMAGE_NAME, metadata: IMAGE_METADATA }, required: ['name'], additionalProperties: false } },
      required: ['createImage'],
    }, { createImage: arg }).createImage as { name: string; metadata?: Record<string, string> };
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:servers:create_image', { project_id: l.row.project_id });
    checkInstanceState(l.row, 'create_image');
    const imageId = await snapshotInto(c, l, 'create_image', { name: a.name, task: TASK.IMAGE_SNAPSHOT, record: 'createImage', props: { ...(a.metadata ?? {}), image_type: 'snapshot' } });
    await service(c).cast(caller(c), l, 'snapshot_instance', { image_id: imageId });
    return imageAccepted(c, imageId, true);
  } },
  // Nova's createBackup: a snapshot with image_type=backup and the backup_type, after which the
  // host keeps the newest `rotation` backups of that type for the instance and deletes the rest.
  createBackup: { policy: 'os_compute_api:os-create-backup', run: async (c, arg) => {
    const a = validate({
      type: 'object', properties: { createBackup: { type: 'object', properties: {
        name: IMAGE_NAME, backup_type: { type: 'string' }, metadata: IMAGE_METADATA,
        // Nova's non_negative_integer: an integer, or a string of digits.
        rotation: { type: ['integer', 'string'], pattern: '^[0-9]+$', minimum: 0 },
      }, required: ['name', 'backup_type', 'rotation'], additionalProperties: false } }, required: ['createBackup'],
    }, { createBackup: arg }).createBackup as { name: string; backup_type: string; rotation: number | string; metadata?: Record<string, string> };
    const rotation = Number(a.rotation);
    if (!Number.isSafeInteger(rotation)) throw new BadRequest(`Invalid input for field/attribute rotation. Value: ${a.rotation}.`);
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-create-backup', { project_id: l.row.project_id });
    checkInstanceState(l.row, 'backup');
    const imageId = await snapshotInto(c, l, 'backup', { name: a.name, task: TASK.IMAGE_BACKUP, record: 'createBackup', props: { ...(a.metadata ?? {}), image_type: 'backup', backup_type: a.backup_type } });
    await service(c).cast(caller(c), l, 'backup_instance', { image_id: imageId, backup_type: a.backup_type, rotation });
    // Before 2.45 Nova names the image in Location only when it may survive the rotation.
    return imageAccepted(c, imageId, rotation > 0);
  } },
  injectNetworkInfo: { policy: 'os_compute_api:os-admin-actions:inject_network_info', run: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-admin-actions:inject_network_info', { project_id: l.row.project_id });
    return { status: 202 };
  } },
  ...CONSOLE_ACTIONS,
  ...MOVE_ACTIONS,
};

/** Actions this cloud cannot do, with the policy rule Nova checks for each (before answering 501). */
const UNSUPPORTED: Record<string, ServerAction> = Object.fromEntries(Object.entries({
  addFloatingIp: 'os_compute_api:os-floating-ips:add', removeFloatingIp: 'os_compute_api:os-floating-ips:remove',
  addSecurityGroup: 'os_compute_api:os-security-groups:add', removeSecurityGroup: 'os_compute_api:os-security-groups:remove',
  'os-getRDPConsole': 'os_compute_api:os-remote-consoles',
  trigger_crash_dump: 'os_compute_api:os-trigger-crash-dump', resetNetwork: 'os_compute_api:os-admin-actions:reset_network',
  addFixedIp: 'os_compute_api:os-multinic:add', removeFixedIp: 'os_compute_api:os-multinic:remove',
}).map(([name, policy]) => [name, { policy, run: async (c: Ctx) => {
  // The server must exist and be the caller's (Tempest's negative tests expect 404) before the 501.
  const ref = await getServer(c, c.params.id);
  c.enforce(policy, { project_id: (ref.located ?? ref.build)!.row.project_id });
  throw new NotImplementedYet(`The action ${name} is not supported by this cloud (no block storage or networking services).`);
} }]));

/** Every server action, by its body key. */
export const SERVER_ACTIONS: Record<string, ServerAction> = { ...UNSUPPORTED, ...ACTIONS };

/**
 * POST /servers/{id}/action: one path, dispatched on the body's key. The action's policy (with
 * the caller's project as target) is checked before anything else the action does — its version
 * range, its schema, the server lookup — so a caller without the right gets 403, never 404 or 501.
 */
async function action(c: Ctx) {
  const body = c.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('Malformed request body');
  const keys = Object.keys(body);
  const name = keys.find((k) => Object.hasOwn(SERVER_ACTIONS, k));
  if (!name) throw new BadRequest(`There is no such action: ${keys[0] ?? ''}`);
  const act = SERVER_ACTIONS[name];
  for (const rule of [act.policy].flat()) c.enforce(rule);
  // Nova's versioned actions: outside their range the action does not exist (404).
  if ((act.since && !c.v.atLeast(act.since)) || (act.until && !c.v.atMost(act.until))) throw new NotFound('The resource could not be found.');
  if (keys.length > 1) throw new BadRequest('Malformed request body: more than one action');
  if (act.schema) validate(act.schema, body);
  return act.run(c, body[name]);
}

export const actionRoutes: ComputeRow[] = [
  { method: 'POST', path: '/servers/:id/action', errors: [409, 501, 503, 504], handler: action },
];

export { parseJson, NotFound };
