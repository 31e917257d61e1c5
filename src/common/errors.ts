// Typed errors shared by every service. Each service renders them in its own OpenStack error
// shape (see http/errors.ts); the RPC layer serialises them by `name` and re-raises them at the
// caller, so a NotFound thrown in the conductor is a NotFound in the API.

export class StratusError extends Error {
  /** HTTP status this error maps to. */
  readonly status: number = 500;
  /** Stable machine code, e.g. `placement.concurrent_update`; optional. */
  code?: string;
  /** Extra headers to send with the error response (e.g. WWW-Authenticate). */
  headers?: Record<string, string>;
  constructor(message: string, opts: { code?: string; cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    if (opts.code) this.code = opts.code;
    if (opts.headers) this.headers = opts.headers;
  }
}

export class BadRequest extends StratusError { override readonly status = 400; }
export class Unauthorized extends StratusError { override readonly status = 401; }
export class Forbidden extends StratusError { override readonly status = 403; }
export class NotFound extends StratusError { override readonly status = 404; }
export class MethodNotAllowed extends StratusError { override readonly status = 405; }
export class NotAcceptable extends StratusError { override readonly status = 406; }
export class Conflict extends StratusError { override readonly status = 409; }
export class Gone extends StratusError { override readonly status = 410; }
export class PayloadTooLarge extends StratusError { override readonly status = 413; }
/** A path segment (an id) longer than the router accepts. */
export class UriTooLong extends StratusError { override readonly status = 414; }
export class UnsupportedMediaType extends StratusError { override readonly status = 415; }
export class RangeNotSatisfiable extends StratusError { override readonly status = 416; }
/** Nova answers quota overruns with 403 "Quota exceeded…"; Glance with 413. Services pick. */
export class OverQuota extends StratusError { override readonly status: number = 403; }
/** Request headers over Node's limit: refused before routing, on the raw socket. */
export class HeaderFieldsTooLarge extends StratusError { override readonly status = 431; }
export class NotImplementedYet extends StratusError { override readonly status = 501; }
export class ServiceUnavailable extends StratusError { override readonly status = 503; }
/** An RPC call that got no reply in time. */
export class MessagingTimeout extends StratusError { override readonly status = 504; }
export class InternalError extends StratusError { override readonly status = 500; }

const registry = new Map<string, new (message: string, opts?: { code?: string }) => StratusError>();
for (const cls of [
  BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable, Conflict, Gone,
  PayloadTooLarge, UriTooLong, UnsupportedMediaType, RangeNotSatisfiable, HeaderFieldsTooLarge, OverQuota, NotImplementedYet,
  ServiceUnavailable, MessagingTimeout, InternalError, StratusError,
]) registry.set(cls.name, cls);

/** Lets a service add its own error classes so they survive an RPC round trip. */
export function registerError(cls: new (message: string, opts?: { code?: string }) => StratusError): void {
  registry.set(cls.name, cls);
}

export interface SerializedError { name: string; message: string; code?: string; status?: number }

// Node's socket errors, mysql2's lost connection, "too many connections" (1040), "server gone
// away" (2006) / "lost connection during query" (2013), PostgreSQL's connection-exception class
// (08xxx), too many clients (53300) and administrator shutdowns (57P01-57P03).
const CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR', '53300', '57P01', '57P02', '57P03']);
const CONNECTION_MESSAGES = /Connection terminated|connection is in closed state|not queryable|timeout exceeded when trying to connect|Connection lost|read ECONNRESET|connect ECONNREFUSED/i;

/**
 * True when err says a backing server (the database) could not be reached or dropped the
 * connection: a transient condition a client may retry, answered 503 rather than 500.
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; message?: string };
  if (!e || err instanceof StratusError) return false;
  return CONNECTION_CODES.has(String(e.code)) || (typeof e.code === 'string' && e.code.startsWith('08')) || e.errno === 1040 || e.errno === 2006 || e.errno === 2013
    || CONNECTION_MESSAGES.test(e.message ?? '');
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof StratusError) return { name: err.name, message: err.message, code: err.code, status: err.status };
  const e = err as Error;
  // The caller may retry (an agent's conductor call while the database restarts).
  if (isConnectionError(err)) return { name: 'ServiceUnavailable', message: `Database connection failed: ${e.message}`, status: 503 };
  return { name: 'InternalError', message: e?.message ?? String(err) };
}

export function deserializeError(s: SerializedError): StratusError {
  const cls = registry.get(s.name) ?? InternalError;
  return new cls(s.message, { code: s.code });
}
