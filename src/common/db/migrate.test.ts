// db sync is safe to run twice and from two processes at once (here: two connections racing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { openDatabase } from './database.ts';
import { migrate, currentVersion, type MigrationSet } from './migrate.ts';
import { createTestDatabase } from '../../../test/helpers/backends.ts';

const set: MigrationSet = {
  name: 'unittest',
  migrations: {
    '001_a': { up: async (db: Kysely<any>) => { await db.schema.createTable('a').addColumn('id', 'varchar(36)', (c) => c.primaryKey()).execute(); } },
    '002_b': { up: async (db: Kysely<any>) => { await db.schema.createTable('b').addColumn('id', 'varchar(36)', (c) => c.primaryKey()).execute(); } },
  },
};

test('concurrent syncs apply each migration exactly once; a second sync is a no-op', async () => {
  const t = await createTestDatabase();
  const [d1, d2] = [await openDatabase(t.url), await openDatabase(t.url)];
  try {
    const [r1, r2] = await Promise.all([migrate(d1, set), migrate(d2, set)]);
    assert.deepEqual([...r1.applied, ...r2.applied].sort(), ['001_a', '002_b']);
    assert.deepEqual((await migrate(d1, set)).applied, []);
    assert.equal(await currentVersion(d1, set), '002_b');
    await sql`select count(*) from b`.execute(d1.db);
  } finally {
    await d1.close();
    await d2.close();
    await t.drop();
  }
});
