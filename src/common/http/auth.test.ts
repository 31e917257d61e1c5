import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enforceAccessRules, pathMatches, type AuthContext } from './auth.ts';
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
