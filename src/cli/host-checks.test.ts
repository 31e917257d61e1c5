import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../common/config.ts';
import { baseName } from '../compute/virt/qemu/image-cache.ts';
import { hostChecks, LOW_SPACE_BYTES, type HostFacts } from './host-checks.ts';
import '../compute/config.ts';

let dir: string;
const noVt: HostFacts = { cpuinfo: async () => 'flags\t\t: fpu vme de pse tsc msr\n', kvmDevice: '/nonexistent/kvm', lowSpaceBytes: LOW_SPACE_BYTES };
before(() => { dir = mkdtempSync(join(tmpdir(), 'stratus-hostchecks-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

async function checks(lines: string[], host: HostFacts = noVt) {
  const file = join(dir, `c-${Math.random()}.conf`);
  writeFileSync(file, ['[DEFAULT]', `state_path = ${dir}`, ...lines, ''].join('\n'));
  const out: Record<string, { code: number; details?: string }> = {};
  for (const [name, fn] of hostChecks(await loadConfig(file), host)) out[name] = await fn();
  return out;
}

test('host checks: under the fake driver the qemu checks do not apply; a missing metadata secret is a Warning', async () => {
  const r = await checks(['compute_driver = fake']);
  for (const n of ['Accelerator', 'Instances path free space', 'Image cache', 'QEMU tools']) assert.deepEqual(r[n], { code: 0, details: 'compute_driver = fake: applies to the qemu driver only.' });
  assert.equal(r['Metadata proxy shared secret']!.code, 1);
  assert.match(r['Metadata proxy shared secret']!.details!, /metadata_proxy_shared_secret is not set/);
  assert.equal((await checks(['compute_driver = fake', '[neutron]', 'metadata_proxy_shared_secret = s3cret']))['Metadata proxy shared secret']!.code, 0);
});

test('host checks: the accelerator — no VT-x/AMD-V is the TCG fallback (Warning, explained); virt_type = kvm without /dev/kvm fails; the agent\'s verdict counts', async () => {
  let r = await checks(['compute_driver = qemu']);
  assert.equal(r.Accelerator!.code, 1);
  assert.match(r.Accelerator!.details!, /egrep -c '\(vmx\|svm\)' \/proc\/cpuinfo is 0.*TCG/);
  r = await checks(['compute_driver = qemu', '[libvirt]', 'virt_type = kvm']);
  assert.equal(r.Accelerator!.code, 2);
  assert.match(r.Accelerator!.details!, /\/nonexistent\/kvm is missing/);
  r = await checks(['compute_driver = qemu', '[libvirt]', 'virt_type = qemu']);
  assert.equal(r.Accelerator!.code, 1);
  const cache = join(dir, 'guest-cache');
  mkdirSync(cache, { recursive: true });
  writeFileSync(join(cache, 'accelerator.json'), JSON.stringify({ key: {}, result: { accel: 'tcg', detail: 'KVM probe failed: no output' } }));
  r = await checks(['compute_driver = qemu', '[qemu]', `guest_cache_dir = ${cache}`], { ...noVt, cpuinfo: async () => 'flags : vmx\n' });
  assert.equal(r.Accelerator!.code, 1);
  assert.match(r.Accelerator!.details!, /TCG fallback \(the compute agent's probe: KVM probe failed: no output\)/);
  writeFileSync(join(cache, 'accelerator.json'), JSON.stringify({ key: {}, result: { accel: 'kvm', detail: 'a KVM probe guest ran in 900 ms' } }));
  r = await checks(['compute_driver = qemu', '[qemu]', `guest_cache_dir = ${cache}`]);
  assert.equal(r.Accelerator!.code, 0);
});

test('host checks: free space under instances_path is a Warning below the threshold', async () => {
  let r = await checks(['compute_driver = qemu'], { ...noVt, lowSpaceBytes: 1 });
  assert.equal(r['Instances path free space']!.code, 0);
  assert.match(r['Instances path free space']!.details!, /GiB free of .* GiB under .*instances/);
  r = await checks(['compute_driver = qemu'], { ...noVt, lowSpaceBytes: Number.MAX_SAFE_INTEGER });
  assert.equal(r['Instances path free space']!.code, 1);
  assert.match(r['Instances path free space']!.details!, /new instances may go to ERROR/);
});

test('host checks: the image cache counts bases and those no instance uses; interrupted downloads warn', async () => {
  const inst = join(dir, 'inst');
  mkdirSync(join(inst, '_base'), { recursive: true });
  writeFileSync(join(inst, '_base', baseName('img-a')), Buffer.alloc(8192, 1));
  writeFileSync(join(inst, '_base', `${baseName('img-a')}.info`), '{}');
  writeFileSync(join(inst, '_base', baseName('img-b')), Buffer.alloc(8192, 1));
  const uuid = '6f2ba1a0-0000-4000-8000-000000000001';
  mkdirSync(join(inst, uuid));
  writeFileSync(join(inst, uuid, 'guest.json'), JSON.stringify({ images: ['img-a'] }));
  let r = await checks(['compute_driver = qemu', `instances_path = ${inst}`]);
  assert.equal(r['Image cache']!.code, 0);
  assert.match(r['Image cache']!.details!, /^2 cached base image\(s\) in .*_base, 0 MiB; 1 not used by any instance \(0 MiB\), removed by the cache manager once unused for 86400 s\.$/);
  r = await checks(['compute_driver = qemu', `instances_path = ${inst}`, '[image_cache]', 'remove_unused_base_images = false']);
  assert.equal(r['Image cache']!.code, 1);
  writeFileSync(join(inst, '_base', `${baseName('img-c')}.part-1-2`), 'x');
  r = await checks(['compute_driver = qemu', `instances_path = ${inst}`]);
  assert.equal(r['Image cache']!.code, 1);
  assert.match(r['Image cache']!.details!, /1 interrupted download/);
});

test('host checks: qemu-system and qemu-img with their versions; a missing binary fails', async () => {
  let r = await checks(['compute_driver = qemu']);
  assert.equal(r['QEMU tools']!.code, 0, r['QEMU tools']!.details);
  assert.match(r['QEMU tools']!.details!, /QEMU emulator version [\d.]+.*; qemu-img version [\d.]+/);
  r = await checks(['compute_driver = qemu', '[qemu]', 'binary = /nonexistent/qemu-system-x86_64']);
  assert.equal(r['QEMU tools']!.code, 2);
  assert.match(r['QEMU tools']!.details!, /\/nonexistent\/qemu-system-x86_64 is not usable/);
});
