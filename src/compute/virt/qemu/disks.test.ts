// The root disk of a spawn: the overlay copied from the per-base template is byte for byte what
// `qemu-img create -b base -F fmt overlay SIZE` writes, a second spawn of the same base and size
// runs no qemu-img, and the cache manager removes a base's templates with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../common/logging.ts';
import { createOverlay } from './disks.ts';
import { ImageCache } from './image-cache.ts';

const GiB = 1024 ** 3;

test('overlays come from a per-base template: identical to qemu-img create, no qemu-img on the second spawn, removed with the base', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-disks-'));
  try {
    // A small qcow2 base, served as the image service would.
    const src = join(dir, 'image.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', src, String(64 * 1024 ** 2)]);
    const cache = new ImageCache(join(dir, '_base'), {
      meta: async (id) => ({ id, name: null, diskFormat: 'qcow2', containerFormat: 'bare', checksum: null, osHashAlgo: null, osHashValue: null, size: null, virtualSize: null, minDisk: 0, minRam: 0, properties: {} }),
      open: async () => createReadStream(src),
    }, createLogger({ level: 'silent' }));
    const base = await cache.get('img-1');

    await createOverlay(base, join(dir, 'disk-a'), 1);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base.path, join(dir, 'direct'), String(GiB)]);
    assert.deepEqual(await readFile(join(dir, 'disk-a')), await readFile(join(dir, 'direct')));
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-f', 'qcow2', join(dir, 'disk-a')]).toString());
    assert.equal(info['virtual-size'], GiB);
    assert.equal(info['backing-filename'], base.path);
    assert.equal(info['backing-filename-format'], 'qcow2');

    // The second overlay of that base and size: no qemu-img to be found, and none needed.
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try { await createOverlay(base, join(dir, 'disk-b'), 1); } finally { process.env.PATH = path; }
    assert.deepEqual(await readFile(join(dir, 'disk-b')), await readFile(join(dir, 'direct')));
    // A disk already there is never overwritten.
    await assert.rejects(createOverlay(base, join(dir, 'disk-b'), 1), /EEXIST/);

    // Another size is another template; the base's size (root 0) a third.
    await createOverlay(base, join(dir, 'disk-c'), 2);
    await createOverlay(base, join(dir, 'disk-d'), 0);
    assert.equal(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-f', 'qcow2', join(dir, 'disk-c')]).toString())['virtual-size'], 2 * GiB);
    assert.equal(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-f', 'qcow2', join(dir, 'disk-d')]).toString())['virtual-size'], 64 * 1024 ** 2);
    assert.equal((await readdir(join(dir, '_base'))).filter((n) => n.includes('.overlay-')).length, 3);

    // An unused base goes with its templates.
    assert.deepEqual(await cache.run(new Set(), 0), ['img-1']);
    assert.deepEqual(await readdir(join(dir, '_base')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
