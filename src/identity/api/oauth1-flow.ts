// The OAuth1 delegation flow (OS-OAUTH1), as Keystone runs it: a consumer gets a request token
// for a project (signed with its secret), a user with roles there authorizes it for some of them
// and hands the verifier to the consumer, which trades request token + verifier for an access
// token, then authenticates with method `oauth1` (auth.ts) for a token scoped to that project with
// those roles. The user lists and revokes access tokens; revoking one ends its tokens.
import { randomInt, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, Forbidden, NotFound, Unauthorized } from '../../common/errors.ts';
import type { OAuthAccessTokenRow } from '../store/schema.ts';
import { OAuthRequestInvalid, VERIFIER_CHARS, NonceGuard, checkRequest, parseAuthorizationHeader, signatureMatches } from '../oauth1-signature.ts';
import { keystoneTime } from '../tokens/provider.ts';
import { renderRole } from './roles-assignments.ts';
import { authorize, type IdentityApi } from './context.ts';
import { entityBody, entityOf, KS } from './validation.ts';
import { callerOf, type IdentityRow, type RowModule } from './rows.ts';

const hexId = () => randomUUID().replace(/-/g, '');
const verifier = () => Array.from({ length: 8 }, () => VERIFIER_CHARS[randomInt(VERIFIER_CHARS.length)]).join('');
const expiry = (seconds: number) => (seconds > 0 ? keystoneTime(Date.now() + seconds * 1000) : null);
const expired = (at: string | null) => at !== null && Date.parse(at) <= Date.now();

/** Keystone's ValidationError for a malformed OAuth request. */
const invalid = (e: OAuthRequestInvalid) => new BadRequest(`Validation failed with errors: invalid_request, detail message is: ${e.message}.`);

const nonces = new NonceGuard();

/** The oauth_* parameters of the Authorization header; 400 as Keystone when there are none. */
export function oauthParams(req: FastifyRequest): Record<string, string> {
  let p: Record<string, string> | undefined;
  try { p = parseAuthorizationHeader(req.headers.authorization); } catch (e) { throw invalid(e as OAuthRequestInvalid); }
  if (!p) throw new BadRequest('No Authorization headers found, cannot proceed with OAuth related calls. If running under HTTPd or Apache, ensure WSGIPassAuthorization is set to On.');
  return p;
}

/**
 * Checks an OAuth request: format first (400 with the reason), then the signature against the
 * URL the client used — this service's scheme, the Host it called, the path and query it sent —
 * keyed with the consumer's and the token's secrets (401 "Invalid signature"), then the nonce.
 */
export function verifyOAuth(api: IdentityApi, req: FastifyRequest, params: Record<string, string>, needs: Parameters<typeof checkRequest>[1], consumerSecret: string, tokenSecret: string, failure = 'Invalid signature'): void {
  try { checkRequest(params, needs); } catch (e) {
    if (e instanceof OAuthRequestInvalid) throw invalid(e);
    throw e;
  }
  const scheme = new URL(api.publicUrl).protocol;
  const url = `${scheme}//${req.headers.host ?? new URL(api.publicUrl).host}${req.url}`;
  let ok: boolean;
  try { ok = signatureMatches({ method: req.method, url, params }, consumerSecret, tokenSecret); } catch (e) {
    if (e instanceof OAuthRequestInvalid) throw invalid(e);
    throw e;
  }
  if (!ok) throw new Unauthorized(failure);
  if (!nonces.use(params.oauth_consumer_key, params.oauth_nonce, params.oauth_timestamp)) throw new Unauthorized(`${failure}: nonce already used`);
}

function formReply(reply: FastifyReply, fields: Record<string, string | null>): string {
  reply.code(201).header('content-type', 'application/x-www-form-urlencoded');
  return Object.entries(fields).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`).join('&');
}

/** Delegated tokens (trusts, OAuth1, application credentials) cannot manage OAuth1 delegations. */
function refuseDelegated(auth: { trustId?: string; oauthAccessTokenId?: string; methods: string[] }, what: string): void {
  if (auth.trustId || auth.oauthAccessTokenId || auth.methods.includes('application_credential')) {
    throw new Forbidden(`Cannot ${what} with a token issued via delegation.`);
  }
}

export const oauth1FlowRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const db = () => api.store.db;
  const config = api.oauth1;

  rows.push({ method: 'POST', path: '/v3/OS-OAUTH1/request_token', errors: [], handler: async (req, reply) => {
    const p = oauthParams(req);
    const consumerId = p.oauth_consumer_key;
    const projectId = req.headers['requested-project-id'];
    if (!consumerId) throw new BadRequest('Expecting to find oauth_consumer_key in request. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
    if (typeof projectId !== 'string' || !projectId) throw new BadRequest('Expecting to find Requested-Project-Id in request. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
    if (!(await db().selectFrom('projects').select('id').where('id', '=', projectId).executeTakeFirst())) throw new NotFound(`Could not find project: ${projectId}.`);
    const consumer = await db().selectFrom('oauth1_consumers').selectAll().where('id', '=', consumerId).executeTakeFirst();
    if (!consumer) throw new NotFound(`Could not find consumer: ${consumerId}.`);
    verifyOAuth(api, req, p, ['oauth_callback'], consumer.secret, '');
    const row = { id: hexId(), request_secret: hexId(), consumer_id: consumer.id, requested_project_id: projectId, expires_at: expiry(config.requestTtl), verifier: null, authorizing_user_id: null, role_ids: null };
    await db().insertInto('oauth1_request_tokens').values(row).execute();
    return formReply(reply, { oauth_token: row.id, oauth_token_secret: row.request_secret, oauth_expires_at: row.expires_at });
  } });

  rows.push({ method: 'PUT', path: '/v3/OS-OAUTH1/authorize/:id', policy: 'identity:authorize_request_token', body: entityBody('roles', KS.request_token_authorize, []), errors: [], handler: async (req) => {
    const { id } = req.params as { id: string };
    const caller = callerOf(req);
    const roles = entityOf<{ id?: string; name?: string }[]>(req, 'roles');
    // The schema lets an empty list through; a token that delegates nothing is refused here.
    if (roles.length === 0) throw new BadRequest('Expecting to find roles in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
    refuseDelegated(caller, 'authorize a request token');
    const rt = await db().selectFrom('oauth1_request_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    if (!rt) throw new NotFound(`Could not find request token: ${id}.`);
    if (expired(rt.expires_at)) throw new Unauthorized('Request token is expired');
    const all = await api.store.allRoles();
    const wanted = new Set<string>();
    for (const r of roles as { id?: string; name?: string }[]) {
      const role = typeof r.id === 'string' ? all.get(r.id) : [...all.values()].find((x) => x.name === r.name && !x.domain_id);
      if (!role) throw new NotFound(`Could not find role: ${r.id ?? r.name}.`);
      wanted.add(role.id);
    }
    // The user delegates only roles it holds on the project the consumer asked for.
    const held = new Set((await api.store.effectiveRoles(caller.userId, { projectId: rt.requested_project_id })).map((r) => r.id));
    if (![...wanted].every((r) => held.has(r))) throw new Unauthorized('authorizing user does not have role required');
    const v = verifier();
    await db().updateTable('oauth1_request_tokens').set({ authorizing_user_id: caller.userId, verifier: v, role_ids: JSON.stringify([...wanted]) }).where('id', '=', id).execute();
    return { token: { oauth_verifier: v } };
  } });

  rows.push({ method: 'POST', path: '/v3/OS-OAUTH1/access_token', errors: [], handler: async (req, reply) => {
    const p = oauthParams(req);
    for (const [k, what] of [['oauth_consumer_key', 'oauth_consumer_key'], ['oauth_token', 'oauth_token'], ['oauth_verifier', 'oauth_verifier']]) {
      if (!p[k]) throw new BadRequest(`Expecting to find ${what} in request. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.`);
    }
    const rt = await db().selectFrom('oauth1_request_tokens').selectAll().where('id', '=', p.oauth_token).executeTakeFirst();
    if (!rt) throw new NotFound(`Could not find request token: ${p.oauth_token}.`);
    if (expired(rt.expires_at)) throw new Unauthorized('Request token is expired');
    const consumer = await db().selectFrom('oauth1_consumers').selectAll().where('id', '=', p.oauth_consumer_key).executeTakeFirst();
    if (!consumer) throw new Unauthorized('Provided consumer does not exist.');
    if (rt.consumer_id !== consumer.id) throw new Unauthorized('Provided consumer key does not match stored consumer key.');
    verifyOAuth(api, req, p, ['oauth_token', 'oauth_verifier'], consumer.secret, rt.request_secret);
    if (rt.verifier === null || rt.verifier !== p.oauth_verifier) throw new Unauthorized('Provided verifier does not match stored verifier');
    if (!rt.authorizing_user_id || !rt.role_ids) throw new Unauthorized('Request Token does not have an authorizing user id.');
    const row: OAuthAccessTokenRow = {
      id: hexId(), access_secret: hexId(), consumer_id: consumer.id, authorizing_user_id: rt.authorizing_user_id,
      project_id: rt.requested_project_id, role_ids: rt.role_ids, expires_at: expiry(config.accessTtl),
    };
    // A request token is traded once: whoever deletes it makes the access token.
    const gone = await db().deleteFrom('oauth1_request_tokens').where('id', '=', rt.id).executeTakeFirst();
    if (Number(gone.numDeletedRows) !== 1) throw new Unauthorized('Request token has already been used');
    await db().insertInto('oauth1_access_tokens').values(row).execute();
    return formReply(reply, { oauth_token: row.id, oauth_token_secret: row.access_secret, oauth_expires_at: row.expires_at });
  } });

  // ---- /v3/users/{user_id}/OS-OAUTH1/access_tokens ----

  const base = (uid: string) => `${api.publicUrl}/v3/users/${uid}/OS-OAUTH1/access_tokens`;
  const render = (t: OAuthAccessTokenRow) => ({
    id: t.id, consumer_id: t.consumer_id, project_id: t.project_id, authorizing_user_id: t.authorizing_user_id, expires_at: t.expires_at,
    links: { roles: `${base(t.authorizing_user_id)}/${t.id}/roles`, self: `${base(t.authorizing_user_id)}/${t.id}` },
  });
  async function owned(req: FastifyRequest, rule: string, blockDelegated = true): Promise<OAuthAccessTokenRow> {
    const { uid, id } = req.params as { uid: string; id: string };
    const caller = await authorize(api, req, rule, { user_id: uid });
    if (blockDelegated) refuseDelegated(caller, 'manage OAuth access tokens');
    const t = await db().selectFrom('oauth1_access_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t || t.authorizing_user_id !== uid) throw new NotFound(`Could not find access token: ${id}.`);
    return t;
  }

  rows.push({ method: 'GET', path: '/v3/users/:uid/OS-OAUTH1/access_tokens', policy: 'identity:list_access_tokens', policyTarget: (req) => { const { uid } = req.params as { uid: string }; return { user_id: uid }; }, errors: [], handler: async (req) => {
    const { uid } = req.params as { uid: string };
    const caller = callerOf(req);
    refuseDelegated(caller, 'manage OAuth access tokens');
    const rows = await db().selectFrom('oauth1_access_tokens').selectAll().where('authorizing_user_id', '=', uid).orderBy('id').execute();
    return { access_tokens: rows.map(render), links: { self: base(uid), previous: null, next: null } };
  } });
  rows.push({ method: 'GET', path: '/v3/users/:uid/OS-OAUTH1/access_tokens/:id', targetPolicy: 'identity:get_access_token', errors: [], handler: async (req) => ({ access_token: render(await owned(req, 'identity:get_access_token')) }) });
  rows.push({ method: 'DELETE', path: '/v3/users/:uid/OS-OAUTH1/access_tokens/:id', targetPolicy: 'identity:delete_access_token', errors: [], handler: async (req, reply) => {
    const t = await owned(req, 'identity:delete_access_token');
    await db().deleteFrom('oauth1_access_tokens').where('id', '=', t.id).execute();
    // Tokens issued from it are rebuilt on validation and die with it; tell the other services.
    api.store.touch();
    api.onRevoke();
    reply.code(204).send();
  } });
  async function tokenRoles(t: OAuthAccessTokenRow) {
    const ids = JSON.parse(t.role_ids) as string[];
    const rows = ids.length ? await db().selectFrom('roles').selectAll().where('id', 'in', ids).orderBy('name').execute() : [];
    return rows.map((r) => { const { description: _d, ...rest } = renderRole(api, r); return rest; });
  }
  rows.push({ method: 'GET', path: '/v3/users/:uid/OS-OAUTH1/access_tokens/:id/roles', targetPolicy: 'identity:list_access_token_roles', errors: [], handler: async (req) => {
    const t = await owned(req, 'identity:list_access_token_roles', false);
    return { roles: await tokenRoles(t), links: { self: `${base(t.authorizing_user_id)}/${t.id}/roles`, previous: null, next: null } };
  } });
  rows.push({ method: 'GET', path: '/v3/users/:uid/OS-OAUTH1/access_tokens/:id/roles/:rid', targetPolicy: 'identity:get_access_token_role', errors: [], handler: async (req) => {
    const { rid } = req.params as { rid: string };
    const t = await owned(req, 'identity:get_access_token_role', false);
    const role = (await tokenRoles(t)).find((r) => r.id === rid);
    if (!role) throw new NotFound(`Could not find role: ${rid}.`);
    return { role };
  } });
  return rows;
};
