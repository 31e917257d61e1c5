// Credential blobs encrypted at rest (SQLite/MariaDB/PostgreSQL per STRATUS_TEST_DB): the
// database never holds a plain secret, the API and EC2 signature checks still see the plaintext,
// and credential_migrate / credential_rotate keep every row readable across key rotations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { openDatabase, type Database } from '../src/common/db/database.ts';
import type { IdentityDB } from '../src/identity/store/schema.ts';
import { credentialKeyRepository } from '../src/identity/index.ts';
import { CredentialRotateRefused, credentialMigrate, credentialRotate } from '../src/identity/credential-keys.ts';

const I = '/identity/v3';
let cloud: TestCloud;
let admin: string;
let idb: Database<IdentityDB>;
let keyDir: string;
before(async () => {
  cloud = await startCloud();
  admin = await cloud.adminToken();
  idb = await openDatabase<IdentityDB>(cloud.config.get('identity_database', 'connection'));
  keyDir = credentialKeyRepository(cloud.config);
});
after(async () => {
  await idb?.close();
  await cloud?.stop();
});

const primaryHash = () => {
  const primary = Math.max(...readdirSync(keyDir).filter((f) => /^\d+$/.test(f)).map(Number));
  return createHash('sha1').update(readFileSync(join(keyDir, String(primary)), 'utf8').trim()).digest('hex');
};
const dbRows = () => idb.db.selectFrom('credentials').selectAll().execute();

async function ec2Signed(cred: { access: string; secret: string }) {
  const params: Record<string, string> = { Action: 'DescribeInstances', AWSAccessKeyId: cred.access, SignatureVersion: '2', SignatureMethod: 'HmacSHA256', Timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
  const qs = Object.keys(params).sort().map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(params[k])}`).join('&');
  const signature = createHmac('sha256', cred.secret).update(`GET\nec2.example\n/\n${qs}`).digest('base64');
  return cloud.req('POST', `${I}/ec2tokens`, { body: { credentials: { access: cred.access, signature, host: 'ec2.example', verb: 'GET', path: '/', params } } });
}

test('the database holds no plain secret; the API and ec2tokens see the plaintext', async () => {
  const me = (await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': admin } })).body.token;
  const totp = await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: me.user.id, type: 'totp', blob: 'TOTP-SEED-PLAINTEXT-1234' } } });
  assert.equal(totp.status, 201, totp.text);
  assert.equal(totp.body.credential.blob, 'TOTP-SEED-PLAINTEXT-1234');
  const ec2 = (await cloud.req('POST', `${I}/users/${me.user.id}/credentials/OS-EC2`, { token: admin, body: { tenant_id: me.project.id } })).body.credential;
  const manual = JSON.stringify({ access: 'AKIA-MANUAL-ACCESS', secret: 'MANUAL-SECRET-5678' });
  assert.equal((await cloud.req('POST', `${I}/credentials`, { token: admin, body: { credential: { user_id: me.user.id, project_id: me.project.id, type: 'ec2', blob: manual } } })).status, 201);
  // updated blobs are sealed too
  assert.equal((await cloud.req('PATCH', `${I}/credentials/${totp.body.credential.id}`, { token: admin, body: { credential: { blob: 'TOTP-SEED-PLAINTEXT-UPDATED' } } })).status, 200);

  const rows = await dbRows();
  assert.equal(rows.length, 3);
  const dump = JSON.stringify(rows);
  for (const secret of ['TOTP-SEED-PLAINTEXT', ec2.secret, 'MANUAL-SECRET-5678', 'AKIA-MANUAL-ACCESS', ec2.access]) assert.ok(!dump.includes(secret), `${secret} is stored in plain text`);
  for (const r of rows) assert.equal(r.key_hash, primaryHash());

  assert.equal((await cloud.req('GET', `${I}/credentials/${totp.body.credential.id}`, { token: admin })).body.credential.blob, 'TOTP-SEED-PLAINTEXT-UPDATED');
  const listed = (await cloud.req('GET', `${I}/credentials?type=ec2`, { token: admin })).body.credentials;
  assert.ok(listed.some((c: any) => JSON.parse(c.blob).secret === 'MANUAL-SECRET-5678'));
  assert.equal((await cloud.req('GET', `${I}/users/${me.user.id}/credentials/OS-EC2/${ec2.access}`, { token: admin })).body.credential.secret, ec2.secret);
  // EC2 signature checks decrypt the secret
  const ok = await ec2Signed(ec2);
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await ec2Signed({ access: 'AKIA-MANUAL-ACCESS', secret: 'MANUAL-SECRET-5678' })).status, 200);
  assert.equal((await ec2Signed({ access: ec2.access, secret: 'wrong' })).status, 401);
});

test('plain rows from before encryption are read, then sealed by credential_migrate; rotation waits for it', async () => {
  const me = (await cloud.req('GET', `${I}/auth/tokens`, { token: admin, headers: { 'x-subject-token': admin } })).body.token;
  await idb.db.insertInto('credentials').values({ id: 'legacy-plain-row', user_id: me.user.id, project_id: null, type: 'cert', blob: 'LEGACY-PLAIN-BLOB', key_hash: null, extra: '{}' }).execute();
  assert.equal((await cloud.req('GET', `${I}/credentials/legacy-plain-row`, { token: admin })).body.credential.blob, 'LEGACY-PLAIN-BLOB');
  await assert.rejects(credentialRotate(keyDir, idb.db), CredentialRotateRefused);
  assert.deepEqual(await credentialMigrate(keyDir, idb.db), { migrated: 1 });
  assert.ok(!JSON.stringify(await dbRows()).includes('LEGACY-PLAIN-BLOB'));
  assert.equal((await cloud.req('GET', `${I}/credentials/legacy-plain-row`, { token: admin })).body.credential.blob, 'LEGACY-PLAIN-BLOB');

  // rotate: the running service (still on the old key set) reads rows sealed with either key
  const before = primaryHash();
  await credentialRotate(keyDir, idb.db);
  assert.notEqual(primaryHash(), before);
  await assert.rejects(credentialRotate(keyDir, idb.db), CredentialRotateRefused);
  assert.equal((await credentialMigrate(keyDir, idb.db)).migrated, (await dbRows()).length);
  for (const r of await dbRows()) assert.equal(r.key_hash, primaryHash());
  assert.equal((await cloud.req('GET', `${I}/credentials/legacy-plain-row`, { token: admin })).body.credential.blob, 'LEGACY-PLAIN-BLOB');
  const ec2 = (await cloud.req('GET', `${I}/credentials?type=ec2`, { token: admin })).body.credentials.map((c: any) => JSON.parse(c.blob));
  for (const c of ec2) assert.equal((await ec2Signed(c)).status, 200);
  // a second rotation is allowed now, and a third without migrating is not
  await credentialRotate(keyDir, idb.db);
  await assert.rejects(credentialRotate(keyDir, idb.db), /credential_migrate/);
});
