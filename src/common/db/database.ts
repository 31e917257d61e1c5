// The one seam between Stratus and its three SQL dialects. Everything above speaks Kysely.
import { Kysely, SqliteDialect, MysqlDialect, PostgresDialect, sql, type Dialect } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseDbUrl, type DialectName } from './url.ts';
import { isConnectionError } from '../errors.ts';

export interface Database<DB = any> {
  readonly db: Kysely<DB>;
  readonly dialect: DialectName;
  readonly url: string;
  close(): Promise<void>;
}

export async function openDatabase<DB = any>(url: string, opts: { poolSize?: number } = {}): Promise<Database<DB>> {
  const u = parseDbUrl(url);
  let dialect: Dialect;
  if (u.dialect === 'sqlite') {
    const Sqlite = (await import('better-sqlite3')).default;
    if (u.path !== ':memory:') mkdirSync(dirname(u.path!), { recursive: true });
    const conn = new Sqlite(u.path!);
    // WAL lets readers run beside the writer; busy_timeout makes two processes wait for each
    // other instead of failing with SQLITE_BUSY (e.g. two `db sync` at once).
    conn.pragma('journal_mode = WAL');
    conn.pragma('busy_timeout = 10000');
    conn.pragma('synchronous = NORMAL');
    conn.pragma('foreign_keys = ON');
    dialect = new SqliteDialect({ database: withStatementCache(conn) });
  } else if (u.dialect === 'mysql') {
    // The default export (module.exports): the bundle's chunk of a CommonJS package has no named exports.
    const mysql = (await import('mysql2')).default;
    dialect = new MysqlDialect({
      pool: mysql.createPool({
        host: u.host, port: u.port, user: u.user, password: u.password ?? '', database: u.database,
        connectionLimit: opts.poolSize ?? 10, charset: 'utf8mb4', timezone: 'Z', supportBigNumbers: true,
        // DECIMAL/BIGINT as numbers, dates as strings: we store timestamps as ISO text anyway.
        decimalNumbers: true, dateStrings: true,
      }),
    });
  } else {
    const pg = (await import('pg')).default;
    // BIGINT and NUMERIC come back as JS numbers (values we store fit in 2^53).
    pg.types.setTypeParser(20, (v: string) => Number(v));
    pg.types.setTypeParser(1700, (v: string) => Number(v));
    const pool = new pg.Pool({ host: u.host, port: u.port, user: u.user, password: u.password, database: u.database, max: opts.poolSize ?? 10 });
    // An idle client whose server connection dies (database restart, failover, DROP ... FORCE
    // while the pool is closing) is re-emitted as a pool 'error'; unhandled, that would crash
    // the process. The pool has already discarded the client; the next query reconnects.
    pool.on('error', () => {});
    // The same for a client checked out of the pool (inside a transaction, between two of its
    // statements) when its connection dies: the pool's own listener is only on idle clients,
    // and the statement in flight or the next one fails anyway. Unhandled, it crashed the process.
    pool.on('connect', (client) => { client.on('error', () => {}); });
    dialect = new PostgresDialect({ pool });
  }
  const db = new Kysely<DB>({ dialect });
  return {
    db,
    dialect: u.dialect,
    url,
    close: () => db.destroy(),
  };
}

/**
 * Kysely's SQLite driver prepares every query afresh; compiling the SQL costs more than running
 * a small indexed read (~15–20 µs against ~1–50 µs here) and the same few hundred statements
 * repeat forever, so prepared statements are kept by their SQL text (least recently used out
 * beyond STATEMENT_CACHE). SQLite re-prepares a cached statement itself after a schema change.
 */
const STATEMENT_CACHE = 500;
type SqliteConn = import('better-sqlite3').Database;
function withStatementCache(conn: SqliteConn) {
  const cache = new Map<string, import('better-sqlite3').Statement>();
  return {
    close: () => { cache.clear(); conn.close(); },
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (stmt) { cache.delete(sql); cache.set(sql, stmt); return stmt; }
      stmt = conn.prepare(sql);
      cache.set(sql, stmt);
      if (cache.size > STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      return stmt;
    },
  };
}

/** The dialect behind a Kysely instance (migrations receive only the instance). */
export function dialectOf(db: Kysely<any>): DialectName {
  const name = (db.getExecutor().adapter as object).constructor.name;
  if (name.startsWith('Postgres')) return 'postgresql';
  if (name.startsWith('Mysql')) return 'mysql';
  return 'sqlite';
}

/** True when err is a unique-constraint violation on any dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; message?: string };
  return (
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    e?.code === 'ER_DUP_ENTRY' || e?.errno === 1062 ||
    e?.code === '23505'
  );
}

/** True when err is a foreign-key violation on any dialect. */
export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string; errno?: number };
  return e?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || e?.errno === 1451 || e?.errno === 1452 || e?.code === '23503';
}

/** True for serialization failures / deadlocks that a caller may retry. */
export function isRetryableTxError(err: unknown): boolean {
  const e = err as { code?: string; errno?: number };
  return e?.code === '40001' || e?.code === '40P01' || e?.errno === 1213 || e?.errno === 1205 || e?.code === 'SQLITE_BUSY';
}

/**
 * Runs `fn` (a whole transaction) again when the server rolled it back as a deadlock or a
 * serialization failure — oslo.db's retry on DBDeadlock; anything else is thrown at once.
 */
export async function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !isRetryableTxError(e)) throw e;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 20 * i)));
    }
  }
}

/**
 * Runs `fn` again while the database cannot be reached (a restart, no connection slot free),
 * for up to `ms`: for a statement whose loss would leave work half done. Anything else is thrown at once.
 */
export async function retryOnConnectionError<T>(fn: () => Promise<T>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!isConnectionError(e) || Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** i)));
    }
  }
}

export { sql };
export type { DialectName };
