// The OAuth1 delegation flow on a real all-in-one (SQLite/MariaDB/PostgreSQL per STRATUS_TEST_DB),
// driven by a signer written here from RFC 5849 (independent of the server's): request token,
// authorize, access token, the oauth1 auth method, listing and revoking access tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { useCloud, assertKeystoneError, type TestCloud } from './helpers/cloud.ts';

const I = '/identity/v3';
let cloud: TestCloud;
let admin: string;
useCloud((c, t) => { cloud = c; admin = t; });

const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

/** An OAuth 1.0a Authorization header for `method url`, HMAC-SHA1, as oauthlib's client builds it. */
function oauthHeader(method: string, url: string, consumer: { key: string; secret: string }, token?: { key: string; secret: string }, extra: Record<string, string> = {}, opts: { nonce?: string; timestamp?: string } = {}): string {
  const p: Record<string, string> = {
    oauth_nonce: opts.nonce ?? randomBytes(16).toString('hex'), oauth_timestamp: opts.timestamp ?? String(Math.floor(Date.now() / 1000)),
    oauth_version: '1.0', oauth_signature_method: 'HMAC-SHA1', oauth_consumer_key: consumer.key, ...extra,
  };
  if (token) p.oauth_token = token.key;
  const u = new URL(url);
  const all = [...Object.entries(p), ...u.searchParams].map(([k, v]) => `${enc(k)}=${enc(v)}`).sort();
  const base = `${method}&${enc(`${u.protocol}//${u.host}${u.pathname}`)}&${enc(all.join('&'))}`;
  p.oauth_signature = createHmac('sha1', `${enc(consumer.secret)}&${enc(token?.secret ?? '')}`).update(base).digest('base64');
  return 'OAuth realm="", ' + Object.entries(p).map(([k, v]) => `${enc(k)}="${enc(v)}"`).join(', ');
}

const form = (text: string) => Object.fromEntries(new URLSearchParams(text));

test('request token → authorize → access token → oauth1 token; list, roles, revoke', async () => {
  const consumer = (await cloud.req('POST', `${I}/OS-OAUTH1/consumers`, { token: admin, body: { consumer: { description: 'app' } } })).body.consumer;
  const c = { key: consumer.id as string, secret: consumer.secret as string };
  const p = (await cloud.req('POST', `${I}/projects`, { token: admin, body: { project: { name: 'oauth-proj', domain_id: 'default' } } })).body.project;
  const u = (await cloud.req('POST', `${I}/users`, { token: admin, body: { user: { name: 'oauth-user', password: 'oauth-pw', domain_id: 'default' } } })).body.user;
  const roleId = async (n: string) => (await cloud.req('GET', `${I}/roles?name=${n}`, { token: admin })).body.roles[0].id;
  for (const r of ['admin', 'member']) assert.equal((await cloud.req('PUT', `${I}/projects/${p.id}/users/${u.id}/roles/${await roleId(r)}`, { token: admin })).status, 204);
  const userToken = (await cloud.login('oauth-user', 'oauth-pw', 'oauth-proj')).token;

  // 1. request token, signed with the consumer secret alone
  const rtUrl = `${cloud.url}${I}/OS-OAUTH1/request_token`;
  const rtReq = (auth: string | undefined, project = p.id) => cloud.req('POST', rtUrl, { headers: { ...(auth ? { authorization: auth } : {}), 'requested-project-id': project } });
  assertKeystoneError(await rtReq(undefined), 400);
  assertKeystoneError(await rtReq(oauthHeader('POST', rtUrl, { ...c, secret: 'wrong' }, undefined, { oauth_callback: 'oob' })), 401);
  assertKeystoneError(await rtReq(oauthHeader('POST', rtUrl, c)), 400); // no oauth_callback
  assertKeystoneError(await rtReq(oauthHeader('POST', rtUrl, c, undefined, { oauth_callback: 'oob' }, { timestamp: String(Math.floor(Date.now() / 1000) - 3600) })), 400);
  assertKeystoneError(await rtReq(oauthHeader('POST', rtUrl, c, undefined, { oauth_callback: 'oob' }), 'no-such-project'), 404);
  assertKeystoneError(await rtReq(oauthHeader('POST', rtUrl, { key: 'f'.repeat(32), secret: 'x' }, undefined, { oauth_callback: 'oob' })), 404);
  const rtRes = await rtReq(oauthHeader('POST', rtUrl, c, undefined, { oauth_callback: 'oob' }));
  assert.equal(rtRes.status, 201, rtRes.text);
  assert.match(rtRes.headers.get('content-type') ?? '', /application\/x-www-form-urlencoded/);
  const rt = form(rtRes.text);
  assert.match(rt.oauth_token, /^[0-9a-f]{32}$/);
  assert.match(rt.oauth_token_secret, /^[0-9a-f]{32}$/);
  assert.ok(Date.parse(rt.oauth_expires_at) > Date.now());

  // 2. the user authorizes it for roles it holds on the project
  const authz = (roles: unknown, token = userToken) => cloud.req('PUT', `${I}/OS-OAUTH1/authorize/${rt.oauth_token}`, { token, body: { roles } });
  assertKeystoneError(await authz([{ name: 'service' }]), 401); // not held
  assertKeystoneError(await authz([]), 400);
  assertKeystoneError(await cloud.req('PUT', `${I}/OS-OAUTH1/authorize/${'0'.repeat(32)}`, { token: userToken, body: { roles: [{ name: 'member' }] } }), 404);
  const az = await authz([{ name: 'member' }]);
  assert.equal(az.status, 200, az.text);
  const verifier = az.body.token.oauth_verifier as string;
  assert.match(verifier, /^[A-Za-z0-9]{8}$/);

  // 3. access token, signed with the consumer and request token secrets
  const atUrl = `${cloud.url}${I}/OS-OAUTH1/access_token`;
  const rtTok = { key: rt.oauth_token, secret: rt.oauth_token_secret };
  const atReq = (auth: string) => cloud.req('POST', atUrl, { headers: { authorization: auth } });
  const wrongVerifier = verifier === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA';
  assertKeystoneError(await atReq(oauthHeader('POST', atUrl, c, rtTok, { oauth_verifier: wrongVerifier })), 401);
  assertKeystoneError(await atReq(oauthHeader('POST', atUrl, c, { ...rtTok, secret: 'wrong' }, { oauth_verifier: verifier })), 401);
  const atRes = await atReq(oauthHeader('POST', atUrl, c, rtTok, { oauth_verifier: verifier }));
  assert.equal(atRes.status, 201, atRes.text);
  const at = form(atRes.text);
  assert.match(at.oauth_token, /^[0-9a-f]{32}$/);
  // a request token is traded once
  assertKeystoneError(await atReq(oauthHeader('POST', atUrl, c, rtTok, { oauth_verifier: verifier })), 404);

  // 4. authenticate with method oauth1: a token on the project with the delegated roles only
  const authUrl = `${cloud.url}${I}/auth/tokens`;
  const atTok = { key: at.oauth_token, secret: at.oauth_token_secret };
  const body = { auth: { identity: { methods: ['oauth1'], oauth1: {} } } };
  const header = oauthHeader('POST', authUrl, c, atTok);
  const tok = await cloud.req('POST', authUrl, { headers: { authorization: header }, body });
  assert.equal(tok.status, 201, tok.text);
  assert.deepEqual(tok.body.token.methods, ['oauth1']);
  assert.equal(tok.body.token.user.id, u.id);
  assert.equal(tok.body.token.project.id, p.id);
  assert.deepEqual(tok.body.token.roles.map((r: any) => r.name).sort(), ['member', 'reader']);
  assert.deepEqual(tok.body.token['OS-OAUTH1'], { access_token_id: at.oauth_token, consumer_id: c.key });
  const oauthToken = tok.headers.get('x-subject-token')!;
  // the same signed request cannot be replayed; a bad signature is refused
  assertKeystoneError(await cloud.req('POST', authUrl, { headers: { authorization: header }, body }), 401);
  assertKeystoneError(await cloud.req('POST', authUrl, { headers: { authorization: oauthHeader('POST', authUrl, c, { ...atTok, secret: 'x' }) }, body }), 401);
  // the delegated token cannot delegate further
  assertKeystoneError(await cloud.req('POST', `${I}/users/${u.id}/application_credentials`, { token: oauthToken, body: { application_credential: { name: 'x' } } }), 403);
  assertKeystoneError(await cloud.req('POST', `${I}/OS-TRUST/trusts`, { token: oauthToken, body: { trust: { trustor_user_id: u.id, trustee_user_id: u.id, impersonation: false, project_id: p.id, roles: [{ name: 'member' }] } } }), 403);
  assertKeystoneError(await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: oauthToken } } } } }), 403);
  assert.equal((await cloud.req('GET', '/compute/v2.1/servers', { token: oauthToken })).status, 200);

  // 5. the user's access tokens and their roles
  const list = await cloud.req('GET', `${I}/users/${u.id}/OS-OAUTH1/access_tokens`, { token: userToken });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.body.access_tokens.map((x: any) => [x.id, x.consumer_id, x.project_id, x.authorizing_user_id]), [[at.oauth_token, c.key, p.id, u.id]]);
  assert.equal(list.body.access_tokens[0].access_secret, undefined);
  assert.match(list.body.access_tokens[0].links.roles, new RegExp(`/v3/users/${u.id}/OS-OAUTH1/access_tokens/${at.oauth_token}/roles$`));
  assertKeystoneError(await cloud.req('GET', `${I}/users/${u.id}/OS-OAUTH1/access_tokens`, { token: oauthToken }), 403);
  const roles = await cloud.req('GET', `${I}/users/${u.id}/OS-OAUTH1/access_tokens/${at.oauth_token}/roles`, { token: userToken });
  assert.deepEqual(roles.body.roles.map((r: any) => r.name), ['member']);
  const member = roles.body.roles[0].id;
  assert.equal((await cloud.req('GET', `${I}/users/${u.id}/OS-OAUTH1/access_tokens/${at.oauth_token}/roles/${member}`, { token: userToken })).body.role.name, 'member');
  assertKeystoneError(await cloud.req('GET', `${I}/users/${u.id}/OS-OAUTH1/access_tokens/${at.oauth_token}/roles/${await roleId('admin')}`, { token: userToken }), 404);
  assertKeystoneError(await cloud.req('GET', `${I}/users/${u.id}/OS-OAUTH1/access_tokens/${'0'.repeat(32)}`, { token: userToken }), 404);

  // 6. revoking the access token ends its tokens and its use
  assert.equal((await cloud.req('DELETE', `${I}/users/${u.id}/OS-OAUTH1/access_tokens/${at.oauth_token}`, { token: userToken })).status, 204);
  assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': oauthToken } }), 404);
  assertKeystoneError(await cloud.req('POST', authUrl, { headers: { authorization: oauthHeader('POST', authUrl, c, atTok) }, body }), 404);
  assert.deepEqual((await cloud.req('GET', `${I}/users/${u.id}/OS-OAUTH1/access_tokens`, { token: userToken })).body.access_tokens, []);
});

test('a consumer deleted takes its request and access tokens with it', async () => {
  const consumer = (await cloud.req('POST', `${I}/OS-OAUTH1/consumers`, { token: admin, body: { consumer: {} } })).body.consumer;
  const c = { key: consumer.id as string, secret: consumer.secret as string };
  const me = (await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': admin } })).body.token;
  const rtUrl = `${cloud.url}${I}/OS-OAUTH1/request_token`;
  const rt = form((await cloud.req('POST', rtUrl, { headers: { authorization: oauthHeader('POST', rtUrl, c, undefined, { oauth_callback: 'oob' }), 'requested-project-id': me.project.id } })).text);
  const v = (await cloud.req('PUT', `${I}/OS-OAUTH1/authorize/${rt.oauth_token}`, { token: admin, body: { roles: [{ name: 'reader' }] } })).body.token.oauth_verifier;
  const atUrl = `${cloud.url}${I}/OS-OAUTH1/access_token`;
  const at = form((await cloud.req('POST', atUrl, { headers: { authorization: oauthHeader('POST', atUrl, c, { key: rt.oauth_token, secret: rt.oauth_token_secret }, { oauth_verifier: v }) } })).text);
  const authUrl = `${cloud.url}${I}/auth/tokens`;
  const body = { auth: { identity: { methods: ['oauth1'], oauth1: {} } } };
  const tok = await cloud.req('POST', authUrl, { headers: { authorization: oauthHeader('POST', authUrl, c, { key: at.oauth_token, secret: at.oauth_token_secret }) }, body });
  assert.equal(tok.status, 201, tok.text);
  assert.deepEqual(tok.body.token.roles.map((r: any) => r.name), ['reader']);
  assert.equal((await cloud.req('DELETE', `${I}/OS-OAUTH1/consumers/${c.key}`, { token: admin })).status, 204);
  assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': tok.headers.get('x-subject-token')! } }), 404);
  assert.deepEqual((await cloud.req('GET', `${I}/users/${me.user.id}/OS-OAUTH1/access_tokens`, { token: admin })).body.access_tokens, []);
});
