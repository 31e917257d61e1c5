// POST /servers/{id}/action: start, stop, reboot, pause, suspend, lock, rebuild, password,
// rescue/unrescue, reset state, force delete, console output. The API checks the state, records
// the instance action, sets the task state and casts to the instance's compute host (Nova's
// compute/api.py).
import { BadRequest, Conflict, NotFound, NotImplementedYet } from '../../common/errors.ts';
import { computeRpc, conductorRpc } from '../rpc.ts';
import type { ArgsOf, CastNames } from '../../common/rpc/typed.ts';
import type { ComputeMethods } from '../rpcapi/compute.ts';
import { VM, TASK } from '../objects.ts';
import { generatePassword, parseJson } from '../util.ts';
import { recordAction, updateInstance, setMetadata, type Located } from '../store.ts';
import { imageProps, imageSystemMetadata, withoutImageSystemMetadata } from '../image-props.ts';
import { validate, P } from './validation.ts';
import type { Ctx, Route } from './router.ts';
import { getLiveServer, getServer, deleteServer, renderServer } from './servers.ts';

type Check = { vm?: string[]; task?: (string | null)[] };

function checkState(l: Located, method: string, chk: Check): void {
  const r = l.row;
  if (chk.vm && !chk.vm.includes(r.vm_state)) throw new Conflict(`Cannot '${method}' instance ${r.uuid} while it is in vm_state ${r.vm_state}`);
  if (chk.task && !chk.task.includes(r.task_state)) throw new Conflict(`Cannot '${method}' instance ${r.uuid} while it is in task_state ${r.task_state}`);
}

function checkLocked(c: Ctx, l: Located): void {
  if (l.row.locked_by && !c.isAdmin) throw new Conflict(`Instance ${l.row.uuid} is locked`);
}

type Cast = CastNames<ComputeMethods>;
type ArgsBeyondInstance<K extends Cast> = Omit<ArgsOf<ComputeMethods[K]>, 'instance_uuid'>;

async function cast<K extends Cast>(c: Ctx, l: Located, method: K, args: ArgsBeyondInstance<K>): Promise<void> {
  if (!l.row.host) throw new Conflict(`Instance ${l.row.uuid} has no host: cannot ${method}.`);
  const rpc = await computeRpc(c.api.cellTransports, l.cell, l.row.host);
  // The instance is added here; the rest of the arguments were checked against the method.
  await rpc.cast(c.rpcContext(), method, { instance_uuid: l.row.uuid, ...args } as ArgsOf<ComputeMethods[K]>);
}

/** A simple action: policy, state check, task state, instance action, cast. */
async function simple<K extends Cast>(c: Ctx, o: { rule: string; method: string; action: string; rpc: K; check: Check; task: string; args?: ArgsBeyondInstance<K> }) {
  const l = await getLiveServer(c, c.params.id);
  c.enforce(o.rule, { project_id: l.row.project_id });
  checkLocked(c, l);
  checkState(l, o.method, o.check);
  await updateInstance(l.db, l.row.uuid, { task_state: o.task }, { task_state: [l.row.task_state] }).catch((e) => {
    throw new Conflict(`Cannot '${o.method}' instance ${l.row.uuid} while it is in task_state ${l.row.task_state}: ${(e as Error).message}`);
  });
  await recordAction(l.db, l.row.uuid, o.action, c.rpcContext());
  await cast(c, l, o.rpc, o.args ?? ({} as ArgsBeyondInstance<K>));
  return { status: 202 };
}

const ACTIONS: Record<string, (c: Ctx, arg: any) => Promise<unknown>> = {
  'os-start': (c) => simple(c, { rule: 'os_compute_api:servers:start', method: 'start', action: 'start', rpc: 'start_instance', check: { vm: [VM.STOPPED], task: [null] }, task: TASK.POWERING_ON }),
  'os-stop': (c) => simple(c, { rule: 'os_compute_api:servers:stop', method: 'stop', action: 'stop', rpc: 'stop_instance', check: { vm: [VM.ACTIVE, VM.ERROR], task: [null] }, task: TASK.POWERING_OFF }),
  reboot: async (c, arg) => {
    validate({ type: 'object', properties: { reboot: { type: 'object', properties: { type: { type: 'string', enum: ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft'] } }, required: ['type'], additionalProperties: false } }, required: ['reboot'], additionalProperties: false }, { reboot: arg });
    const hard = String(arg.type).toUpperCase() === 'HARD';
    return simple(c, {
      rule: 'os_compute_api:servers:reboot', method: 'reboot', action: 'reboot', rpc: 'reboot_instance',
      check: hard ? { vm: [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED, VM.ERROR] } : { vm: [VM.ACTIVE], task: [null] },
      task: hard ? TASK.REBOOTING_HARD : TASK.REBOOTING, args: { reboot_type: hard ? 'HARD' : 'SOFT' },
    });
  },
  pause: (c) => simple(c, { rule: 'os_compute_api:os-pause-server:pause', method: 'pause', action: 'pause', rpc: 'pause_instance', check: { vm: [VM.ACTIVE], task: [null] }, task: TASK.PAUSING }),
  unpause: (c) => simple(c, { rule: 'os_compute_api:os-pause-server:unpause', method: 'unpause', action: 'unpause', rpc: 'unpause_instance', check: { vm: [VM.PAUSED], task: [null] }, task: TASK.UNPAUSING }),
  suspend: (c) => simple(c, { rule: 'os_compute_api:os-suspend-server:suspend', method: 'suspend', action: 'suspend', rpc: 'suspend_instance', check: { vm: [VM.ACTIVE], task: [null] }, task: TASK.SUSPENDING }),
  resume: (c) => simple(c, { rule: 'os_compute_api:os-suspend-server:resume', method: 'resume', action: 'resume', rpc: 'resume_instance', check: { vm: [VM.SUSPENDED], task: [null] }, task: TASK.RESUMING }),
  lock: async (c, arg) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-lock-server:lock', { project_id: l.row.project_id });
    let reason: string | null = null;
    if (c.v.atLeast('2.73') && arg && typeof arg === 'object') {
      validate({ type: 'object', properties: { lock: { type: ['object', 'null'], properties: { locked_reason: { type: 'string', minLength: 1, maxLength: 255 } }, additionalProperties: false } } }, { lock: arg });
      reason = arg.locked_reason ?? null;
    }
    if (!l.row.locked_by) {
      await recordAction(l.db, l.row.uuid, 'lock', c.rpcContext());
      await updateInstance(l.db, l.row.uuid, { locked_by: c.isAdmin && c.auth.projectId !== l.row.project_id ? 'admin' : 'owner', locked_reason: reason });
    }
    return { status: 202 };
  },
  unlock: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-lock-server:unlock', { project_id: l.row.project_id });
    if (l.row.locked_by === 'admin' && !c.isAdmin) c.enforce('os_compute_api:os-lock-server:unlock:unlock_override', { project_id: l.row.project_id });
    if (l.row.locked_by) {
      await recordAction(l.db, l.row.uuid, 'unlock', c.rpcContext());
      await updateInstance(l.db, l.row.uuid, { locked_by: null, locked_reason: null });
    }
    return { status: 202 };
  },
  'os-getConsoleOutput': async (c, arg) => {
    const a = validate({ type: 'object', properties: { 'os-getConsoleOutput': { type: ['object', 'null'], properties: { length: { type: ['integer', 'string', 'null'], pattern: '^-?[0-9]+$', minimum: -1 } }, additionalProperties: false } } }, { 'os-getConsoleOutput': arg })['os-getConsoleOutput'];
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-console-output', { project_id: l.row.project_id });
    if (![VM.ACTIVE, VM.RESCUED, VM.PAUSED, VM.STOPPED, VM.SUSPENDED, VM.ERROR].includes(l.row.vm_state as never) || !l.row.host) {
      throw new Conflict(`Instance ${l.row.uuid} is not ready`);
    }
    let length: number | undefined = a?.length === undefined || a?.length === null ? undefined : Number(a.length);
    if (length === -1) length = undefined;
    if (length !== undefined && length < 0) throw new BadRequest(`Invalid input for field/attribute length. Value: ${a.length}. ${a.length} is less than the minimum of -1`);
    const rpc = await computeRpc(c.api.cellTransports, l.cell, l.row.host);
    const out = await rpc.call(c.rpcContext(), 'get_console_output', { instance_uuid: l.row.uuid }, { timeoutMs: 30_000 });
    let text = out;
    if (length !== undefined) {
      const lines = out.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      text = length === 0 ? '' : lines.slice(-length).join('\n');
    }
    return { status: 200, body: { output: text } };
  },
  changePassword: async (c, arg) => {
    const a = validate({ type: 'object', properties: { changePassword: { type: 'object', properties: { adminPass: { type: 'string' } }, required: ['adminPass'], additionalProperties: false } }, required: ['changePassword'] }, { changePassword: arg }).changePassword;
    return simple(c, { rule: 'os_compute_api:os-admin-password', method: 'set_admin_password', action: 'changePassword', rpc: 'set_admin_password', check: { vm: [VM.ACTIVE], task: [null] }, task: TASK.UPDATING_PASSWORD, args: { new_pass: a.adminPass } });
  },
  rebuild: async (c, arg) => {
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
    checkLocked(c, l);
    checkState(l, 'rebuild', { vm: [VM.ACTIVE, VM.STOPPED, VM.ERROR], task: [null] });
    const image = await c.api.images.get(c.auth.token, a.imageRef);
    if (!image) throw new BadRequest(`Image ${a.imageRef} could not be found.`);
    if (image.status !== 'active') throw new BadRequest(`Image ${a.imageRef} is not active.`);
    imageProps(image);
    // The new image replaces the old one in system_metadata (what later starts and reboots use).
    const sm = { ...withoutImageSystemMetadata(parseJson<Record<string, unknown>>(l.row.system_metadata, {})), ...imageSystemMetadata(image) };
    const upd: Record<string, unknown> = { task_state: TASK.REBUILDING, image_ref: image.id, system_metadata: JSON.stringify(sm) };
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
    await updateInstance(l.db, l.row.uuid, upd as never, { task_state: [null] });
    if (a.metadata !== undefined) await setMetadata(l.db, l.row.uuid, a.metadata, true);
    await recordAction(l.db, l.row.uuid, 'rebuild', c.rpcContext());
    const adminPass = a.adminPass ?? (c.api.config.get<boolean>('DEFAULT', 'enable_instance_password') ? generatePassword() : undefined);
    const files = ((a.personality ?? []) as { path?: string; contents?: string }[]).map((p) => ({ path: String(p.path ?? ''), contents: String(p.contents ?? '') }));
    await cast(c, l, 'rebuild_instance', { image_ref: image.id, orig_vm_state: l.row.vm_state, admin_password: adminPass ?? null, injected_files: files });
    const ref = await getServer(c, l.row.uuid);
    const server = await renderServer(c, ref, { groups: c.v.atLeast('2.71') });
    // Before 2.75 rebuild answers with the basic view; key_name (2.54) and user_data (2.57) join it.
    if (c.v.atMost('2.74')) for (const k of Object.keys(server)) if (/^(OS-EXT-|OS-SRV-USG|os-extended-volumes|config_drive|key_name|host_status|locked_reason|fault|server_groups)/.test(k)) delete server[k];
    if (c.v.atLeast('2.54')) server.key_name = ref.located!.row.key_name;
    if (c.v.atLeast('2.57')) { server.user_data = ref.located!.row.user_data; delete server['OS-EXT-SRV-ATTR:user_data']; }
    if (adminPass) server.adminPass = adminPass;
    return { status: 202, body: { server } };
  },
  'os-resetState': async (c, arg) => {
    const a = validate({ type: 'object', properties: { 'os-resetState': { type: 'object', properties: { state: { type: 'string', enum: ['active', 'error'] } }, required: ['state'], additionalProperties: false } } }, { 'os-resetState': arg })['os-resetState'];
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-admin-actions:reset_state', { project_id: l.row.project_id });
    await recordAction(l.db, l.row.uuid, 'resetState', c.rpcContext());
    await updateInstance(l.db, l.row.uuid, { vm_state: a.state, task_state: null });
    return { status: 202 };
  },
  shelve: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-shelve:shelve', { project_id: l.row.project_id });
    checkLocked(c, l);
    checkState(l, 'shelve', { vm: [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED], task: [null] });
    // As Nova, shelving snapshots the server into an image named "<server>-shelved" (the fake
    // driver uploads no data, so it stays queued, like Nova's fake driver); unshelve removes it.
    const img = await c.api.images.request(c.auth.token, 'POST', '/v2/images', {
      name: `${l.row.display_name ?? ''}-shelved`, disk_format: 'raw', container_format: 'bare',
      instance_uuid: l.row.uuid, image_type: 'snapshot', base_image_ref: l.row.image_ref ?? '',
    });
    const sm = parseJson<Record<string, unknown>>(l.row.system_metadata, {});
    if (img.status === 201) sm.shelved_image_id = img.body.id;
    await updateInstance(l.db, l.row.uuid, { task_state: 'shelving', system_metadata: JSON.stringify(sm) }, { task_state: [null] });
    await recordAction(l.db, l.row.uuid, 'shelve', c.rpcContext());
    await cast(c, l, 'shelve_instance', {});
    return { status: 202 };
  },
  shelveOffload: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-shelve:shelve_offload', { project_id: l.row.project_id });
    checkState(l, 'shelveOffload', { vm: [VM.SHELVED, VM.SHELVED_OFFLOADED], task: [null] });
    return { status: 202 };
  },
  unshelve: async (c, arg) => {
    if (arg !== null && arg !== undefined) validate({ type: 'object', properties: { unshelve: { type: ['object', 'null'], properties: { availability_zone: { type: ['string', 'null'] } }, additionalProperties: false } } }, { unshelve: arg });
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-shelve:unshelve', { project_id: l.row.project_id });
    checkLocked(c, l);
    checkState(l, 'unshelve', { vm: [VM.SHELVED, VM.SHELVED_OFFLOADED], task: [null] });
    const sm = parseJson<Record<string, unknown>>(l.row.system_metadata, {});
    if (typeof sm.shelved_image_id === 'string') {
      await c.api.images.request(c.auth.token, 'DELETE', `/v2/images/${sm.shelved_image_id}`).catch(() => undefined);
      delete sm.shelved_image_id;
    }
    await updateInstance(l.db, l.row.uuid, { task_state: 'unshelving', system_metadata: JSON.stringify(sm) }, { task_state: [null] });
    await recordAction(l.db, l.row.uuid, 'unshelve', c.rpcContext());
    await conductorRpc(() => c.api.transport()).cast(c.rpcContext(), 'unshelve_instance', { instance_uuid: l.row.uuid });
    return { status: 202 };
  },
  // Nova's rescue: lock, then state (active, stopped, error with no task), then the rescue image;
  // 200 with the password the rescue image gets (omitted when instance passwords are disabled).
  rescue: async (c, arg) => {
    const a = validate({
      type: 'object', properties: { rescue: { type: ['object', 'null'], properties: { adminPass: { type: 'string' }, rescue_image_ref: { type: 'string', format: 'uuid' } }, additionalProperties: false } },
      required: ['rescue'], additionalProperties: false,
    }, { rescue: arg }).rescue ?? {};
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-rescue', { project_id: l.row.project_id, user_id: l.row.user_id });
    checkLocked(c, l);
    checkState(l, 'rescue', { vm: [VM.ACTIVE, VM.STOPPED, VM.ERROR], task: [null] });
    if (a.rescue_image_ref) {
      const image = await c.api.images.get(c.auth.token, a.rescue_image_ref).catch(() => null);
      if (!image) throw new BadRequest(`Requested rescue image '${a.rescue_image_ref}' is not supported`);
    }
    const password: string = a.adminPass ?? generatePassword();
    await updateInstance(l.db, l.row.uuid, { task_state: TASK.RESCUING }, { task_state: [null] }).catch((e) => {
      throw new Conflict(`Cannot 'rescue' instance ${l.row.uuid} while it is in task_state ${l.row.task_state}: ${(e as Error).message}`);
    });
    await recordAction(l.db, l.row.uuid, 'rescue', c.rpcContext());
    await cast(c, l, 'rescue_instance', { rescue_password: password, rescue_image_ref: a.rescue_image_ref ?? null });
    return { status: 200, body: c.api.config.get<boolean>('DEFAULT', 'enable_instance_password') ? { adminPass: password } : {} };
  },
  unrescue: (c) => simple(c, { rule: 'os_compute_api:os-unrescue', method: 'unrescue', action: 'unrescue', rpc: 'unrescue_instance', check: { vm: [VM.RESCUED], task: [null] }, task: TASK.UNRESCUING }),
  forceDelete: async (c) => { await deleteServer(c, c.params.id, 'os_compute_api:os-deferred-delete:force'); return { status: 202 }; },
  restore: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-deferred-delete:restore', { project_id: l.row.project_id });
    throw new Conflict(`Cannot 'restore' instance ${l.row.uuid} while it is in vm_state ${l.row.vm_state}`);
  },
  injectNetworkInfo: async (c) => {
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-admin-actions:inject_network_info', { project_id: l.row.project_id });
    return { status: 202 };
  },
};

/** Actions this cloud cannot do, with the policy rule Nova checks for each (before answering 501). */
const UNSUPPORTED: Record<string, string> = {
  resize: 'os_compute_api:servers:resize', confirmResize: 'os_compute_api:servers:confirm_resize', revertResize: 'os_compute_api:servers:revert_resize',
  migrate: 'os_compute_api:os-migrate-server:migrate', 'os-migrateLive': 'os_compute_api:os-migrate-server:migrate_live',
  createImage: 'os_compute_api:servers:create_image', createBackup: 'os_compute_api:os-create-backup', evacuate: 'os_compute_api:os-evacuate',
  addFloatingIp: 'os_compute_api:os-floating-ips:add', removeFloatingIp: 'os_compute_api:os-floating-ips:remove',
  addSecurityGroup: 'os_compute_api:os-security-groups:add', removeSecurityGroup: 'os_compute_api:os-security-groups:remove',
  'os-getVNCConsole': 'os_compute_api:os-remote-consoles', 'os-getSPICEConsole': 'os_compute_api:os-remote-consoles',
  'os-getSerialConsole': 'os_compute_api:os-remote-consoles', 'os-getRDPConsole': 'os_compute_api:os-remote-consoles',
  trigger_crash_dump: 'os_compute_api:os-trigger-crash-dump', resetNetwork: 'os_compute_api:os-admin-actions:reset_network',
  addFixedIp: 'os_compute_api:os-multinic:add', removeFixedIp: 'os_compute_api:os-multinic:remove',
};

async function action(c: Ctx) {
  const body = c.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('Malformed request body');
  const keys = Object.keys(body);
  const name = keys.find((k) => ACTIONS[k] || UNSUPPORTED[k]);
  if (!name) throw new BadRequest(`There is no such action: ${keys[0] ?? ''}`);
  if (UNSUPPORTED[name]) {
    // Authorize first (issue 9 item 7): a caller without the right gets 403, not 501.
    const ref = await getServer(c, c.params.id);
    c.enforce(UNSUPPORTED[name], { project_id: (ref.located ?? ref.build)!.row.project_id });
    throw new NotImplementedYet(`The action ${name} is not supported by this cloud (no block storage, networking or migration services).`);
  }
  if (keys.length > 1) throw new BadRequest('Malformed request body: more than one action');
  return ACTIONS[name](c, body[name]);
}

export const actionRoutes: Route[] = [
  { method: 'POST', path: '/servers/:id/action', handler: action },
];

export { parseJson, NotFound };
