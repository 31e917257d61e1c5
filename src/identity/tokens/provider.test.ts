// Token lifecycle below the HTTP layer: expiry, revocation by audit id and by user, rescoping
// never extending the lifetime.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type Database } from '../../common/db/database.ts';
import { migrate } from '../../common/db/migrate.ts';
import { createTestDatabase } from '../../../test/helpers/backends.ts';
import { identityMigrations, type IdentityDB } from '../store/schema.ts';
import { IdentityStore } from '../store/store.ts';
import { bootstrap } from '../bootstrap.ts';
import { Fernet, newFernetKey } from './fernet.ts';
import { TokenInvalid, TokenProvider } from './provider.ts';

let t: { url: string; drop(): Promise<void> };
let database: Database<IdentityDB>;
let store: IdentityStore;
let ids: { userId: string; projectId: string };
before(async () => {
  t = await createTestDatabase();
  database = await openDatabase<IdentityDB>(t.url);
  await migrate(database, identityMigrations);
  ids = await bootstrap(database.db, { password: 'pw' });
  store = new IdentityStore(database);
  await store.loadRevocations();
});
after(async () => { await database.close(); await t.drop(); });

test('an expired token is invalid', async () => {
  const p = new TokenProvider(store, Fernet.fromKeys([newFernetKey()]), 1);
  const { id } = p.issue({ userId: ids.userId, methods: ['password'], scope: { projectId: ids.projectId } });
  assert.equal((await p.validate(id)).body.project?.id, ids.projectId);
  await new Promise((r) => setTimeout(r, 1100));
  await assert.rejects(p.validate(id), TokenInvalid);
});

test('revocation by audit id and by user; later tokens are unaffected', async () => {
  const p = new TokenProvider(store, Fernet.fromKeys([newFernetKey()]), 3600);
  const a = p.issue({ userId: ids.userId, methods: ['password'], scope: { projectId: ids.projectId } });
  const b = p.issue({ userId: ids.userId, methods: ['password'], scope: { projectId: ids.projectId } });
  await store.revoke({ auditId: a.payload.a[0] });
  await assert.rejects(p.validate(a.id), TokenInvalid);
  await p.validate(b.id);
  await store.revoke({ userId: ids.userId });
  await assert.rejects(p.validate(b.id), TokenInvalid);
  await new Promise((r) => setTimeout(r, 5));
  const c = p.issue({ userId: ids.userId, methods: ['password'], scope: { projectId: ids.projectId } });
  await p.validate(c.id);
});

test('rescoping keeps the parent audit id and never extends the expiry', () => {
  const p = new TokenProvider(store, Fernet.fromKeys([newFernetKey()]), 3600);
  const parent = p.issue({ userId: ids.userId, methods: ['password'], scope: {} });
  const child = p.issue({ userId: ids.userId, methods: ['token', 'password'], scope: { projectId: ids.projectId }, parentAuditIds: parent.payload.a, expiresAt: parent.payload.e });
  assert.equal(child.payload.e, parent.payload.e);
  assert.equal(child.payload.a[1], parent.payload.a[0]);
});

test('a token from another key repository is refused', async () => {
  const p = new TokenProvider(store, Fernet.fromKeys([newFernetKey()]), 3600);
  const other = new TokenProvider(store, Fernet.fromKeys([newFernetKey()]), 3600);
  const { id } = other.issue({ userId: ids.userId, methods: ['password'], scope: {} });
  await assert.rejects(p.validate(id), TokenInvalid);
});
