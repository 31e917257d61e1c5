// Compute's two kinds of database, as Nova's cells v2: the API database (cell and host
// mappings, instance mappings, build requests and request specs, flavors, keypairs, quotas,
// server groups, aggregates) and one database per cell (services, compute nodes, instances and
// everything hanging off them). cell0 is a cell database that holds instances that never got a
// host. Same shape on SQLite, MariaDB and PostgreSQL: integer surrogate keys, booleans as 0/1,
// timestamps as ISO-8601 text, JSON documents as text, no foreign keys.
import { sql, type ColumnDataType, type Expression, type Kysely, type Migration } from 'kysely';
// Migrations see the database before and after, so they are typed against no table (Kysely<unknown>).
import type { MigrationSet } from '../../common/db/migrate.ts';
import { dialectOf } from '../../common/db/database.ts';
import { cell002Migrations } from './cell-002-migrations.ts';


const ts = 'varchar(32)';
const uuid = 'varchar(36)';
const name = 'varchar(255)';
type TB = ReturnType<Kysely<unknown>['schema']['createTable']>;

function table(db: Kysely<unknown>, t: string): TB {
  const d = dialectOf(db);
  return db.schema.createTable(t)
    .addColumn('id', d === 'postgresql' ? 'serial' : 'integer', (c) => (d === 'postgresql' ? c.primaryKey() : c.primaryKey().autoIncrement()));
}
// Long text: TEXT is unbounded on SQLite/PostgreSQL; MariaDB's TEXT stops at 64 KiB, too small
// for user_data (65535 base64 bytes) plus JSON documents, so MEDIUMTEXT there.
function text(db: Kysely<unknown>): ColumnDataType | Expression<unknown> {
  return dialectOf(db) === 'mysql' ? sql`mediumtext` : 'text';
}

const api001: Migration = {
  async up(db: Kysely<unknown>) {
    const T = text(db);
    await table(db, 'cell_mappings')
      .addColumn('uuid', uuid, (c) => c.notNull().unique())
      .addColumn('name', name)
      .addColumn('transport_url', T, (c) => c.notNull())
      .addColumn('database_connection', T, (c) => c.notNull())
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .execute();
    await table(db, 'host_mappings')
      .addColumn('cell_id', 'integer', (c) => c.notNull())
      .addColumn('host', name, (c) => c.notNull().unique())
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await table(db, 'instance_mappings')
      .addColumn('instance_uuid', uuid, (c) => c.notNull().unique())
      .addColumn('cell_id', 'integer')
      .addColumn('project_id', name, (c) => c.notNull())
      .addColumn('user_id', name, (c) => c.notNull())
      .addColumn('queued_for_delete', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('instance_mappings_project_idx').on('instance_mappings').columns(['project_id', 'queued_for_delete']).execute();
    // The instance as the API accepted it, before the conductor wrote it into a cell.
    await table(db, 'build_requests')
      .addColumn('instance_uuid', uuid, (c) => c.notNull().unique())
      .addColumn('project_id', name, (c) => c.notNull())
      .addColumn('user_id', name, (c) => c.notNull())
      .addColumn('vcpus', 'integer', (c) => c.notNull())
      .addColumn('memory_mb', 'integer', (c) => c.notNull())
      .addColumn('instance', T, (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('build_requests_project_idx').on('build_requests').column('project_id').execute();
    await table(db, 'request_specs')
      .addColumn('instance_uuid', uuid, (c) => c.notNull().unique())
      .addColumn('spec', T, (c) => c.notNull())
      .execute();
    await table(db, 'flavors')
      .addColumn('flavorid', name, (c) => c.notNull().unique())
      .addColumn('name', name, (c) => c.notNull().unique())
      .addColumn('memory_mb', 'integer', (c) => c.notNull())
      .addColumn('vcpus', 'integer', (c) => c.notNull())
      .addColumn('root_gb', 'integer', (c) => c.notNull())
      .addColumn('ephemeral_gb', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('swap', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('rxtx_factor', 'real', (c) => c.notNull().defaultTo(1))
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('is_public', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('description', T)
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .execute();
    await table(db, 'flavor_extra_specs')
      .addColumn('flavor_id', 'integer', (c) => c.notNull())
      .addColumn('key', name, (c) => c.notNull())
      .addColumn('value', name, (c) => c.notNull())
      .addUniqueConstraint('flavor_extra_specs_key_uq', ['flavor_id', 'key'])
      .execute();
    await table(db, 'flavor_projects')
      .addColumn('flavor_id', 'integer', (c) => c.notNull())
      .addColumn('project_id', name, (c) => c.notNull())
      .addUniqueConstraint('flavor_projects_uq', ['flavor_id', 'project_id'])
      .execute();
    await table(db, 'key_pairs')
      .addColumn('user_id', name, (c) => c.notNull())
      .addColumn('name', name, (c) => c.notNull())
      .addColumn('fingerprint', name, (c) => c.notNull())
      .addColumn('public_key', T, (c) => c.notNull())
      .addColumn('type', 'varchar(16)', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addUniqueConstraint('key_pairs_user_name_uq', ['user_id', 'name'])
      .execute();
    await table(db, 'quotas')
      .addColumn('project_id', name, (c) => c.notNull())
      .addColumn('resource', name, (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addUniqueConstraint('quotas_project_resource_uq', ['project_id', 'resource'])
      .execute();
    await table(db, 'project_user_quotas')
      .addColumn('project_id', name, (c) => c.notNull())
      .addColumn('user_id', name, (c) => c.notNull())
      .addColumn('resource', name, (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addUniqueConstraint('project_user_quotas_uq', ['project_id', 'user_id', 'resource'])
      .execute();
    await table(db, 'quota_classes')
      .addColumn('class_name', name, (c) => c.notNull())
      .addColumn('resource', name, (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addUniqueConstraint('quota_classes_uq', ['class_name', 'resource'])
      .execute();
    await table(db, 'instance_groups')
      .addColumn('uuid', uuid, (c) => c.notNull().unique())
      .addColumn('name', name)
      .addColumn('user_id', name, (c) => c.notNull())
      .addColumn('project_id', name, (c) => c.notNull())
      .addColumn('policy', 'varchar(64)', (c) => c.notNull())
      .addColumn('rules', T)
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await table(db, 'instance_group_members')
      .addColumn('group_id', 'integer', (c) => c.notNull())
      .addColumn('instance_uuid', uuid, (c) => c.notNull())
      .addUniqueConstraint('instance_group_members_uq', ['group_id', 'instance_uuid'])
      .execute();
    await table(db, 'aggregates')
      .addColumn('uuid', uuid, (c) => c.notNull().unique())
      .addColumn('name', name, (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .execute();
    await table(db, 'aggregate_hosts')
      .addColumn('aggregate_id', 'integer', (c) => c.notNull())
      .addColumn('host', name, (c) => c.notNull())
      .addUniqueConstraint('aggregate_hosts_uq', ['aggregate_id', 'host'])
      .execute();
    await table(db, 'aggregate_metadata')
      .addColumn('aggregate_id', 'integer', (c) => c.notNull())
      .addColumn('key', name, (c) => c.notNull())
      .addColumn('value', name, (c) => c.notNull())
      .addUniqueConstraint('aggregate_metadata_uq', ['aggregate_id', 'key'])
      .execute();
  },
};

const cell001: Migration = {
  async up(db: Kysely<unknown>) {
    const T = text(db);
    await table(db, 'services')
      .addColumn('uuid', uuid, (c) => c.notNull().unique())
      .addColumn('host', name, (c) => c.notNull())
      .addColumn('binary', name, (c) => c.notNull())
      .addColumn('topic', name)
      .addColumn('report_count', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('disabled_reason', name)
      .addColumn('forced_down', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('last_seen_up', ts)
      .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .addUniqueConstraint('services_host_binary_uq', ['host', 'binary'])
      .execute();
    await table(db, 'compute_nodes')
      .addColumn('uuid', uuid, (c) => c.notNull().unique())
      .addColumn('service_id', 'integer', (c) => c.notNull())
      .addColumn('host', name, (c) => c.notNull())
      .addColumn('hypervisor_hostname', name, (c) => c.notNull())
      .addColumn('hypervisor_type', name, (c) => c.notNull())
      .addColumn('hypervisor_version', 'integer', (c) => c.notNull())
      .addColumn('vcpus', 'integer', (c) => c.notNull())
      .addColumn('memory_mb', 'integer', (c) => c.notNull())
      .addColumn('local_gb', 'integer', (c) => c.notNull())
      .addColumn('vcpus_used', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('memory_mb_used', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('local_gb_used', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('running_vms', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('cpu_info', T, (c) => c.notNull())
      .addColumn('host_ip', name, (c) => c.notNull())
      .addColumn('supported_instances', T, (c) => c.notNull())
      .addColumn('cpu_allocation_ratio', 'real', (c) => c.notNull())
      .addColumn('ram_allocation_ratio', 'real', (c) => c.notNull())
      .addColumn('disk_allocation_ratio', 'real', (c) => c.notNull())
      .addColumn('mapped', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .addUniqueConstraint('compute_nodes_host_node_uq', ['host', 'hypervisor_hostname'])
      .execute();
    await table(db, 'instances')
      .addColumn('uuid', uuid, (c) => c.notNull().unique())
      .addColumn('display_name', name)
      .addColumn('display_description', T)
      .addColumn('project_id', name, (c) => c.notNull())
      .addColumn('user_id', name, (c) => c.notNull())
      .addColumn('image_ref', name)
      .addColumn('flavor', T, (c) => c.notNull())
      .addColumn('instance_type_id', name)
      .addColumn('vcpus', 'integer', (c) => c.notNull())
      .addColumn('memory_mb', 'integer', (c) => c.notNull())
      .addColumn('root_gb', 'integer', (c) => c.notNull())
      .addColumn('ephemeral_gb', 'integer', (c) => c.notNull())
      .addColumn('key_name', name)
      .addColumn('key_data', T)
      .addColumn('user_data', T)
      .addColumn('hostname', name)
      .addColumn('host', name)
      .addColumn('node', name)
      .addColumn('availability_zone', name)
      .addColumn('vm_state', 'varchar(32)', (c) => c.notNull())
      .addColumn('task_state', 'varchar(64)')
      .addColumn('power_state', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('config_drive', 'varchar(16)', (c) => c.notNull().defaultTo(''))
      .addColumn('reservation_id', name, (c) => c.notNull())
      .addColumn('launch_index', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('locked_by', 'varchar(16)')
      .addColumn('locked_reason', T)
      .addColumn('access_ip_v4', name)
      .addColumn('access_ip_v6', name)
      .addColumn('auto_disk_config', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('progress', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('root_device_name', name)
      .addColumn('kernel_id', name)
      .addColumn('ramdisk_id', name)
      .addColumn('system_metadata', T, (c) => c.notNull())
      .addColumn('launched_at', ts)
      .addColumn('terminated_at', ts)
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .addColumn('deleted_at', ts)
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.createIndex('instances_project_idx').on('instances').columns(['project_id', 'deleted']).execute();
    await db.schema.createIndex('instances_host_idx').on('instances').columns(['host', 'deleted']).execute();
    await db.schema.createIndex('instances_created_idx').on('instances').columns(['created_at', 'id']).execute();
    await table(db, 'instance_metadata')
      .addColumn('instance_uuid', uuid, (c) => c.notNull())
      .addColumn('key', name, (c) => c.notNull())
      .addColumn('value', name, (c) => c.notNull())
      .addUniqueConstraint('instance_metadata_uq', ['instance_uuid', 'key'])
      .execute();
    await table(db, 'instance_tags')
      .addColumn('instance_uuid', uuid, (c) => c.notNull())
      .addColumn('tag', 'varchar(80)', (c) => c.notNull())
      .addUniqueConstraint('instance_tags_uq', ['instance_uuid', 'tag'])
      .execute();
    await table(db, 'instance_faults')
      .addColumn('instance_uuid', uuid, (c) => c.notNull())
      .addColumn('code', 'integer', (c) => c.notNull())
      .addColumn('message', T, (c) => c.notNull())
      .addColumn('details', T)
      .addColumn('host', name)
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('instance_faults_uuid_idx').on('instance_faults').column('instance_uuid').execute();
    await table(db, 'instance_actions')
      .addColumn('action', name, (c) => c.notNull())
      .addColumn('instance_uuid', uuid, (c) => c.notNull())
      .addColumn('request_id', name, (c) => c.notNull())
      .addColumn('user_id', name)
      .addColumn('project_id', name)
      .addColumn('start_time', ts, (c) => c.notNull())
      .addColumn('finish_time', ts)
      .addColumn('message', name)
      .addColumn('updated_at', ts)
      .execute();
    await db.schema.createIndex('instance_actions_uuid_idx').on('instance_actions').columns(['instance_uuid', 'request_id']).execute();
    await table(db, 'instance_actions_events')
      .addColumn('action_id', 'integer', (c) => c.notNull())
      .addColumn('event', name, (c) => c.notNull())
      .addColumn('start_time', ts, (c) => c.notNull())
      .addColumn('finish_time', ts)
      .addColumn('result', name)
      .addColumn('traceback', T)
      .addColumn('host', name)
      .addColumn('details', T)
      .execute();
    await db.schema.createIndex('instance_actions_events_action_idx').on('instance_actions_events').column('action_id').execute();
    await table(db, 'instance_passwords')
      .addColumn('instance_uuid', uuid, (c) => c.notNull().unique())
      .addColumn('password', T, (c) => c.notNull())
      .execute();
  },
};

export const apiMigrations: MigrationSet = { name: 'compute_api', migrations: { '001_initial': api001 } };
export const cellMigrations: MigrationSet = { name: 'compute_cell', migrations: { '001_initial': cell001, '002_migrations': cell002Migrations } };
