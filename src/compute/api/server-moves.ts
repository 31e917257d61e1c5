// The move actions of POST /servers/{id}/action (Nova's servers.py _resize/_action_confirm_resize/
// _action_revert_resize, migrate_server.py, evacuate.py): parse per microversion, authorize,
// Nova's checks and errors, then the migration record, the task state and the cast to the
// conductor (moves start there) or, for confirm and revert, to the host that finishes them.
import { BadRequest, Conflict, NotFound } from '../../common/errors.ts';
import { logFailure } from '../../common/logging.ts';
import { computeRpc, conductorRpc } from '../rpc.ts';
import { TASK, VM, type EmbeddedFlavor, type InstanceRow } from '../objects.ts';
import { ComputeActions, type Caller } from '../service/actions.ts';
import { checkInstanceState } from '../service/instance-states.ts';
import { createMigration, migrationOf, updateMigration, withMoveState, type MigrationType } from '../service/moves.ts';
import { checkInstanceQuota } from '../quota.ts';
import { generatePassword, parseJson } from '../util.ts';
import { serviceIsUp, type Located } from '../store.ts';
import { validate, P, toBool } from './validation.ts';
import { embedFlavor, extraSpecsOf, type FlavorRow } from './flavors.ts';
import type { Ctx } from './context.ts';
import type { ServerAction } from './server-actions.ts';
import { getLiveServer } from './servers.ts';

const service = (c: Ctx) => new ComputeActions({ cellTransports: c.api.cellTransports });
const caller = (c: Ctx): Caller => ({ ctx: c.rpcContext(), isAdmin: c.isAdmin });

/** A resize target the caller may use (Nova's get_flavor_by_flavor_id + access); 400 as Nova's API says it. */
async function resizeFlavor(c: Ctx, ref: string): Promise<FlavorRow> {
  const db = c.api.cells.db;
  const f = await db.selectFrom('flavors').selectAll().where('flavorid', '=', ref).executeTakeFirst() as FlavorRow | undefined;
  const access = f && (f.is_public || c.isAdmin || await db.selectFrom('flavor_projects').select('id').where('flavor_id', '=', f.id).where('project_id', '=', c.auth.projectId ?? '').executeTakeFirst());
  if (!f || !access || f.disabled) throw new BadRequest('Unable to locate requested flavor.');
  return f;
}

async function flavorDbId(c: Ctx, flavorid: string): Promise<number | null> {
  const r = await c.api.cells.db.selectFrom('flavors').select('id').where('flavorid', '=', flavorid).executeTakeFirst();
  return r?.id ?? null;
}

/** A compute host of the instance's cell, or Nova's ComputeHostNotFound (400 for migrate and live migration). */
async function computeHost(l: Located, host: string, status: 400 | 404 = 400): Promise<void> {
  const n = await l.db.selectFrom('compute_nodes').select('id').where('host', '=', host).executeTakeFirst();
  if (n) return;
  if (status === 404) throw new NotFound(`Compute host ${host} not found.`);
  throw new BadRequest(`Compute host ${host} could not be found.`);
}

/** Resize or cold migration: the migration record (pre-migrating), the task, the move state, the conductor. */
async function coldMove(c: Ctx, l: Located, o: { type: MigrationType; record: string; action: 'resize' | 'migrate'; newFlavor: EmbeddedFlavor | null; newFlavorId: number | null; host: string | null; updates?: Partial<InstanceRow> }) {
  const old = parseJson<EmbeddedFlavor>(l.row.flavor, {} as EmbeddedFlavor);
  const oldId = await flavorDbId(c, old.flavorid);
  const state = withMoveState(l.row, { old_vm_state: l.row.vm_state, old_flavor: old, new_flavor: o.newFlavor ?? old });
  await service(c).begin(caller(c), l, o.action, { task: TASK.RESIZE_PREP, record: o.record, updates: { ...o.updates, system_metadata: state } });
  const mig = await createMigration(l.db, { instance: l.row, type: o.type, status: 'pre-migrating', oldFlavorId: oldId, newFlavorId: o.newFlavorId ?? oldId });
  await conductorRpc(() => c.api.transport()).cast(c.rpcContext(), 'migrate_server', { instance_uuid: l.row.uuid, migration_uuid: mig.uuid, new_flavor: o.newFlavor, host: o.host });
}

/** The resize waiting for confirm or revert (Nova's MigrationNotFoundByStatus: 400). */
async function finishedMove(l: Located) {
  const m = await migrationOf(l.db, l.row.uuid, ['resize', 'migration'], ['finished']);
  if (!m) throw new BadRequest('Instance has not been resized.');
  return m;
}

/** Confirm (on the source) or revert (on the destination) of a resize or cold migration waiting in VERIFY_RESIZE. */
const END = {
  confirm: { rule: 'os_compute_api:servers:confirm_resize', state: 'confirm_resize', task: TASK.RESIZE_CONFIRMING, record: 'confirmResize', status: 'confirming', rpc: 'confirm_resize', host: 'source_compute' },
  revert: { rule: 'os_compute_api:servers:revert_resize', state: 'revert_resize', task: TASK.RESIZE_REVERTING, record: 'revertResize', status: 'reverting', rpc: 'revert_resize', host: 'dest_compute' },
} as const;

async function endResize(c: Ctx, how: keyof typeof END): Promise<{ l: Located }> {
  const e = END[how];
  const l = await getLiveServer(c, c.params.id);
  c.enforce(e.rule, { project_id: l.row.project_id, user_id: l.row.user_id });
  service(c).checkLock(caller(c), l);
  checkInstanceState(l.row, e.state);
  const m = await finishedMove(l);
  await updateMigration(l.db, m.uuid, { status: e.status }, ['finished']);
  await service(c).begin(caller(c), l, e.state, { task: e.task, record: e.record }).catch(async (err) => {
    await updateMigration(l.db, m.uuid, { status: 'finished' }).catch(logFailure(c.api.logger, `put migration ${m.uuid} back to finished`, { instance: l.row.uuid }));
    throw err;
  });
  const rpc = await computeRpc(c.api.cellTransports, l.cell, m[e.host]!);
  await rpc.cast(c.rpcContext(), e.rpc, { instance_uuid: l.row.uuid, migration_uuid: m.uuid });
  return { l };
}

/** Merged into the server action table (api/server-actions.ts). */
export const MOVE_ACTIONS: Record<string, ServerAction> = {
  resize: { policy: 'os_compute_api:servers:resize', run: async (c, arg) => {
    const a = validate({
      type: 'object', properties: { resize: { type: 'object', properties: {
        flavorRef: { type: ['string', 'integer'], minLength: 1 }, 'OS-DCF:diskConfig': { type: 'string', enum: ['AUTO', 'MANUAL'] },
      }, required: ['flavorRef'], additionalProperties: false } }, required: ['resize'],
    }, { resize: arg }).resize;
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:servers:resize', { project_id: l.row.project_id, user_id: l.row.user_id });
    service(c).checkLock(caller(c), l);
    checkInstanceState(l.row, 'resize');
    const cur = parseJson<EmbeddedFlavor>(l.row.flavor, {} as EmbeddedFlavor);
    const f = await resizeFlavor(c, String(a.flavorRef));
    if (f.flavorid === cur.flavorid) throw new BadRequest('Resize requires a flavor change.');
    if (f.root_gb === 0 && cur.root_gb !== 0) throw new BadRequest('Server disk was unable to be resized because: Resize to zero disk flavor is not allowed.');
    if (f.root_gb < cur.root_gb) throw new BadRequest('Server disk was unable to be resized because: Unable to resize disk down.');
    // Quota on what the new flavor adds (Nova counts the upsize delta).
    const cores = Math.max(0, f.vcpus - cur.vcpus);
    const ram = Math.max(0, f.memory_mb - cur.memory_mb);
    if (cores || ram) await checkInstanceQuota(c.api, l.row.project_id, l.row.user_id, { instances: 0, cores, ram });
    const specs = (await extraSpecsOf(c.api.cells.db, [f.id])).get(f.id) ?? {};
    await coldMove(c, l, { type: 'resize', record: 'resize', action: 'resize', newFlavor: embedFlavor(f, specs), newFlavorId: f.id, host: null,
      updates: a['OS-DCF:diskConfig'] === undefined ? {} : { auto_disk_config: a['OS-DCF:diskConfig'] === 'AUTO' ? 1 : 0 } });
    return { status: 202 };
  } },
  confirmResize: { policy: 'os_compute_api:servers:confirm_resize', run: async (c) => {
    const { l } = await endResize(c, 'confirm');
    // The instance keeps its new flavor: later moves and reschedules ask for it.
    const spec = await c.api.cells.db.selectFrom('request_specs').select('spec').where('instance_uuid', '=', l.row.uuid).executeTakeFirst();
    if (spec) await c.api.cells.db.updateTable('request_specs').set({ spec: JSON.stringify({ ...JSON.parse(spec.spec), flavor: JSON.parse(l.row.flavor) }) }).where('instance_uuid', '=', l.row.uuid).execute();
    return { status: 204 };
  } },
  revertResize: { policy: 'os_compute_api:servers:revert_resize', run: async (c) => { await endResize(c, 'revert'); return { status: 202 }; } },
  migrate: { policy: 'os_compute_api:os-migrate-server:migrate', run: async (c, arg) => {
    let host: string | null = null;
    if (c.v.atLeast('2.56')) {
      const a = validate({ type: 'object', properties: { migrate: { type: ['object', 'null'], properties: { host: { type: ['string', 'null'], minLength: 1, maxLength: 255 } }, additionalProperties: false } } }, { migrate: arg }).migrate;
      host = a?.host ?? null;
    }
    // Before 2.56 Nova has no schema for the body: {"migrate": null} and {"migrate": {}} both do.
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-migrate-server:migrate', { project_id: l.row.project_id });
    service(c).checkLock(caller(c), l);
    checkInstanceState(l.row, 'migrate');
    if (host) {
      if (host === l.row.host) throw new BadRequest('Cannot migrate to the host where the server exists.');
      await computeHost(l, host);
    }
    await coldMove(c, l, { type: 'migration', record: 'migrate', action: 'migrate', newFlavor: null, newFlavorId: null, host });
    return { status: 202 };
  } },
  'os-migrateLive': { policy: 'os_compute_api:os-migrate-server:migrate_live', run: async (c, arg) => {
    const props: Record<string, unknown> = { host: { type: ['string', 'null'], minLength: 1, maxLength: 255 } };
    const required = ['block_migration', 'host'];
    if (c.v.atLeast('2.25')) props.block_migration = { anyOf: [P.bool, { type: 'string', enum: ['auto'] }] };
    else { props.block_migration = P.bool; props.disk_over_commit = P.bool; required.push('disk_over_commit'); }
    if (c.v.atLeast('2.30') && c.v.atMost('2.67')) props.force = P.bool;
    const a = validate({ type: 'object', properties: { 'os-migrateLive': { type: 'object', properties: props, required, additionalProperties: false } }, required: ['os-migrateLive'] }, { 'os-migrateLive': arg })['os-migrateLive'];
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-migrate-server:migrate_live', { project_id: l.row.project_id });
    service(c).checkLock(caller(c), l);
    checkInstanceState(l.row, 'live_migrate');
    const host: string | null = a.host ?? null;
    if (host) {
      if (host === l.row.host) throw new BadRequest(`Unable to migrate instance (${l.row.uuid}) to current host (${host}).`);
      await computeHost(l, host);
    }
    const block = a.block_migration === 'auto' ? null : toBool(a.block_migration);
    await service(c).begin(caller(c), l, 'live_migrate', { task: TASK.MIGRATING, record: 'live-migration' });
    const mig = await createMigration(l.db, { instance: l.row, type: 'live-migration', status: 'accepted', dest: { host } });
    await conductorRpc(() => c.api.transport()).cast(c.rpcContext(), 'live_migrate_instance', {
      instance_uuid: l.row.uuid, migration_uuid: mig.uuid, host, force: !!host && a.force !== undefined && toBool(a.force), block_migration: block,
    });
    return { status: 202 };
  } },
  evacuate: { policy: 'os_compute_api:os-evacuate', run: async (c, arg) => {
    const props: Record<string, unknown> = { host: { type: 'string', minLength: 1, maxLength: 255 }, adminPass: { type: 'string' } };
    const required: string[] = [];
    if (c.v.atMost('2.13')) { props.onSharedStorage = P.bool; required.push('onSharedStorage'); }
    if (c.v.atLeast('2.29') && c.v.atMost('2.67')) props.force = P.bool;
    const a = validate({ type: 'object', properties: { evacuate: { type: 'object', properties: props, required, additionalProperties: false } }, required: ['evacuate'] }, { evacuate: arg }).evacuate;
    const l = await getLiveServer(c, c.params.id);
    c.enforce('os_compute_api:os-evacuate', { project_id: l.row.project_id });
    if (a.onSharedStorage !== undefined && toBool(a.onSharedStorage) && a.adminPass) throw new BadRequest("admin password can't be changed on existing disk");
    const host: string | null = a.host ?? null;
    if (host) {
      await computeHost(l, host, 404);
      if (host === l.row.host) throw new BadRequest("The target host can't be the same one.");
    }
    checkInstanceState(l.row, 'evacuate');
    // Only off a host whose compute service is down (or forced down), as Nova.
    const svc = await l.db.selectFrom('services').selectAll().where('host', '=', l.row.host ?? '').where('binary', '=', 'nova-compute').executeTakeFirst();
    if (svc && !svc.forced_down && serviceIsUp(svc, c.api.config.get<number>('DEFAULT', 'service_down_time'))) {
      throw new BadRequest(`Compute service of ${l.row.host} is still in use.`);
    }
    if (!l.row.host) throw new Conflict(`Instance ${l.row.uuid} has no host to evacuate from.`);
    const password: string | undefined = a.adminPass ?? (c.api.config.get<boolean>('DEFAULT', 'enable_instance_password') ? generatePassword() : undefined);
    await service(c).begin(caller(c), l, 'evacuate', { task: TASK.REBUILDING, record: 'evacuate' });
    const mig = await createMigration(l.db, { instance: l.row, type: 'evacuation', status: 'accepted', dest: { host } });
    await conductorRpc(() => c.api.transport()).cast(c.rpcContext(), 'evacuate_instance', {
      instance_uuid: l.row.uuid, migration_uuid: mig.uuid, host, force: !!host && a.force !== undefined && toBool(a.force),
      // Before 2.95 (beyond this API's versions) an evacuated server comes back running.
      orig_vm_state: VM.ACTIVE, admin_password: password ?? null,
    });
    return c.v.atMost('2.13') && password ? { status: 200, body: { adminPass: password } } : { status: 200 };
  } },
};
