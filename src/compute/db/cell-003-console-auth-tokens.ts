// Cell database, third migration: Nova's `console_auth_tokens` (since Rocky kept per cell, not in
// nova-consoleauth's memory). Only the sha256 of a token is stored, so a database dump gives no
// usable console; `expires` is epoch milliseconds so a TTL is honoured to the millisecond.
import { type Kysely, type Migration } from 'kysely';
import { dialectOf } from '../../common/db/database.ts';

export const cell003ConsoleAuthTokens: Migration = {
  async up(db: Kysely<unknown>) {
    const d = dialectOf(db);
    await db.schema.createTable('console_auth_tokens')
      .addColumn('id', d === 'postgresql' ? 'serial' : 'integer', (c) => (d === 'postgresql' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('token_hash', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('console_type', 'varchar(255)', (c) => c.notNull())
      .addColumn('host', 'varchar(255)', (c) => c.notNull())
      .addColumn('port', 'integer')
      .addColumn('internal_access_path', 'varchar(255)')
      .addColumn('instance_uuid', 'varchar(36)', (c) => c.notNull())
      .addColumn('expires', 'bigint', (c) => c.notNull())
      .addColumn('access_url_base', 'varchar(255)')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('console_auth_tokens_instance_uuid_idx').on('console_auth_tokens').column('instance_uuid').execute();
    await db.schema.createIndex('console_auth_tokens_host_expires_idx').on('console_auth_tokens').columns(['host', 'expires']).execute();
  },
};
