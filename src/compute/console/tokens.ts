// Console authorization (nova-consoleauth's role, kept per cell as Nova does since Rocky): a
// token is issued by the console API for one instance's console on one host/port or socket and
// protocol; only its sha256 is stored. A proxy redeems it on connect: unknown, expired (now ≥
// expires, to the millisecond) or, with [consoleauth] single_use, already used → refused.
import { createHash, randomUUID } from 'node:crypto';
import type { CellDb } from '../db/tables.ts';
import type { ConsoleEndpoint } from '../virt/driver.ts';
import { now } from '../util.ts';

/** Nova's console types, and the protocol (driver console kind) each one reaches. */
export const CONSOLE_TYPES = { novnc: 'vnc', 'spice-html5': 'spice', serial: 'serial' } as const;
export type ConsoleType = keyof typeof CONSOLE_TYPES;

export interface ConsoleAuth {
  instanceUuid: string;
  consoleType: ConsoleType;
  host: string;
  port: number | null;
  /** A unix socket path on the compute host (QEMU's serial/VNC socket), when there is no port. */
  internalAccessPath: string | null;
  expires: number;
  /** The URL base the token was handed out with (the proxy checks a browser's Origin scheme against it). */
  accessUrlBase: string | null;
}

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Stores a new token for the endpoint and returns it (the only time it is seen in clear). */
export async function issueToken(db: CellDb, o: { instanceUuid: string; consoleType: ConsoleType; endpoint: ConsoleEndpoint; computeHost: string; ttlSec: number; accessUrlBase: string }): Promise<{ token: string; expires: number }> {
  const token = randomUUID();
  const expires = Date.now() + o.ttlSec * 1000;
  const ep = o.endpoint;
  await db.insertInto('console_auth_tokens').values({
    token_hash: hashToken(token), console_type: o.consoleType,
    // A TCP endpoint on "0.0.0.0" / "::" listens everywhere: the proxy reaches it at the compute host.
    host: ep.path ? o.computeHost : !ep.host || ep.host === '0.0.0.0' || ep.host === '::' ? o.computeHost : ep.host,
    port: ep.path ? null : ep.port ?? null, internal_access_path: ep.path ?? null,
    instance_uuid: o.instanceUuid, expires, access_url_base: o.accessUrlBase, created_at: now(),
  }).execute();
  return { token, expires };
}

const toAuth = (r: { instance_uuid: string; console_type: string; host: string; port: number | null; internal_access_path: string | null; expires: number | string; access_url_base: string | null }): ConsoleAuth => ({
  instanceUuid: r.instance_uuid, consoleType: r.console_type as ConsoleType, host: r.host, port: r.port === null ? null : Number(r.port),
  internalAccessPath: r.internal_access_path, expires: Number(r.expires), accessUrlBase: r.access_url_base,
});

/** The token's authorization if it is known and unexpired (os-console-auth-tokens; never consumes it). */
export async function lookupToken(db: CellDb, token: string, at = Date.now()): Promise<ConsoleAuth | undefined> {
  const r = await db.selectFrom('console_auth_tokens').selectAll().where('token_hash', '=', hashToken(token)).where('expires', '>', at).executeTakeFirst();
  return r ? toAuth(r) : undefined;
}

/**
 * A proxy's redemption on connect. With single use the row is deleted, and only the connection
 * whose delete removed it wins: two connections racing with one token cannot both get in.
 */
export async function redeemToken(db: CellDb, token: string, singleUse: boolean, at = Date.now()): Promise<ConsoleAuth | undefined> {
  const found = await lookupToken(db, token, at);
  if (!found || !singleUse) return found;
  const del = await db.deleteFrom('console_auth_tokens').where('token_hash', '=', hashToken(token)).where('expires', '>', at).executeTakeFirst();
  return Number(del.numDeletedRows) === 1 ? found : undefined;
}

/** Expired rows of a cell (Nova's clean_expired_console_auths), run by the proxies now and then. */
export async function purgeExpired(db: CellDb, at = Date.now()): Promise<number> {
  const r = await db.deleteFrom('console_auth_tokens').where('expires', '<=', at).executeTakeFirst();
  return Number(r.numDeletedRows);
}
