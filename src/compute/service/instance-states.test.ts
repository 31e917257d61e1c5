import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkInstanceState, INSTANCE_STATES } from './instance-states.ts';
import { SIMPLE_ACTIONS } from './actions.ts';
import { Conflict } from '../../common/errors.ts';

const row = (vm_state: string, task_state: string | null = null) => ({ uuid: 'u1', vm_state, task_state });

test('the state table answers as Nova\'s @check_instance_state, with its messages', () => {
  checkInstanceState(row('stopped'), 'start');
  assert.throws(() => checkInstanceState(row('active'), 'start'), (e) => e instanceof Conflict && e.message === "Cannot 'start' instance u1 while it is in vm_state active");
  assert.throws(() => checkInstanceState(row('stopped', 'powering-on'), 'start'), (e) => e instanceof Conflict && e.message === "Cannot 'start' instance u1 while it is in task_state powering-on");
  // A hard reboot is allowed whatever the task; a soft one is not.
  checkInstanceState(row('active', 'rebooting'), 'reboot_hard');
  assert.throws(() => checkInstanceState(row('active', 'rebooting'), 'reboot'), Conflict);
  assert.throws(() => checkInstanceState(row('rescued'), 'rescue'), /Cannot 'rescue' instance u1 while it is in vm_state rescued/);
  checkInstanceState(row('shelved_offloaded'), 'unshelve');
});

test('every simple action has a row in the state table', () => {
  for (const a of Object.keys(SIMPLE_ACTIONS)) assert.ok(a in INSTANCE_STATES, a);
});

test('console output, restore, lock, unlock, reset state and delete are rows of the table too', () => {
  for (const vm of ['active', 'rescued', 'paused', 'stopped', 'suspended', 'error', 'resized']) checkInstanceState(row(vm, 'rebooting'), 'get_console_output');
  // A guest that never ran has no console: Nova's InstanceNotReady wording.
  assert.throws(() => checkInstanceState(row('building'), 'get_console_output'), (e) => e instanceof Conflict && e.message === 'Instance u1 is not ready');
  assert.throws(() => checkInstanceState(row('active'), 'restore'), (e) => e instanceof Conflict && e.message === "Cannot 'restore' instance u1 while it is in vm_state active");
  checkInstanceState(row('soft-delete'), 'restore');
  for (const a of ['lock', 'unlock', 'reset_state', 'delete'] as const) for (const vm of ['building', 'error', 'active']) checkInstanceState(row(vm, 'spawning'), a);
});
