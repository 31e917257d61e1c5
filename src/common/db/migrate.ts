// Migrations per database. Each service registers an ordered list; `db sync` applies what is
// missing. Kysely's migrator keeps a version table per set and holds a lock table while it runs,
// so two processes syncing at once serialize instead of racing.
import { Migrator, type Migration, type Kysely } from 'kysely';
import type { Database } from './database.ts';

export interface MigrationSet {
  /** e.g. 'identity', 'placement', 'api', 'cell' */
  name: string;
  migrations: Record<string, Migration>;
}

export async function migrate(database: Database, set: MigrationSet): Promise<{ applied: string[] }> {
  const migrator = new Migrator({
    db: database.db as Kysely<any>,
    provider: { getMigrations: async () => set.migrations },
    migrationTableName: `stratus_${set.name}_migrations`,
    migrationLockTableName: `stratus_${set.name}_migrations_lock`,
  });
  // Two processes creating the version tables at the same moment can collide on DDL even
  // though Kysely uses IF NOT EXISTS; a short retry settles it.
  for (let attempt = 0; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
    if (attempt >= 5) throw error;
    await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
  }
}

export async function currentVersion(database: Database, set: MigrationSet): Promise<string | undefined> {
  const migrator = new Migrator({
    db: database.db as Kysely<any>,
    provider: { getMigrations: async () => set.migrations },
    migrationTableName: `stratus_${set.name}_migrations`,
    migrationLockTableName: `stratus_${set.name}_migrations_lock`,
  });
  const all = await migrator.getMigrations();
  return all.filter((m) => m.executedAt).map((m) => m.name).pop();
}
