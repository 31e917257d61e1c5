// Compute's databases as Kysely sees them: one interface per table, as schema.ts creates them.
// ComputeApiDB is the API database (nova_api), ComputeCellDB a cell database (nova, cell0).
// Row types elsewhere derive from these (Selectable<…>), so a column name or type that does not
// exist is a compile error from request to row.
import type { Generated, Kysely, Selectable } from 'kysely';
import type { InstanceRow } from '../objects.ts';

type Ts = string;

// ---- API database
export interface CellMappingsTable { id: Generated<number>; uuid: string; name: string | null; transport_url: string; database_connection: string; disabled: Generated<number>; created_at: Ts; updated_at: Ts | null }
export interface HostMappingsTable { id: Generated<number>; cell_id: number; host: string; created_at: Ts }
export interface InstanceMappingsTable { id: Generated<number>; instance_uuid: string; cell_id: number | null; project_id: string; user_id: string; queued_for_delete: Generated<number>; created_at: Ts }
/** `instance`: the instance row as the API accepted it (JSON), before it is written into a cell. */
export interface BuildRequestsTable { id: Generated<number>; instance_uuid: string; project_id: string; user_id: string; vcpus: number; memory_mb: number; instance: string; created_at: Ts }
/** `spec`: a RequestSpec (request-spec.ts) as JSON. */
export interface RequestSpecsTable { id: Generated<number>; instance_uuid: string; spec: string }
export interface FlavorsTable {
  id: Generated<number>; flavorid: string; name: string; memory_mb: number; vcpus: number; root_gb: number; ephemeral_gb: Generated<number>;
  swap: Generated<number>; rxtx_factor: Generated<number>; disabled: Generated<number>; is_public: Generated<number>; description: string | null;
  created_at: Ts; updated_at: Ts | null;
}
export interface FlavorExtraSpecsTable { id: Generated<number>; flavor_id: number; key: string; value: string }
export interface FlavorProjectsTable { id: Generated<number>; flavor_id: number; project_id: string }
export interface KeyPairsTable { id: Generated<number>; user_id: string; name: string; fingerprint: string; public_key: string; type: string; created_at: Ts }
export interface QuotasTable { id: Generated<number>; project_id: string; resource: string; hard_limit: number }
export interface ProjectUserQuotasTable { id: Generated<number>; project_id: string; user_id: string; resource: string; hard_limit: number }
export interface QuotaClassesTable { id: Generated<number>; class_name: string; resource: string; hard_limit: number }
/** `rules`: JSON (max_server_per_host) or null. */
export interface InstanceGroupsTable { id: Generated<number>; uuid: string; name: string | null; user_id: string; project_id: string; policy: string; rules: string | null; created_at: Ts }
export interface InstanceGroupMembersTable { id: Generated<number>; group_id: number; instance_uuid: string }
export interface AggregatesTable { id: Generated<number>; uuid: string; name: string; created_at: Ts; updated_at: Ts | null }
export interface AggregateHostsTable { id: Generated<number>; aggregate_id: number; host: string }
export interface AggregateMetadataTable { id: Generated<number>; aggregate_id: number; key: string; value: string }

export interface ComputeApiDB {
  cell_mappings: CellMappingsTable;
  host_mappings: HostMappingsTable;
  instance_mappings: InstanceMappingsTable;
  build_requests: BuildRequestsTable;
  request_specs: RequestSpecsTable;
  flavors: FlavorsTable;
  flavor_extra_specs: FlavorExtraSpecsTable;
  flavor_projects: FlavorProjectsTable;
  key_pairs: KeyPairsTable;
  quotas: QuotasTable;
  project_user_quotas: ProjectUserQuotasTable;
  quota_classes: QuotaClassesTable;
  instance_groups: InstanceGroupsTable;
  instance_group_members: InstanceGroupMembersTable;
  aggregates: AggregatesTable;
  aggregate_hosts: AggregateHostsTable;
  aggregate_metadata: AggregateMetadataTable;
}

// ---- cell database
export interface ServicesTable {
  id: Generated<number>; uuid: string; host: string; binary: string; topic: string | null; report_count: Generated<number>; disabled: Generated<number>;
  disabled_reason: string | null; forced_down: Generated<number>; last_seen_up: Ts | null; version: Generated<number>; created_at: Ts; updated_at: Ts | null;
}
export interface ComputeNodesTable {
  id: Generated<number>; uuid: string; service_id: number; host: string; hypervisor_hostname: string; hypervisor_type: string; hypervisor_version: number;
  vcpus: number; memory_mb: number; local_gb: number; vcpus_used: Generated<number>; memory_mb_used: Generated<number>; local_gb_used: Generated<number>;
  running_vms: Generated<number>; cpu_info: string; host_ip: string; supported_instances: string;
  cpu_allocation_ratio: number; ram_allocation_ratio: number; disk_allocation_ratio: number; mapped: Generated<number>; created_at: Ts; updated_at: Ts | null;
}
export type InstancesTable = Omit<InstanceRow, 'id'> & { id: Generated<number> };
export interface InstanceMetadataTable { id: Generated<number>; instance_uuid: string; key: string; value: string }
export interface InstanceTagsTable { id: Generated<number>; instance_uuid: string; tag: string }
export interface InstanceFaultsTable { id: Generated<number>; instance_uuid: string; code: number; message: string; details: string | null; host: string | null; created_at: Ts }
export interface InstanceActionsTable {
  id: Generated<number>; action: string; instance_uuid: string; request_id: string; user_id: string | null; project_id: string | null;
  start_time: Ts; finish_time: Ts | null; message: string | null; updated_at: Ts | null;
}
export interface InstanceActionsEventsTable {
  id: Generated<number>; action_id: number; event: string; start_time: Ts; finish_time: Ts | null; result: string | null;
  traceback: string | null; host: string | null; details: string | null;
}
export interface InstancePasswordsTable { id: Generated<number>; instance_uuid: string; password: string }
export interface MigrationsTable {
  id: Generated<number>; uuid: string; instance_uuid: string; source_compute: string | null; dest_compute: string | null; source_node: string | null;
  dest_node: string | null; dest_host: string | null; old_instance_type_id: number | null; new_instance_type_id: number | null; status: string;
  migration_type: string; hidden: Generated<number>; memory_total: number | null; memory_processed: number | null; memory_remaining: number | null;
  disk_total: number | null; disk_processed: number | null; disk_remaining: number | null; cross_cell_move: Generated<number>;
  user_id: string | null; project_id: string | null; created_at: Ts; updated_at: Ts | null; deleted_at: Ts | null; deleted: Generated<number>;
}

export interface ComputeCellDB {
  services: ServicesTable;
  compute_nodes: ComputeNodesTable;
  instances: InstancesTable;
  instance_metadata: InstanceMetadataTable;
  instance_tags: InstanceTagsTable;
  instance_faults: InstanceFaultsTable;
  instance_actions: InstanceActionsTable;
  instance_actions_events: InstanceActionsEventsTable;
  instance_passwords: InstancePasswordsTable;
  migrations: MigrationsTable;
}

export type ApiDb = Kysely<ComputeApiDB>;
export type CellDb = Kysely<ComputeCellDB>;

export type ServiceRow = Selectable<ServicesTable>;
export type ComputeNodeRow = Selectable<ComputeNodesTable>;
export type FlavorRow = Selectable<FlavorsTable>;
export type KeyPairRow = Selectable<KeyPairsTable>;
export type InstanceGroupRow = Selectable<InstanceGroupsTable>;
export type AggregateRow = Selectable<AggregatesTable>;
export type CellMappingRow = Selectable<CellMappingsTable>;
export type FaultRow = Selectable<InstanceFaultsTable>;
export type MigrationRow = Selectable<MigrationsTable>;
