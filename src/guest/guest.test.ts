import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModules } from './initramfs.ts';
import { mbr } from './bootdisk.ts';

test('resolveModules: a module and its dependencies, once each; hyphenated files match', () => {
  const dep = [
    'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
    'kernel/drivers/virtio/virtio.ko:',
    'kernel/drivers/virtio/virtio_ring.ko:',
    'kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko',
  ].join('\n');
  assert.deepEqual(resolveModules(dep, ['virtio_blk', 'virtio_rng']), [
    'kernel/drivers/block/virtio_blk.ko', 'kernel/drivers/virtio/virtio.ko', 'kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/char/hw_random/virtio-rng.ko',
  ]);
  assert.throws(() => resolveModules(dep, ['e1000']), /e1000 not in modules.dep/);
});

test('mbr: boot code, one active Linux partition at the given LBA, boot signature', () => {
  const boot = Buffer.alloc(512, 0xaa);
  const b = mbr(boot, 2048, 100_000, 0x01020304);
  assert.equal(b.length, 512);
  assert.equal(b[0], 0xaa);
  assert.equal(b.readUInt32LE(440), 0x01020304);
  assert.equal(b[446], 0x80);
  assert.equal(b[450], 0x83);
  assert.equal(b.readUInt32LE(454), 2048);
  assert.equal(b.readUInt32LE(458), 100_000);
  assert.deepEqual([b[510], b[511]], [0x55, 0xaa]);
  assert.equal(b.subarray(462, 510).every((x) => x === 0), true);
});
