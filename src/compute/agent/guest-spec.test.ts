import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestSpecOf } from './guest-spec.ts';
import { imageSystemMetadata } from '../image-props.ts';
import { autoVif } from '../network-info.ts';
import type { InstanceRow } from '../objects.ts';

const image = {
  id: 'a1b2c3d4-0000-4000-8000-000000000001', name: 'cirros', status: 'active', disk_format: 'qcow2', container_format: 'bare',
  min_ram: 64, min_disk: 1, size: 1234, virtual_size: 4096, checksum: 'd41d8cd98f00b204e9800998ecf8427e', os_hash_algo: 'sha512', os_hash_value: 'ab',
  visibility: 'public', protected: false, tags: ['x'], hw_disk_bus: 'virtio', os_distro: 'cirros', kernel_id: 'k1',
};

function row(over: Partial<InstanceRow> = {}): InstanceRow {
  const uuid = '5e3c1a52-1111-4222-8333-444455556666';
  return {
    id: 10, uuid, display_name: 'vm1', display_description: null, project_id: 'p1', user_id: 'u1', image_ref: image.id,
    flavor: JSON.stringify({ flavorid: '42', name: 'm1.small', memory_mb: 512, vcpus: 2, root_gb: 5, ephemeral_gb: 1, swap: 256, rxtx_factor: 1, extra_specs: { 'hw:cpu_policy': 'shared' } }),
    instance_type_id: '42', vcpus: 2, memory_mb: 512, root_gb: 5, ephemeral_gb: 1, key_name: 'k', key_data: 'ssh-ed25519 AAAA k', user_data: 'IyEvYmluL3No',
    hostname: 'vm1', host: 'h', node: 'h', availability_zone: 'nova', vm_state: 'building', task_state: 'spawning', power_state: 0, config_drive: 'True',
    reservation_id: 'r-abc', launch_index: 1, locked_by: null, locked_reason: null, access_ip_v4: null, access_ip_v6: null, auto_disk_config: 0, progress: 0,
    root_device_name: null, kernel_id: null, ramdisk_id: null,
    system_metadata: JSON.stringify({ ...imageSystemMetadata(image), network_info: JSON.stringify([autoVif(uuid)]) }),
    launched_at: null, terminated_at: null, created_at: '2026-12-01T10:00:00.000Z', updated_at: null, deleted_at: null, deleted: 0, ...over,
  };
}

test('guestSpecOf fills every contract v2 field from the instance alone', () => {
  const g = guestSpecOf(row(), { nameTemplate: 'instance-%08x', metadata: { role: 'web' }, adminPassword: 'pw', injectedFiles: [{ path: '/etc/x', contents: 'eA==' }] });
  assert.equal(g.name, 'instance-0000000a');
  assert.deepEqual(g.flavor, { id: '42', name: 'm1.small', vcpus: 2, memoryMb: 512, rootGb: 5, ephemeralGb: 1, swapMb: 256, extraSpecs: { 'hw:cpu_policy': 'shared' } });
  assert.deepEqual(g.image, {
    id: image.id, name: 'cirros', diskFormat: 'qcow2', containerFormat: 'bare', checksum: image.checksum, osHashAlgo: 'sha512', osHashValue: 'ab',
    size: 1234, virtualSize: 4096, minDisk: 1, minRam: 64, properties: { hw_disk_bus: 'virtio', os_distro: 'cirros', kernel_id: 'k1' },
  });
  assert.deepEqual(g.imageProps, g.image!.properties);
  assert.deepEqual(g.metadata, { role: 'web' });
  assert.equal(g.adminPassword, 'pw');
  assert.deepEqual(g.injectedFiles, [{ path: '/etc/x', contents: 'eA==' }]);
  assert.equal(g.keyName, 'k'); assert.equal(g.keyData, 'ssh-ed25519 AAAA k'); assert.equal(g.userData, 'IyEvYmluL3No');
  assert.equal(g.availabilityZone, 'nova'); assert.equal(g.launchIndex, 1); assert.equal(g.reservationId, 'r-abc');
  assert.equal(g.createdAt, '2026-12-01T10:00:00.000Z'); assert.equal(g.configDrive, true);
  assert.equal(g.network!.mode, 'auto');
  assert.equal(g.network!.vifs.length, 1);
  assert.match(g.network!.vifs[0].mac, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
  assert.equal(g.network!.vifs[0].address, '169.254.0.15');
});

// Issue 10 item 5: the agent handed the driver empty image properties (guestSpec(row, {})).
test('guestSpecOf: the image properties come from system_metadata, not from the caller', () => {
  const g = guestSpecOf(row(), { nameTemplate: 'instance-%08x' });
  assert.equal(g.imageProps.hw_disk_bus, 'virtio');
  assert.equal(g.adminPassword, null);
  assert.deepEqual(g.injectedFiles, []);
});

test('guestSpecOf: no network_info is mode none; no image is image null', () => {
  const g = guestSpecOf(row({ image_ref: null, system_metadata: '{}', config_drive: '' }), { nameTemplate: 'instance-%08x' });
  assert.deepEqual(g.network, { mode: 'none', vifs: [] });
  assert.equal(g.image, null);
  assert.equal(g.imageId, null);
  assert.equal(g.configDrive, false);
});

test('imageSystemMetadata: Nova\'s keys, properties prefixed, core attributes not', () => {
  const sm = imageSystemMetadata(image);
  assert.equal(sm.image_base_image_ref, image.id);
  assert.equal(sm.image_disk_format, 'qcow2');
  assert.equal(sm.image_container_format, 'bare');
  assert.equal(sm.image_min_ram, '64');
  assert.equal(sm.image_min_disk, '1');
  assert.equal(sm.image_hw_disk_bus, 'virtio');
  assert.equal(sm.image_checksum, undefined);
  assert.equal(sm.image_visibility, undefined);
  assert.equal(sm.image_tags, undefined);
});
