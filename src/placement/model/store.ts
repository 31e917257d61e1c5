// The placement store: the database handle, the name<->id caches for resource classes and
// traits, and the few dialect-aware helpers the model needs. Everything above this file speaks
// portable Kysely; the only dialect branches are here and documented.
import { sql, type Kysely, type Transaction } from 'kysely';
import { isRetryableTxError, isUniqueViolation, type Database } from '../../common/db/database.ts';
import type { PlacementDB, DialectKind } from '../db/schema.ts';
import { STANDARD_RESOURCE_CLASSES } from '../standard/resource-classes.ts';
import { STANDARD_TRAITS } from '../standard/traits.ts';
import type { Logger } from '../../common/logging.ts';
import { ProviderTraitCache } from './provider-trait-cache.ts';

export type Db = Kysely<PlacementDB>;
export type Tx = Transaction<PlacementDB> | Kysely<PlacementDB>;

export const now = () => new Date().toISOString();

/** A name<->id map reloaded from its table on a miss (other processes may add names). */
export class NameCache {
  private byName = new Map<string, number>();
  private byId = new Map<number, string>();
  private loading?: Promise<void>;
  constructor(private readonly db: Db, private readonly table: 'resource_classes' | 'traits') {}

  /**
   * Reloads the map. Inside a transaction pass it as `via`: on SQLite the transaction holds the
   * only connection, and a query through the pool would wait for it forever.
   */
  async reload(via?: Tx): Promise<void> {
    if (via) return this.load(via);
    if (!this.loading) this.loading = this.load(this.db).finally(() => { this.loading = undefined; });
    return this.loading;
  }

  private async load(db: Tx): Promise<void> {
    const rows = await db.selectFrom(this.table).select(['id', 'name']).execute();
    this.byName = new Map(rows.map((r) => [r.name, Number(r.id)]));
    this.byId = new Map(rows.map((r) => [Number(r.id), r.name]));
  }

  /** Ids for names; names not found (after one reload) are left out of the map. */
  async ids(names: Iterable<string>, via?: Tx): Promise<Map<string, number>> {
    const want = [...new Set(names)];
    if (want.some((n) => !this.byName.has(n))) await this.reload(via);
    const out = new Map<string, number>();
    for (const n of want) { const id = this.byName.get(n); if (id !== undefined) out.set(n, id); }
    return out;
  }

  async id(name: string, via?: Tx): Promise<number | undefined> {
    return (await this.ids([name], via)).get(name);
  }

  /** Synchronous lookup for ids already seen (call `names()` first to be sure). */
  nameSync(id: number): string {
    return this.byId.get(id) ?? `UNKNOWN_${id}`;
  }

  /** Makes sure `nameSync` knows these ids. */
  async names(ids: Iterable<number>, via?: Tx): Promise<void> {
    for (const id of ids) if (!this.byId.has(id)) { await this.reload(via); return; }
  }

  forget(name: string): void {
    const id = this.byName.get(name);
    this.byName.delete(name);
    if (id !== undefined) this.byId.delete(id);
  }
}

export class PlacementStore {
  readonly db: Db;
  readonly dialect: DialectKind;
  readonly rc: NameCache;
  readonly traits: NameCache;
  /** Provider trait sets by (id, uuid, generation), for allocation candidates' summaries. */
  readonly providerTraits = new ProviderTraitCache();

  constructor(readonly database: Database<PlacementDB>, readonly logger?: Logger) {
    this.db = database.db;
    this.dialect = database.dialect;
    this.rc = new NameCache(this.db, 'resource_classes');
    this.traits = new NameCache(this.db, 'traits');
  }

  /** Makes sure every standard resource class and trait is in the database (idempotent). */
  async syncStandards(): Promise<void> {
    for (const [table, names] of [['resource_classes', STANDARD_RESOURCE_CLASSES], ['traits', STANDARD_TRAITS]] as const) {
      const have = new Set((await this.db.selectFrom(table).select('name').execute()).map((r) => r.name));
      const missing = names.filter((n) => !have.has(n));
      const ts = now();
      for (let i = 0; i < missing.length; i += 200) {
        const chunk = missing.slice(i, i + 200).map((name) => ({ name, created_at: ts }));
        await this.insertIgnore(this.db, table, chunk);
      }
    }
    await Promise.all([this.rc.reload(), this.traits.reload()]);
  }

  /**
   * Runs fn in a transaction, retrying on deadlocks and serialization failures (MariaDB and
   * PostgreSQL may pick a victim when two writers lock the same rows in different orders).
   */
  async tx<T>(fn: (trx: Transaction<PlacementDB>) => Promise<T>, attempts = 6): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await this.db.transaction().execute(fn);
      } catch (e) {
        if (i >= attempts || !isRetryableTxError(e)) throw e;
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 10 * i)));
      }
    }
  }

  /**
   * INSERT that skips rows violating a unique key. Dialect seam: ON CONFLICT DO NOTHING on
   * SQLite and PostgreSQL, INSERT IGNORE on MariaDB. Used for rows several writers may race to
   * create (standard names, aggregates, trait and aggregate associations).
   */
  async insertIgnore<T extends keyof PlacementDB>(db: Tx, table: T, rows: Record<string, unknown>[]): Promise<void> {
    if (!rows.length) return;
    const q = (db as Kysely<any>).insertInto(table).values(rows);
    if (this.dialect === 'mysql') await q.ignore().execute();
    else await q.onConflict((oc) => oc.doNothing()).execute();
  }

  /**
   * SELECT ... FOR UPDATE on MariaDB and PostgreSQL: the rows are locked and read at their
   * latest committed version (an InnoDB plain read would use the transaction's snapshot).
   * SQLite has no FOR UPDATE and needs none: its write transactions run one at a time.
   */
  forUpdate<Q extends { forUpdate(): Q }>(q: Q): Q {
    return this.dialect === 'sqlite' ? q : q.forUpdate();
  }

  /**
   * Adds each row's delta to `used` of the inventory rows given by id, in one statement, only if
   * every new value stays within capacity; returns the number of rows changed (fewer than asked:
   * some row has no room, and the caller rolls back). On PostgreSQL the rows are locked in id
   * order first, within the same statement (a CTE ... ORDER BY id FOR UPDATE): a plain
   * UPDATE ... WHERE id IN (...) locks rows in the order the plan reaches them, and on a small
   * table that is a sequential scan in heap order, which every update changes (MVCC writes the
   * new row version elsewhere): two claims on one host then lock its inventory rows in opposite
   * orders and one is killed as a deadlock victim after deadlock_timeout (seen: 2–18 of 100
   * parallel boots, ~1 s each). The capacity condition is re-checked on the latest row version
   * once the lock is held (PostgreSQL's READ COMMITTED re-evaluation). InnoDB walks the primary
   * key in order and SQLite has one writer.
   */
  async growInventories(trx: Tx, grow: { id: number; delta: number }[]): Promise<number> {
    if (!grow.length) return 0;
    const byId = (col: string) => sql<number>`(case ${sql.ref(col)} ${sql.join(grow.map((g) => sql`when ${sql.lit(g.id)} then ${sql.lit(g.delta)}`), sql` `)} end)`;
    const fits = (col: string) => sql<boolean>`used + ${byId(col)} <= (total - reserved) * allocation_ratio`;
    const ids = grow.map((g) => g.id);
    if (this.dialect === 'postgresql') {
      const r = await sql`with locked as (select id from inventories where id in (${sql.join(ids)}) order by id for update)
        update inventories set used = used + ${byId('inventories.id')} from locked
        where inventories.id = locked.id and ${fits('inventories.id')}`.execute(trx);
      return Number(r.numAffectedRows ?? 0);
    }
    const r = await trx.updateTable('inventories').set({ used: sql`used + ${byId('id')}` })
      .where('id', 'in', ids).where(fits('id')).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** INSERT returning the new auto-increment id (RETURNING on PostgreSQL, insertId elsewhere). */
  async insertId<T extends keyof PlacementDB>(db: Tx, table: T, row: Record<string, unknown>): Promise<number> {
    const q = (db as Kysely<any>).insertInto(table).values(row);
    if (this.dialect === 'postgresql') {
      const r = await q.returning('id').executeTakeFirstOrThrow();
      return Number(r.id);
    }
    const r = await q.executeTakeFirstOrThrow();
    return Number(r.insertId);
  }

  async close(): Promise<void> {
    await this.database.close();
  }
}

export { isUniqueViolation };

/** Splits a long IN list so no backend hits its bound-parameter limit. */
export function chunks<T>(items: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
