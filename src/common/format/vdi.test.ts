import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

test('a VDI is recognised with its disk size', () => {
  const v = inspectAllChunkings(images.vdi(w), { declared: 'vdi' });
  assert.equal(v.detected, 'vdi');
  assert.equal(v.virtualSize, 16 * 2 ** 20);
  assert.deepEqual(v.errors, []);
});

test('a differencing VDI is refused', () => {
  const b = images.vdi(w);
  b.writeUInt32LE(4, 0x4c);
  b.fill(0xab, 440, 456);
  const v = inspectAllChunkings(b, { declared: 'vdi' });
  assert.ok(v.errors.some((e) => /differencing/.test(e)), v.errors.join('; '));
  assert.ok(v.errors.some((e) => /parent/.test(e)), v.errors.join('; '));
});
