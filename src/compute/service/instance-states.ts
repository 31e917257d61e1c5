// Which actions an instance's state allows: ONE table, as Nova's @check_instance_state
// decorators on compute/api.py (vm_state list and task_state list per action; null: any).
// The API's handlers and the service layer call checkInstanceState(row, action) and never test
// states inline; a new action is a new row here.
import { Conflict } from '../../common/errors.ts';
import { VM, TASK, type InstanceRow } from '../objects.ts';

export interface StateRule {
  /** The method name Nova's InstanceInvalidState message uses ("Cannot 'start' instance …"). */
  method: string;
  vm: readonly string[] | null;
  task: readonly (string | null)[] | null;
  /** Refused as Nova's InstanceNotReady ("Instance … is not ready") instead of InstanceInvalidState. */
  notReady?: true;
}

const NONE = [null] as const;

export const INSTANCE_STATES = {
  start: { method: 'start', vm: [VM.STOPPED], task: NONE },
  stop: { method: 'stop', vm: [VM.ACTIVE, VM.ERROR], task: NONE },
  reboot: { method: 'reboot', vm: [VM.ACTIVE], task: NONE },
  // A hard reboot may interrupt a soft one (Nova lets it through the reboot task states).
  reboot_hard: { method: 'reboot', vm: [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED, VM.ERROR], task: null },
  pause: { method: 'pause', vm: [VM.ACTIVE], task: NONE },
  unpause: { method: 'unpause', vm: [VM.PAUSED], task: NONE },
  suspend: { method: 'suspend', vm: [VM.ACTIVE], task: NONE },
  resume: { method: 'resume', vm: [VM.SUSPENDED], task: NONE },
  set_admin_password: { method: 'set_admin_password', vm: [VM.ACTIVE], task: NONE },
  rebuild: { method: 'rebuild', vm: [VM.ACTIVE, VM.STOPPED, VM.ERROR], task: NONE },
  shelve: { method: 'shelve', vm: [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED], task: NONE },
  shelve_offload: { method: 'shelveOffload', vm: [VM.SHELVED, VM.SHELVED_OFFLOADED], task: NONE },
  unshelve: { method: 'unshelve', vm: [VM.SHELVED, VM.SHELVED_OFFLOADED], task: NONE },
  rescue: { method: 'rescue', vm: [VM.ACTIVE, VM.STOPPED, VM.ERROR], task: NONE },
  unrescue: { method: 'unrescue', vm: [VM.RESCUED], task: NONE },
  resize: { method: 'resize', vm: [VM.ACTIVE, VM.STOPPED], task: NONE },
  migrate: { method: 'migrate', vm: [VM.ACTIVE, VM.STOPPED], task: NONE },
  confirm_resize: { method: 'confirm_resize', vm: [VM.RESIZED], task: NONE },
  revert_resize: { method: 'revert_resize', vm: [VM.RESIZED], task: NONE },
  live_migrate: { method: 'live_migrate', vm: [VM.ACTIVE, VM.PAUSED], task: NONE },
  evacuate: { method: 'evacuate', vm: [VM.ACTIVE, VM.STOPPED, VM.ERROR], task: null },
  create_image: { method: 'createImage', vm: [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED], task: NONE },
  backup: { method: 'createBackup', vm: [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED], task: NONE },
  // A guest that has never run (building) or is gone has no console to read; a resized one
  // (VERIFY_RESIZE) has, on its new host (Nova checks only that the instance has a host).
  get_console_output: { method: 'get_console_output', vm: [VM.ACTIVE, VM.RESCUED, VM.PAUSED, VM.STOPPED, VM.SUSPENDED, VM.ERROR, VM.RESIZED], task: null, notReady: true },
  // Nova's restore needs a soft-deleted instance (this cloud never soft-deletes: always 409).
  restore: { method: 'restore', vm: [VM.SOFT_DELETED], task: null },
  // Lock, unlock, reset state and delete are allowed in every state (Nova: vm_state=None, task_state=None).
  lock: { method: 'lock', vm: null, task: null },
  unlock: { method: 'unlock', vm: null, task: null },
  reset_state: { method: 'reset_state', vm: null, task: null },
  delete: { method: 'delete', vm: null, task: null },
} as const satisfies Record<string, StateRule>;

export type InstanceAction = keyof typeof INSTANCE_STATES;

/** Nova's InstanceInvalidState (409) when the instance's state does not allow the action. */
export function checkInstanceState(row: Pick<InstanceRow, 'uuid' | 'vm_state' | 'task_state'>, action: InstanceAction): void {
  const rule: StateRule = INSTANCE_STATES[action];
  if (rule.notReady && ((rule.vm && !rule.vm.includes(row.vm_state)) || (rule.task && !rule.task.includes(row.task_state)))) throw new Conflict(`Instance ${row.uuid} is not ready`);
  if (rule.vm && !rule.vm.includes(row.vm_state)) throw new Conflict(`Cannot '${rule.method}' instance ${row.uuid} while it is in vm_state ${row.vm_state}`);
  if (rule.task && !rule.task.includes(row.task_state)) throw new Conflict(`Cannot '${rule.method}' instance ${row.uuid} while it is in task_state ${row.task_state}`);
}

export { TASK };
