// Credentials (/v3/credentials): opaque secrets a user keeps in Identity for other services
// (EC2/S3 key pairs, TOTP seeds, certificates). Type 'ec2' credentials are keyed by the sha256 of
// their access key, so an access key names exactly one credential; the OS-EC2 routes under
// /v3/users/{id}/credentials are the EC2 view of the same rows.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { BadRequest, Conflict, Forbidden, NotFound, Unauthorized } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { parseExtra, newId } from '../store/store.ts';
import type { CredentialRecord, CredentialRow } from '../store/schema.ts';
import { trustIdOfToken } from './trusts.ts';
import { authorize, refuseRestrictedAppCred, checkQuery, filterInexact, creds, extras, link, listLinks, type IdentityApi } from './context.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { R } from './responses.ts';
import { callerOf, type IdentityRow, type RowModule } from './rows.ts';

const FIELDS = ['id', 'user_id', 'project_id', 'type', 'blob', 'links'];
const EC2 = 'ec2';

/**
 * A token minted from an EC2/S3 key pair may not make more credentials: a leaked key pair must
 * not be turned into lasting access (Keystone's guard, LP#2153453).
 */
export function refuseKeyPairTokens(methods: string[]): void {
  if (methods.includes('ec2credential')) throw new Forbidden('You are not authorized to perform the requested action: a token obtained with an EC2 or S3 credential cannot create credentials or trusts.');
}

export const ec2CredentialId = (access: string) => createHash('sha256').update(access, 'utf8').digest('hex');

function render(api: IdentityApi, c: CredentialRow) {
  return { id: c.id, user_id: c.user_id, project_id: c.project_id, type: c.type, blob: c.blob, ...parseExtra(c.extra), links: link(api, `credentials/${c.id}`) };
}

/** The blob of an ec2 credential: a JSON object with at least an access key. */
function ec2Blob(blob: string): Record<string, unknown> & { access: string } {
  let parsed: unknown;
  try { parsed = JSON.parse(blob); } catch { throw new BadRequest('Invalid blob in credential'); }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BadRequest("Expecting to find blob in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
  const b = parsed as Record<string, unknown>;
  if (typeof b.access !== 'string' || b.access === '') throw new BadRequest("Expecting to find access in credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
  return b as Record<string, unknown> & { access: string };
}

function toEc2(api: IdentityApi, c: CredentialRow) {
  let b: Record<string, unknown> = {};
  try { b = JSON.parse(c.blob) as Record<string, unknown>; } catch { /* a malformed blob shows as empty */ }
  return {
    user_id: c.user_id, tenant_id: c.project_id, access: b.access ?? null, secret: b.secret ?? null, trust_id: b.trust_id ?? null,
    links: { self: `${api.publicUrl}/v3/users/${c.user_id}/credentials/OS-EC2/${b.access}` },
  };
}

/** A stored credential with its blob decrypted (rows from before encryption read as they are). */
export function openCredential(api: IdentityApi, r: CredentialRecord): CredentialRow {
  return { id: r.id, user_id: r.user_id, project_id: r.project_id, type: r.type, blob: api.credentialCipher().open(r), extra: r.extra };
}

/** The column is 255 long: Keystone's StringLengthExceeded (no schema bounds the type). */
function checkTypeLength(type: string): void {
  if ([...type].length > 255) throw new BadRequest(`String length exceeded. The length of string '${type}' exceeds the limit of column type(CHAR(255)).`);
}

export const credentialRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store } = api;
  const db = () => store.db;
  const open = (r: CredentialRecord) => openCredential(api, r);
  const seal = (blob: string) => api.credentialCipher().seal(blob);
  // A credential outlives nothing: once its user is deleted it is gone for every route.
  const find = async (id: string) => {
    const r = await db().selectFrom('credentials').selectAll().where('id', '=', id)
      .where('user_id', 'in', (eb) => eb.selectFrom('users').select('id')).executeTakeFirst();
    return r && open(r);
  };
  const userExists = async (id: string) => !!(await db().selectFrom('users').select('id').where('id', '=', id).executeTakeFirst());
  const projectExists = async (id: string) => !!(await db().selectFrom('projects').select('id').where('id', '=', id).executeTakeFirst());

  async function insert(row: CredentialRow) {
    try {
      await db().insertInto('credentials').values({ ...row, ...seal(row.blob) }).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Conflict occurred attempting to store credential - Duplicate ID, ${row.id}.`);
      throw e;
    }
  }

  /** Loads a credential for a member route; a missing one is 404 only for callers the rule lets through. */
  async function load(req: FastifyRequest, rule: string): Promise<CredentialRow> {
    const { id } = req.params as { id: string };
    const row = await find(id);
    await authorize(api, req, rule, row ? { target: { credential: row } } : {});
    if (!row) throw new NotFound(`Could not find credential: ${id}.`);
    return row;
  }

  rows.push({ method: 'GET', path: '/v3/credentials', response: { 200: R.credentials }, targetPolicy: 'identity:list_credentials', errors: [], handler: async (req) => {
    const q = checkQuery(req, ['user_id', 'type']);
    const caller = await api.authenticate(req);
    const c = creds(caller);
    api.policy.enforce('identity:list_credentials', c, caller.system ? {} : { target: { credential: { user_id: caller.userId } } });
    let qb = db().selectFrom('credentials').selectAll().where('user_id', 'in', (eb) => eb.selectFrom('users').select('id'));
    if (q.user_id !== undefined) qb = qb.where('user_id', '=', q.user_id);
    if (q.type !== undefined) qb = qb.where('type', '=', q.type);
    const rows = (await qb.orderBy('id').execute()).filter((r) => api.policy.check('identity:get_credential', c, { target: { credential: r } })).map(open);
    return { credentials: filterInexact(req, ['user_id', 'type'], rows.map((r) => render(api, r))), links: listLinks(api, req) };
  } });

  rows.push({ method: 'GET', path: '/v3/credentials/:id', response: { 200: R.credential }, targetPolicy: 'identity:get_credential', errors: [], handler: async (req) => ({ credential: render(api, await load(req, 'identity:get_credential')) }) });

  rows.push({ method: 'POST', path: '/v3/credentials', targetPolicy: 'identity:create_credential', body: entityBody('credential', KS.credential_create), response: { 201: R.credential }, errors: [], handler: async (req, reply) => {
    const c = entityOf(req, 'credential');
    const caller = await authorize(api, req, 'identity:create_credential', { credential: c });
    refuseKeyPairTokens(caller.methods);
    refuseRestrictedAppCred(caller, 'credentials');
    const type = c.type as string;
    checkTypeLength(type);
    if (!(await userExists(c.user_id as string))) throw new NotFound(`Could not find user: ${c.user_id}.`);
    if (c.project_id && !(await projectExists(c.project_id as string))) throw new NotFound(`Could not find project: ${c.project_id}.`);
    let id = newId();
    let blob = c.blob as string;
    if (type === EC2) {
      const b = ec2Blob(blob);
      id = ec2CredentialId(b.access);
      // A key pair made with a trust-scoped token or an application credential authenticates
      // (via ec2tokens) within that trust or application credential only.
      const trust = trustIdOfToken(api, caller.token);
      if (trust) blob = JSON.stringify({ ...b, trust_id: trust });
      else if (caller.applicationCredentialId) blob = JSON.stringify({ ...b, app_cred_id: caller.applicationCredentialId });
    }
    const row: CredentialRow = { id, user_id: c.user_id as string, project_id: (c.project_id as string | null) ?? null, type, blob, extra: JSON.stringify(extras(c, FIELDS)) };
    await insert(row);
    reply.code(201);
    return { credential: render(api, row) };
  } });

  rows.push({ method: 'PATCH', path: '/v3/credentials/:id', targetPolicy: 'identity:create_credential', body: entityBody('credential', KS.credential_update), response: { 200: R.credential }, errors: [], handler: async (req) => {
    const cur = await load(req, 'identity:update_credential');
    const c = entityOf(req, 'credential');
    if (c.type !== undefined) checkTypeLength(c.type as string);
    if (c.id !== undefined && c.id !== cur.id) throw new BadRequest('Cannot change ID');
    if (c.user_id !== undefined && c.user_id !== cur.user_id) {
      // Handing a credential to someone else is an admin's business only.
      await authorize(api, req, 'identity:create_credential', { credential: c });
      if (!(await userExists(c.user_id as string))) throw new NotFound(`Could not find user: ${c.user_id}.`);
    }
    if (c.project_id && c.project_id !== cur.project_id && !(await projectExists(c.project_id as string))) throw new NotFound(`Could not find project: ${c.project_id}.`);
    const next: CredentialRow = {
      ...cur,
      user_id: (c.user_id as string) ?? cur.user_id,
      project_id: c.project_id === undefined ? cur.project_id : (c.project_id as string | null),
      type: (c.type as string) ?? cur.type,
      blob: (c.blob as string) ?? cur.blob,
      extra: JSON.stringify({ ...parseExtra(cur.extra), ...extras(c, FIELDS) }),
    };
    if (next.type === EC2) {
      if (!next.project_id) throw new BadRequest("Invalid input for field 'project_id': an ec2 credential requires 'project_id'");
      ec2Blob(next.blob);
    }
    await db().updateTable('credentials').set({ user_id: next.user_id, project_id: next.project_id, type: next.type, ...seal(next.blob), extra: next.extra }).where('id', '=', cur.id).execute();
    return { credential: render(api, next) };
  } });

  rows.push({ method: 'DELETE', path: '/v3/credentials/:id', targetPolicy: 'identity:delete_credential', errors: [], handler: async (req, reply) => {
    const cur = await load(req, 'identity:delete_credential');
    await db().deleteFrom('credentials').where('id', '=', cur.id).execute();
    reply.code(204).send();
  } });

  // ---- OS-EC2: /v3/users/{user_id}/credentials/OS-EC2[/{access}] ----

  async function requireUser(uid: string) {
    if (!(await userExists(uid))) throw new NotFound(`Could not find user: ${uid}.`);
  }

  rows.push({ method: 'GET', path: '/v3/users/:uid/credentials/OS-EC2', policy: 'identity:ec2_list_credentials', policyTarget: (req) => { const { uid } = req.params as { uid: string }; return { user_id: uid }; }, errors: [], handler: async (req) => {
    const { uid } = req.params as { uid: string };
    await requireUser(uid);
    const rows = await db().selectFrom('credentials').selectAll().where('user_id', '=', uid).where('type', '=', EC2).orderBy('id').execute();
    return { credentials: rows.map((r) => toEc2(api, open(r))), links: listLinks(api, req) };
  } });

  rows.push({ method: 'POST', path: '/v3/users/:uid/credentials/OS-EC2', policy: 'identity:ec2_create_credential', policyTarget: (req) => { const { uid } = req.params as { uid: string }; return { user_id: uid }; }, errors: [], handler: async (req, reply) => {
    const { uid } = req.params as { uid: string };
    const caller = callerOf(req);
    refuseKeyPairTokens(caller.methods);
    refuseRestrictedAppCred(caller, 'credentials');
    await requireUser(uid);
    const b = req.body as Record<string, unknown> | undefined;
    const tenant = b && typeof b === 'object' ? b.tenant_id : undefined;
    if (tenant !== undefined && typeof tenant !== 'string') throw new BadRequest("Invalid input for field 'tenant_id': expected a string");
    if (!tenant || !(await projectExists(tenant))) throw new NotFound(`Could not find project: ${tenant ?? 'None'}.`);
    const blob: Record<string, unknown> = { access: randomUUID().replace(/-/g, ''), secret: randomUUID().replace(/-/g, ''), trust_id: trustIdOfToken(api, caller.token) ?? null };
    if (caller.applicationCredentialId) blob.app_cred_id = caller.applicationCredentialId;
    const row: CredentialRow = { id: ec2CredentialId(blob.access as string), user_id: uid, project_id: tenant, type: EC2, blob: JSON.stringify(blob), extra: '{}' };
    await insert(row);
    reply.code(201);
    return { credential: toEc2(api, row) };
  } });

  async function loadEc2(req: FastifyRequest, rule: string): Promise<CredentialRow> {
    const { uid, access } = req.params as { uid: string; access: string };
    const row = await find(ec2CredentialId(access));
    await authorize(api, req, rule, { target: { credential: { user_id: row?.user_id ?? uid } } });
    await requireUser(uid);
    // Another user's key pair is not found under this user, whoever asks.
    if (!row || row.user_id !== uid) throw new NotFound(`Could not find credential: ${ec2CredentialId(access)}.`);
    if (row.type !== EC2) throw new Unauthorized('EC2 access key not found.');
    return row;
  }

  rows.push({ method: 'GET', path: '/v3/users/:uid/credentials/OS-EC2/:access', targetPolicy: 'identity:ec2_get_credential', errors: [], handler: async (req) => ({ credential: toEc2(api, await loadEc2(req, 'identity:ec2_get_credential')) }) });

  rows.push({ method: 'DELETE', path: '/v3/users/:uid/credentials/OS-EC2/:access', targetPolicy: 'identity:ec2_delete_credential', errors: [], handler: async (req, reply) => {
    const row = await loadEc2(req, 'identity:ec2_delete_credential');
    await db().deleteFrom('credentials').where('id', '=', row.id).execute();
    reply.code(204).send();
  } });
  return rows;
};
