import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { enforceAccessRules, pathMatches, RemoteTokenValidator, type AuthContext } from './auth.ts';
import { Forbidden } from '../errors.ts';

test('path templates match as keystonemiddleware matches them', () => {
  // keystonemiddleware's own table (tests/unit/test_access_rules.py).
  const good: [string, string][] = [
    ['/v2/servers', '/v2/servers'],
    ['/v2/servers/123', '/v2/servers/{server_id}'],
    ['/v2/servers/123/', '/v2/servers/{server_id}/'],
    ['/v2/servers/123', '/v2/servers/*'],
    ['/v2/servers/123/', '/v2/servers/*/'],
    ['/v2/servers/123', '/v2/servers/**'],
    ['/v2/servers/123/', '/v2/servers/**'],
    ['/v2/servers/123/456', '/v2/servers/**'],
    ['/v2/servers', '**'],
    ['/v2/servers/', '**'],
    ['/v2/servers/123/volume/456', '**'],
    ['/v2/servers/123/456', '/v2/*/*/*'],
    ['/v2/123/servers/466', '/v2/{project_id}/servers/{server_id}'],
  ];
  for (const [path, t] of good) assert.ok(pathMatches(path, t), `${path} should match ${t}`);
  const bad: [string, string][] = [
    ['/v2/servers/someuuid', '/v2/servers'],
    ['/v2/servers//', '/v2/servers/{server_id}'],
    ['/v2/servers/123/', '/v2/servers/{server_id}'],
    ['/v2/servers/123/456', '/v2/servers/{server_id}'],
    ['/v2/servers/123/456', '/v2/servers/*'],
    ['/v2/servers', 'v2/servers'],
    ['/v2/servers/123/456/789', '/v2/*/*/*'],
    ['/v2/servers/123/', '/v2/*/*/*'],
    ['/v2/servers/', '/v2/servers/{server_id}'],
    ['/v2/servers', '/v2/servers/{server_id}'],
    // Literal characters are literal (keystonemiddleware lets '.' match anything).
    ['/v2x1/servers', '/v2.1/servers'],
    ['/v2.1/servers/(x)', '/v2.1/servers/(y)'],
  ];
  for (const [path, t] of bad) assert.ok(!pathMatches(path, t), `${path} should not match ${t}`);
});

const ctx = (rules?: { service: string; method: string; path: string }[]): AuthContext => ({
  token: 't', userId: 'u', userName: 'u', userDomainId: 'd', userDomainName: 'd', roles: ['member'], roleIds: [],
  expiresAt: '', issuedAt: '', methods: ['application_credential'], auditIds: [],
  applicationCredential: { id: 'ac', restricted: true, accessRules: rules },
});

test('access rules: service, method and path must all match one rule', () => {
  const auth = ctx([{ service: 'compute', method: 'GET', path: '/v2.1/servers' }, { service: 'image', method: 'GET', path: '/v2/images/*' }]);
  enforceAccessRules(auth, 'compute', 'GET', '/v2.1/servers');
  enforceAccessRules(auth, 'image', 'GET', '/v2/images/abc');
  assert.throws(() => enforceAccessRules(auth, 'compute', 'DELETE', '/v2.1/servers'), Forbidden);
  assert.throws(() => enforceAccessRules(auth, 'compute', 'GET', '/v2.1/servers/detail'), Forbidden);
  assert.throws(() => enforceAccessRules(auth, 'compute', 'HEAD', '/v2.1/servers'), Forbidden);
  assert.throws(() => enforceAccessRules(auth, 'placement', 'GET', '/v2.1/servers'), Forbidden);
  assert.throws(() => enforceAccessRules(auth, 'image', 'GET', '/v2/images/abc/file'), Forbidden);
  // validating a token is always allowed; nothing else in identity is
  enforceAccessRules(auth, 'identity', 'GET', '/v3/auth/tokens');
  assert.throws(() => enforceAccessRules(auth, 'identity', 'POST', '/v3/credentials'), Forbidden);
  // an empty rule list allows nothing; no rules at all is no restriction
  assert.throws(() => enforceAccessRules(ctx([]), 'compute', 'GET', '/v2.1/servers'), Forbidden);
  enforceAccessRules(ctx(undefined), 'compute', 'DELETE', '/v2.1/servers/x');
});

/** A minimal Identity: issues a token per password auth, validates any token it issued; counts calls. */
async function fakeIdentity() {
  const calls = { issue: 0, validate: 0 };
  const issued = new Set<string>();
  const body = (id: string) => JSON.stringify({ token: {
    methods: ['password'], user: { id: 'u1', name: 'svc', domain: { id: 'default', name: 'Default' } },
    project: { id: 'p1', name: 'service', domain: { id: 'default', name: 'Default' } }, roles: [{ id: 'r1', name: 'admin' }],
    expires_at: new Date(Date.now() + 3600_000).toISOString(), issued_at: new Date().toISOString(), audit_ids: [id],
  } });
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST') {
        const id = `tok-${++calls.issue}`;
        issued.add(id);
        // Slow enough that concurrent callers overlap.
        setTimeout(() => res.writeHead(201, { 'x-subject-token': id, 'content-type': 'application/json' }).end(body(id)), 30);
        return;
      }
      calls.validate++;
      const subject = String(req.headers['x-subject-token']);
      if (issued.has(subject)) res.writeHead(200, { 'content-type': 'application/json' }).end(body(subject));
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { calls, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`, close: () => new Promise((r) => server.close(r)) };
}

test('service tokens: validators with the same credentials authenticate once; their own token is known without asking Identity until a flush', async () => {
  const idp = await fakeIdentity();
  try {
    const creds = { identityUrl: idp.url, username: 'svc', password: 'pw', projectName: 'service' };
    const a = new RemoteTokenValidator(creds);
    const b = new RemoteTokenValidator(creds);
    const [t1, t2, t3] = await Promise.all([a.getServiceToken(), a.getServiceToken(), b.getServiceToken()]);
    assert.equal(idp.calls.issue, 1);
    assert.equal(t1, t2);
    assert.equal(t1, t3);
    // Another service of the process receiving the token (placement, from the agent).
    const ctx = await b.validate(t1);
    assert.deepEqual([ctx.userName, ctx.projectName, ctx.roles], ['svc', 'service', ['admin']]);
    assert.equal(idp.calls.validate, 0);
    // Different credentials are another user: their own authentication.
    const other = new RemoteTokenValidator({ ...creds, password: 'other' });
    assert.notEqual(await other.getServiceToken(), t1);
    assert.equal(idp.calls.issue, 2);
    // A revocation event: the token is validated by Identity again.
    a.flush();
    b.flush();
    await b.validate(t1);
    assert.equal(idp.calls.validate, 1);
  } finally {
    await idp.close();
  }
});
