import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fernet, fernetRotate, fernetSetup, loadFernet, newFernetKey } from './fernet.ts';

test('round trip; tampering and foreign keys are refused', () => {
  const f = Fernet.fromKeys([newFernetKey()]);
  const t = f.encrypt(Buffer.from('hello'));
  assert.equal(f.decrypt(t)!.toString(), 'hello');
  const raw = Buffer.from(t, 'base64url');
  raw[30] ^= 1;
  assert.equal(f.decrypt(raw.toString('base64url')), undefined);
  assert.equal(Fernet.fromKeys([newFernetKey()]).decrypt(t), undefined);
  assert.equal(f.decrypt('not-a-token'), undefined);
});

test('rotation: tokens from the previous primary still decrypt; old keys are pruned', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'fernet-')), 'keys');
  assert.deepEqual(await fernetSetup(dir), { created: true });
  assert.deepEqual(await fernetSetup(dir), { created: false });
  const before = await loadFernet(dir);
  const t = before.encrypt(Buffer.from('x'));
  await fernetRotate(dir, 3);
  const after = await loadFernet(dir);
  assert.equal(after.decrypt(t)!.toString(), 'x');
  await fernetRotate(dir, 3);
  await fernetRotate(dir, 3);
  assert.deepEqual(readdirSync(dir).filter((f) => /^\d+$/.test(f)).map(Number).sort((a, b) => a - b), [0, 3, 4]);
  assert.equal((await loadFernet(dir)).decrypt(t), undefined);
});
