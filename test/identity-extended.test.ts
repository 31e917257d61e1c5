// Identity beyond the core through its HTTP API on a real all-in-one (SQLite/MariaDB/PostgreSQL
// per STRATUS_TEST_DB): credentials and OS-EC2, trusts and trust-scoped tokens, OAuth1
// consumers, policies, endpoint groups (OS-EP-FILTER), domain configuration.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { useCloud, assertKeystoneError, type TestCloud } from './helpers/cloud.ts';

let cloud: TestCloud;
let admin: string;
useCloud((c, t) => { cloud = c; admin = t; });

const I = '/identity/v3';


let seq = 0;
const uniq = (p: string) => `${p}-${process.pid}-${++seq}`;

async function roleId(name: string): Promise<string> {
  return (await cloud.req('GET', `${I}/roles?name=${name}`, { token: admin })).body.roles[0].id;
}
async function mkProject(name = uniq('proj')) {
  const p = await cloud.req('POST', `${I}/projects`, { token: admin, body: { project: { name, domain_id: 'default' } } });
  assert.equal(p.status, 201, p.text);
  return p.body.project as { id: string; name: string };
}
/** A user with `roles` on `project`, and a token scoped there. */
async function mkUser(project?: { id: string; name: string }, roles: string[] = []) {
  const name = uniq('user');
  const password = `pw-${name}`;
  const u = await cloud.req('POST', `${I}/users`, { token: admin, body: { user: { name, password, domain_id: 'default' } } });
  assert.equal(u.status, 201, u.text);
  for (const r of roles) {
    assert.equal((await cloud.req('PUT', `${I}/projects/${project!.id}/users/${u.body.user.id}/roles/${await roleId(r)}`, { token: admin })).status, 204);
  }
  const token = project && roles.length ? (await cloud.login(name, password, project.name)).token : '';
  return { id: u.body.user.id as string, name, password, token };
}
function passwordAuth(user: { name: string; password: string }, scope?: unknown) {
  const auth: Record<string, unknown> = { identity: { methods: ['password'], password: { user: { name: user.name, domain: { id: 'default' }, password: user.password } } } };
  if (scope !== undefined) auth.scope = scope;
  return cloud.req('POST', `${I}/auth/tokens`, { body: { auth } });
}

describe('credentials', () => {
  test('ec2 credentials are keyed by sha256(access); blob, type and project are checked', async () => {
    const p = await mkProject();
    const u = await mkUser(p, ['member']);
    const blob = JSON.stringify({ access: uniq('AK'), secret: 'S1' });
    const c = await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob } } });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.credential.id, createHash('sha256').update(JSON.parse(blob).access).digest('hex'));
    assert.equal(c.body.credential.blob, blob);
    assert.match(c.body.credential.links.self, new RegExp(`/v3/credentials/${c.body.credential.id}$`));
    // the same access key twice is a conflict
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob } } }), 409);
    // ec2 needs a project and a JSON blob with an access key
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: u.id, type: 'ec2', blob: '{"access":"x"}' } } }), 400);
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob: 'not json' } } }), 400);
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob: '{"secret":"x"}' } } }), 400);
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: u.id, type: 'totp' } } }), 400);
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: 'nobody', type: 'totp', blob: 'x' } } }), 404);
    // update keeps the id, moves the project, replaces the blob
    const p2 = await mkProject();
    const blob2 = JSON.stringify({ access: uniq('AK2'), secret: 'S2' });
    const up = await cloud.req('PATCH', `${I}/credentials/${c.body.credential.id}`, { token: admin, body: { credential: { blob: blob2, project_id: p2.id, type: 'ec2' } } });
    assert.equal(up.status, 200, up.text);
    assert.equal(up.body.credential.id, c.body.credential.id);
    assert.equal(up.body.credential.project_id, p2.id);
    const got = await cloud.req('GET', `${I}/credentials/${c.body.credential.id}`, { token: admin });
    assert.deepEqual(JSON.parse(got.body.credential.blob), JSON.parse(blob2));
    assertKeystoneError(await cloud.req('PATCH', `${I}/credentials/${c.body.credential.id}`, { token: admin, body: { credential: { project_id: null } } }), 400);
    assert.equal((await cloud.req('DELETE', `${I}/credentials/${c.body.credential.id}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/credentials/${c.body.credential.id}`, { token: admin }), 404);
  });

  test('users manage their own credentials and see only theirs', async () => {
    const p = await mkProject();
    const a = await mkUser(p, ['member']);
    const b = await mkUser(p, ['member']);
    const mine = await cloud.req('POST', `${I}/credentials`, { token: a.token, body: { credential: { user_id: a.id, type: 'totp', blob: 'seed-a', label: 'phone' } } });
    assert.equal(mine.status, 201, mine.text);
    assert.equal(mine.body.credential.label, 'phone', 'extra attributes are kept');
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: a.token, body: { credential: { user_id: b.id, type: 'totp', blob: 'x' } } }), 403);
    const theirs = await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: b.id, type: 'cert', blob: 'pem-b' } } });
    const list = await cloud.req('GET', `${I}/credentials`, { token: a.token });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.credentials.map((c: any) => c.id), [mine.body.credential.id]);
    const all = await cloud.req('GET', `${I}/credentials?user_id=${b.id}`, { token: admin });
    assert.deepEqual(all.body.credentials.map((c: any) => c.id), [theirs.body.credential.id]);
    assert.equal((await cloud.req('GET', `${I}/credentials?type=totp&user_id=${a.id}`, { token: admin })).body.credentials.length, 1);
    // a parameter Keystone does not support is ignored, not refused
    assert.equal((await cloud.req('GET', `${I}/credentials?owner=x&type=totp&user_id=${a.id}`, { token: admin })).body.credentials.length, 1);
    assertKeystoneError(await cloud.req('GET', `${I}/credentials/${theirs.body.credential.id}`, { token: a.token }), 403);
    assertKeystoneError(await cloud.req('DELETE', `${I}/credentials/${theirs.body.credential.id}`, { token: a.token }), 403);
    assertKeystoneError(await cloud.req('PATCH', `${I}/credentials/${mine.body.credential.id}`, { token: a.token, body: { credential: { user_id: b.id } } }), 403);
    assert.equal((await cloud.req('PATCH', `${I}/credentials/${mine.body.credential.id}`, { token: a.token, body: { credential: { blob: 'seed-a2' } } })).body.credential.blob, 'seed-a2');
    assert.equal((await cloud.req('DELETE', `${I}/credentials/${mine.body.credential.id}`, { token: a.token })).status, 204);
  });

  test('OS-EC2: a user makes, lists, shows and deletes its key pairs', async () => {
    const p = await mkProject();
    const u = await mkUser(p, ['member']);
    const other = await mkUser(p, ['member']);
    const base = `${I}/users/${u.id}/credentials/OS-EC2`;
    const c = await cloud.req('POST', base, { token: u.token, body: { tenant_id: p.id } });
    assert.equal(c.status, 201, c.text);
    const cred = c.body.credential;
    assert.match(cred.access, /^[0-9a-f]{32}$/);
    assert.match(cred.secret, /^[0-9a-f]{32}$/);
    assert.equal(cred.user_id, u.id);
    assert.equal(cred.tenant_id, p.id);
    assert.equal(cred.trust_id, null);
    assert.ok(cred.links.self.endsWith(`/v3/users/${u.id}/credentials/OS-EC2/${cred.access}`));
    // the same row through /v3/credentials
    const v3 = await cloud.req('GET', `${I}/credentials/${createHash('sha256').update(cred.access).digest('hex')}`, { token: u.token });
    assert.equal(v3.body.credential.type, 'ec2');
    const list = await cloud.req('GET', base, { token: u.token });
    assert.deepEqual(list.body.credentials.map((x: any) => x.access), [cred.access]);
    const shown = await cloud.req('GET', `${base}/${cred.access}`, { token: u.token });
    assert.equal(shown.body.credential.secret, cred.secret);
    // someone else's path or someone else's key: refused or not found
    assertKeystoneError(await cloud.req('POST', base, { token: other.token, body: { tenant_id: p.id } }), 403);
    assertKeystoneError(await cloud.req('GET', `${base}/${cred.access}`, { token: other.token }), 403);
    assertKeystoneError(await cloud.req('GET', `${I}/users/${other.id}/credentials/OS-EC2/${cred.access}`, { token: other.token }), 403);
    assertKeystoneError(await cloud.req('GET', `${I}/users/${other.id}/credentials/OS-EC2/${cred.access}`, { token: admin }), 404);
    assertKeystoneError(await cloud.req('POST', base, { token: u.token, body: { tenant_id: 'nope' } }), 404);
    assertKeystoneError(await cloud.req('POST', base, { token: u.token, body: {} }), 404);
    assert.equal((await cloud.req('DELETE', `${base}/${cred.access}`, { token: u.token })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${base}/${cred.access}`, { token: u.token }), 404);
  });
});

describe('ec2tokens and s3tokens', () => {
  const awsQuote = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  function signV2(secret: string, verb: string, host: string, path: string, params: Record<string, string>) {
    const qs = Object.keys(params).sort().map((k) => `${awsQuote(k)}=${awsQuote(params[k])}`).join('&');
    return createHmac('sha256', secret).update(`${verb}\n${host}\n${path}\n${qs}`).digest('base64');
  }

  test('a signed EC2 request (signature v2) gets a project token; bad signatures and stale requests do not', async () => {
    const p = await mkProject();
    const u = await mkUser(p, ['member']);
    const cred = (await cloud.req('POST', `${I}/users/${u.id}/credentials/OS-EC2`, { token: u.token, body: { tenant_id: p.id } })).body.credential;
    const params = { Action: 'DescribeInstances', Version: '2013-10-15', AWSAccessKeyId: cred.access, SignatureVersion: '2', SignatureMethod: 'HmacSHA256', Timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    const signature = signV2(cred.secret, 'GET', 'ec2.example:8773', '/services/Cloud', params);
    const body = (sig: string, extra: Record<string, string> = {}) => ({ credentials: { access: cred.access, signature: sig, host: 'ec2.example:8773', verb: 'GET', path: '/services/Cloud', params: { ...params, ...extra } } });
    const ok = await cloud.req('POST', `${I}/ec2tokens`, { body: body(signature) });
    assert.equal(ok.status, 200, ok.text);
    assert.ok(ok.headers.get('x-subject-token'));
    assert.deepEqual(ok.body.token.methods, ['ec2credential']);
    assert.equal(ok.body.token.user.id, u.id);
    assert.equal(ok.body.token.project.id, p.id);
    assert.deepEqual(ok.body.token.roles.map((r: any) => r.name).sort(), ['member', 'reader']);
    // a token minted from a key pair cannot mint more key pairs or trusts
    const keyTok = ok.headers.get('x-subject-token')!;
    assertKeystoneError(await cloud.req('POST', `${I}/users/${u.id}/credentials/OS-EC2`, { token: keyTok, body: { tenant_id: p.id } }), 403);
    assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: keyTok, body: { credential: { user_id: u.id, type: 'totp', blob: 'x' } } }), 403);
    assertKeystoneError(await cloud.req('POST', `${I}/OS-TRUST/trusts`, { token: keyTok, body: { trust: { trustor_user_id: u.id, trustee_user_id: u.id, impersonation: false } } }), 403);
    // the legacy body key works too; the port may be left out of the signature
    const noPort = signV2(cred.secret, 'GET', 'ec2.example', '/services/Cloud', params);
    assert.equal((await cloud.req('POST', `${I}/ec2tokens`, { body: { ec2Credentials: body(noPort).credentials } })).status, 200);
    const bad = await cloud.req('POST', `${I}/ec2tokens`, { body: body(signature, { Action: 'TerminateInstances' }) });
    assertKeystoneError(bad, 401);
    assert.match(bad.body.error.message, /Invalid EC2 signature/);
    const old = { Timestamp: '2001-01-01T00:00:00Z' };
    const stale = await cloud.req('POST', `${I}/ec2tokens`, { body: body(signV2(cred.secret, 'GET', 'ec2.example:8773', '/services/Cloud', { ...params, ...old }), old) });
    assertKeystoneError(stale, 401);
    assert.match(stale.body.error.message, /expired/);
    assertKeystoneError(await cloud.req('POST', `${I}/ec2tokens`, { body: body(signature, { SignatureVersion: '0' }) }), 401);
    assertKeystoneError(await cloud.req('POST', `${I}/ec2tokens`, { body: { credentials: { access: 'unknown', signature: 'x' } } }), 404);
    assertKeystoneError(await cloud.req('POST', `${I}/ec2tokens`, { body: {} }), 400);
    assertKeystoneError(await cloud.req('GET', `${I}/ec2tokens`), 405);
    // without a role on the project the key pair is worthless
    assert.equal((await cloud.req('DELETE', `${I}/projects/${p.id}/users/${u.id}/roles/${await roleId('member')}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('POST', `${I}/ec2tokens`, { body: body(signature) }), 401);
  });

  test('signature v4 matches AWS\'s published example; s3tokens checks the signed string', async () => {
    const p = await mkProject();
    const u = await mkUser(p, ['member']);
    const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
    const access = uniq('AKID');
    const c = await cloud.req('POST', `${I}/credentials`, { token: u.token, body: { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob: JSON.stringify({ access, secret }) } } });
    assert.equal(c.status, 201, c.text);
    const headers = {
      'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8', Host: 'iam.amazonaws.com', 'X-Amz-Date': '20150830T123600Z',
      Authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    };
    const v4 = (signature: string) => ({ credentials: {
      access, signature, host: 'iam.amazonaws.com', verb: 'GET', path: '/', params: { Action: 'ListUsers', Version: '2010-05-08' }, headers,
      body_hash: createHash('sha256').update('').digest('hex'),
    } });
    // the signature is right, so what stops it is the 2015 timestamp
    const r = await cloud.req('POST', `${I}/ec2tokens`, { body: v4('5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7') });
    assertKeystoneError(r, 401);
    assert.match(r.body.error.message, /expired/);
    assert.match((await cloud.req('POST', `${I}/ec2tokens`, { body: v4('0'.repeat(64)) })).body.error.message, /Invalid EC2 signature/);
    // s3tokens: signature v1 (HMAC-SHA1 of the string to sign) and v4
    const sts = `GET\n\n\n${new Date().toUTCString()}\n/bucket/key`;
    const s1 = createHmac('sha1', secret).update(sts).digest('base64');
    const s3 = await cloud.req('POST', `${I}/s3tokens`, { body: { credentials: { access, token: Buffer.from(sts).toString('base64url'), signature: s1 } } });
    assert.equal(s3.status, 200, s3.text);
    assert.equal(s3.body.token.project.id, p.id);
    const sts4 = `AWS4-HMAC-SHA256\n20261124T182326Z\n20261124/RegionOne/s3/aws4_request\n${'ab'.repeat(32)}`;
    let key = createHmac('sha256', `AWS4${secret}`).update('20261124').digest();
    for (const part of ['RegionOne', 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
    const s4 = createHmac('sha256', key).update(sts4).digest('hex');
    assert.equal((await cloud.req('POST', `${I}/s3tokens`, { body: { credentials: { access, token: Buffer.from(sts4).toString('base64url'), signature: s4 } } })).status, 200);
    assertKeystoneError(await cloud.req('POST', `${I}/s3tokens`, { body: { credentials: { access, token: Buffer.from(sts4).toString('base64url'), signature: s1 } } }), 401);
  });

  test('a key pair made within a trust yields a trust token', async () => {
    const p = await mkProject();
    const trustor = await mkUser(p, ['member']);
    const trustee = await mkUser();
    const trust = (await cloud.req('POST', `${I}/OS-TRUST/trusts`, { token: trustor.token, body: { trust: { trustor_user_id: trustor.id, trustee_user_id: trustee.id, project_id: p.id, impersonation: true, roles: [{ name: 'reader' }] } } })).body.trust;
    const tt = (await passwordAuth(trustee, { 'OS-TRUST:trust': { id: trust.id } })).headers.get('x-subject-token')!;
    // impersonating: the trust token acts as the trustor, so the key pair is the trustor's
    const cred = await cloud.req('POST', `${I}/users/${trustor.id}/credentials/OS-EC2`, { token: tt, body: { tenant_id: p.id } });
    assert.equal(cred.status, 201, cred.text);
    assert.equal(cred.body.credential.trust_id, trust.id);
    const params = { Action: 'DescribeInstances', SignatureVersion: '2', SignatureMethod: 'HmacSHA256' };
    const sig = signV2(cred.body.credential.secret, 'GET', 'h', '/', params);
    const r = await cloud.req('POST', `${I}/ec2tokens`, { body: { credentials: { access: cred.body.credential.access, signature: sig, host: 'h', verb: 'GET', path: '/', params } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.token.user.id, trustor.id);
    assert.deepEqual(r.body.token.roles.map((x: any) => x.name), ['reader']);
    assert.equal(r.body.token['OS-TRUST:trust'].id, trust.id);
    assert.equal((await cloud.req('DELETE', `${I}/OS-TRUST/trusts/${trust.id}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('POST', `${I}/ec2tokens`, { body: { credentials: { access: cred.body.credential.access, signature: sig, host: 'h', verb: 'GET', path: '/', params } } }), 404);
  });
});

describe('trusts', () => {
  async function setup() {
    const p = await mkProject();
    const delegated = uniq('delegated');
    const kept = uniq('kept');
    for (const name of [delegated, kept]) assert.equal((await cloud.req('POST', `${I}/roles`, { token: admin, body: { role: { name } } })).status, 201);
    const trustor = await mkUser(p, ['member', delegated, kept]);
    const trustee = await mkUser();
    return { p, delegated, kept, trustor, trustee };
  }
  const mkTrust = (s: Awaited<ReturnType<typeof setup>>, extra: Record<string, unknown> = {}) => cloud.req('POST', `${I}/OS-TRUST/trusts`, {
    token: s.trustor.token,
    body: { trust: { trustor_user_id: s.trustor.id, trustee_user_id: s.trustee.id, project_id: s.p.id, impersonation: false, roles: [{ name: s.delegated }], ...extra } },
  });

  test('create, show, roles, list filters, delete', async () => {
    const s = await setup();
    const expires = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const t = await mkTrust(s, { impersonation: true, expires_at: expires, remaining_uses: 5, description: 'ci' });
    assert.equal(t.status, 201, t.text);
    const trust = t.body.trust;
    assert.equal(trust.impersonation, true);
    assert.equal(trust.expires_at.replace(/\.\d{6}Z$/, 'Z'), expires);
    assert.match(trust.expires_at, /\.\d{6}Z$/);
    assert.equal(trust.remaining_uses, 5);
    assert.equal(trust.description, 'ci');
    assert.deepEqual(trust.roles.map((r: any) => r.name), [s.delegated]);
    assert.ok(trust.links.self.endsWith(`/v3/OS-TRUST/trusts/${trust.id}`));
    assert.ok(trust.roles_links.self.endsWith(`/v3/OS-TRUST/trusts/${trust.id}/roles`));
    const rid = trust.roles[0].id;
    for (const tok of [s.trustor.token, admin]) {
      assert.equal((await cloud.req('GET', `${I}/OS-TRUST/trusts/${trust.id}`, { token: tok })).status, 200);
    }
    const roles = await cloud.req('GET', `${I}/OS-TRUST/trusts/${trust.id}/roles`, { token: s.trustor.token });
    assert.deepEqual(roles.body.roles.map((r: any) => r.id), [rid]);
    assert.equal((await cloud.req('GET', `${I}/OS-TRUST/trusts/${trust.id}/roles/${rid}`, { token: s.trustor.token })).body.role.id, rid);
    assert.equal((await cloud.req('HEAD', `${I}/OS-TRUST/trusts/${trust.id}/roles/${rid}`, { token: s.trustor.token })).status, 200);
    assertKeystoneError(await cloud.req('GET', `${I}/OS-TRUST/trusts/${trust.id}/roles/${await roleId(s.kept)}`, { token: s.trustor.token }), 404);
    // list: by trustor, by trustee (summaries, no roles), all (admin only)
    const byTrustor = await cloud.req('GET', `${I}/OS-TRUST/trusts?trustor_user_id=${s.trustor.id}`, { token: s.trustor.token });
    assert.deepEqual(byTrustor.body.trusts.map((x: any) => x.id), [trust.id]);
    assert.equal(byTrustor.body.trusts[0].roles, undefined);
    assertKeystoneError(await cloud.req('GET', `${I}/OS-TRUST/trusts?trustee_user_id=${s.trustee.id}`, { token: s.trustor.token }), 403);
    assert.equal((await cloud.req('GET', `${I}/OS-TRUST/trusts?trustee_user_id=${s.trustee.id}`, { token: admin })).body.trusts.length, 1);
    assertKeystoneError(await cloud.req('GET', `${I}/OS-TRUST/trusts`, { token: s.trustor.token }), 403);
    assert.ok((await cloud.req('GET', `${I}/OS-TRUST/trusts`, { token: admin })).body.trusts.some((x: any) => x.id === trust.id));
    assert.ok((await cloud.req('GET', `${I}/OS-TRUST/trusts?project_id=x`, { token: admin })).body.trusts.some((x: any) => x.id === trust.id));
    // someone unrelated may not look
    const stranger = await mkUser(s.p, ['member']);
    assertKeystoneError(await cloud.req('GET', `${I}/OS-TRUST/trusts/${trust.id}`, { token: stranger.token }), 403);
    assertKeystoneError(await cloud.req('DELETE', `${I}/OS-TRUST/trusts/${trust.id}`, { token: stranger.token }), 403);
    assert.equal((await cloud.req('DELETE', `${I}/OS-TRUST/trusts/${trust.id}`, { token: s.trustor.token })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/OS-TRUST/trusts/${trust.id}`, { token: s.trustor.token }), 404);
  });

  test('create is checked: trustor, roles held, expiry, uses', async () => {
    const s = await setup();
    const bad = async (status: number, extra: Record<string, unknown>, token = s.trustor.token) => {
      const r = await cloud.req('POST', `${I}/OS-TRUST/trusts`, { token, body: { trust: { trustor_user_id: s.trustor.id, trustee_user_id: s.trustee.id, project_id: s.p.id, impersonation: false, roles: [{ name: s.delegated }], ...extra } } });
      assertKeystoneError(r, status);
    };
    await bad(400, { expires_at: 'bad.123Z' });
    await bad(400, { expires_at: '2030-13-45T00:00:00Z' });
    await bad(400, { expires_at: '2001-01-01T00:00:00Z' });
    await bad(400, { remaining_uses: 0 });
    await bad(400, { impersonation: 'yes' });
    await bad(403, { roles: [] });
    await bad(404, { roles: [{ name: 'no-such-role' }] });
    await bad(404, { roles: [{ name: 'admin' }] }); // a role the trustor does not have
    await bad(404, { trustee_user_id: 'nobody' });
    await bad(403, {}, admin); // the caller must be the trustor
    await bad(403, { allow_redelegation: true });
    // microseconds are kept, zones become UTC
    const year = new Date().getUTCFullYear() + 1;
    assert.equal((await mkTrust(s, { expires_at: `${year}-06-01T12:00:00.123456Z` })).body.trust.expires_at, `${year}-06-01T12:00:00.123456Z`);
    assert.equal((await mkTrust(s, { expires_at: `${year}-06-01T14:00:00+02:00` })).body.trust.expires_at, `${year}-06-01T12:00:00.000000Z`);
    // the trustor's implied roles may be delegated (member implies reader)
    assert.equal((await mkTrust(s, { roles: [{ name: 'reader' }] })).status, 201);
  });

  test('trust-scoped tokens: trustee only, delegated roles only, impersonation, uses, revocation', async () => {
    const s = await setup();
    const plain = (await mkTrust(s)).body.trust;
    const scope = (id: string) => ({ 'OS-TRUST:trust': { id } });
    const tok = await passwordAuth(s.trustee, scope(plain.id));
    assert.equal(tok.status, 201, tok.text);
    const body = tok.body.token;
    assert.equal(body.user.id, s.trustee.id);
    assert.equal(body.project.id, s.p.id);
    assert.deepEqual(body.roles.map((r: any) => r.name), [s.delegated]);
    assert.deepEqual(body['OS-TRUST:trust'], { id: plain.id, impersonation: false, trustor_user: { id: s.trustor.id }, trustee_user: { id: s.trustee.id } });
    assert.ok(Array.isArray(body.catalog));
    const trustToken = tok.headers.get('x-subject-token')!;
    const v = await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': trustToken } });
    assert.equal(v.body.token['OS-TRUST:trust'].id, plain.id);
    // only the trustee may use it; a trust token cannot be rescoped or make trusts
    assertKeystoneError(await passwordAuth(s.trustor, scope(plain.id)), 403);
    assertKeystoneError(await passwordAuth(s.trustee, scope('no-such-trust')), 404);
    assertKeystoneError(await passwordAuth(s.trustee, { 'OS-TRUST:trust': {} }), 400);
    assertKeystoneError(await passwordAuth(s.trustee, { 'OS-TRUST:trust': { id: plain.id }, project: { id: s.p.id } }), 400);
    const rescope = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: trustToken } }, scope: { project: { id: s.p.id } } } } });
    assertKeystoneError(rescope, 403);
    assertKeystoneError(await cloud.req('POST', `${I}/OS-TRUST/trusts`, { token: trustToken, body: { trust: { trustor_user_id: s.trustee.id, trustee_user_id: s.trustor.id, impersonation: false } } }), 403);
    // a token of the trustee (unscoped) can be exchanged for a trust token
    const unscoped = (await passwordAuth(s.trustee)).headers.get('x-subject-token');
    const viaToken = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: scope(plain.id) } } });
    assert.equal(viaToken.status, 201, viaToken.text);
    assert.deepEqual(viaToken.body.token.methods, ['token', 'password']);

    // impersonation: the token is the trustor's, limited to the delegated roles
    const imp = (await mkTrust(s, { impersonation: true, remaining_uses: 1 })).body.trust;
    const impTok = await passwordAuth(s.trustee, scope(imp.id));
    assert.equal(impTok.status, 201, impTok.text);
    assert.equal(impTok.body.token.user.id, s.trustor.id);
    assert.deepEqual(impTok.body.token.roles.map((r: any) => r.name), [s.delegated]);
    assert.equal(impTok.body.token['OS-TRUST:trust'].impersonation, true);
    // one use only: the trust is used up (not found), the token issued stays valid
    assertKeystoneError(await passwordAuth(s.trustee, scope(imp.id)), 404);
    assert.equal((await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': impTok.headers.get('x-subject-token')! } })).status, 200);

    // EC2 credentials made with a trust token carry the trust
    const ec2 = await cloud.req('POST', `${I}/users/${s.trustee.id}/credentials/OS-EC2`, { token: trustToken, body: { tenant_id: s.p.id } });
    assert.equal(ec2.status, 201, ec2.text);
    assert.equal(ec2.body.credential.trust_id, plain.id);

    // the trustor losing the delegated role voids the trust's tokens
    const kept = await mkTrust(s, { roles: [{ name: s.kept }] });
    const keptTok = (await passwordAuth(s.trustee, scope(kept.body.trust.id))).headers.get('x-subject-token')!;
    assert.equal((await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': keptTok } })).status, 200);
    assert.equal((await cloud.req('DELETE', `${I}/projects/${s.p.id}/users/${s.trustor.id}/roles/${await roleId(s.kept)}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': keptTok } }), 404);
    assertKeystoneError(await passwordAuth(s.trustee, scope(kept.body.trust.id)), 403);

    // deleting the trust ends its tokens at once
    // (removing the role revoked the trustor's own token too: log in again)
    const trustorToken = (await cloud.login(s.trustor.name, s.trustor.password, s.p.name)).token;
    assert.equal((await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': trustToken } })).status, 200);
    assert.equal((await cloud.req('DELETE', `${I}/OS-TRUST/trusts/${plain.id}`, { token: trustorToken })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': trustToken } }), 404);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/projects`, { token: trustToken }), 401);
  });

  test('a trust token never outlives its trust; disabling the trustee ends it', async () => {
    const s = await setup();
    const soon = new Date(Date.now() + 120_000).toISOString();
    const t = (await mkTrust(s, { expires_at: soon })).body.trust;
    const tok = await passwordAuth(s.trustee, { 'OS-TRUST:trust': { id: t.id } });
    assert.equal(tok.status, 201, tok.text);
    assert.ok(Date.parse(tok.body.token.expires_at) <= Date.parse(soon));
    assert.equal((await cloud.req('PATCH', `${I}/users/${s.trustee.id}`, { token: admin, body: { user: { enabled: false } } })).status, 200);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': tok.headers.get('x-subject-token')! } }), 404);
  });
});

describe('OAuth1 consumers', () => {
  test('CRUD; the secret is shown once and cannot be changed', async () => {
    const c = await cloud.req('POST', `${I}/OS-OAUTH1/consumers`, { token: admin, body: { consumer: { description: 'my app' } } });
    assert.equal(c.status, 201, c.text);
    const id = c.body.consumer.id;
    assert.equal(typeof c.body.consumer.secret, 'string');
    assert.ok(c.body.consumer.links.self.endsWith(`/v3/OS-OAUTH1/consumers/${id}`));
    const got = await cloud.req('GET', `${I}/OS-OAUTH1/consumers/${id}`, { token: admin });
    assert.equal(got.body.consumer.description, 'my app');
    assert.equal(got.body.consumer.secret, undefined);
    assert.ok((await cloud.req('GET', `${I}/OS-OAUTH1/consumers`, { token: admin })).body.consumers.some((x: any) => x.id === id && x.secret === undefined));
    assert.equal((await cloud.req('PATCH', `${I}/OS-OAUTH1/consumers/${id}`, { token: admin, body: { consumer: { description: 'renamed' } } })).body.consumer.description, 'renamed');
    assertKeystoneError(await cloud.req('PATCH', `${I}/OS-OAUTH1/consumers/${id}`, { token: admin, body: { consumer: { secret: 'mine' } } }), 400);
    const p = await mkProject();
    const u = await mkUser(p, ['member']);
    assertKeystoneError(await cloud.req('GET', `${I}/OS-OAUTH1/consumers`, { token: u.token }), 403);
    assert.equal((await cloud.req('DELETE', `${I}/OS-OAUTH1/consumers/${id}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/OS-OAUTH1/consumers/${id}`, { token: admin }), 404);
  });
});

describe('policies', () => {
  test('CRUD with a type filter; blob and type are required', async () => {
    const type = uniq('application/json');
    const c = await cloud.req('POST', `${I}/policies`, { token: admin, body: { policy: { blob: '{"a": "b"}', type } } });
    assert.equal(c.status, 201, c.text);
    const id = c.body.policy.id;
    assert.deepEqual([c.body.policy.blob, c.body.policy.type], ['{"a": "b"}', type]);
    assertKeystoneError(await cloud.req('POST', `${I}/policies`, { token: admin, body: { policy: { type } } }), 400);
    assertKeystoneError(await cloud.req('POST', `${I}/policies`, { token: admin, body: { policy: { blob: 1, type } } }), 400);
    assert.deepEqual((await cloud.req('GET', `${I}/policies?type=${encodeURIComponent(type)}`, { token: admin })).body.policies.map((x: any) => x.id), [id]);
    const up = await cloud.req('PATCH', `${I}/policies/${id}`, { token: admin, body: { policy: { type: 'text/plain' } } });
    assert.equal(up.body.policy.type, 'text/plain');
    assert.equal(up.body.policy.blob, '{"a": "b"}');
    assert.equal((await cloud.req('DELETE', `${I}/policies/${id}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/policies/${id}`, { token: admin }), 404);
  });
});

describe('endpoint groups (OS-EP-FILTER)', () => {
  test('groups filter endpoints; projects associate with groups and endpoints', async () => {
    const svc = (await cloud.req('POST', `${I}/services`, { token: admin, body: { service: { type: uniq('type'), name: 'svc' } } })).body.service;
    const mkEp = async (iface: string) => (await cloud.req('POST', `${I}/endpoints`, { token: admin, body: { endpoint: { service_id: svc.id, interface: iface, url: `http://svc.example/${iface}`, region_id: 'RegionOne' } } })).body.endpoint;
    const pub = await mkEp('public');
    const internal = await mkEp('internal');
    const P = `${I}/OS-EP-FILTER`;
    const g = await cloud.req('POST', `${P}/endpoint_groups`, { token: admin, body: { endpoint_group: { name: 'public-svc', description: 'd', filters: { service_id: svc.id, interface: 'public' } } } });
    assert.equal(g.status, 201, g.text);
    const gid = g.body.endpoint_group.id;
    assert.deepEqual(g.body.endpoint_group.filters, { service_id: svc.id, interface: 'public' });
    assertKeystoneError(await cloud.req('POST', `${P}/endpoint_groups`, { token: admin, body: { endpoint_group: { name: 'x', filters: { url: 'x' } } } }), 400);
    assertKeystoneError(await cloud.req('POST', `${P}/endpoint_groups`, { token: admin, body: { endpoint_group: { name: 'x', filters: {} } } }), 400);
    assert.equal((await cloud.req('HEAD', `${P}/endpoint_groups/${gid}`, { token: admin })).status, 200);
    assert.ok((await cloud.req('GET', `${P}/endpoint_groups?name=public-svc`, { token: admin })).body.endpoint_groups.some((x: any) => x.id === gid));
    assert.deepEqual((await cloud.req('GET', `${P}/endpoint_groups/${gid}/endpoints`, { token: admin })).body.endpoints.map((e: any) => e.id), [pub.id]);
    const p = await mkProject();
    assertKeystoneError(await cloud.req('GET', `${P}/endpoint_groups/${gid}/projects/${p.id}`, { token: admin }), 404);
    assert.equal((await cloud.req('PUT', `${P}/endpoint_groups/${gid}/projects/${p.id}`, { token: admin })).status, 204);
    assert.equal((await cloud.req('PUT', `${P}/endpoint_groups/${gid}/projects/${p.id}`, { token: admin })).status, 204);
    const assoc = await cloud.req('GET', `${P}/endpoint_groups/${gid}/projects/${p.id}`, { token: admin });
    assert.deepEqual([assoc.body.project_endpoint_group.endpoint_group_id, assoc.body.project_endpoint_group.project_id], [gid, p.id]);
    assert.deepEqual((await cloud.req('GET', `${P}/endpoint_groups/${gid}/projects`, { token: admin })).body.projects.map((x: any) => x.id), [p.id]);
    assert.deepEqual((await cloud.req('GET', `${P}/projects/${p.id}/endpoint_groups`, { token: admin })).body.endpoint_groups.map((x: any) => x.id), [gid]);
    // a direct association adds the internal endpoint to the project's list
    assert.equal((await cloud.req('PUT', `${P}/projects/${p.id}/endpoints/${internal.id}`, { token: admin })).status, 204);
    assert.equal((await cloud.req('HEAD', `${P}/projects/${p.id}/endpoints/${internal.id}`, { token: admin })).status, 204);
    assert.deepEqual((await cloud.req('GET', `${P}/projects/${p.id}/endpoints`, { token: admin })).body.endpoints.map((e: any) => e.id).sort(), [pub.id, internal.id].sort());
    assert.deepEqual((await cloud.req('GET', `${P}/endpoints/${internal.id}/projects`, { token: admin })).body.projects.map((x: any) => x.id), [p.id]);
    assert.equal((await cloud.req('DELETE', `${P}/projects/${p.id}/endpoints/${internal.id}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('DELETE', `${P}/projects/${p.id}/endpoints/${internal.id}`, { token: admin }), 404);
    // update the filters, then remove
    const up = await cloud.req('PATCH', `${P}/endpoint_groups/${gid}`, { token: admin, body: { endpoint_group: { filters: { service_id: svc.id } } } });
    assert.deepEqual(up.body.endpoint_group.filters, { service_id: svc.id });
    assert.equal((await cloud.req('GET', `${P}/endpoint_groups/${gid}/endpoints`, { token: admin })).body.endpoints.length, 2);
    const u = await mkUser(p, ['member']);
    assertKeystoneError(await cloud.req('PUT', `${P}/endpoint_groups/${gid}/projects/${p.id}`, { token: u.token }), 403);
    assert.equal((await cloud.req('DELETE', `${P}/endpoint_groups/${gid}/projects/${p.id}`, { token: admin })).status, 204);
    assert.equal((await cloud.req('DELETE', `${P}/endpoint_groups/${gid}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${P}/endpoint_groups/${gid}`, { token: admin }), 404);
  });
});

describe('domain configuration', () => {
  const mkDomain = async () => (await cloud.req('POST', `${I}/domains`, { token: admin, body: { domain: { name: uniq('dom') } } })).body.domain;

  test('defaults: identity and ldap groups, per group and per option', async () => {
    const all = await cloud.req('GET', `${I}/domains/config/default`, { token: admin });
    assert.equal(all.status, 200);
    assert.deepEqual(Object.keys(all.body.config).sort(), ['identity', 'ldap']);
    assert.equal((await cloud.req('GET', `${I}/domains/config/identity/default`, { token: admin })).body.config.identity.driver, 'sql');
    assert.deepEqual((await cloud.req('GET', `${I}/domains/config/ldap/url/default`, { token: admin })).body.config, { url: 'ldap://localhost' });
    assertKeystoneError(await cloud.req('GET', `${I}/domains/config/ldap/password/default`, { token: admin }), 403);
    assertKeystoneError(await cloud.req('GET', `${I}/domains/config/assignment/default`, { token: admin }), 403);
  });

  test('create (201, then 200 replacing), read, update, delete; the ldap password is write-only', async () => {
    const d = await mkDomain();
    const base = `${I}/domains/${d.id}/config`;
    assertKeystoneError(await cloud.req('GET', base, { token: admin }), 404);
    const config = { identity: { driver: 'ldap' }, ldap: { url: 'ldap://dir.example:389/', user_tree_dn: 'ou=Users,dc=example,dc=org', password: 'secret' } };
    const c = await cloud.req('PUT', base, { token: admin, body: { config } });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.body.config, { identity: { driver: 'ldap' }, ldap: { url: 'ldap://dir.example:389/', user_tree_dn: 'ou=Users,dc=example,dc=org' } });
    assert.deepEqual((await cloud.req('GET', `${base}/ldap/url`, { token: admin })).body.config, { url: 'ldap://dir.example:389/' });
    assertKeystoneError(await cloud.req('GET', `${base}/ldap/password`, { token: admin }), 404);
    // group and option updates must name what exists; values keep their JSON type
    const g = await cloud.req('PATCH', `${base}/identity`, { token: admin, body: { config: { identity: { driver: 'sql', list_limit: 42 } } } });
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body.config.identity, { driver: 'sql', list_limit: 42 });
    assert.equal((await cloud.req('PATCH', `${base}/identity/driver`, { token: admin, body: { config: { driver: 'ldap' } } })).body.config.identity.driver, 'ldap');
    assertKeystoneError(await cloud.req('PATCH', `${base}/ldap/user`, { token: admin, body: { config: { user: 'cn=admin' } } }), 404);
    assertKeystoneError(await cloud.req('PATCH', `${base}/identity`, { token: admin, body: { config: { ldap: { url: 'x' } } } }), 403);
    assertKeystoneError(await cloud.req('PATCH', base, { token: admin, body: { config: { assignment: { driver: 'x' } } } }), 403);
    assertKeystoneError(await cloud.req('PATCH', base, { token: admin, body: { config: { ldap: { no_such_option: 1 } } } }), 403);
    assertKeystoneError(await cloud.req('PUT', base, { token: admin, body: { config: {} } }), 403);
    const merged = await cloud.req('PATCH', base, { token: admin, body: { config: { ldap: { user: 'cn=admin' } } } });
    assert.equal(merged.body.config.ldap.user, 'cn=admin');
    assert.equal(merged.body.config.ldap.url, 'ldap://dir.example:389/');
    assert.equal((await cloud.req('DELETE', `${base}/identity/driver`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${base}/identity/driver`, { token: admin }), 404);
    assert.equal((await cloud.req('DELETE', `${base}/identity`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${base}/identity`, { token: admin }), 404);
    const replaced = await cloud.req('PUT', base, { token: admin, body: { config: { identity: { driver: 'ldap' } } } });
    assert.equal(replaced.status, 200);
    assert.deepEqual(replaced.body.config, { identity: { driver: 'ldap' } });
    assert.equal((await cloud.req('DELETE', base, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', base, { token: admin }), 404);
    assertKeystoneError(await cloud.req('PUT', `${I}/domains/no-such-domain/config`, { token: admin, body: { config } }), 404);
  });

  test('admins only, except the default domain\'s password rules', async () => {
    const p = await mkProject();
    const u = await mkUser(p, ['member']);
    assertKeystoneError(await cloud.req('GET', `${I}/domains/config/default`, { token: u.token }), 403);
    assertKeystoneError(await cloud.req('PUT', `${I}/domains/default/config`, { token: u.token, body: { config: { identity: { driver: 'ldap' } } } }), 403);
    const sc = await cloud.req('GET', `${I}/domains/default/config/security_compliance`, { token: u.token });
    assert.equal(sc.status, 200, sc.text);
    assert.deepEqual(sc.body.config, { security_compliance: { password_regex: null, password_regex_description: null } });
    assert.deepEqual((await cloud.req('GET', `${I}/domains/default/config/security_compliance/password_regex`, { token: u.token })).body.config, { password_regex: null });
    assertKeystoneError(await cloud.req('GET', `${I}/domains/default/config/security_compliance/lockout_duration`, { token: u.token }), 403);
  });
});
