// The Image service's tables (Glance's model, trimmed). Booleans are 0/1 integers and timestamps
// ISO-8601 text with milliseconds, so the same queries run on SQLite, MariaDB and PostgreSQL and
// text order is time order. Deleted images stay as rows with deleted = 1 (as Glance) so an id is
// never reused; every read filters them out.
import type { Kysely, Migration } from 'kysely';
import type { MigrationSet } from '../../common/db/migrate.ts';

export interface ImageRow {
  id: string;
  name: string | null;
  disk_format: string | null;
  container_format: string | null;
  size: number | null;
  virtual_size: number | null;
  status: string;
  visibility: string;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  min_disk: number;
  min_ram: number;
  protected: number;
  os_hidden: number;
  owner: string | null;
  created_at: string;
  updated_at: string;
  deleted: number;
  deleted_at: string | null;
  /** Which process holds the upload (`saving`) and when it last said so; see store/scrub. */
  upload_owner: string | null;
  upload_heartbeat: string | null;
  /** Bumped by every change to what the API shows of the image (row, properties, tags, locations). */
  revision: number;
}

/** One copy of the data in one store. `path` is relative to the store's directory. */
export interface LocationRow { image_id: string; store: string; path: string; created_at: string }
export interface PropertyRow { image_id: string; name: string; value: string }
export interface TagRow { image_id: string; value: string; created_at: string }
export interface MemberRow { image_id: string; member: string; status: string; created_at: string; updated_at: string }
export interface TaskRow {
  id: string; type: string; status: string; owner: string | null; image_id: string | null; user_id: string | null;
  request_id: string | null; input: string; result: string | null; message: string;
  created_at: string; updated_at: string; expires_at: string | null;
}
/** Staged data of an image (glance-direct), per project for the image_stage_total limit. */
export interface StagingRow { image_id: string; owner: string | null; path: string; size: number; created_at: string }

export interface MetadefNamespaceRow {
  namespace: string; display_name: string | null; description: string | null; visibility: string;
  protected: number; owner: string | null; created_at: string; updated_at: string;
}
export interface MetadefResourceTypeRow { name: string; protected: number; created_at: string; updated_at: string }
export interface MetadefNsResourceTypeRow { namespace: string; resource_type: string; properties_target: string | null; prefix: string | null; created_at: string; updated_at: string }
/** `body` holds the JSON document (a property's schema, an object's properties/required). */
export interface MetadefObjectRow { namespace: string; name: string; description: string | null; body: string; created_at: string; updated_at: string }
export interface MetadefPropertyRow { namespace: string; name: string; body: string; created_at: string; updated_at: string }
export interface MetadefTagRow { namespace: string; name: string; created_at: string; updated_at: string }

export interface ImageDB {
  images: ImageRow;
  image_locations: LocationRow;
  image_properties: PropertyRow;
  image_tags: TagRow;
  image_members: MemberRow;
  image_staging: StagingRow;
  tasks: TaskRow;
  metadef_namespaces: MetadefNamespaceRow;
  metadef_resource_types: MetadefResourceTypeRow;
  metadef_namespace_resource_types: MetadefNsResourceTypeRow;
  metadef_objects: MetadefObjectRow;
  metadef_properties: MetadefPropertyRow;
  metadef_tags: MetadefTagRow;
}

const uuid = 'varchar(36)';
const name = 'varchar(255)';
const ts = 'varchar(32)';

const m001: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('images')
      .addColumn('id', uuid, (c) => c.primaryKey())
      .addColumn('name', name)
      .addColumn('disk_format', 'varchar(20)')
      .addColumn('container_format', 'varchar(20)')
      .addColumn('size', 'bigint')
      .addColumn('virtual_size', 'bigint')
      .addColumn('status', 'varchar(30)', (c) => c.notNull())
      .addColumn('visibility', 'varchar(20)', (c) => c.notNull())
      .addColumn('checksum', 'varchar(32)')
      .addColumn('os_hash_algo', 'varchar(64)')
      .addColumn('os_hash_value', 'varchar(128)')
      .addColumn('min_disk', 'integer', (c) => c.notNull())
      .addColumn('min_ram', 'integer', (c) => c.notNull())
      .addColumn('protected', 'integer', (c) => c.notNull())
      .addColumn('os_hidden', 'integer', (c) => c.notNull())
      .addColumn('owner', name)
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('deleted', 'integer', (c) => c.notNull())
      .addColumn('deleted_at', ts)
      .addColumn('upload_owner', name)
      .addColumn('upload_heartbeat', ts)
      .execute();
    await db.schema.createIndex('images_owner').on('images').columns(['owner', 'deleted']).execute();
    await db.schema.createIndex('images_visibility').on('images').columns(['visibility', 'deleted']).execute();
    await db.schema.createIndex('images_status').on('images').column('status').execute();
    await db.schema.createIndex('images_created').on('images').columns(['created_at', 'id']).execute();

    await db.schema.createTable('image_locations')
      .addColumn('image_id', uuid, (c) => c.notNull())
      .addColumn('store', 'varchar(64)', (c) => c.notNull())
      .addColumn('path', 'varchar(512)', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('image_locations_pk', ['image_id', 'store']).execute();

    await db.schema.createTable('image_properties')
      .addColumn('image_id', uuid, (c) => c.notNull())
      .addColumn('name', name, (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('image_properties_pk', ['image_id', 'name']).execute();
    await db.schema.createIndex('image_properties_name').on('image_properties').column('name').execute();

    await db.schema.createTable('image_tags')
      .addColumn('image_id', uuid, (c) => c.notNull())
      .addColumn('value', name, (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('image_tags_pk', ['image_id', 'value']).execute();
    await db.schema.createIndex('image_tags_value').on('image_tags').column('value').execute();

    await db.schema.createTable('image_members')
      .addColumn('image_id', uuid, (c) => c.notNull())
      .addColumn('member', name, (c) => c.notNull())
      .addColumn('status', 'varchar(20)', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('image_members_pk', ['image_id', 'member']).execute();
    await db.schema.createIndex('image_members_member').on('image_members').columns(['member', 'status']).execute();

    await db.schema.createTable('image_staging')
      .addColumn('image_id', uuid, (c) => c.primaryKey())
      .addColumn('owner', name)
      .addColumn('path', 'varchar(512)', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull()).execute();

    await db.schema.createTable('tasks')
      .addColumn('id', uuid, (c) => c.primaryKey())
      .addColumn('type', 'varchar(30)', (c) => c.notNull())
      .addColumn('status', 'varchar(30)', (c) => c.notNull())
      .addColumn('owner', name)
      .addColumn('image_id', uuid)
      .addColumn('user_id', name)
      .addColumn('request_id', 'varchar(64)')
      .addColumn('input', 'text', (c) => c.notNull())
      .addColumn('result', 'text')
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('expires_at', ts).execute();
    await db.schema.createIndex('tasks_image').on('tasks').column('image_id').execute();

    await db.schema.createTable('metadef_namespaces')
      .addColumn('namespace', name, (c) => c.primaryKey())
      .addColumn('display_name', name)
      .addColumn('description', 'text')
      .addColumn('visibility', 'varchar(32)', (c) => c.notNull())
      .addColumn('protected', 'integer', (c) => c.notNull())
      .addColumn('owner', name)
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull()).execute();
    await db.schema.createTable('metadef_resource_types')
      .addColumn('name', name, (c) => c.primaryKey())
      .addColumn('protected', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull()).execute();
    await db.schema.createTable('metadef_namespace_resource_types')
      .addColumn('namespace', name, (c) => c.notNull())
      .addColumn('resource_type', name, (c) => c.notNull())
      .addColumn('properties_target', name)
      .addColumn('prefix', name)
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_ns_rt_pk', ['namespace', 'resource_type']).execute();
    await db.schema.createTable('metadef_objects')
      .addColumn('namespace', name, (c) => c.notNull())
      .addColumn('name', name, (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_objects_pk', ['namespace', 'name']).execute();
    await db.schema.createTable('metadef_properties')
      .addColumn('namespace', name, (c) => c.notNull())
      .addColumn('name', name, (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_properties_pk', ['namespace', 'name']).execute();
    await db.schema.createTable('metadef_tags')
      .addColumn('namespace', name, (c) => c.notNull())
      .addColumn('name', name, (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('metadef_tags_pk', ['namespace', 'name']).execute();
  },
};

/** A revision per image lets list responses reuse rendered images that have not changed. */
const m002: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('images').addColumn('revision', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  },
};

export const imageMigrations: MigrationSet = { name: 'image', migrations: { '001_initial': m001, '002_revision': m002 } };
