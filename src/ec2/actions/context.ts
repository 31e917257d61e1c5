// What every EC2 action handler receives, and the pieces several of them share.
import type { Kysely } from 'kysely';
import type { Caller } from '../auth.ts';
import type { Ec2DB } from '../db.ts';
import type { Downstream } from '../downstream.ts';
import { Ec2Error, invalidParameter } from '../errors.ts';
import type { IdMapper, Ec2Kind } from '../ids.ts';
import { kindOf } from '../ids.ts';
import type { Params } from '../params.ts';

export interface Ec2Settings {
  region: string;
  /** This endpoint's public URL (DescribeRegions' regionEndpoint). */
  publicUrl: string;
  defaultInstanceType: string;
  /** Nova's `networks` for RunInstances: 'auto' or 'none'. */
  network: 'auto' | 'none';
}

/** The EC2 service's own dependencies: the downstream APIs, its id mapping and database. */
export interface Ec2Services {
  compute: Downstream;
  image: Downstream;
  ids: IdMapper;
  db: Kysely<Ec2DB>;
  settings: Ec2Settings;
  /** This service's own (admin) token: for what Nova shows admins only (reservation ids). */
  serviceToken(): Promise<string>;
}

export interface ActionContext extends Ec2Services {
  p: Params;
  caller: Caller;
  /** Records the EC2 ids of every instance or image the caller can see. */
  discover(what: 'instances' | 'images'): Promise<void>;
}

/** An action: returns the XML inside the response envelope. */
export type Handler = (c: ActionContext) => Promise<string>;

export interface ActionDef {
  handler: Handler;
}

const MALFORMED: Record<string, string> = { i: 'InvalidInstanceID.Malformed', ami: 'InvalidAMIID.Malformed', aki: 'InvalidAMIID.Malformed', ari: 'InvalidAMIID.Malformed', r: 'InvalidReservationID.Malformed' };
const NOT_FOUND: Record<string, string> = { i: 'InvalidInstanceID.NotFound', ami: 'InvalidAMIID.NotFound', aki: 'InvalidAMIID.NotFound', ari: 'InvalidAMIID.NotFound', r: 'InvalidReservationID.NotFound' };
const WHAT: Record<string, string> = { i: 'instance ID', ami: 'image id', aki: 'image id', ari: 'image id', r: 'reservation ID' };

/** Checks the id's form against the kinds allowed here. */
export function checkId(id: string, kinds: Ec2Kind[]): Ec2Kind {
  const k = kindOf(id);
  if (!k || !kinds.includes(k)) throw new Ec2Error(MALFORMED[kinds[0]], `Invalid id: "${id}"`);
  return k;
}

export function notFoundError(kind: Ec2Kind, id: string | string[]): Ec2Error {
  const ids = Array.isArray(id) ? id : [id];
  return new Ec2Error(NOT_FOUND[kind], `The ${WHAT[kind]}${ids.length > 1 ? 's' : ''} '${ids.join(', ')}' ${ids.length > 1 ? 'do' : 'does'} not exist`);
}

/** UUIDs of these EC2 ids, in order; any id this cloud never issued is NotFound (all named). */
export async function resolveIds(c: ActionContext, ids: string[], kinds: Ec2Kind[]): Promise<string[]> {
  for (const id of ids) checkId(id, kinds);
  let map = await c.ids.toUuids([...new Set(ids)]);
  let missing = ids.filter((id) => !map.has(id));
  // Ids are derived from UUIDs, so a client may hold one this endpoint never listed (from the
  // metadata service, another EC2 endpoint, or computed): record what the caller can see, once.
  if (missing.length) {
    await c.discover(missing.some((id) => kindOf(id) === 'i') ? 'instances' : 'images');
    map = await c.ids.toUuids([...new Set(ids)]);
    missing = ids.filter((id) => !map.has(id));
  }
  if (missing.length) throw notFoundError(kindOf(missing[0])!, missing);
  return ids.map((id) => map.get(id)!);
}

/** Opaque NextToken for paging: the marker of the next page. */
export function encodeToken(marker: string): string {
  return Buffer.from(JSON.stringify({ m: marker })).toString('base64url');
}

export function decodeToken(t: string): string {
  try {
    const v = JSON.parse(Buffer.from(t, 'base64url').toString('utf8')) as { m?: unknown };
    if (typeof v.m === 'string' && /^[0-9a-f-]{36}$/.test(v.m)) return v.m;
  } catch { /* falls through */ }
  throw invalidParameter(`Invalid NextToken: ${t.slice(0, 64)}`);
}

export const isoTime = (s: string | null | undefined): string | undefined => {
  if (!s) return undefined;
  const t = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(s) ? s : `${s}Z`);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
};

/** Glob match as EC2 filters do it (`*` any run, `?` one character). */
export function globMatch(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === value;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(value);
}

export const matchAny = (values: string[], v: string | undefined | null): boolean => v !== undefined && v !== null && values.some((p) => globMatch(p, String(v)));
