import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

test('a dynamic VHD is recognised from its leading footer copy', () => {
  const v = inspectAllChunkings(images.vhdDynamic(w), { declared: 'vhd' });
  assert.equal(v.detected, 'vhd');
  assert.equal(v.details.disk_type, 'dynamic');
  assert.equal(v.details.footer_at, 'head');
  assert.ok(v.virtualSize! >= 16 * 2 ** 20 - 2 ** 20, String(v.virtualSize));
  assert.deepEqual(v.errors, []);
});

test('a fixed VHD is recognised from its trailing footer', () => {
  const v = inspectAllChunkings(images.vhdFixed(w), { declared: 'vhd' });
  assert.equal(v.detected, 'vhd');
  assert.equal(v.details.disk_type, 'fixed');
  assert.equal(v.details.footer_at, 'tail');
  assert.deepEqual(v.errors, []);
});

test('a differencing VHD is refused', () => {
  const b = images.vhdDynamic(w);
  // Turn both footer copies into "differencing" (type 4) with a valid checksum.
  for (const off of [0, b.length - 512]) {
    b.writeUInt32BE(4, off + 60);
    let sum = 0;
    for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += b[off + i];
    b.writeUInt32BE((~sum) >>> 0, off + 64);
  }
  const v = inspectAllChunkings(b, { declared: 'vhd' });
  assert.ok(v.errors.some((e) => /differencing disk/.test(e)), v.errors.join('; '));
});

test('a forged footer checksum is refused', () => {
  const b = images.vhdDynamic(w);
  b[40] ^= 1;
  const v = inspectAllChunkings(b, { declared: 'vhd' });
  assert.ok(v.errors.some((e) => /checksum/.test(e)));
});
