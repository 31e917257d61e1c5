// The EC2 service's own database ([ec2_database] connection): the EC2-id ↔ UUID mappings (as
// Nova's EC2 layer kept instance_id_mappings / s3_images), the reservations RunInstances made,
// and ClientToken idempotency records. It never reads the compute or image databases.
import { sql, type Kysely, type Migration } from 'kysely';
import type { MigrationSet } from '../common/db/migrate.ts';
import { dialectOf } from '../common/db/database.ts';

export interface Ec2IdRow { ec2_id: string; uuid: string; kind: string; created_at: string }
export interface ReservationRow {
  instance_uuid: string; reservation_id: string; project_id: string; launch_index: number;
  /** RunInstances' UserData as given (base64): Nova shows user_data to admins only. */
  user_data: string | null; created_at: string;
  /** When the instance was first seen gone: DescribeInstances shows it terminated for an hour, as AWS. */
  terminated_at: string | null;
}
export interface ClientTokenRow {
  project_id: string; client_token: string; params_hash: string; reservation_id: string | null; created_at: string;
}

export interface Ec2DB {
  ec2_ids: Ec2IdRow;
  ec2_reservations: ReservationRow;
  ec2_client_tokens: ClientTokenRow;
}

const uuid = 'varchar(36)';
const ts = 'varchar(32)';
// MariaDB's TEXT stops at 64 KiB, short of 65535 base64 bytes of user data: MEDIUMTEXT there.
const text = (db: Kysely<any>): any => (dialectOf(db) === 'mysql' ? sql`mediumtext` : 'text');

const m001: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('ec2_ids')
      .addColumn('ec2_id', 'varchar(32)', (c) => c.primaryKey())
      .addColumn('uuid', uuid, (c) => c.notNull())
      .addColumn('kind', 'varchar(8)', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ec2_ids_uuid_idx').on('ec2_ids').column('uuid').execute();
    await db.schema.createTable('ec2_reservations')
      .addColumn('instance_uuid', uuid, (c) => c.primaryKey())
      .addColumn('reservation_id', 'varchar(32)', (c) => c.notNull())
      .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('launch_index', 'integer', (c) => c.notNull())
      .addColumn('user_data', text(db))
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('terminated_at', ts)
      .execute();
    await db.schema.createIndex('ec2_reservations_rid_idx').on('ec2_reservations').column('reservation_id').execute();
    await db.schema.createTable('ec2_client_tokens')
      .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('client_token', 'varchar(64)', (c) => c.notNull())
      .addColumn('params_hash', 'varchar(64)', (c) => c.notNull())
      .addColumn('reservation_id', 'varchar(32)')
      .addColumn('created_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('ec2_client_tokens_pk', ['project_id', 'client_token'])
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['ec2_client_tokens', 'ec2_reservations', 'ec2_ids']) await db.schema.dropTable(t).execute();
  },
};

export const ec2Migrations: MigrationSet = { name: 'ec2', migrations: { '001_initial': m001 } };
