import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

test('a LUKS1 volume (qemu-img) is recognised with its payload size, and refused as raw', () => {
  const v = inspectAllChunkings(images.luks1(w), { declared: 'raw' });
  assert.equal(v.detected, 'luks');
  assert.equal(v.details.luks_version, 1);
  assert.equal(v.virtualSize, 4 << 20);
  assert.deepEqual(v.errors, ['Image content does not match disk_format raw: the data is a luks image']);
});

test('a LUKS2 volume is recognised from its binary header and JSON segments', () => {
  const v = inspectAllChunkings(images.luks2(1 << 20), { declared: 'raw' });
  assert.equal(v.detected, 'luks');
  assert.equal(v.details.luks_version, 2);
  assert.equal(v.virtualSize, 1 << 20);
  assert.equal(v.errors.length, 1);
});

test('LUKS passes when the format match is not required; an unknown LUKS version does not', () => {
  assert.deepEqual(inspectAllChunkings(images.luks2(), { declared: 'raw', requireMatch: false }).errors, []);
  const b = images.luks2();
  b.writeUInt16BE(3, 6);
  const v = inspectAllChunkings(b, { declared: 'raw', requireMatch: false });
  assert.equal(v.detected, 'luks');
  assert.deepEqual(v.errors, ['Image does not pass safety check: luks version 3 is not supported']);
});

test('a truncated LUKS header is still LUKS (never raw)', () => {
  const v = inspectAllChunkings(images.luks1(w).subarray(0, 600), { declared: 'raw' });
  assert.equal(v.detected, 'luks');
  assert.equal(v.errors.length, 1);
  const v2 = inspectAllChunkings(images.luks2().subarray(0, 100), { declared: 'raw' });
  assert.equal(v2.detected, 'luks');
  assert.ok(v2.errors.length >= 1);
});
