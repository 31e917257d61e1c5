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

test('debian image: sizes parse, the tree names its kernel, cloud-init looks for Nova\'s datasources only', async () => {
  const { parseSize, debianTreeFiles, debianImageFacts, CLOUD_CFG } = await import('./debian-image.ts');
  assert.equal(parseSize('2G'), 2 * 2 ** 30);
  assert.equal(parseSize('1536M'), 1536 * 2 ** 20);
  assert.equal(parseSize('1GiB'), 2 ** 30);
  assert.equal(parseSize('4096'), 4096);
  assert.throws(() => parseSize('two gigs'), /expected a size like 2G/);
  const files = debianTreeFiles('6.1.0-9-cloud-amd64');
  assert.match(files['boot/grub/grub.cfg']!, /linux \/boot\/vmlinuz-6\.1\.0-9-cloud-amd64 root=LABEL=debian-root ro .*console=ttyS0/);
  assert.match(files['boot/grub/grub.cfg']!, /initrd \/boot\/initrd\.img-6\.1\.0-9-cloud-amd64/);
  assert.match(files['etc/fstab']!, /^LABEL=debian-root \/ ext4/);
  assert.match(CLOUD_CFG, /datasource_list: \[ ConfigDrive, OpenStack, None \]/);
  assert.match(CLOUD_CFG, /growpart:\n  mode: auto/);
  const facts = debianImageFacts(parseSize('2G') + 1, 'r');
  assert.equal(facts.minDiskGb, 3);
  assert.equal(facts.properties.os_distro, 'debian');
});

test('upload: the image-create body carries formats, min_disk/min_ram and the properties', async () => {
  const { imageCreateBody } = await import('./upload.ts');
  const body = imageCreateBody({ path: '/x', format: 'qcow2', kind: 'debian', kernel: 'r', minDiskGb: 2, minRamMb: 512, properties: { os_distro: 'debian', hw_disk_bus: 'virtio' } }, 'debian-12');
  assert.deepEqual(body, { name: 'debian-12', disk_format: 'qcow2', container_format: 'bare', min_disk: 2, min_ram: 512, os_distro: 'debian', hw_disk_bus: 'virtio' });
});
