// Identity rules matched to Keystone's, on a real all-in-one (SQLite/MariaDB/PostgreSQL per
// STRATUS_TEST_DB): a disabled user's password, list filters, domain-specific role grants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud, assertKeystoneError, type TestCloud } from './helpers/cloud.ts';

const I = '/identity/v3';
let cloud: TestCloud;
let admin: string;
useCloud((c, t) => { cloud = c; admin = t; });

const post = async (path: string, body: unknown) => {
  const r = await cloud.req('POST', `${I}${path}`, { token: admin, body });
  assert.equal(r.status, 201, r.text);
  return r.body;
};

test('a disabled user cannot change its own password (401, and the old one still fails to log in)', async () => {
  const u = (await post('/users', { user: { name: 'disabled-pw', password: 'old-pw', domain_id: 'default' } })).user;
  assert.equal((await cloud.req('PATCH', `${I}/users/${u.id}`, { token: admin, body: { user: { enabled: false } } })).status, 200);
  const r = await cloud.req('POST', `${I}/users/${u.id}/password`, { body: { user: { original_password: 'old-pw', password: 'new-pw' } } });
  assertKeystoneError(r, 401);
  assert.equal(r.body.error.message, 'The request you have made requires authentication.');
  // re-enabled, the password is still the old one
  assert.equal((await cloud.req('PATCH', `${I}/users/${u.id}`, { token: admin, body: { user: { enabled: true } } })).status, 200);
  assert.equal((await cloud.login('disabled-pw', 'new-pw')).status, 401);
  assert.equal((await cloud.login('disabled-pw', 'old-pw')).status, 201);
  assert.equal((await cloud.req('POST', `${I}/users/${u.id}/password`, { body: { user: { original_password: 'old-pw', password: 'new-pw' } } })).status, 204);
});

test('list filters: unknown parameters are ignored; __contains, __startswith, __endswith, __equals and their i-forms', async () => {
  for (const n of ['Filter-Alpha', 'filter-beta', 'other-ALPHA']) await post('/users', { user: { name: n, domain_id: 'default' } });
  const names = async (q: string) => {
    const r = await cloud.req('GET', `${I}/users?${q}`, { token: admin });
    assert.equal(r.status, 200, `${q}: ${r.text}`);
    return r.body.users.map((u: any) => u.name).filter((n: string) => /alpha|beta/i.test(n)).sort();
  };
  assert.deepEqual(await names('colour=blue&sort_key=name&limit=5'), ['Filter-Alpha', 'filter-beta', 'other-ALPHA']);
  assert.deepEqual(await names('name__contains=Alpha'), ['Filter-Alpha']);
  assert.deepEqual(await names('name__icontains=alpha'), ['Filter-Alpha', 'other-ALPHA']);
  assert.deepEqual(await names('name__startswith=filter'), ['filter-beta']);
  assert.deepEqual(await names('name__istartswith=filter'), ['Filter-Alpha', 'filter-beta']);
  assert.deepEqual(await names('name__endswith=ALPHA'), ['other-ALPHA']);
  assert.deepEqual(await names('name__iendswith=ALPHA'), ['Filter-Alpha', 'other-ALPHA']);
  assert.deepEqual(await names('name__equals=filter-beta'), ['filter-beta']);
  assert.deepEqual(await names('name__iequals=FILTER-BETA'), ['filter-beta']);
  assert.deepEqual(await names('name__icontains=filter&name__iendswith=alpha'), ['Filter-Alpha']);
  // an attribute the list does not filter on, or an operator Keystone lacks, is ignored
  assert.deepEqual(await names('email__contains=x&name__regex=zzz'), ['Filter-Alpha', 'filter-beta', 'other-ALPHA']);
  // the same on other lists
  await post('/projects', { project: { name: 'inexact-proj', domain_id: 'default' } });
  const p = await cloud.req('GET', `${I}/projects?name__istartswith=INEXACT&bogus=1`, { token: admin });
  assert.deepEqual(p.body.projects.map((x: any) => x.name), ['inexact-proj']);
  const roles = await cloud.req('GET', `${I}/roles?name__endswith=ember`, { token: admin });
  assert.deepEqual(roles.body.roles.map((x: any) => x.name), ['member']);
  const d = await cloud.req('GET', `${I}/domains?name__icontains=DEFAULT`, { token: admin });
  assert.deepEqual(d.body.domains.map((x: any) => x.id), ['default']);
  const g = await cloud.req('GET', `${I}/groups?name__contains=nothing-like-this`, { token: admin });
  assert.deepEqual(g.body.groups, []);
});

test('a domain-specific role of domain X can be granted on domain Y, not on a project of Y', async () => {
  const x = (await post('/domains', { domain: { name: 'dom-x' } })).domain;
  const y = (await post('/domains', { domain: { name: 'dom-y' } })).domain;
  const role = (await post('/roles', { role: { name: 'x-role', domain_id: x.id } })).role;
  const u = (await post('/users', { user: { name: 'dsr-user', domain_id: y.id } })).user;
  const g = (await post('/groups', { group: { name: 'dsr-group', domain_id: y.id } })).group;
  const py = (await post('/projects', { project: { name: 'py', domain_id: y.id } })).project;
  const px = (await post('/projects', { project: { name: 'px', domain_id: x.id } })).project;
  const put = (path: string) => cloud.req('PUT', `${I}${path}`, { token: admin });
  assert.equal((await put(`/domains/${y.id}/users/${u.id}/roles/${role.id}`)).status, 204);
  assert.equal((await put(`/domains/${y.id}/groups/${g.id}/roles/${role.id}`)).status, 204);
  assert.equal((await put(`/OS-INHERIT/domains/${y.id}/users/${u.id}/roles/${role.id}/inherited_to_projects`)).status, 204);
  assert.equal((await cloud.req('HEAD', `${I}/domains/${y.id}/users/${u.id}/roles/${role.id}`, { token: admin })).status, 204);
  const onProject = await put(`/projects/${py.id}/users/${u.id}/roles/${role.id}`);
  assertKeystoneError(onProject, 403);
  assert.equal(onProject.body.error.message, `Project ${py.id} must be in the same domain as the role ${role.id} being assigned.`);
  assertKeystoneError(await put(`/projects/${py.id}/groups/${g.id}/roles/${role.id}`), 403);
  // its own domain's projects are fine
  assert.equal((await put(`/projects/${px.id}/users/${u.id}/roles/${role.id}`)).status, 204);
  // never on the system
  assertKeystoneError(await put(`/system/users/${u.id}/roles/${role.id}`), 400);
});
