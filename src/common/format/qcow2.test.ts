import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images, pattern } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

test('qcow2 v3 and v2 are recognised with their virtual size', () => {
  for (const img of [images.qcow2(w), images.qcow2v2(w)]) {
    const v = inspectAllChunkings(img, { declared: 'qcow2' });
    assert.equal(v.detected, 'qcow2');
    assert.equal(v.virtualSize, 16 * 2 ** 20);
    assert.deepEqual(v.errors, []);
  }
});

test('a qcow2 holding data keeps its virtual size', () => {
  const v = inspectAllChunkings(w.qcow2WithData('data.qcow2', pattern(3 << 20)), { declared: 'qcow2' });
  assert.equal(v.detected, 'qcow2');
  assert.equal(v.virtualSize, 3 << 20);
  assert.deepEqual(v.errors, []);
});

test('a backing file (here /etc/passwd) is refused and named', () => {
  const v = inspectAllChunkings(images.qcow2BackingPasswd(w), { declared: 'qcow2' });
  assert.equal(v.detected, 'qcow2');
  assert.equal(v.errors.length, 1);
  assert.match(v.errors[0], /safety check: qcow2 image has a backing file \("\/etc\/passwd"\)/);
});

test('an external data file is refused', () => {
  const v = inspectAllChunkings(images.qcow2DataFile(w), { declared: 'qcow2' });
  assert.ok(v.errors.some((e) => /external data file/.test(e)), v.errors.join('; '));
});

test('an unknown incompatible feature is refused', () => {
  const v = inspectAllChunkings(images.qcow2UnknownFeature(w), { declared: 'qcow2' });
  assert.ok(v.errors.some((e) => /unknown incompatible features 0x10000000000/.test(e)), v.errors.join('; '));
});

test('a truncated header is refused as such', () => {
  const v = inspectAllChunkings(images.qcow2TruncatedHeader(w), { declared: 'qcow2' });
  assert.equal(v.detected, 'qcow2');
  assert.deepEqual(v.errors, ['Image does not pass safety check: qcow2 header is truncated']);
});

test('a qcow2 declared raw is refused, and its backing file too', () => {
  const v = inspectAllChunkings(images.qcow2BackingPasswd(w), { declared: 'raw' });
  assert.equal(v.detected, 'qcow2');
  assert.match(v.errors[0], /does not match disk_format raw: the data is a qcow2 image/);
  assert.match(v.errors[1], /backing file/);
});

test('raw data declared qcow2 is refused', () => {
  const v = inspectAllChunkings(pattern(1 << 20), { declared: 'qcow2' });
  assert.equal(v.detected, 'raw');
  assert.deepEqual(v.errors, ['Image content does not match disk_format qcow2: the data is not a qcow2 image']);
});

test('with require_image_format_match off, unsafe content is still refused', () => {
  const v = inspectAllChunkings(images.qcow2BackingPasswd(w), { declared: 'raw', requireMatch: false });
  assert.equal(v.errors.length, 1);
  assert.match(v.errors[0], /backing file/);
});
