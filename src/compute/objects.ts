// The instance as stored in a cell database, and the state vocabulary Nova uses for it.
import { createHash } from 'node:crypto';

export const VM = {
  ACTIVE: 'active', BUILDING: 'building', STOPPED: 'stopped', PAUSED: 'paused', SUSPENDED: 'suspended',
  ERROR: 'error', DELETED: 'deleted', SOFT_DELETED: 'soft-delete', SHELVED: 'shelved',
  SHELVED_OFFLOADED: 'shelved_offloaded', RESCUED: 'rescued', RESIZED: 'resized',
} as const;

export const TASK = {
  SCHEDULING: 'scheduling', NETWORKING: 'networking', SPAWNING: 'spawning', BLOCK_DEVICE_MAPPING: 'block_device_mapping',
  DELETING: 'deleting', POWERING_OFF: 'powering-off', POWERING_ON: 'powering-on', REBOOTING: 'rebooting',
  REBOOTING_HARD: 'rebooting_hard', REBOOT_PENDING: 'reboot_pending', REBOOT_STARTED: 'reboot_started',
  REBOOT_PENDING_HARD: 'reboot_pending_hard', REBOOT_STARTED_HARD: 'reboot_started_hard',
  PAUSING: 'pausing', UNPAUSING: 'unpausing', SUSPENDING: 'suspending', RESUMING: 'resuming',
  REBUILDING: 'rebuilding', REBUILD_SPAWNING: 'rebuild_spawning', UPDATING_PASSWORD: 'updating_password',
  IMAGE_SNAPSHOT: 'image_snapshot', IMAGE_BACKUP: 'image_backup', SHELVING_OFFLOADING: 'shelving_offloading', RESCUING: 'rescuing', UNRESCUING: 'unrescuing',
  RESIZE_PREP: 'resize_prep', RESIZE_MIGRATING: 'resize_migrating', RESIZE_MIGRATED: 'resize_migrated', RESIZE_FINISH: 'resize_finish',
  RESIZE_REVERTING: 'resize_reverting', RESIZE_CONFIRMING: 'resize_confirming', MIGRATING: 'migrating',
} as const;

/** libvirt-style power states as Nova reports them. */
export const POWER = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const;

/** Nova's power_state.STATE_MAP: the names of power states in messages and diagnostics. */
export const POWER_NAMES: Record<number, string> = { 0: 'pending', 1: 'running', 3: 'paused', 4: 'shutdown', 6: 'crashed', 7: 'suspended' };

export interface InstanceRow {
  id: number; uuid: string; display_name: string | null; display_description: string | null;
  project_id: string; user_id: string; image_ref: string | null; flavor: string; instance_type_id: string | null;
  vcpus: number; memory_mb: number; root_gb: number; ephemeral_gb: number;
  key_name: string | null; key_data: string | null; user_data: string | null; hostname: string | null;
  host: string | null; node: string | null; availability_zone: string | null;
  vm_state: string; task_state: string | null; power_state: number; config_drive: string;
  reservation_id: string; launch_index: number; locked_by: string | null; locked_reason: string | null;
  access_ip_v4: string | null; access_ip_v6: string | null; auto_disk_config: number; progress: number;
  root_device_name: string | null; kernel_id: string | null; ramdisk_id: string | null; system_metadata: string;
  launched_at: string | null; terminated_at: string | null; created_at: string; updated_at: string | null;
  deleted_at: string | null; deleted: number;
}

/** The flavor as embedded in an instance (Nova's instance_extra.flavor). */
export interface EmbeddedFlavor {
  flavorid: string; name: string; memory_mb: number; vcpus: number; root_gb: number; ephemeral_gb: number;
  swap: number; rxtx_factor: number; extra_specs: Record<string, string>; is_public?: boolean; description?: string | null;
}

const STATUS: Record<string, Record<string, string>> = {
  active: {
    default: 'ACTIVE', rebooting: 'REBOOT', reboot_pending: 'REBOOT', reboot_started: 'REBOOT',
    rebooting_hard: 'HARD_REBOOT', reboot_pending_hard: 'HARD_REBOOT', reboot_started_hard: 'HARD_REBOOT',
    updating_password: 'PASSWORD', rebuilding: 'REBUILD', rebuild_block_device_mapping: 'REBUILD', rebuild_spawning: 'REBUILD',
    migrating: 'MIGRATING', resize_prep: 'RESIZE', resize_migrating: 'RESIZE', resize_migrated: 'RESIZE', resize_finish: 'RESIZE',
  },
  building: { default: 'BUILD' },
  stopped: { default: 'SHUTOFF', resize_prep: 'RESIZE', resize_migrating: 'RESIZE', resize_migrated: 'RESIZE', resize_finish: 'RESIZE', rebuilding: 'REBUILD', rebuild_block_device_mapping: 'REBUILD', rebuild_spawning: 'REBUILD' },
  resized: { default: 'VERIFY_RESIZE', resize_reverting: 'REVERT_RESIZE' },
  paused: { default: 'PAUSED', migrating: 'MIGRATING' },
  suspended: { default: 'SUSPENDED' },
  rescued: { default: 'RESCUE' },
  error: { default: 'ERROR', rebuilding: 'REBUILD', rebuild_block_device_mapping: 'REBUILD', rebuild_spawning: 'REBUILD' },
  deleted: { default: 'DELETED' },
  'soft-delete': { default: 'SOFT_DELETED' },
  shelved: { default: 'SHELVED' },
  shelved_offloaded: { default: 'SHELVED_OFFLOADED' },
};

export function statusOf(vmState: string, taskState: string | null): string {
  const m = STATUS[vmState];
  if (!m) return 'UNKNOWN';
  return (taskState && m[taskState]) || m.default;
}

/** The vm_state(s) a status filter means (Nova's status_to_states). */
export function statesForStatus(status: string): { vm: string[]; task?: string[] } | undefined {
  const out: { vm: string[]; task: string[] } = { vm: [], task: [] };
  const s = status.toUpperCase();
  for (const [vm, m] of Object.entries(STATUS)) {
    for (const [task, st] of Object.entries(m)) {
      if (st !== s) continue;
      if (!out.vm.includes(vm)) out.vm.push(vm);
      if (task !== 'default') out.task.push(task);
    }
  }
  if (!out.vm.length) return undefined;
  return { vm: out.vm, task: out.task.length && !Object.values(STATUS).some((m) => m.default === s) ? out.task : undefined };
}

export function hostId(projectId: string, host: string | null): string {
  if (!host) return '';
  return createHash('sha224').update(projectId + host).digest('hex');
}

export function instanceName(id: number, template = 'instance-%08x'): string {
  return template.replace(/%0?(\d*)x/, (_m, w: string) => id.toString(16).padStart(Number(w || 0), '0')).replace(/%0?(\d*)d/, (_m, w: string) => String(id).padStart(Number(w || 0), '0'));
}
