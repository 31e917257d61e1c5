import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images, pattern } from '../../../test/fixtures/image/craft.ts';
import { inspectAllChunkings } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

test('ami is a raw machine image; a qcow2 declared ami is refused', () => {
  assert.deepEqual(inspectAllChunkings(images.mbrDisk(), { declared: 'ami', containerFormat: 'ami' }).errors, []);
  assert.match(inspectAllChunkings(images.qcow2(w), { declared: 'ami', containerFormat: 'ami' }).errors[0], /the data is a qcow2 image/);
});

test('aki recognises a Linux kernel; a disk image declared aki is refused', () => {
  const v = inspectAllChunkings(images.bzImage(), { declared: 'aki', containerFormat: 'aki' });
  assert.deepEqual(v.errors, []);
  assert.equal(v.details.kernel, 'linux-x86-bzimage');
  assert.match(inspectAllChunkings(images.vdi(w), { declared: 'aki', containerFormat: 'aki' }).errors[0], /the data is a vdi image/);
});

test('ari recognises an initramfs', () => {
  const v = inspectAllChunkings(images.initrd(), { declared: 'ari', containerFormat: 'ari' });
  assert.deepEqual(v.errors, []);
  assert.equal(v.details.ramdisk, 'cpio');
  assert.equal(inspectAllChunkings(pattern(100), { declared: 'ari', containerFormat: 'ari' }).details.ramdisk, null);
});

test('wrapped containers (ova, compressed) skip the disk_format match but not safety', () => {
  assert.deepEqual(inspectAllChunkings(pattern(4096), { declared: 'qcow2', containerFormat: 'compressed' }).errors, []);
  assert.match(inspectAllChunkings(images.qcow2BackingPasswd(w), { declared: 'qcow2', containerFormat: 'ova' }).errors[0], /backing file/);
});
