// Keypairs (os-keypairs): per user; import (ssh or x509 public key), or generated below 2.92.
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BadRequest, Conflict, NotFound, OverQuota } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { isoMicro, now } from '../util.ts';
import { validate } from './validation.ts';
import { pageParams, q1, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { RESPONSES } from './response-schemas.ts';
import { quotaLimits } from '../quota.ts';
import type { ApiDb } from '../db/tables.ts';

interface KeyRow { id: number; user_id: string; name: string; fingerprint: string; public_key: string; type: string; created_at: string }

function sshString(buf: Buffer, off: number): [Buffer, number] {
  const len = buf.readUInt32BE(off);
  return [buf.subarray(off + 4, off + 4 + len), off + 4 + len];
}

/** MD5 fingerprint of an OpenSSH public key, as Nova computes it; throws on anything else. */
export function sshFingerprint(publicKey: string): string {
  const parts = publicKey.trim().split(/\s+/);
  const bad = () => new BadRequest('Keypair data is invalid: failed to generate fingerprint');
  if (parts.length < 2) throw bad();
  const blob = Buffer.from(parts[1], 'base64');
  if (blob.length < 8 || blob.toString('base64').replace(/=+$/, '') !== parts[1].replace(/=+$/, '')) throw bad();
  try {
    const [type] = sshString(blob, 0);
    if (type.toString() !== parts[0]) throw bad();
  } catch { throw bad(); }
  return createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');
}

function x509Fingerprint(pem: string): string {
  try {
    const cert = new X509Certificate(pem);
    return cert.fingerprint.toLowerCase();
  } catch {
    throw new BadRequest('Keypair data is invalid: failed to generate fingerprint');
  }
}

function mpint(b: Buffer): Buffer {
  let x = b;
  while (x.length > 1 && x[0] === 0 && !(x[1] & 0x80)) x = x.subarray(1);
  if (x[0] & 0x80) x = Buffer.concat([Buffer.from([0]), x]);
  const len = Buffer.alloc(4); len.writeUInt32BE(x.length);
  return Buffer.concat([len, x]);
}
function sstr(s: Buffer | string): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  const len = Buffer.alloc(4); len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function generateSsh(name: string): { publicKey: string; privateKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: "jwk" }) as { n: string; e: string };
  const blob = Buffer.concat([sstr('ssh-rsa'), mpint(Buffer.from(jwk.e, 'base64url')), mpint(Buffer.from(jwk.n, 'base64url'))]);
  return {
    publicKey: `ssh-rsa ${blob.toString('base64')} Generated-by-Nova`,
    privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  };
}

async function generateX509(userId: string): Promise<{ publicKey: string; privateKey: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-x509-'));
  try {
    await promisify(execFile)('openssl', ['req', '-x509', '-nodes', '-newkey', 'rsa:2048', '-days', '3650', '-subj', `/CN=${userId.replace(/[^\w-]/g, '') || 'nova'}`,
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { timeout: 20_000 });
    return { publicKey: await readFile(join(dir, 'cert.pem'), 'utf8'), privateKey: await readFile(join(dir, 'key.pem'), 'utf8') };
  } catch (e) {
    throw new BadRequest(`Keypair data is invalid: could not generate an x509 certificate (${(e as Error).message})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function getKeypair(db: ApiDb, userId: string, name: string): Promise<KeyRow | undefined> {
  return await db.selectFrom('key_pairs').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst() as KeyRow | undefined;
}

function targetUser(c: Ctx): string {
  const u = c.v.atLeast('2.10') ? q1(c.query, 'user_id') : undefined;
  return u ?? c.auth.userId;
}

async function create(c: Ctx) {
  const v292 = c.v.atLeast('2.92');
  const namePattern = v292 ? '^[a-zA-Z0-9 @._-]+$' : '^[a-zA-Z0-9 _-]+$';
  const props: Record<string, unknown> = {
    name: { type: 'string', minLength: 1, maxLength: 255, pattern: namePattern },
    public_key: { type: 'string' },
  };
  if (c.v.atLeast('2.2')) props.type = { type: 'string', enum: ['ssh', 'x509'] };
  if (c.v.atLeast('2.10')) props.user_id = { type: 'string' };
  const body = validate({
    type: 'object',
    properties: { keypair: { type: 'object', properties: props, required: v292 ? ['name', 'public_key'] : ['name'], additionalProperties: false } },
    required: ['keypair'], additionalProperties: false,
  }, c.body).keypair;
  const userId: string = body.user_id ?? c.auth.userId;
  c.enforce('os_compute_api:os-keypairs:create', { user_id: userId });
  const type: string = body.type ?? 'ssh';
  const db = c.api.cells.db;
  const limit = (await quotaLimits(c.api, c.auth.projectId ?? '', userId)).key_pairs;
  if (limit >= 0) {
    const n = await db.selectFrom('key_pairs').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).executeTakeFirst();
    if (Number(n?.n ?? 0) + 1 > limit) throw new OverQuota('Quota exceeded, too many key pairs.');
  }
  let publicKey: string = body.public_key;
  let privateKey: string | undefined;
  if (publicKey === undefined) {
    const g = type === 'x509' ? await generateX509(userId) : generateSsh(body.name);
    publicKey = g.publicKey;
    privateKey = g.privateKey;
  }
  const fingerprint = type === 'x509' ? x509Fingerprint(publicKey) : sshFingerprint(publicKey);
  if (await getKeypair(db, userId, body.name)) throw new Conflict(`Key pair '${body.name}' already exists.`);
  try {
    await db.insertInto('key_pairs').values({ user_id: userId, name: body.name, fingerprint, public_key: publicKey, type, created_at: now() }).execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw new Conflict(`Key pair '${body.name}' already exists.`);
    throw e;
  }
  const kp: Record<string, unknown> = { name: body.name, public_key: publicKey, fingerprint, user_id: userId };
  if (privateKey) kp.private_key = privateKey;
  if (c.v.atLeast('2.2')) kp.type = type;
  return { status: c.v.atLeast('2.2') ? 201 : 200, body: { keypair: kp } };
}

async function list(c: Ctx) {
  const userId = targetUser(c);
  c.enforce('os_compute_api:os-keypairs:index', { user_id: userId });
  let qb = c.api.cells.db.selectFrom('key_pairs').selectAll().where('user_id', '=', userId).orderBy('name').orderBy('id');
  const paged = c.v.atLeast('2.35');
  const { limit, marker } = paged ? pageParams(c.query) : { limit: 100000, marker: undefined };
  if (marker !== undefined) {
    const m = await getKeypair(c.api.cells.db, userId, marker);
    if (!m) throw new BadRequest(`Marker ${marker} could not be found.`);
    qb = qb.where('name', '>', marker);
  }
  const rows = await qb.limit(limit + 1).execute() as KeyRow[];
  const page = rows.slice(0, limit);
  const body: Record<string, unknown> = {
    keypairs: page.map((k) => ({ keypair: { name: k.name, public_key: k.public_key, fingerprint: k.fingerprint, ...(c.v.atLeast('2.2') ? { type: k.type } : {}) } })),
  };
  if (paged && rows.length > limit) {
    const uq = q1(c.query, 'user_id') ? `&user_id=${encodeURIComponent(userId)}` : '';
    body.keypairs_links = [{ rel: 'next', href: `${c.api.publicUrl}/v2.1/os-keypairs?limit=${limit}&marker=${encodeURIComponent(page[page.length - 1].name)}${uq}` }];
  }
  return body;
}

async function show(c: Ctx) {
  const userId = targetUser(c);
  c.enforce('os_compute_api:os-keypairs:show', { user_id: userId });
  const k = await getKeypair(c.api.cells.db, userId, c.params.name);
  if (!k) throw new NotFound(`Keypair ${c.params.name} not found for user ${userId}`);
  const kp: Record<string, unknown> = {
    name: k.name, public_key: k.public_key, fingerprint: k.fingerprint, user_id: k.user_id,
    deleted: false, created_at: isoMicro(k.created_at), updated_at: null, deleted_at: null, id: k.id,
  };
  if (c.v.atLeast('2.2')) kp.type = k.type;
  return { keypair: kp };
}

async function remove(c: Ctx) {
  const userId = targetUser(c);
  c.enforce('os_compute_api:os-keypairs:delete', { user_id: userId });
  const r = await c.api.cells.db.deleteFrom('key_pairs').where('user_id', '=', userId).where('name', '=', c.params.name).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw new NotFound(`Keypair ${c.params.name} not found for user ${userId}`);
  return { status: c.v.atLeast('2.2') ? 204 : 202 };
}

export const keypairRoutes: ComputeRow[] = [
  { method: 'GET', path: '/os-keypairs', policy: 'os_compute_api:os-keypairs:index', errors: [], response: RESPONSES.keypairList, handler: list },
  { method: 'POST', path: '/os-keypairs', policy: 'os_compute_api:os-keypairs:create', errors: [409], response: RESPONSES.keypairCreate, handler: create },
  { method: 'GET', path: '/os-keypairs/:name', policy: 'os_compute_api:os-keypairs:show', errors: [], handler: show },
  { method: 'DELETE', path: '/os-keypairs/:name', policy: 'os_compute_api:os-keypairs:delete', errors: [], handler: remove },
];
