import { test } from 'node:test';
import assert from 'node:assert/strict';
import { images, pattern } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

test('raw data is raw, virtual size = size', () => {
  const v = inspectAllChunkings(pattern(123_457), { declared: 'raw' });
  assert.equal(v.detected, 'raw');
  assert.equal(v.virtualSize, 123_457);
  assert.deepEqual(v.errors, []);
});

test('an MBR disk is recognised', () => {
  const v = inspectAllChunkings(images.mbrDisk(), { declared: 'raw' });
  assert.equal(v.details.partition_table, 'mbr');
  assert.deepEqual(v.errors, []);
});

test('a GPT disk is recognised; a GPT header with a wrong checksum is refused', () => {
  const ok = inspectAllChunkings(images.gptDisk(), { declared: 'raw' });
  assert.equal(ok.details.partition_table, 'gpt');
  assert.deepEqual(ok.errors, []);
  const bad = inspectAllChunkings(images.gptDisk(true), { declared: 'raw' });
  assert.deepEqual(bad.errors, ['Image does not pass safety check: GPT header checksum is wrong']);
});

test('empty data is raw of size 0', () => {
  const v = inspectAllChunkings(Buffer.alloc(0), { declared: 'raw' });
  assert.equal(v.detected, 'raw');
  assert.equal(v.virtualSize, 0);
});
