// Identity through its HTTP API on a real all-in-one (SQLite/MariaDB/PostgreSQL per
// STRATUS_TEST_DB, memory/RabbitMQ per STRATUS_TEST_TRANSPORT).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useCloud, assertKeystoneError, type TestCloud } from './helpers/cloud.ts';

let cloud: TestCloud;
let admin: string;
useCloud((c, t) => { cloud = c; admin = t; });

const I = '/identity/v3';
const ref = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/reference/openstack-zed/${name}.json`, import.meta.url), 'utf8'));


async function mkUser(name: string, password: string, project?: string, role?: string) {
  const u = await cloud.req('POST', `${I}/users`, { token: admin, body: { user: { name, password, domain_id: 'default' } } });
  assert.equal(u.status, 201);
  if (project && role) {
    const p = (await cloud.req('GET', `${I}/projects?name=${project}`, { token: admin })).body.projects[0];
    const r = (await cloud.req('GET', `${I}/roles?name=${role}`, { token: admin })).body.roles[0];
    assert.equal((await cloud.req('PUT', `${I}/projects/${p.id}/users/${u.body.user.id}/roles/${r.id}`, { token: admin })).status, 204);
  }
  return u.body.user;
}
async function mkProject(name: string) {
  const p = await cloud.req('POST', `${I}/projects`, { token: admin, body: { project: { name, domain_id: 'default' } } });
  assert.equal(p.status, 201, p.text);
  return p.body.project;
}

describe('version discovery', () => {
  test('GET / is a 300 with the v3.14 document, as Keystone', async () => {
    const res = await cloud.req('GET', '/identity/');
    assert.equal(res.status, 300);
    const expected = ref('01-keystone-root');
    assert.deepEqual(Object.keys(res.body.versions.values[0]).sort(), Object.keys(expected.versions.values[0]).sort());
    assert.equal(res.body.versions.values[0].id, 'v3.14');
    assert.match(res.headers.get('x-openstack-request-id')!, /^req-[0-9a-f-]{36}$/);
  });
  test('GET /v3', async () => {
    const res = await cloud.req('GET', I);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.version['media-types'], ref('02-keystone-v3').version['media-types']);
  });
});

describe('tokens', () => {
  test('password auth, project scope: body shaped as Keystone, catalog included', async () => {
    const r = await cloud.login('admin', cloud.adminPassword, 'admin');
    assert.equal(r.status, 201);
    assert.ok(r.token.length > 100);
    const t = r.body.token;
    const expected = ref('09-keystone-token-issue').token;
    for (const k of Object.keys(expected)) assert.ok(k in t, `token body lacks ${k}`);
    assert.match(t.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.deepEqual(t.roles.map((x: any) => x.name).sort(), ['admin', 'member', 'reader']);
    const idEntry = t.catalog.find((c: any) => c.type === 'identity');
    assert.ok(idEntry.endpoints.every((e: any) => e.region === 'RegionOne' && e.region_id === 'RegionOne'));
    const lifetime = Date.parse(t.expires_at) - Date.parse(t.issued_at);
    assert.ok(Math.abs(lifetime - 3600_000) < 2000);
  });
  test('wrong password and unknown user get the same 401', async () => {
    const a = await cloud.login('admin', 'wrong', 'admin');
    const b = await cloud.login('nobody-here', 'wrong', 'admin');
    assert.equal(a.status, 401);
    assert.equal(b.status, 401);
    assert.equal(a.body.error.message, b.body.error.message);
    assert.doesNotMatch(a.body.error.message, /password|user/i);
  });
  test('validate, check, revoke', async () => {
    const t = (await cloud.login('admin', cloud.adminPassword, 'admin')).token;
    const v = await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t } });
    assert.equal(v.status, 200);
    assert.equal(v.headers.get('x-subject-token'), t);
    assert.equal((await cloud.req('HEAD', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t } })).status, 200);
    assert.equal((await cloud.req('DELETE', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t } })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t } }), 404);
    assertKeystoneError(await cloud.req('GET', `${I}/users`, { token: t }), 401);
  });
  test('a tampered token is 401 as X-Auth-Token and 404 as subject', async () => {
    const t = (await cloud.login('admin', cloud.adminPassword, 'admin')).token;
    const bad = t.slice(0, 40) + (t[40] === 'A' ? 'B' : 'A') + t.slice(41);
    const r = await cloud.req('GET', `${I}/users`, { token: bad });
    assertKeystoneError(r, 401);
    assert.match(r.headers.get('www-authenticate')!, /^Keystone uri=/);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': bad } }), 404);
    assertKeystoneError(await cloud.req('GET', `${I}/users`, { token: 'garbage' }), 401);
    assertKeystoneError(await cloud.req('GET', `${I}/users`), 401);
  });
  test('token method rescopes and keeps the expiry; unscoped tokens have no catalog roles', async () => {
    const u = await cloud.login('admin', cloud.adminPassword);
    assert.equal(u.status, 201);
    // admin has a default project with a role: Keystone scopes there by default
    assert.equal(u.body.token.project.name, 'admin');
    const unscoped = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: cloud.adminPassword } } }, scope: 'unscoped' } } });
    assert.equal(unscoped.status, 201);
    assert.equal(unscoped.body.token.roles, undefined);
    const re = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: unscoped.headers.get('x-subject-token') } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } } });
    assert.equal(re.status, 201);
    assert.equal(re.body.token.expires_at, unscoped.body.token.expires_at);
    assert.equal(re.body.token.audit_ids[1], unscoped.body.token.audit_ids[0]);
    const sys = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: unscoped.headers.get('x-subject-token') } }, scope: { system: { all: true } } } } });
    assert.equal(sys.status, 201);
    assert.deepEqual(sys.body.token.system, { all: true });
  });
  test('disabling a user, changing a password and removing a role invalidate tokens at once', async () => {
    const p = await mkProject('revoke-proj');
    const u = await mkUser('revoke-user', 'pw-one', 'revoke-proj', 'member');
    const t1 = (await cloud.login('revoke-user', 'pw-one', 'revoke-proj')).token;
    assert.equal((await cloud.req('GET', `${I}/users/${u.id}`, { token: t1 })).status, 200);
    // own password change
    assert.equal((await cloud.req('POST', `${I}/users/${u.id}/password`, { token: t1, body: { user: { password: 'pw-two', original_password: 'pw-one' } } })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/users/${u.id}`, { token: t1 }), 401);
    assertKeystoneError(await cloud.req('POST', `${I}/users/${u.id}/password`, { body: { user: { password: 'x', original_password: 'wrong' } } }), 401);
    const t2 = (await cloud.login('revoke-user', 'pw-two', 'revoke-proj')).token;
    const member = (await cloud.req('GET', `${I}/roles?name=member`, { token: admin })).body.roles[0];
    assert.equal((await cloud.req('DELETE', `${I}/projects/${p.id}/users/${u.id}/roles/${member.id}`, { token: admin })).status, 204);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t2 } }), 404);
    assert.equal((await cloud.req('PUT', `${I}/projects/${p.id}/users/${u.id}/roles/${member.id}`, { token: admin })).status, 204);
    const t3 = (await cloud.login('revoke-user', 'pw-two', 'revoke-proj')).token;
    assert.equal((await cloud.req('PATCH', `${I}/users/${u.id}`, { token: admin, body: { user: { enabled: false } } })).status, 200);
    assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t3 } }), 404);
    assert.equal((await cloud.login('revoke-user', 'pw-two', 'revoke-proj')).status, 401);
  });
  test('application credentials authenticate, restricted to their roles', async () => {
    await mkProject('ac-proj');
    const u = await mkUser('ac-user', 'ac-pw', 'ac-proj', 'member');
    const t = (await cloud.login('ac-user', 'ac-pw', 'ac-proj')).token;
    const c = await cloud.req('POST', `${I}/users/${u.id}/application_credentials`, { token: t, body: { application_credential: { name: 'ci', roles: [{ name: 'reader' }] } } });
    assert.equal(c.status, 201, c.text);
    assert.equal(typeof c.body.application_credential.secret, 'string');
    const a = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['application_credential'], application_credential: { id: c.body.application_credential.id, secret: c.body.application_credential.secret } } } } });
    assert.equal(a.status, 201, a.text);
    assert.deepEqual(a.body.token.roles.map((r: any) => r.name), ['reader']);
    assert.equal(a.body.token.application_credential.id, c.body.application_credential.id);
    const bad = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['application_credential'], application_credential: { id: c.body.application_credential.id, secret: 'nope' } } } } });
    assertKeystoneError(bad, 401);
    assert.equal((await cloud.req('POST', `${I}/users/${u.id}/application_credentials`, { token: t, body: { application_credential: { name: 'ci' } } })).status, 409);
  });
});

describe('policy and isolation', () => {
  test('a member of project A sees nothing of B; a reader cannot write', async () => {
    const a = await mkProject('iso-a');
    const b = await mkProject('iso-b');
    await mkUser('iso-member', 'pw', 'iso-a', 'member');
    await mkUser('iso-reader', 'pw', 'iso-a', 'reader');
    const m = (await cloud.login('iso-member', 'pw', 'iso-a')).token;
    const r = (await cloud.login('iso-reader', 'pw', 'iso-a')).token;
    assert.equal((await cloud.req('GET', `${I}/projects/${a.id}`, { token: m })).status, 200);
    assertKeystoneError(await cloud.req('GET', `${I}/projects/${b.id}`, { token: m }), 403);
    assertKeystoneError(await cloud.req('GET', `${I}/users`, { token: m }), 403);
    assertKeystoneError(await cloud.req('POST', `${I}/projects`, { token: m, body: { project: { name: 'x' } } }), 403);
    assertKeystoneError(await cloud.req('POST', `${I}/projects`, { token: r, body: { project: { name: 'x' } } }), 403);
    assertKeystoneError(await cloud.req('PATCH', `${I}/projects/${a.id}`, { token: r, body: { project: { description: 'x' } } }), 403);
    const mine = await cloud.req('GET', `${I}/auth/projects`, { token: m });
    assert.deepEqual(mine.body.projects.map((p: any) => p.name), ['iso-a']);
  });
});

describe('bad input', () => {
  const cases: [string, string, string, unknown, number][] = [
    ['malformed JSON', 'POST', '/projects', '{"project": {', 400],
    ['wrong type', 'POST', '/projects', { project: { name: 42 } }, 400],
    ['missing required field', 'POST', '/users', { user: { description: 'no name' } }, 400],
    ['missing wrapper', 'POST', '/roles', { name: 'x' }, 400],
    ['wrong boolean type', 'POST', '/domains', { domain: { name: 'd-bool', enabled: 'yes' } }, 400],
    ['bad endpoint interface', 'POST', '/endpoints', { endpoint: { service_id: 'x', interface: 'sideways', url: 'http://x' } }, 400],
    ['unknown id', 'GET', '/projects/00000000000000000000000000000000', undefined, 404],
    ['unknown user', 'PATCH', '/users/nope', { user: { name: 'x' } }, 404],
    ['oversized body', 'POST', '/projects', { project: { name: 'big', description: 'x'.repeat(200_000) } }, 413],
  ];
  for (const [what, method, path, body, status] of cases) {
    test(`${what} → ${status}`, async () => {
      const res = typeof body === 'string'
        ? await cloud.req(method, `${I}${path}`, { token: admin, raw: body, headers: { 'content-type': 'application/json' } })
        : await cloud.req(method, `${I}${path}`, { token: admin, body });
      assertKeystoneError(res, status);
    });
  }
  test('duplicate names → 409', async () => {
    await mkProject('dup-proj');
    assertKeystoneError(await cloud.req('POST', `${I}/projects`, { token: admin, body: { project: { name: 'dup-proj' } } }), 409);
    await mkUser('dup-user', 'pw');
    assertKeystoneError(await cloud.req('POST', `${I}/users`, { token: admin, body: { user: { name: 'dup-user' } } }), 409);
    assertKeystoneError(await cloud.req('POST', `${I}/roles`, { token: admin, body: { role: { name: 'admin' } } }), 409);
  });
  test('an enabled domain cannot be deleted', async () => {
    const d = await cloud.req('POST', `${I}/domains`, { token: admin, body: { domain: { name: 'del-dom' } } });
    assertKeystoneError(await cloud.req('DELETE', `${I}/domains/${d.body.domain.id}`, { token: admin }), 403);
    assert.equal((await cloud.req('PATCH', `${I}/domains/${d.body.domain.id}`, { token: admin, body: { domain: { enabled: false } } })).status, 200);
    assert.equal((await cloud.req('DELETE', `${I}/domains/${d.body.domain.id}`, { token: admin })).status, 204);
  });
});

describe('assignments', () => {
  test('implied roles, groups, effective and include_names', async () => {
    const p = await mkProject('asg-proj');
    const u = await mkUser('asg-user', 'pw');
    const g = (await cloud.req('POST', `${I}/groups`, { token: admin, body: { group: { name: 'asg-group' } } })).body.group;
    assert.equal((await cloud.req('PUT', `${I}/groups/${g.id}/users/${u.id}`, { token: admin })).status, 204);
    const adminRole = (await cloud.req('GET', `${I}/roles?name=admin`, { token: admin })).body.roles[0];
    assert.equal((await cloud.req('PUT', `${I}/projects/${p.id}/groups/${g.id}/roles/${adminRole.id}`, { token: admin })).status, 204);
    const tok = await cloud.login('asg-user', 'pw', 'asg-proj');
    assert.deepEqual(tok.body.token.roles.map((r: any) => r.name).sort(), ['admin', 'member', 'reader']);
    const eff = await cloud.req('GET', `${I}/role_assignments?effective&include_names&user.id=${u.id}`, { token: admin });
    assert.equal(eff.status, 200);
    const names = eff.body.role_assignments.map((a: any) => a.role.name).sort();
    assert.deepEqual(names, ['admin', 'member', 'reader']);
    assert.ok(eff.body.role_assignments.every((a: any) => a.user.name === 'asg-user' && a.scope.project.name === 'asg-proj'));
    assert.ok(eff.body.role_assignments.some((a: any) => a.links.membership));
    const plain = await cloud.req('GET', `${I}/role_assignments?group.id=${g.id}`, { token: admin });
    assert.equal(plain.body.role_assignments.length, 1);
  });
});
