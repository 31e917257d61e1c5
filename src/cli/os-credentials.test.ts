import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientCredentials } from './os-credentials.ts';

test('clientCredentials: the OS_* environment, as admin-openrc sets it', () => {
  const c = clientCredentials(undefined, { OS_AUTH_URL: 'http://h/identity', OS_USERNAME: 'admin', OS_PASSWORD: 'p', OS_PROJECT_NAME: 'admin', OS_USER_DOMAIN_NAME: 'Default', OS_INTERFACE: 'public' });
  assert.deepEqual([c.authUrl, c.username, c.projectName, c.userDomainName, c.interface], ['http://h/identity', 'admin', 'admin', 'Default', 'public']);
  assert.throws(() => clientCredentials(undefined, { OS_USERNAME: 'admin' }), /No auth_url, password, project_name in the OS_\* environment/);
});

test('clientCredentials: a named cloud from OS_CLIENT_CONFIG_FILE; an unknown cloud is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-clouds-'));
  try {
    const file = join(dir, 'clouds.yaml');
    writeFileSync(file, 'clouds:\n  stratus:\n    auth:\n      auth_url: http://h:1/identity\n      username: u\n      password: pw\n      project_name: p\n      domain_name: D\n    region_name: R1\n');
    const c = clientCredentials('stratus', { OS_CLIENT_CONFIG_FILE: file });
    assert.deepEqual([c.authUrl, c.username, c.password, c.projectName, c.userDomainName, c.projectDomainName, c.region], ['http://h:1/identity', 'u', 'pw', 'p', 'D', 'D', 'R1']);
    assert.equal(clientCredentials(undefined, { OS_CLOUD: 'stratus', OS_CLIENT_CONFIG_FILE: file }).username, 'u');
    assert.throws(() => clientCredentials('nope', { OS_CLIENT_CONFIG_FILE: file }), /No cloud named nope/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
