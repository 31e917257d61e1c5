// Topic `conductor` (Nova's conductor rpcapi): build orchestration, and every database access of
// the compute agents (they never open a database themselves).
//   1.0 the methods below
//   1.1 schedule_and_build_instances and reschedule carry the build secrets; instance_get takes
//       expected_attrs (['metadata'])
//   1.2 moves: migrate_server (resize, cold migration), live_migrate_instance, evacuate_instance;
//       for agents: migration_get, migration_update, evacuations_from_host
//   1.3 migrations_in_progress (an agent's restart puts right the moves it was part of)
import { call, cast, topicApi } from '../../common/rpc/typed.ts';
import type { EmbeddedFlavor, InstanceRow } from '../objects.ts';
import type { MigrationRow } from '../db/tables.ts';
import type { Expect } from '../store.ts';
import type { BuildSecrets } from './compute.ts';

export interface ComputeNodeUpdate {
  host: string; service_id: number; hypervisor_hostname: string; hypervisor_type: string; hypervisor_version: number;
  vcpus: number; memory_mb: number; local_gb: number; cpu_info: string; host_ip: string; supported_instances: string;
  cpu_allocation_ratio: number; ram_allocation_ratio: number; disk_allocation_ratio: number;
  usage?: HostUsage;
}
export interface HostUsage { vcpus_used: number; memory_mb_used: number; local_gb_used: number; running_vms: number }
export type InstanceWithMetadata = InstanceRow & { metadata?: Record<string, string> };
export interface ServiceRecord { id: number; uuid: string; disabled: number }
export interface InstanceOnHost { uuid: string; vm_state: string; task_state: string | null; power_state: number }

/** What an agent may change on a migration record (status, the destination, live progress). */
export type MigrationUpdate = Partial<Pick<MigrationRow, 'status' | 'dest_compute' | 'dest_node' | 'dest_host' | 'source_compute' | 'source_node'
  | 'memory_total' | 'memory_processed' | 'memory_remaining' | 'disk_total' | 'disk_processed' | 'disk_remaining'>>;

export const conductorApi = topicApi('conductor', '1.3', {
  // --- build orchestration ---
  schedule_and_build_instances: cast<{ instance_uuids: string[] } & BuildSecrets>('1.1'),
  unshelve_instance: cast<{ instance_uuid: string }>('1.0'),
  /** Resize (new_flavor set) or cold migration (null) of an instance the API put in resize_prep. */
  migrate_server: cast<{ instance_uuid: string; migration_uuid: string; new_flavor: EmbeddedFlavor | null; host: string | null }>('1.2'),
  /** Live migration the API accepted (migration 'accepted', task 'migrating'); host: null lets the scheduler choose. */
  live_migrate_instance: cast<{ instance_uuid: string; migration_uuid: string; host: string | null; force: boolean; block_migration: boolean | null }>('1.2'),
  /** Evacuation off a dead host (migration 'accepted', task 'rebuilding'). */
  evacuate_instance: cast<{ instance_uuid: string; migration_uuid: string; host: string | null; force: boolean; orig_vm_state: string } & BuildSecrets>('1.2'),
  reschedule: cast<{ instance_uuid: string; failed_host: string; reason: string } & BuildSecrets>('1.1'),
  // --- agents' database access ---
  service_update: call<{ host: string; binary: string; topic: string }, ServiceRecord>('1.0'),
  service_heartbeat: call<{ host: string; binary: string }, { disabled: number; forced_down: number } | null>('1.0'),
  compute_node_update: call<ComputeNodeUpdate, { uuid: string; id: number }>('1.0'),
  host_usage: call<{ host: string }, HostUsage>('1.0'),
  instances_on_host: call<{ host: string }, InstanceOnHost[]>('1.0'),
  instance_get: call<{ uuid: string; expected_attrs?: 'metadata'[] }, InstanceWithMetadata | null>('1.1'),
  instance_update: call<{ uuid: string; updates: Partial<InstanceRow>; expect?: Expect; host?: string }, InstanceRow>('1.0'),
  instance_destroy: call<{ uuid: string }, boolean>('1.0'),
  set_password: call<{ uuid: string; password: string }, void>('1.0'),
  event_start: call<{ uuid: string; request_id: string; event: string; host: string }, void>('1.0'),
  event_finish: call<{ uuid: string; request_id: string; event: string; result: 'Success' | 'Error'; traceback?: string; details?: string; host: string }, void>('1.0'),
  /** Evacuations away from `host` its agent has not cleaned up yet (Nova's _destroy_evacuated_instances). */
  evacuations_from_host: call<{ host: string }, MigrationRow[]>('1.2'),
  migration_get: call<{ uuid: string }, MigrationRow | null>('1.2'),
  /** Resizes, cold and live migrations from or to `host` that have not ended (Nova's in-progress statuses). */
  migrations_in_progress: call<{ host: string }, MigrationRow[]>('1.3'),
  migration_update: call<{ uuid: string; updates: MigrationUpdate; expect_status?: string[] }, MigrationRow>('1.2'),
  add_fault: call<{ uuid: string; code: number; message: string; details?: string; host?: string }, void>('1.0'),
});
