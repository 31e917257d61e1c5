import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from './passwords.ts';

test('scrypt hashes verify and differ per salt', async () => {
  const a = await hashPassword('s3cret');
  const b = await hashPassword('s3cret');
  assert.notEqual(a, b);
  assert.match(a, /^scrypt\$32768\$8\$1\$/);
  assert.equal(await verifyPassword('s3cret', a), true);
  assert.equal(await verifyPassword('S3cret', a), false);
  assert.equal(await verifyPassword('x', null), false);
});

test('hashing runs off the event loop', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await Promise.all([hashPassword('a'), hashPassword('b')]);
  clearInterval(timer);
  assert.ok(ticks > 5, `event loop stalled: only ${ticks} ticks during hashing`);
});
