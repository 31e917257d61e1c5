// Database URLs in the forms OpenStack operators write them (SQLAlchemy style).
export type DialectName = 'sqlite' | 'mysql' | 'postgresql';

export interface DbUrl {
  dialect: DialectName;
  /** sqlite: file path or ':memory:' */
  path?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  params: Record<string, string>;
}

export class DbUrlError extends Error {}

const schemes: Record<string, DialectName> = {
  sqlite: 'sqlite',
  mysql: 'mysql',
  'mysql+pymysql': 'mysql',
  'mysql+mysqldb': 'mysql',
  mariadb: 'mysql',
  postgresql: 'postgresql',
  postgres: 'postgresql',
  'postgresql+psycopg2': 'postgresql',
};

export function parseDbUrl(url: string): DbUrl {
  const m = /^([a-z0-9+]+):\/\/(.*)$/i.exec(url.trim());
  if (!m) throw new DbUrlError(`Not a database URL: ${url}`);
  const dialect = schemes[m[1].toLowerCase()];
  if (!dialect) throw new DbUrlError(`Unsupported database scheme "${m[1]}" in ${url} (use sqlite://, mysql+pymysql:// or postgresql://)`);
  const rest = m[2];
  if (dialect === 'sqlite') {
    // sqlite:///relative.db, sqlite:////abs/path.db (SQLAlchemy), sqlite:// = memory.
    const [p, q] = rest.split('?');
    let path = p.startsWith('/') ? p.slice(1) : p;
    if (path === '' || path === ':memory:') path = ':memory:';
    // We also accept sqlite:///abs/path (three slashes with an absolute-looking path) as absolute,
    // since that is what operators mean far more often than a relative 'abs/path'.
    else if (!path.startsWith('/') && /^(tmp|var|etc|home|root|srv|opt|work|run)\//.test(path)) path = `/${path}`;
    return { dialect, path, params: Object.fromEntries(new URLSearchParams(q ?? '')) };
  }
  let u: URL;
  try {
    u = new URL(`x://${rest}`);
  } catch {
    throw new DbUrlError(`Malformed database URL: ${url}`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new DbUrlError(`Database URL names no database: ${url}`);
  return {
    dialect,
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : dialect === 'mysql' ? 3306 : 5432,
    user: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database,
    params: Object.fromEntries(u.searchParams),
  };
}

/** The URL with its password masked, for logs. */
export function redactDbUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}
