import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images, pattern } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

test('a VHDX is recognised with the virtual size from its metadata region', () => {
  const v = inspectAllChunkings(images.vhdx(w), { declared: 'vhdx' });
  assert.equal(v.detected, 'vhdx');
  assert.equal(v.virtualSize, 16 * 2 ** 20);
  assert.deepEqual(v.errors, []);
});

test('a VHDX signature without a region table is refused', () => {
  const b = pattern(512 * 1024);
  b.write('vhdxfile', 0, 'latin1');
  const v = inspectAllChunkings(b, { declared: 'vhdx' });
  assert.equal(v.detected, 'vhdx');
  assert.ok(v.errors.some((e) => /region table signature/.test(e)), v.errors.join('; '));
});

test('a truncated VHDX is refused', () => {
  const v = inspectAllChunkings(images.vhdx(w).subarray(0, 100_000), { declared: 'vhdx' });
  assert.ok(v.errors.some((e) => /past the end/.test(e)), v.errors.join('; '));
});
