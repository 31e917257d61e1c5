import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

test('monolithicSparse and streamOptimized are accepted with their capacity', () => {
  for (const [img, type] of [[images.vmdkSparse(w), 'monolithicSparse'], [images.vmdkStream(w), 'streamOptimized']] as const) {
    const v = inspectAllChunkings(img, { declared: 'vmdk' });
    assert.equal(v.detected, 'vmdk');
    assert.equal(v.virtualSize, 16 * 2 ** 20);
    assert.deepEqual(v.errors, []);
    assert.equal(v.details.create_type, type);
  }
});

test('an extent outside the image (FLAT on /etc/passwd) is refused', () => {
  const v = inspectAllChunkings(images.vmdkExtentOutside(w), { declared: 'vmdk' });
  assert.equal(v.detected, 'vmdk');
  assert.ok(v.errors.some((e) => /2 extents/.test(e)), v.errors.join('; '));
  assert.ok(v.errors.some((e) => /extent of type FLAT \("\/etc\/passwd"\) lies outside the image/.test(e)), v.errors.join('; '));
});

test('a descriptor-only monolithicFlat VMDK is refused', () => {
  const v = inspectAllChunkings(images.vmdkFlatDescriptor(w), { declared: 'vmdk' });
  assert.equal(v.detected, 'vmdk');
  assert.ok(v.errors.some((e) => /create type "monolithicFlat" is not allowed/.test(e)), v.errors.join('; '));
  assert.ok(v.errors.some((e) => /descriptor file whose data lives in other files/.test(e)), v.errors.join('; '));
});

test('vmdk_allowed_types narrows what is accepted', () => {
  const v = inspectAllChunkings(images.vmdkSparse(w), { declared: 'vmdk', vmdkAllowedTypes: ['streamOptimized'] });
  assert.ok(v.errors.some((e) => /"monolithicSparse" is not allowed/.test(e)));
});

test('a vmdk declared qcow2 is refused', () => {
  const v = inspectAllChunkings(images.vmdkSparse(w), { declared: 'qcow2' });
  assert.match(v.errors[0], /the data is a vmdk image/);
});
