// A GuestSpec with every field the metadata uses, for the metadata module's tests.
import type { GuestSpec } from '../virt/driver.ts';

export const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests k1@test';
export const UUID = '6b2f6c1e-6f1d-4d55-9a07-3a1f5a2b9c10';

export function sampleSpec(over: Partial<GuestSpec> = {}): GuestSpec {
  return {
    uuid: UUID, name: 'instance-0000000a', vcpus: 1, memoryMb: 512, rootGb: 20, imageId: 'f0e1d2c3-1111-4222-8333-444455556666',
    imageProps: {}, userData: Buffer.from('#!/bin/sh\necho hello\n').toString('base64'), keyData: KEY, keyName: 'k1',
    hostname: 'vm1', displayName: 'vm1', projectId: 'p-123', userId: 'u-1', metadata: { role: 'web', 'über': 'ß' },
    adminPassword: 'S3cret', availabilityZone: 'nova', launchIndex: 0, reservationId: 'r-abc12345', configDrive: true,
    flavor: { id: '2', name: 'm1.small', vcpus: 1, memoryMb: 2048, rootGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
    network: { mode: 'auto', vifs: [{ id: '0d3ad3b3-5c1a-4f6e-8f37-1234567890ab', mac: 'fa:16:3e:12:34:56', address: '169.254.0.15', networkName: 'user' }] },
    injectedFiles: [{ path: '/etc/motd', contents: Buffer.from('hi\n').toString('base64') }],
    ...over,
  };
}

