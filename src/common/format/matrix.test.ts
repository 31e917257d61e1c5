// Every format the inspectors know, declared as every disk_format Glance accepts: the data is
// accepted only when it is what it was declared as (raw bytes for raw/ami/aki/ari), and it is
// always detected as what it really is, whatever the declaration.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Workshop, images, pattern } from '../../../test/fixtures/image/craft.ts';
import { inspectBuffer } from './testing.ts';

const w = new Workshop();
after(() => w.remove());

const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
const RAW_LIKE = new Set(['raw', 'ami', 'aki', 'ari']);

function ploop(): Buffer {
  const b = pattern(1 << 20);
  b.write('WithoutFreeSpace', 0, 'latin1');
  b.writeUInt32LE(2048, 36);
  return b;
}

// [sample, what it really is]
const SAMPLES: [string, () => Buffer, string][] = [
  ['qcow2', () => images.qcow2(w), 'qcow2'],
  ['qcow2 v2', () => images.qcow2v2(w), 'qcow2'],
  ['vmdk sparse', () => images.vmdkSparse(w), 'vmdk'],
  ['vmdk stream', () => images.vmdkStream(w), 'vmdk'],
  ['vhd dynamic', () => images.vhdDynamic(w), 'vhd'],
  ['vhd fixed', () => images.vhdFixed(w), 'vhd'],
  ['vhdx', () => images.vhdx(w), 'vhdx'],
  ['vdi', () => images.vdi(w), 'vdi'],
  ['iso', () => images.iso(), 'iso'],
  ['ploop', ploop, 'ploop'],
  ['luks1', () => images.luks1(w), 'luks'],
  ['luks2', () => images.luks2(), 'luks'],
  ['raw bytes', () => pattern(1 << 20), 'raw'],
  ['mbr disk', () => images.mbrDisk(), 'raw'],
  ['gpt disk', () => images.gptDisk(), 'raw'],
  ['kernel', () => images.bzImage(), 'raw'],
  ['initramfs', () => images.initrd(), 'raw'],
];

for (const [name, make, real] of SAMPLES) {
  test(`${name} against every declared disk_format`, () => {
    const data = make();
    for (const declared of DISK_FORMATS) {
      const v = inspectBuffer(data, { declared, containerFormat: 'bare' });
      assert.equal(v.detected, real, `${name} declared ${declared}: detected`);
      const shouldPass = real === declared || (real === 'raw' && RAW_LIKE.has(declared));
      if (shouldPass) assert.deepEqual(v.errors, [], `${name} declared ${declared}`);
      else {
        assert.equal(v.errors.length, 1, `${name} declared ${declared}: ${v.errors.join('; ')}`);
        assert.match(v.errors[0], new RegExp(`^Image content does not match disk_format ${declared}: the data is (not )?an? `), `${name} declared ${declared}`);
      }
    }
  });
}
