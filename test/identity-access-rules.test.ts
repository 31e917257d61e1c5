// Application credential access rules on a real all-in-one: the token carries the rules, every
// service (compute, image, placement, identity) refuses what no rule allows, and a restricted
// application credential cannot mint more credentials.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { assertKeystoneError, startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, COMPUTE as C, mv } from './helpers/compute.ts';

const I = '/identity/v3';
let cloud: TestCloud;
let admin: string;
let user: { id: string; token: string };
let imageId: string;
let serverId: string;
const { api, waitFor } = computeApi(() => cloud, () => user.token);

before(async () => {
  cloud = await startCloud();
  admin = await cloud.adminToken();
  const p = await cloud.req('POST', `${I}/projects`, { token: admin, body: { project: { name: 'ac-proj', domain_id: 'default' } } });
  const u = await cloud.req('POST', `${I}/users`, { token: admin, body: { user: { name: 'ac-user', password: 'ac-pass', domain_id: 'default' } } });
  const member = (await cloud.req('GET', `${I}/roles?name=member`, { token: admin })).body.roles[0].id;
  assert.equal((await cloud.req('PUT', `${I}/projects/${p.body.project.id}/users/${u.body.user.id}/roles/${member}`, { token: admin })).status, 204);
  user = { id: u.body.user.id, token: (await cloud.login('ac-user', 'ac-pass', 'ac-proj')).token };
  const img = await cloud.req('POST', '/image/v2/images', { token: user.token, body: { name: 'img', disk_format: 'raw', container_format: 'bare' } });
  imageId = img.body.id;
  const upload = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': user.token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  assert.equal(upload.status, 204);
  const s = await api('POST', '/servers', { server: { name: 'vm', imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  assert.equal(s.status, 202, s.text);
  serverId = s.body.server.id;
  await waitFor(serverId, ['ACTIVE']);
});
after(async () => { await cloud?.stop(); });

async function appCred(name: string, extra: Record<string, unknown> = {}): Promise<{ id: string; token: string; body: any }> {
  const c = await cloud.req('POST', `${I}/users/${user.id}/application_credentials`, { token: user.token, body: { application_credential: { name, ...extra } } });
  assert.equal(c.status, 201, c.text);
  const t = await cloud.req('POST', `${I}/auth/tokens`, { body: { auth: { identity: { methods: ['application_credential'], application_credential: { id: c.body.application_credential.id, secret: c.body.application_credential.secret } } } } });
  assert.equal(t.status, 201, t.text);
  return { id: c.body.application_credential.id, token: t.headers.get('x-subject-token')!, body: t.body };
}

const nova403 = (r: { status: number; body: any; text: string }) => {
  assert.equal(r.status, 403, r.text);
  assert.equal(r.body.forbidden.code, 403, r.text);
};

test('a credential restricted to GET /v2.1/servers on compute can list servers and nothing else', async () => {
  const ac = await appCred('list-only', { access_rules: [{ service: 'compute', method: 'GET', path: '/v2.1/servers' }] });
  // The token carries the rules, as Keystone renders them.
  const rules = ac.body.token.application_credential.access_rules;
  assert.equal(ac.body.token.application_credential.restricted, true);
  assert.equal(rules.length, 1);
  assert.deepEqual({ ...rules[0], id: undefined }, { id: undefined, service: 'compute', method: 'GET', path: '/v2.1/servers' });
  assert.match(rules[0].id, /^[0-9a-f]{32}$/);
  const t = ac.token;

  const list = await api('GET', '/servers', undefined, {}, t);
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.body.servers.map((s: any) => s.id), [serverId]);

  nova403(await api('GET', '/servers/detail', undefined, {}, t));
  nova403(await api('GET', `/servers/${serverId}`, undefined, {}, t));
  nova403(await api('DELETE', `/servers/${serverId}`, undefined, {}, t));
  nova403(await api('POST', `/servers/${serverId}/action`, { 'os-stop': null }, {}, t));
  nova403(await api('POST', `/servers/${serverId}/metadata`, { metadata: { a: '1' } }, {}, t));
  nova403(await api('PUT', `/servers/${serverId}/metadata/a`, { meta: { a: '1' } }, {}, t));
  nova403(await api('POST', `/servers/${serverId}/action`, { createImage: { name: 'snap' } }, {}, t));
  // the query string is not part of the path a rule matches
  assert.equal((await cloud.req('GET', `${C}/servers?limit=1`, { token: t })).status, 200);

  // image: no rule, so nothing — not even reading
  for (const [m, p] of [['GET', `/image/v2/images/${imageId}/file`], ['GET', '/image/v2/images'], ['POST', '/image/v2/images'], ['DELETE', `/image/v2/images/${imageId}`]]) {
    const r = await cloud.req(m, p, { token: t, body: m === 'POST' ? { name: 'x' } : undefined });
    assert.equal(r.status, 403, `${m} ${p}: ${r.text}`);
  }
  // placement
  const pl = await cloud.req('GET', '/placement/resource_providers', { token: t });
  assert.equal(pl.status, 403, pl.text);
  assert.equal(pl.body.errors[0].status, 403);

  // identity: no new EC2 key pairs, credentials, application credentials or trusts
  assertKeystoneError(await cloud.req('POST', `${I}/users/${user.id}/credentials/OS-EC2`, { token: t, body: { tenant_id: ac.body.token.project.id } }), 403);
  assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: t, body: { credential: { user_id: user.id, type: 'totp', blob: 'x' } } }), 403);
  assertKeystoneError(await cloud.req('POST', `${I}/users/${user.id}/application_credentials`, { token: t, body: { application_credential: { name: 'more' } } }), 403);
  assertKeystoneError(await cloud.req('GET', `${I}/users/${user.id}`, { token: t }), 403);
  // …but the token can still be validated, by itself and by a service
  const self = await cloud.req('GET', `${I}/auth/tokens`, { token: t, headers: { 'x-subject-token': t, 'openstack-identity-access-rules': '1.0' } });
  assert.equal(self.status, 200, self.text);
  assert.deepEqual(self.body.token.application_credential.access_rules, rules);
  // A validator that does not say it enforces access rules is not given the token (Keystone).
  assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t } }), 404);
  assertKeystoneError(await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t, 'openstack-identity-access-rules': '0.9' } }), 404);
  assert.equal((await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': t, 'openstack-identity-access-rules': '1.0' } })).status, 200);
  // the server is untouched
  const s = await api('GET', `/servers/${serverId}`);
  assert.equal(s.body.server.status, 'ACTIVE');
  assert.deepEqual(s.body.server.metadata, {});
});

test('a sweep over every service: a rule for one compute route opens no other', async () => {
  const ac = await appCred('sweep', { access_rules: [{ service: 'compute', method: 'GET', path: '/v2.1/servers' }] });
  const t = ac.token;
  const x = '0123456789abcdef0123456789abcdef';
  const routes: [string, string, unknown?][] = [
    ['GET', '/compute/v2.1/flavors'], ['GET', '/compute/v2.1/flavors/1'], ['POST', '/compute/v2.1/os-keypairs', { keypair: { name: 'k' } }],
    ['GET', '/compute/v2.1/os-keypairs'], ['GET', '/compute/v2.1/limits'], ['GET', '/compute/v2.1/os-hypervisors'], ['GET', '/compute/v2.1/os-services'],
    ['POST', '/compute/v2.1/servers', { server: { name: 'x', imageRef: imageId, flavorRef: '1', networks: 'none' } }], ['GET', '/compute/v2.1/os-server-groups'],
    ['GET', `/compute/v2.1/servers/${serverId}/os-instance-actions`], ['GET', `/compute/v2.1/servers/${serverId}/metadata`], ['GET', '/compute/v2.1/os-aggregates'],
    ['GET', '/image/v2/images'], ['GET', `/image/v2/images/${imageId}`], ['PATCH', `/image/v2/images/${imageId}`, []], ['GET', '/image/v2/schemas/image'],
    ['GET', '/image/v2/metadefs/namespaces'], ['GET', `/image/v2/images/${imageId}/members`], ['PUT', `/image/v2/images/${imageId}/tags/t`], ['GET', '/image/v2/info/import'],
    ['GET', '/placement/resource_providers'], ['GET', '/placement/traits'], ['GET', '/placement/resource_classes'], ['POST', '/placement/allocations', {}], ['GET', `/placement/allocations/${serverId}`],
    ['GET', `${I}/users`], ['GET', `${I}/projects`], ['GET', `${I}/auth/catalog`], ['GET', `${I}/auth/projects`], ['GET', `${I}/credentials`], ['GET', `${I}/roles`],
    ['GET', `${I}/users/${user.id}/application_credentials`], ['GET', `${I}/OS-TRUST/trusts`], ['DELETE', `${I}/users/${user.id}/application_credentials/${ac.id}`],
    ['GET', `${I}/users/${user.id}/OS-OAUTH1/access_tokens`], ['PUT', `${I}/OS-OAUTH1/authorize/${x}`, { roles: [{ name: 'member' }] }], ['HEAD', `${I}/auth/tokens`],
  ];
  for (const [m, p, body] of routes) {
    const r = await cloud.req(m, p, { token: t, body, headers: m === 'PATCH' ? { 'content-type': 'application/openstack-images-v2.1-json-patch' } : m === 'HEAD' ? { 'x-subject-token': t } : {} });
    assert.equal(r.status, 403, `${m} ${p}: ${r.status} ${r.text.slice(0, 200)}`);
  }
});

test('path templates: * is one segment, ** any number; service type and method must match', async () => {
  const ac = await appCred('templates', {
    access_rules: [
      { service: 'compute', method: 'GET', path: '/v2.1/servers/*' },
      { service: 'image', method: 'GET', path: '/v2/images/**' },
      { service: 'identity', method: 'GET', path: `/v3/users/${user.id}` },
    ],
  });
  const t = ac.token;
  assert.equal((await api('GET', `/servers/${serverId}`, undefined, {}, t)).status, 200);
  assert.equal((await api('GET', '/servers/detail', undefined, {}, t)).status, 200);
  nova403(await api('GET', `/servers/${serverId}/metadata`, undefined, {}, t));
  nova403(await api('GET', '/servers', undefined, {}, t));
  assert.equal((await cloud.req('GET', `/image/v2/images/${imageId}`, { token: t })).status, 200);
  const data = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { headers: { 'x-auth-token': t } });
  assert.equal(data.status, 200);
  await data.arrayBuffer();
  assert.equal((await cloud.req('GET', '/image/v2/images', { token: t })).status, 403);
  assert.equal((await cloud.req('GET', `${I}/users/${user.id}`, { token: t })).status, 200);
  assertKeystoneError(await cloud.req('GET', `${I}/users/${user.id}/projects`, { token: t }), 403);
});

test('an access rule cannot be a bad path or method; one in use cannot be deleted', async () => {
  for (const rule of [{ service: 'compute', method: 'GET', path: 'v2.1/servers' }, { service: 'compute', method: 'OPTIONS', path: '/x' }, { service: 'compute', method: 'GET', path: `/${'x'.repeat(226)}` }, { service: '', method: 'GET', path: '/x' }]) {
    const r = await cloud.req('POST', `${I}/users/${user.id}/application_credentials`, { token: user.token, body: { application_credential: { name: `bad-${rule.method}-${rule.path.length}-${rule.service}`, access_rules: [rule] } } });
    assertKeystoneError(r, 400);
  }
  const c = await cloud.req('POST', `${I}/users/${user.id}/application_credentials`, { token: user.token, body: { application_credential: { name: 'rule-in-use', access_rules: [{ service: 'compute', method: 'GET', path: '/v2.1/flavors' }] } } });
  assert.equal(c.status, 201);
  assertKeystoneError(await cloud.req('DELETE', `${I}/users/${user.id}/access_rules/${c.body.application_credential.access_rules[0].id}`, { token: user.token }), 403);
});

test('only an unrestricted application credential may create credentials and application credentials', async () => {
  const restricted = await appCred('restricted');
  assert.equal(restricted.body.token.application_credential.restricted, true);
  assert.equal(restricted.body.token.application_credential.access_rules, undefined);
  const project = restricted.body.token.project.id;
  // no access rules: every route is reachable, but minting secrets is not
  assert.equal((await api('GET', '/servers/detail', undefined, {}, restricted.token)).status, 200);
  assertKeystoneError(await cloud.req('POST', `${I}/users/${user.id}/credentials/OS-EC2`, { token: restricted.token, body: { tenant_id: project } }), 403);
  assertKeystoneError(await cloud.req('POST', `${I}/credentials`, { token: restricted.token, body: { credential: { user_id: user.id, project_id: project, type: 'ec2', blob: JSON.stringify({ access: 'ak-r', secret: 's' }) } } }), 403);
  assertKeystoneError(await cloud.req('POST', `${I}/users/${user.id}/application_credentials`, { token: restricted.token, body: { application_credential: { name: 'child' } } }), 403);
  assertKeystoneError(await cloud.req('DELETE', `${I}/users/${user.id}/application_credentials/${restricted.id}`, { token: restricted.token }), 403);
  assertKeystoneError(await cloud.req('POST', `${I}/OS-TRUST/trusts`, { token: restricted.token, body: { trust: { trustor_user_id: user.id, trustee_user_id: user.id, impersonation: false, project_id: project, roles: [{ name: 'member' }] } } }), 403);

  const open = await appCred('unrestricted', { unrestricted: true });
  assert.equal(open.body.token.application_credential.restricted, false);
  const ec2 = await cloud.req('POST', `${I}/users/${user.id}/credentials/OS-EC2`, { token: open.token, body: { tenant_id: project } });
  assert.equal(ec2.status, 201, ec2.text);
  const child = await cloud.req('POST', `${I}/users/${user.id}/application_credentials`, { token: open.token, body: { application_credential: { name: 'child' } } });
  assert.equal(child.status, 201, child.text);
});
