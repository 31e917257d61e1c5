// The `debian` image (stratus image build --kind debian: debootstrap + cloud-init + GRUB on a
// whole disk) uploaded with --upload's code and booted on a real all-in-one with the QEMU
// driver, twice: with a config drive and no NIC, and with a user-mode NIC and the metadata
// service. The guest's own cloud-init is the client: its console log (os-getConsoleOutput) must
// show the datasource it found, the hostname, the installed key, user_data's output and the
// root filesystem grown from the image's 2 GiB to the flavor's disk. Minutes under TCG, so not
// in `npm run test:qemu`: `npm run test:qemu-debian` (STRATUS_DEBIAN_IMAGE=FILE boots a prebuilt
// 2G debian image instead of building one into the guest cache).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type TestCloud } from '../helpers/cloud.ts';
import { computeApi, mv } from '../helpers/compute.ts';
import { buildImage, type BuiltImage } from '../../src/guest/build.ts';
import { uploadImage } from '../../src/guest/upload.ts';
import { debianImageFacts } from '../../src/guest/debian-image.ts';
import { passwordAccess } from '../../src/compute/workers.ts';
import { cacheDir } from './helpers.ts';

let cloud: TestCloud;
let token: string;
let imageId: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm0Jf6rZ0hS3J3u4n0b1mTq3oQ9m6iQm0b3YbVqkQ2D k1@debian-qemu';
const FLAVOR_DISK_GB = 4;
// Runs in cloud-init's final stage, after growpart and resizefs.
const USER_DATA = '#!/bin/sh\necho "USERDATA-RAN on $(hostname) root-bytes=$(df -B1 --output=size / | tail -1 | tr -d \' \')"\n';
const servers: string[] = [];

async function debianImage(): Promise<BuiltImage> {
  const given = process.env.STRATUS_DEBIAN_IMAGE;
  if (given && existsSync(given)) return { path: given, format: 'qcow2', ...debianImageFacts(2 * 2 ** 30, 'prebuilt') };
  // A second build reuses the cached debootstrap tree: only the filesystem and the disk are made.
  return buildImage({ kind: 'debian', output: join(cacheDir, 'debian-test.qcow2'), format: 'qcow2', cacheDir, log: (m) => console.log(`image build: ${m}`) });
}

before(async () => {
  const img = await debianImage();
  process.env.STRATUS_TEST_DRIVER = 'qemu';
  cloud = await startCloud({ extraConfig: ['[qemu]', `guest_cache_dir = ${cacheDir}`] });
  token = await cloud.adminToken();
  // --upload's path: the credentials an openstack client would have.
  imageId = await uploadImage(img, 'debian-12', passwordAccess({ authUrl: cloud.identityUrl, username: 'admin', password: cloud.adminPassword, projectName: 'admin' }, 'image'));
  const meta = await cloud.req('GET', `/image/v2/images/${imageId}`, { token });
  assert.equal(meta.body.status, 'active');
  assert.equal(meta.body.os_distro, 'debian');
  assert.equal(meta.body.min_disk, 2);
  assert.equal((await api('POST', '/os-keypairs', { keypair: { name: 'k1', public_key: KEY } }, mv('2.2'))).status, 201);
  const f = await api('POST', '/flavors', { flavor: { name: 'deb.small', id: 'deb-small', ram: 768, vcpus: 1, disk: FLAVOR_DISK_GB } });
  assert.equal(f.status, 200, f.text);
});

after(async () => {
  for (const id of servers) await api('DELETE', `/servers/${id}`).catch(() => undefined);
  for (const id of servers) await waitFor(id, ['DELETED'], 120_000).catch(() => undefined);
  await cloud?.stop();
});

/** Creates a server, waits for ACTIVE, then for cloud-init's "finished" line on its console; returns the console and the seconds it took. */
async function bootAndWait(name: string, extra: Record<string, unknown>): Promise<{ out: string; secs: number }> {
  const t0 = Date.now();
  const r = await api('POST', '/servers', { server: { name, imageRef: imageId, flavorRef: 'deb-small', key_name: 'k1', user_data: Buffer.from(USER_DATA).toString('base64'), ...extra } }, mv('2.93'));
  assert.equal(r.status, 202, r.text);
  const id = r.body.server.id;
  servers.push(id);
  await waitFor(id, ['ACTIVE', 'ERROR'], 300_000);
  const s = (await api('GET', `/servers/${id}`, undefined, mv('2.93'))).body.server;
  assert.equal(s.status, 'ACTIVE', JSON.stringify(s.fault));
  const end = Date.now() + 900_000;
  for (;;) {
    const c = await api('POST', `/servers/${id}/action`, { 'os-getConsoleOutput': { length: null } });
    const out: string = c.body?.output ?? '';
    if (/Cloud-init v\. [\d.]+ finished/.test(out)) {
      const secs = (Date.now() - t0) / 1000;
      console.log(`${name}: create → "Cloud-init … finished" in ${secs.toFixed(0)} s`);
      console.log(out.split('\n').filter((l) => /Cloud-init v\.|USERDATA|k1@|GRUB|Linux version|\| *eth0 /.test(l)).join('\n'));
      return { out, secs };
    }
    if (Date.now() > end) assert.fail(`cloud-init did not finish in 900 s:\n${out.slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 3000));
  }
}

function assertGuestConfigured(out: string, name: string) {
  const m = new RegExp(`USERDATA-RAN on ${name} root-bytes=(\\d+)`).exec(out);
  assert.ok(m, `user_data ran and reported the hostname ${name}`);
  // The image's root partition is 2 GiB: growpart + resizefs took it to (nearly) the flavor's disk.
  assert.ok(Number(m[1]) > (FLAVOR_DISK_GB - 0.5) * 2 ** 30, `root grown to the flavor's ${FLAVOR_DISK_GB} GiB (${m[1]} bytes)`);
  assert.match(out, /ssh-ed25519 .* k1@debian-qemu/, 'cloud-init installed the key of k1');
}

test('debian image: cloud-init finds the config drive (--config-drive true --nic none)', async () => {
  const { out } = await bootAndWait('deb-drive', { config_drive: true, networks: 'none' });
  assert.match(out, /finished at .* Datasource DataSourceConfigDrive \[net,ver=2\]\[source=\/dev\/sr0\]/);
  assertGuestConfigured(out, 'deb-drive');
});

test('debian image: cloud-init reads the metadata service (--nic auto)', async () => {
  const { out } = await bootAndWait('deb-net', { networks: 'auto' });
  assert.match(out, /finished at .* Datasource DataSourceOpenStackLocal \[net,ver=2\]/);
  assertGuestConfigured(out, 'deb-net');
});
