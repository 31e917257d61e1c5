// Which database and message transport a test run uses, chosen by the environment so the same
// suites run on SQLite, MariaDB and PostgreSQL, and on the memory bus and RabbitMQ.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type TestDb = 'sqlite' | 'mysql' | 'postgresql';
export const testDb: TestDb = (process.env.STRATUS_TEST_DB as TestDb) || 'sqlite';
export const testTransport: 'memory' | 'rabbit' = (process.env.STRATUS_TEST_TRANSPORT as 'memory' | 'rabbit') || 'memory';

export function uniqueName(prefix = 'stratus_t'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export function tempDir(prefix = 'stratus-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Creates an empty database on the selected backend; `drop()` removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (testDb === 'sqlite') {
    const dir = tempDir();
    return { url: `sqlite:///${join(dir.path, 'test.db')}`, drop: async () => dir.remove() };
  }
  const name = uniqueName();
  if (testDb === 'mysql') {
    const mysql = await import('mysql2/promise');
    const admin = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', password: '' });
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await admin.end();
    return {
      url: `mysql+pymysql://root:@127.0.0.1:3306/${name}`,
      drop: async () => {
        const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', password: '' });
        await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
        await c.end();
      },
    };
  }
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  return {
    url: `postgresql://postgres@127.0.0.1:5432/${name}`,
    drop: async () => {
      const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A transport URL on the selected backend plus a unique exchange so runs never collide. */
export function testTransportUrl(): { url: string; exchange: string } {
  const exchange = uniqueName('stratus_x');
  if (testTransport === 'rabbit') return { url: 'rabbit://guest:guest@127.0.0.1:5672/', exchange };
  return { url: 'memory://', exchange };
}
