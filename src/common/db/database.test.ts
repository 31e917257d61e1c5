import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, sql } from './database.ts';

test('sqlite: cached statements give the same answers, follow schema changes and survive errors', async () => {
  const { db, close } = await openDatabase('sqlite://');
  try {
    await sql`create table t (id integer primary key, a text)`.execute(db);
    for (let i = 0; i < 3; i++) await db.insertInto('t' as never).values({ a: `v${i}` } as never).execute();
    const list = () => db.selectFrom('t' as never).selectAll().orderBy('id' as never).execute();
    assert.deepEqual((await list()).map((r: any) => r.a), ['v0', 'v1', 'v2']);
    assert.deepEqual((await list()).map((r: any) => r.a), ['v0', 'v1', 'v2']);
    // The same SQL text after the table changed: SQLite re-prepares, the new column shows.
    await sql`alter table t add column b text default 'x'`.execute(db);
    assert.deepEqual((await list()).map((r: any) => r.b), ['x', 'x', 'x']);
    // A failing statement does not poison the cached one.
    await assert.rejects(db.insertInto('t' as never).values({ id: 1, a: 'dup' } as never).execute());
    await db.insertInto('t' as never).values({ id: 9, a: 'ok' } as never).execute();
    assert.equal((await list()).length, 4);
    // More distinct statements than the cache holds: still correct.
    for (let i = 0; i < 600; i++) assert.equal((await sql<{ n: number }>`select ${sql.lit(i)} as n`.execute(db)).rows[0].n, i);
  } finally {
    await close();
  }
});
