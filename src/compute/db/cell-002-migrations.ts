// Cell database, second migration: Nova's `migrations` table (resize, cold and live migration,
// evacuation records), listed by os-migrations. Nothing writes it yet: this cloud performs no
// move operations so far; the table gives those operations, and the API, their shape.
import { type Kysely, type Migration } from 'kysely';
import { dialectOf } from '../../common/db/database.ts';

const ts = 'varchar(32)';
const uuid = 'varchar(36)';
const name = 'varchar(255)';

export const cell002Migrations: Migration = {
  async up(db: Kysely<unknown>) {
    const d = dialectOf(db);
    await db.schema.createTable('migrations')
      .addColumn('id', d === 'postgresql' ? 'serial' : 'integer', (c) => (d === 'postgresql' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('uuid', uuid, (c) => c.notNull().unique())
      .addColumn('instance_uuid', uuid, (c) => c.notNull())
      .addColumn('source_compute', name)
      .addColumn('dest_compute', name)
      .addColumn('source_node', name)
      .addColumn('dest_node', name)
      .addColumn('dest_host', name)
      .addColumn('old_instance_type_id', 'integer')
      .addColumn('new_instance_type_id', 'integer')
      .addColumn('status', name, (c) => c.notNull())
      .addColumn('migration_type', 'varchar(32)', (c) => c.notNull())
      .addColumn('hidden', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('memory_total', 'bigint')
      .addColumn('memory_processed', 'bigint')
      .addColumn('memory_remaining', 'bigint')
      .addColumn('disk_total', 'bigint')
      .addColumn('disk_processed', 'bigint')
      .addColumn('disk_remaining', 'bigint')
      .addColumn('cross_cell_move', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('user_id', name)
      .addColumn('project_id', name)
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .addColumn('deleted_at', ts)
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.createIndex('migrations_instance_uuid_idx').on('migrations').columns(['instance_uuid', 'deleted']).execute();
    await db.schema.createIndex('migrations_by_host_idx').on('migrations').columns(['source_compute', 'dest_compute', 'status']).execute();
    await db.schema.createIndex('migrations_updated_idx').on('migrations').columns(['updated_at']).execute();
  },
};
