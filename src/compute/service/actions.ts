// The compute service layer for server actions (Nova's compute/api.py under its controllers):
// state checks (instance-states.ts), the lock, the task state set atomically, the instance
// action record, and the cast to the instance's host. HTTP handlers parse, authorize and render;
// everything else about an action is here, so other callers (the metadata and console services
// next) act on instances the same way.
import { Conflict } from '../../common/errors.ts';
import type { RequestContext } from '../../common/rpc/transport.ts';
import type { ArgsOf, CastNames } from '../../common/rpc/typed.ts';
import { TASK } from '../objects.ts';
import { computeRpc, type CellTransports } from '../rpc.ts';
import type { ComputeMethods } from '../rpcapi/compute.ts';
import { recordAction, updateInstance, type Located } from '../store.ts';
import type { InstanceRow } from '../objects.ts';
import { checkInstanceState, INSTANCE_STATES, type InstanceAction } from './instance-states.ts';

export type ComputeCast = CastNames<ComputeMethods>;
export type CastArgs<K extends ComputeCast> = Omit<ArgsOf<ComputeMethods[K]>, 'instance_uuid'>;

/** Who acts: the request's RPC context and whether an admin (a lock does not stop admins). */
export interface Caller { ctx: RequestContext; isAdmin: boolean }

export interface ActionDeps { cellTransports: CellTransports }

/**
 * The simple actions: state, task state set while the action runs, the instance action name
 * recorded (Nova's instance_actions), and the compute method cast.
 */
export const SIMPLE_ACTIONS = {
  start: { task: TASK.POWERING_ON, record: 'start', rpc: 'start_instance' },
  stop: { task: TASK.POWERING_OFF, record: 'stop', rpc: 'stop_instance' },
  reboot: { task: TASK.REBOOTING, record: 'reboot', rpc: 'reboot_instance' },
  reboot_hard: { task: TASK.REBOOTING_HARD, record: 'reboot', rpc: 'reboot_instance' },
  pause: { task: TASK.PAUSING, record: 'pause', rpc: 'pause_instance' },
  unpause: { task: TASK.UNPAUSING, record: 'unpause', rpc: 'unpause_instance' },
  suspend: { task: TASK.SUSPENDING, record: 'suspend', rpc: 'suspend_instance' },
  resume: { task: TASK.RESUMING, record: 'resume', rpc: 'resume_instance' },
  set_admin_password: { task: TASK.UPDATING_PASSWORD, record: 'changePassword', rpc: 'set_admin_password' },
  unrescue: { task: TASK.UNRESCUING, record: 'unrescue', rpc: 'unrescue_instance' },
} as const satisfies Partial<Record<InstanceAction, { task: string; record: string; rpc: ComputeCast }>>;

export type SimpleAction = keyof typeof SIMPLE_ACTIONS;
type RpcOf<A extends SimpleAction> = (typeof SIMPLE_ACTIONS)[A]['rpc'];

export class ComputeActions {
  constructor(private readonly d: ActionDeps) {}

  /** A locked instance refuses actions except from admins (Nova's check_instance_lock). */
  checkLock(caller: Caller, l: Located): void {
    if (l.row.locked_by && !caller.isAdmin) throw new Conflict(`Instance ${l.row.uuid} is locked`);
  }

  /**
   * Moves the instance into `task` if its state allows `action` (checked again in the UPDATE,
   * so two concurrent requests cannot both start) and records the instance action.
   */
  async begin(caller: Caller, l: Located, action: InstanceAction, o: { task: string; record: string; updates?: Partial<InstanceRow> }): Promise<void> {
    checkInstanceState(l.row, action);
    await updateInstance(l.db, l.row.uuid, { ...(o.updates ?? {}), task_state: o.task }, { task_state: [l.row.task_state] }).catch((e) => {
      throw new Conflict(`Cannot '${INSTANCE_STATES[action].method}' instance ${l.row.uuid} while it is in task_state ${l.row.task_state}: ${(e as Error).message}`);
    });
    await recordAction(l.db, l.row.uuid, o.record, caller.ctx);
  }

  /** Casts a method to the instance's compute host. */
  async cast<K extends ComputeCast>(caller: Caller, l: Located, method: K, args: CastArgs<K>): Promise<void> {
    if (!l.row.host) throw new Conflict(`Instance ${l.row.uuid} has no host: cannot ${method}.`);
    const rpc = await computeRpc(this.d.cellTransports, l.cell, l.row.host);
    // The instance is added here; the rest of the arguments were checked against the method.
    await rpc.cast(caller.ctx, method, { instance_uuid: l.row.uuid, ...args } as ArgsOf<ComputeMethods[K]>);
  }

  /** Nova's lock: an admin locking another project's instance locks it as 'admin' (owners cannot unlock it without unlock_override). */
  async lock(caller: Caller, l: Located, reason: string | null): Promise<void> {
    checkInstanceState(l.row, 'lock');
    if (l.row.locked_by) return;
    await recordAction(l.db, l.row.uuid, 'lock', caller.ctx);
    await updateInstance(l.db, l.row.uuid, { locked_by: caller.isAdmin && caller.ctx.projectId !== l.row.project_id ? 'admin' : 'owner', locked_reason: reason });
  }

  /** Whether unlocking needs the unlock_override rule: the lock is an admin's and the caller is not one. */
  unlockNeedsOverride(caller: Caller, l: Located): boolean {
    return l.row.locked_by === 'admin' && !caller.isAdmin;
  }

  async unlock(caller: Caller, l: Located): Promise<void> {
    checkInstanceState(l.row, 'unlock');
    if (!l.row.locked_by) return;
    await recordAction(l.db, l.row.uuid, 'unlock', caller.ctx);
    await updateInstance(l.db, l.row.uuid, { locked_by: null, locked_reason: null });
  }

  /** os-resetState: the vm_state forced, the task cleared, recorded (no cast: the host is not asked). */
  async resetState(caller: Caller, l: Located, state: 'active' | 'error'): Promise<void> {
    checkInstanceState(l.row, 'reset_state');
    await recordAction(l.db, l.row.uuid, 'resetState', caller.ctx);
    await updateInstance(l.db, l.row.uuid, { vm_state: state, task_state: null });
  }

  /** The guest's console log from its host; `length`: the last that many lines (undefined: all). */
  async consoleOutput(caller: Caller, l: Located, length: number | undefined): Promise<string> {
    checkInstanceState(l.row, 'get_console_output');
    if (!l.row.host) throw new Conflict(`Instance ${l.row.uuid} is not ready`);
    const rpc = await computeRpc(this.d.cellTransports, l.cell, l.row.host);
    const out = await rpc.call(caller.ctx, 'get_console_output', { instance_uuid: l.row.uuid }, { timeoutMs: 30_000 });
    if (length === undefined) return out;
    const lines = out.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return length === 0 ? '' : lines.slice(-length).join('\n');
  }

  /** Nova's restore of a soft-deleted instance (none are: refused by the state table). */
  async restore(_caller: Caller, l: Located): Promise<void> {
    checkInstanceState(l.row, 'restore');
    throw new Conflict(`Cannot 'restore' instance ${l.row.uuid}: soft delete is not enabled`);
  }

  /** A simple action from start to cast: lock, state, task, record, cast. */
  async simple<A extends SimpleAction>(caller: Caller, l: Located, action: A, args: CastArgs<RpcOf<A>>): Promise<void> {
    const a = SIMPLE_ACTIONS[action];
    this.checkLock(caller, l);
    await this.begin(caller, l, action, a);
    await this.cast(caller, l, a.rpc as RpcOf<A>, args);
  }
}
