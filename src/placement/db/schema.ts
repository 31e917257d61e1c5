// Placement's tables. Same shape on SQLite, MariaDB and PostgreSQL: integer surrogate keys,
// timestamps as ISO-8601 text, no foreign keys (integrity is kept by the model inside
// transactions; FK checks on MariaDB take shared locks on provider rows that then deadlock with
// the generation bumps every allocation write does).
//
// `inventories.used` is a denormalised sum of `allocations.used` for that provider and class,
// maintained in the same transaction as every allocation write. It lets capacity checks and
// allocation candidates work from the inventory rows alone — no scan or aggregation of
// allocations per request — and makes the capacity check of a write one conditional UPDATE,
// which is atomic on every backend (see model/allocations.ts).
import { sql, type Generated, type Kysely, type Migration } from 'kysely';
import type { MigrationSet } from '../../common/db/migrate.ts';
import { dialectOf, type DialectName } from '../../common/db/database.ts';

export interface ResourceProviderRow {
  id: Generated<number>; uuid: string; name: string; generation: number;
  parent_provider_id: number | null; root_provider_id: number | null;
  created_at: string; updated_at: string | null;
}
export interface ResourceClassRow { id: Generated<number>; name: string; created_at: string; updated_at: string | null }
export interface TraitRow { id: Generated<number>; name: string; created_at: string; updated_at: string | null }
export interface InventoryRow {
  id: Generated<number>; resource_provider_id: number; resource_class_id: number;
  total: number; reserved: number; min_unit: number; max_unit: number; step_size: number;
  allocation_ratio: number; used: number; created_at: string; updated_at: string | null;
}
export interface ConsumerRow {
  id: Generated<number>; uuid: string; project_id: string; user_id: string; consumer_type: string | null;
  generation: number; created_at: string; updated_at: string | null;
}
export interface AllocationRow {
  id: Generated<number>; resource_provider_id: number; resource_class_id: number; consumer_id: string;
  used: number; created_at: string; updated_at: string | null;
}
export interface AggregateRow { id: Generated<number>; uuid: string; created_at: string }
export interface ProviderAggregateRow { resource_provider_id: number; aggregate_id: number }
export interface ProviderTraitRow { resource_provider_id: number; trait_id: number }

export interface PlacementDB {
  resource_providers: ResourceProviderRow;
  resource_classes: ResourceClassRow;
  traits: TraitRow;
  inventories: InventoryRow;
  consumers: ConsumerRow;
  allocations: AllocationRow;
  placement_aggregates: AggregateRow;
  resource_provider_aggregates: ProviderAggregateRow;
  resource_provider_traits: ProviderTraitRow;
}

export type DialectKind = DialectName;
export { dialectOf };

const ts = 'varchar(32)';
const uuid = 'varchar(36)';

/** An auto-increment integer primary key on each dialect. */
function idType(d: DialectKind) {
  return d === 'postgresql' ? 'serial' : 'integer';
}

const m001: Migration = {
  async up(db: Kysely<any>) {
    const d = dialectOf(db);
    const id = (t: ReturnType<Kysely<any>['schema']['createTable']>) =>
      t.addColumn('id', idType(d), (c) => (d === 'postgresql' ? c.primaryKey() : c.primaryKey().autoIncrement()));

    await id(db.schema.createTable('resource_providers'))
      .addColumn('uuid', uuid, (c) => c.notNull())
      .addColumn('name', 'varchar(200)', (c) => c.notNull())
      .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('parent_provider_id', 'integer')
      .addColumn('root_provider_id', 'integer')
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .addUniqueConstraint('uniq_resource_providers0uuid', ['uuid'])
      .addUniqueConstraint('uniq_resource_providers0name', ['name'])
      .execute();
    await db.schema.createIndex('resource_providers_root_provider_id_idx').on('resource_providers').column('root_provider_id').execute();
    await db.schema.createIndex('resource_providers_parent_provider_id_idx').on('resource_providers').column('parent_provider_id').execute();

    for (const table of ['resource_classes', 'traits']) {
      await id(db.schema.createTable(table))
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('created_at', ts, (c) => c.notNull())
        .addColumn('updated_at', ts)
        .addUniqueConstraint(`uniq_${table}0name`, ['name'])
        .execute();
    }

    await id(db.schema.createTable('inventories'))
      .addColumn('resource_provider_id', 'integer', (c) => c.notNull())
      .addColumn('resource_class_id', 'integer', (c) => c.notNull())
      .addColumn('total', 'integer', (c) => c.notNull())
      .addColumn('reserved', 'integer', (c) => c.notNull())
      .addColumn('min_unit', 'integer', (c) => c.notNull())
      .addColumn('max_unit', 'integer', (c) => c.notNull())
      .addColumn('step_size', 'integer', (c) => c.notNull())
      .addColumn('allocation_ratio', 'double precision', (c) => c.notNull())
      .addColumn('used', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .addUniqueConstraint('uniq_inventories0resource_provider_resource_class', ['resource_provider_id', 'resource_class_id'])
      .execute();
    // Candidates look providers up by class first.
    await db.schema.createIndex('inventories_resource_class_id_idx').on('inventories').column('resource_class_id').execute();

    await id(db.schema.createTable('consumers'))
      .addColumn('uuid', uuid, (c) => c.notNull())
      .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
      .addColumn('consumer_type', 'varchar(255)')
      .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .addUniqueConstraint('uniq_consumers0uuid', ['uuid'])
      .execute();
    await db.schema.createIndex('consumers_project_id_user_id_idx').on('consumers').columns(['project_id', 'user_id']).execute();

    await id(db.schema.createTable('allocations'))
      .addColumn('resource_provider_id', 'integer', (c) => c.notNull())
      .addColumn('resource_class_id', 'integer', (c) => c.notNull())
      .addColumn('consumer_id', uuid, (c) => c.notNull())
      .addColumn('used', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts)
      .execute();
    await db.schema.createIndex('allocations_resource_provider_class_used_idx').on('allocations')
      .columns(['resource_provider_id', 'resource_class_id', 'used']).execute();
    await db.schema.createIndex('allocations_consumer_id_idx').on('allocations').column('consumer_id').execute();
    await db.schema.createIndex('allocations_resource_class_id_idx').on('allocations').column('resource_class_id').execute();

    await id(db.schema.createTable('placement_aggregates'))
      .addColumn('uuid', uuid, (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addUniqueConstraint('uniq_placement_aggregates0uuid', ['uuid'])
      .execute();

    await db.schema.createTable('resource_provider_aggregates')
      .addColumn('resource_provider_id', 'integer', (c) => c.notNull())
      .addColumn('aggregate_id', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('resource_provider_aggregates_pk', ['resource_provider_id', 'aggregate_id'])
      .execute();
    await db.schema.createIndex('resource_provider_aggregates_aggregate_id_idx').on('resource_provider_aggregates').column('aggregate_id').execute();

    await db.schema.createTable('resource_provider_traits')
      .addColumn('resource_provider_id', 'integer', (c) => c.notNull())
      .addColumn('trait_id', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('resource_provider_traits_pk', ['resource_provider_id', 'trait_id'])
      .execute();
    await db.schema.createIndex('resource_provider_traits_trait_id_idx').on('resource_provider_traits').column('trait_id').execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['resource_provider_traits', 'resource_provider_aggregates', 'placement_aggregates', 'allocations',
      'consumers', 'inventories', 'traits', 'resource_classes', 'resource_providers']) {
      await db.schema.dropTable(t).ifExists().execute();
    }
  },
};

/**
 * PostgreSQL only (the one dialect-specific step): leave free space in the pages of the rows
 * every allocation write updates (inventory usage, provider and consumer generations) so the
 * updates stay HOT — no new index entries per update, no index bloat between vacuums. InnoDB
 * and SQLite update in place and need nothing.
 */
const m002: Migration = {
  async up(db: Kysely<any>) {
    if (dialectOf(db) !== 'postgresql') return;
    for (const t of ['inventories', 'resource_providers', 'consumers']) await sql`alter table ${sql.table(t)} set (fillfactor = 70)`.execute(db);
  },
  async down(db: Kysely<any>) {
    if (dialectOf(db) !== 'postgresql') return;
    for (const t of ['inventories', 'resource_providers', 'consumers']) await sql`alter table ${sql.table(t)} reset (fillfactor)`.execute(db);
  },
};

export const placementMigrations: MigrationSet = {
  name: 'placement',
  migrations: { '001_initial': m001, '002_postgresql_fillfactor': m002 },
};

export { sql };
