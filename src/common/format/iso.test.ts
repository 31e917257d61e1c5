import { test } from 'node:test';
import assert from 'node:assert/strict';
import { images, pattern } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

test('an ISO 9660 image is recognised with its volume size', () => {
  const v = inspectAllChunkings(images.iso(), { declared: 'iso' });
  assert.equal(v.detected, 'iso');
  assert.equal(v.virtualSize, 64 * 2048);
  assert.deepEqual(v.errors, []);
});

test('an ISO declared raw is refused, raw declared iso too', () => {
  assert.match(inspectAllChunkings(images.iso(), { declared: 'raw' }).errors[0], /the data is an iso image/);
  assert.match(inspectAllChunkings(pattern(200_000), { declared: 'iso' }).errors[0], /not an iso image/);
});
