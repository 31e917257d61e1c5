// Identity on the route kit, on a real all-in-one: response schemas against the captured Zed
// responses and Stratus's own; one test per class of bad input (malformed JSON, a body that is not
// an object, wrong types, unknown fields where Keystone refuses them, deep nesting, oversized
// bodies, no token, 405), each in Keystone's shape and words; and every identity row driven with
// hostile input as an admin, another project's member and a reader — never a 5xx, never a status
// the row does not declare.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { projectUser } from './helpers/compute.ts';
import { checkResponse, registeredTables, undeclaredStatuses, type RouteRow } from '../src/common/http/route-kit.ts';

const I = '/identity';
const REF = new URL('./fixtures/reference/openstack-zed/', import.meta.url);
const capture = (name: string) => JSON.parse(readFileSync(new URL(`${name}.json`, REF), 'utf8'));
const NOT_JSON = 'Expecting to find valid JSON in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.';

let cloud: TestCloud;
const tokens: Record<string, string> = {};

before(async () => {
  cloud = await startCloud();
  tokens.admin = await cloud.adminToken();
  tokens.memberB = await projectUser(cloud, tokens.admin, 'ik-b', 'ik-member-b', 'member');
  tokens.readerA = await projectUser(cloud, tokens.admin, 'admin', 'ik-reader-a', 'reader');
});
after(async () => { await cloud?.stop(); });

const rows = () => {
  const t = registeredTables.get(I);
  assert.ok(t, `identity table not registered: ${[...registeredTables.keys()]}`);
  return t;
};
const row = (method: string, path: string): RouteRow<unknown> => {
  const r = rows().find((x) => x.method === method && x.path === path);
  assert.ok(r, `${method} ${path}`);
  return r;
};
type Res = Awaited<ReturnType<TestCloud['req']>>;
const keystoneError = (res: Res, status: number, message?: string | RegExp) => {
  assert.equal(res.status, status, res.text.slice(0, 300));
  assert.deepEqual(Object.keys(res.body?.error ?? {}).sort(), ['code', 'message', 'title'], res.text.slice(0, 300));
  assert.equal(res.body.error.code, status);
  assert.ok(res.headers.get('x-openstack-request-id')?.startsWith('req-'), 'request id');
  if (typeof message === 'string') assert.equal(res.body.error.message, message);
  else if (message) assert.match(res.body.error.message, message);
};
const v3 = (method: string, path: string, body?: unknown, token = tokens.admin) => cloud.req(method, `${I}/v3${path}`, { token, body });
const raw = (method: string, path: string, text: string, token: string | undefined = tokens.admin) =>
  cloud.req(method, `${I}/v3${path}`, { token, raw: text, headers: { 'content-type': 'application/json' } });

test('response schemas: the captured Zed responses and Stratus\'s own validate; broken ones do not', async () => {
  const checks: [RouteRow<unknown>, number, unknown, string][] = [
    [row('GET', '/'), 300, capture('01-keystone-root'), 'zed root'],
    [row('GET', '/v3'), 200, capture('02-keystone-v3'), 'zed v3'],
    [row('POST', '/v3/auth/tokens'), 201, capture('09-keystone-token-issue'), 'zed token issue'],
    [row('GET', '/v3/auth/tokens'), 200, capture('10-keystone-token-validate'), 'zed token validate'],
  ];
  const ok = async (r: RouteRow<unknown>, status: number, res: Res, what: string) => {
    assert.equal(res.status, status, `${what}: ${res.text.slice(0, 300)}`);
    checks.push([r, status, res.body, `stratus ${what}`]);
    return res.body;
  };
  await ok(row('GET', '/'), 300, await cloud.req('GET', `${I}/`), 'root');
  await ok(row('GET', '/v3'), 200, await cloud.req('GET', `${I}/v3`), 'v3');
  const login = await cloud.req('POST', `${I}/v3/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: cloud.adminPassword } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } } });
  await ok(row('POST', '/v3/auth/tokens'), 201, login, 'token issue');
  const unscoped = await cloud.req('POST', `${I}/v3/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: cloud.adminPassword } } }, scope: 'unscoped' } } });
  await ok(row('POST', '/v3/auth/tokens'), 201, unscoped, 'unscoped token issue');
  await ok(row('GET', '/v3/auth/tokens'), 200, await cloud.req('GET', `${I}/v3/auth/tokens`, { token: tokens.admin, headers: { 'x-subject-token': tokens.memberB } }), 'token validate');
  await ok(row('GET', '/v3/auth/catalog'), 200, await v3('GET', '/auth/catalog'), 'catalog');
  await ok(row('GET', '/v3/auth/projects'), 200, await v3('GET', '/auth/projects'), 'auth projects');
  await ok(row('GET', '/v3/auth/domains'), 200, await v3('GET', '/auth/domains'), 'auth domains');

  const dom = (await ok(row('POST', '/v3/domains'), 201, await v3('POST', '/domains', { domain: { name: 'ik-dom', description: 'd' } }), 'domain create')).domain;
  await ok(row('GET', '/v3/domains/:id'), 200, await v3('GET', `/domains/${dom.id}`), 'domain show');
  await ok(row('PATCH', '/v3/domains/:id'), 200, await v3('PATCH', `/domains/${dom.id}`, { domain: { description: null } }), 'domain update');
  await ok(row('GET', '/v3/domains'), 200, await v3('GET', '/domains'), 'domains');
  const proj = (await ok(row('POST', '/v3/projects'), 201, await v3('POST', '/projects', { project: { name: 'ik-p', domain_id: 'default', tags: ['a', 'b'], extra_attr: 1 } }), 'project create')).project;
  await ok(row('GET', '/v3/projects/:id'), 200, await v3('GET', `/projects/${proj.id}`), 'project show');
  await ok(row('PATCH', '/v3/projects/:id'), 200, await v3('PATCH', `/projects/${proj.id}`, { project: { enabled: false } }), 'project update');
  await ok(row('GET', '/v3/projects'), 200, await v3('GET', '/projects'), 'projects');
  const user = (await ok(row('POST', '/v3/users'), 201, await v3('POST', '/users', { user: { name: 'ik-u', password: 'pw', email: 'u@example.org', default_project_id: proj.id } }), 'user create')).user;
  await ok(row('GET', '/v3/users/:id'), 200, await v3('GET', `/users/${user.id}`), 'user show');
  await ok(row('PATCH', '/v3/users/:id'), 200, await v3('PATCH', `/users/${user.id}`, { user: { enabled: true, options: { lock_password: null } } }), 'user update');
  await ok(row('GET', '/v3/users'), 200, await v3('GET', '/users'), 'users');
  const group = (await ok(row('POST', '/v3/groups'), 201, await v3('POST', '/groups', { group: { name: 'ik-g' } }), 'group create')).group;
  await ok(row('GET', '/v3/groups/:id'), 200, await v3('GET', `/groups/${group.id}`), 'group show');
  await ok(row('GET', '/v3/groups'), 200, await v3('GET', '/groups'), 'groups');
  const role = (await ok(row('POST', '/v3/roles'), 201, await v3('POST', '/roles', { role: { name: 'ik-r' } }), 'role create')).role;
  await ok(row('GET', '/v3/roles/:id'), 200, await v3('GET', `/roles/${role.id}`), 'role show');
  await ok(row('GET', '/v3/roles'), 200, await v3('GET', '/roles'), 'roles');
  for (const q of ['', '?include_names', '?effective', '?effective&include_names']) {
    await ok(row('GET', '/v3/role_assignments'), 200, await v3('GET', `/role_assignments${q}`), `role assignments${q}`);
  }
  const svc = (await ok(row('POST', '/v3/services'), 201, await v3('POST', '/services', { service: { type: 'ik-type', name: 'ik' } }), 'service create')).service;
  await ok(row('GET', '/v3/services/:id'), 200, await v3('GET', `/services/${svc.id}`), 'service show');
  await ok(row('GET', '/v3/services'), 200, await v3('GET', '/services'), 'services');
  const ep = (await ok(row('POST', '/v3/endpoints'), 201, await v3('POST', '/endpoints', { endpoint: { interface: 'public', service_id: svc.id, url: 'http://127.0.0.1:1/ik', region_id: 'RegionOne' } }), 'endpoint create')).endpoint;
  await ok(row('GET', '/v3/endpoints/:id'), 200, await v3('GET', `/endpoints/${ep.id}`), 'endpoint show');
  await ok(row('GET', '/v3/endpoints'), 200, await v3('GET', '/endpoints'), 'endpoints');
  await ok(row('POST', '/v3/regions'), 201, await v3('POST', '/regions', { region: { id: 'ik-region', description: 'r' } }), 'region create');
  await ok(row('GET', '/v3/regions/:id'), 200, await v3('GET', '/regions/ik-region'), 'region show');
  await ok(row('GET', '/v3/regions'), 200, await v3('GET', '/regions'), 'regions');
  const adminUser = login.body.token.user.id;
  const cred = (await ok(row('POST', '/v3/credentials'), 201, await v3('POST', '/credentials', { credential: { type: 'totp', user_id: adminUser, blob: 'secret' } }), 'credential create')).credential;
  await ok(row('GET', '/v3/credentials/:id'), 200, await v3('GET', `/credentials/${cred.id}`), 'credential show');
  await ok(row('GET', '/v3/credentials'), 200, await v3('GET', '/credentials'), 'credentials');
  const ac = (await ok(row('POST', '/v3/users/:uid/application_credentials'), 201, await v3('POST', `/users/${adminUser}/application_credentials`, { application_credential: { name: 'ik-ac', access_rules: [{ service: 'compute', method: 'GET', path: '/v2.1/servers' }] } }), 'app cred create')).application_credential;
  await ok(row('GET', '/v3/users/:uid/application_credentials/:id'), 200, await v3('GET', `/users/${adminUser}/application_credentials/${ac.id}`), 'app cred show');
  await ok(row('GET', '/v3/users/:uid/application_credentials'), 200, await v3('GET', `/users/${adminUser}/application_credentials`), 'app creds');
  const trust = (await ok(row('POST', '/v3/OS-TRUST/trusts'), 201, await v3('POST', '/OS-TRUST/trusts', { trust: { trustor_user_id: adminUser, trustee_user_id: user.id, impersonation: false, project_id: login.body.token.project.id, roles: [{ name: 'reader' }] } }), 'trust create')).trust;
  await ok(row('GET', '/v3/OS-TRUST/trusts/:id'), 200, await v3('GET', `/OS-TRUST/trusts/${trust.id}`), 'trust show');

  for (const [r, status, body, what] of checks) assert.deepEqual(checkResponse(r, status, body), [], what);

  // Schemas that can fail.
  const noAudit = capture('09-keystone-token-issue');
  delete noAudit.token.audit_ids;
  assert.notDeepEqual(checkResponse(row('POST', '/v3/auth/tokens'), 201, noAudit), []);
  const badEndpoint = capture('10-keystone-token-validate');
  badEndpoint.token.catalog[0].endpoints[0].interface = 'everywhere';
  assert.notDeepEqual(checkResponse(row('GET', '/v3/auth/tokens'), 200, badEndpoint), []);
  const noVersion = capture('02-keystone-v3');
  noVersion.version.extra = 1;
  assert.notDeepEqual(checkResponse(row('GET', '/v3'), 200, noVersion), []);
  assert.notDeepEqual(checkResponse(row('GET', '/v3/users/:id'), 200, { user: { id: 'x', name: 'n', domain_id: 'default', enabled: 'yes', links: { self: 'x' } } }), []);
  assert.notDeepEqual(checkResponse(row('GET', '/v3/projects'), 200, { projects: [] }), [], 'a list without links');
  assert.notDeepEqual(checkResponse(row('POST', '/v3/users/:uid/application_credentials'), 201, { application_credential: { ...ac, secret: undefined } }), [], 'a created credential without its secret');
});

test('malformed JSON and bodies that are not objects: Keystone\'s "valid JSON" 400', async () => {
  for (const [method, path] of [['POST', '/users'], ['POST', '/projects'], ['PATCH', '/domains/default'], ['POST', '/auth/tokens'], ['PUT', '/projects/x/tags']] as const) {
    for (const text of ['{"user": ', '[1, 2', '{bad}']) keystoneError(await raw(method, path, text), 400, NOT_JSON);
    for (const text of ['[]', '5', '"user"', 'null', 'true']) keystoneError(await raw(method, path, text), 400, NOT_JSON);
  }
});

test('wrong types, missing fields and Keystone\'s id-or-name checks: Keystone\'s exact words', async () => {
  const name5 = await v3('POST', '/users', { user: { name: 5 } });
  keystoneError(name5, 400, "Invalid input for field 'name': 5 is not of type 'string'\n\nFailed validating 'type' in schema['properties']['name']:\n    {'maxLength': 255,\n     'minLength': 1,\n     'pattern': '[\\\\S]+',\n     'type': 'string'}\n\nOn instance['name']:\n    5");
  keystoneError(await v3('POST', '/projects', { project: { name: 'p', enabled: 'yes' } }), 400, /^Invalid input for field 'enabled': 'yes' is not of type 'boolean'\n\nFailed validating 'type' in schema\['properties'\]\['enabled'\]:\n {4}\{'enum': \[True, False, None\], 'type': 'boolean'\}/);
  // A missing entity is validated as {} (Keystone's request_body_json.get('user', {})), a missing body too.
  keystoneError(await v3('POST', '/users', {}), 400, /^'name' is a required property\n\nFailed validating 'required' in schema:\n/);
  keystoneError(await cloud.req('POST', `${I}/v3/groups`, { token: tokens.admin }), 400, /^'name' is a required property/);
  keystoneError(await v3('PATCH', '/projects/x', { project: {} }), 400, /^\{\} does not have enough properties/);
  // Services, endpoints, regions read the entity without a default: None.
  keystoneError(await v3('POST', '/services', {}), 400, /^None is not of type 'object'/);
  keystoneError(await v3('POST', '/endpoints', { endpoint: { interface: 'everywhere', service_id: 'x', url: 'http://x' } }), 400, /^Invalid input for field 'interface': 'everywhere' is not one of \['admin', 'internal', 'public'\]/);
  keystoneError(await v3('PUT', '/projects/x/tags', { tags: ['a', 'a'] }), 400, /^\['a', 'a'\] has non-unique elements\n\nFailed validating 'uniqueItems' in schema:/);
  keystoneError(await v3('POST', '/credentials', { credential: { type: 'ec2', user_id: 'u', blob: '{}' } }), 400, /is not valid under any of the given schemas/);
  keystoneError(await v3('POST', '/OS-TRUST/trusts', { trust: { trustor_user_id: 'a', trustee_user_id: 'b', impersonation: true, remaining_uses: 0 } }), 400, /^Invalid input for field 'remaining_uses': 0 is less than the minimum of 1/);
  // Token requests: the schema, then validate_issue_token_auth's id-or-name rule, then AuthInfo's.
  const auth = (a: unknown) => cloud.req('POST', `${I}/v3/auth/tokens`, { body: { auth: a } });
  keystoneError(await auth({ identity: { methods: 'password' } }), 400, /^Invalid input for field 'identity\/methods': 'password' is not of type 'array'/);
  keystoneError(await auth({ identity: { methods: ['password'], password: { user: { password: 'x' } } } }), 400, 'Invalid input for field identity/password/user: id or name must be present.');
  keystoneError(await auth({ identity: { methods: ['password'], password: { user: { id: 'x', password: 'x' } } }, scope: { project: { domain: {} } } }), 400, 'Invalid input for field scope/project: id or name must be present.');
  keystoneError(await auth({ identity: { methods: ['password'] } }), 400, /^Expecting to find password in identity\./);
  keystoneError(await cloud.req('POST', `${I}/v3/auth/tokens`, { body: {} }), 400, /^Expecting to find auth in request body\./);
  keystoneError(await cloud.req('PUT', `${I}/v3/projects/x/tags/a,b`, { token: tokens.admin }), 404);
});

test('unknown fields: kept as extra attributes, refused where Keystone refuses them', async () => {
  const p = await v3('POST', '/projects', { project: { name: 'ik-extra', colour: 'blue' } });
  assert.equal(p.status, 201, p.text);
  assert.equal(p.body.project.colour, 'blue');
  // A service's description is no property of its schema: any JSON value is kept, a string one replaces it.
  const svc = await v3('POST', '/services', { service: { type: 'ik-extra', description: { lang: 'en' } } });
  assert.equal(svc.status, 201, svc.text);
  assert.deepEqual(svc.body.service.description, { lang: 'en' });
  const svc2 = await v3('PATCH', `/services/${svc.body.service.id}`, { service: { description: 'plain' } });
  assert.equal(svc2.body.service.description, 'plain', svc2.text);
  assert.equal((await v3('GET', `/services/${svc.body.service.id}`)).body.service.description, 'plain');
  keystoneError(await v3('POST', '/users', { user: { name: 'ik-x', options: { no_such_option: true } } }), 400, /^Invalid input for field 'options': Additional properties are not allowed \('no_such_option' was unexpected\)/);
  keystoneError(await cloud.req('POST', `${I}/v3/users/x/password`, { body: { user: { password: 'a', original_password: 'b', colour: 'blue' } } }), 400, /^Additional properties are not allowed \('colour' was unexpected\)/);
  const me = (await cloud.req('GET', `${I}/v3/auth/tokens`, { token: tokens.admin, headers: { 'x-subject-token': tokens.admin } })).body.token.user.id;
  keystoneError(await v3('POST', `/users/${me}/application_credentials`, { application_credential: { name: 'ik-rules', access_rules: [{ service: 'compute', method: 'GET', path: '/x', colour: 'blue' }] } }), 400, /^Invalid input for field 'access_rules\/0': Additional properties are not allowed \('colour' was unexpected\)/);
  keystoneError(await v3('POST', '/OS-TRUST/trusts', { trust: { trustor_user_id: me, trustee_user_id: me, impersonation: false, roles: [{ id: 'a', name: 'b' }] } }), 400, /^Invalid input for field 'roles\/0': \{'id': 'a', 'name': 'b'\} has too many properties/);
});

test('deep nesting and oversized bodies: 400 and 413 in Keystone\'s shape', async () => {
  const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
  for (const [method, path] of [['POST', '/users'], ['POST', '/auth/tokens'], ['PATCH', '/projects/x'], ['POST', '/OS-TRUST/trusts']] as const) {
    keystoneError(await raw(method, path, deep), 400, /deeper than 100 levels/);
    keystoneError(await raw(method, path, `{"user": {"name": "${'x'.repeat(2 * 1024 * 1024)}"}}`), 413);
  }
});

test('no token, or a garbage one: 401 in Keystone\'s shape on every row that needs one, whatever the body', async () => {
  const open = new Set(['GET /', 'GET /v3', 'POST /v3/auth/tokens', 'POST /v3/users/:id/password', 'POST /v3/ec2tokens', 'POST /v3/s3tokens',
    'POST /v3/OS-OAUTH1/request_token', 'POST /v3/OS-OAUTH1/access_token']);
  let n = 0;
  for (const r of rows()) {
    if (open.has(`${r.method} ${r.path}`)) continue;
    const path = `${I}${r.path.replace(/:[A-Za-z_]+/g, 'x')}`;
    for (const tok of [undefined, 'garbage']) {
      for (const body of r.method === 'GET' || r.method === 'HEAD' || r.method === 'DELETE' ? [undefined] : [undefined, '{"credential": 5, "trust": []}']) {
        const res = await cloud.req(r.method, path, { token: tok, raw: body, headers: body ? { 'content-type': 'application/json' } : {} });
        assert.equal(res.status, 401, `${r.method} ${r.path} ${tok} ${body}: ${res.text.slice(0, 200)}`);
        if (r.method !== 'HEAD') assert.equal(res.body?.error?.code, 401, `${r.method} ${r.path}`);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Keystone uri=/, `${r.method} ${r.path}`);
        n++;
      }
    }
  }
  assert.ok(n > 150, `${n} requests`);
});

test('a known path with another method: 405 with werkzeug\'s words and a sorted Allow', async () => {
  const byPath = new Map<string, Set<string>>();
  for (const r of rows()) byPath.set(r.path, (byPath.get(r.path) ?? new Set()).add(r.method));
  for (const [p, methods] of byPath) {
    const other = ['PATCH', 'PUT', 'DELETE', 'POST'].find((m) => !methods.has(m));
    if (!other) continue;
    const res = await cloud.req(other, `${I}${p.replace(/:[A-Za-z_]+/g, 'x')}`, { token: tokens.readerA });
    keystoneError(res, 405, 'The method is not allowed for the requested URL.');
    assert.equal(res.headers.get('allow'), [...methods].sort().join(', '), `${other} ${p}`);
  }
});

test('policies run before the body: a reader with a malformed or invalid body gets 403', async () => {
  for (const [method, path, body] of [['POST', '/users', '{bad'], ['POST', '/projects', '{"project": {"name": 5}}'], ['PATCH', '/domains/default', '[]'], ['POST', '/roles', '{}'], ['POST', '/services', '{}']] as const) {
    keystoneError(await raw(method, path, body, tokens.readerA), 403);
    keystoneError(await raw(method, path, body, tokens.admin), 400);
  }
});

test('every identity row, driven with hostile input as admin, another project\'s member and a reader: no 5xx, no undeclared status', async () => {
  const ids = ['x', '3cdcb87814404848a392ac3f85176036'];
  const bodies = [undefined, '{bad', '[]', '{}', '{"user": 1, "project": [], "auth": "x", "credential": {"blob": 5}, "trust": {"roles": "all"}, "tags": {}, "roles": [{}]}',
    '{"auth": {"identity": {"methods": ["password", "token", "application_credential", "oauth1"], "password": {"user": {"name": "x"}}}}, "domain": {"name": ""}, "region": {"id": []}}',
    '['.repeat(500) + ']'.repeat(500),
    // Entities that pass their schemas, with JSON of any type where Keystone keeps extra attributes.
    JSON.stringify({
      service: { type: 'ik-h', description: { x: 1 } }, role: { name: 'ik-h', domain_id: { a: 1 } }, user: { name: 'ik-h', email: { a: 1 }, id: [] },
      endpoint: { interface: 'public', service_id: 'nope', url: 'http://x', legacy_endpoint_id: [] }, region: { id: 'ik-h', extra: { a: [] } },
      credential: { type: 'x', user_id: 'nope', blob: 'b', id: {} }, policy: { type: 't', blob: 'b', id: {} }, consumer: { description: 'd', secret: {} },
      domain: { name: 'ik-h', explicit_domain_id: {} }, project: { name: 'ik-h', id: [], parent_id: 'nope' }, group: { name: 'ik-h', id: {} },
      endpoint_group: { name: 'n', filters: { service_id: {} } }, trust: { trustor_user_id: 'a', trustee_user_id: 'b', impersonation: false, expires_at: 'soon' },
      application_credential: { name: 'ik-h', expires_at: 'never', roles: [{ name: 'nope' }] }, tags: ['a'], config: { ldap: { url: {} } }, tenant_id: {},
    })];
  let n = 0;
  for (const r of rows()) {
    for (const idv of ids) {
      const path = I + r.path.replace(/:[A-Za-z_]+/g, idv);
      for (const who of ['admin', 'memberB', 'readerA']) {
        for (const body of r.method === 'GET' || r.method === 'HEAD' || r.method === 'DELETE' ? [undefined] : bodies) {
          const res = await cloud.req(r.method, path, { token: tokens[who], raw: body, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'x-subject-token': 'garbage' } });
          n++;
          assert.ok(res.status < 500, `${r.method} ${path} as ${who} with ${body?.slice(0, 40)} → ${res.status} ${res.text.slice(0, 200)}`);
          if (res.status >= 400 && r.method !== 'HEAD') assert.equal(res.body?.error?.code, res.status, `${r.method} ${path}: ${res.text.slice(0, 200)}`);
        }
      }
    }
  }
  assert.ok(n > 1500, `${n} requests`);
  const mine = [...undeclaredStatuses].filter(([k]) => rows().some((r) => `${r.method} ${r.path}` === k));
  assert.deepEqual(Object.fromEntries(mine.map(([k, v]) => [k, [...v]])), {}, 'statuses answered that identity rows do not declare');
});
