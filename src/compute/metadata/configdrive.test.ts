// Builds a real config drive with genisoimage and reads it back with isoinfo (no mount needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildConfig } from '../../common/config.ts';
import { buildConfigDrive, configDriveRequired, ConfigDriveError } from './configdrive.ts';
import { sampleSpec } from './testing.ts';

const exec = promisify(execFile);
const isoinfo = async (...args: string[]) => (await exec('isoinfo', args, { encoding: 'buffer', maxBuffer: 1 << 24 })).stdout as Buffer;

test('buildConfigDrive writes a config-2 ISO 9660 volume that reads back as the metadata', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-cd-'));
  try {
    const iso = join(dir, 'disk.config');
    await buildConfigDrive(sampleSpec(), iso, { config: buildConfig('', {}) });
    const info = (await isoinfo('-d', '-i', iso)).toString();
    assert.match(info, /^Volume id: config-2$/m);
    assert.match(info, /Joliet/);
    assert.match(info, /Rock Ridge/);
    const listing = (await isoinfo('-J', '-f', '-i', iso)).toString().split('\n');
    for (const p of ['/openstack/latest/meta_data.json', '/openstack/latest/user_data', '/openstack/latest/network_data.json', '/openstack/2018-08-27/vendor_data2.json',
      '/openstack/content/0000', '/ec2/latest/meta-data.json', '/ec2/2009-04-04/user-data']) assert.ok(listing.includes(p), `${p} in ${listing.join(' ')}`);
    const md = JSON.parse((await isoinfo('-J', '-i', iso, '-x', '/openstack/latest/meta_data.json')).toString());
    assert.equal(md.uuid, sampleSpec().uuid);
    assert.equal(md.hostname, 'vm1.novalocal');
    assert.equal(md.admin_pass, 'S3cret');
    assert.equal((await isoinfo('-J', '-i', iso, '-x', '/openstack/latest/user_data')).toString(), '#!/bin/sh\necho hello\n');
    assert.equal((await isoinfo('-J', '-i', iso, '-x', '/openstack/content/0000')).toString(), 'hi\n');
    // Nothing but the drive is left beside it.
    assert.deepEqual(readdirSync(dir), ['disk.config']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing mkisofs_cmd leaves no file and says why', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-cd-'));
  try {
    const iso = join(dir, 'disk.config');
    const config = buildConfig('[DEFAULT]\nmkisofs_cmd = /nonexistent/genisoimage\n', {});
    await assert.rejects(buildConfigDrive(sampleSpec(), iso, { config }), (e: Error) => e instanceof ConfigDriveError && /genisoimage/.test(e.message));
    assert.equal(existsSync(iso), false);
    assert.deepEqual(readdirSync(dir), []);
    const bad = buildConfig('[DEFAULT]\nmkisofs_cmd = false\n', {});
    await assert.rejects(buildConfigDrive(sampleSpec(), iso, { config: bad }), /exited with 1/);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('configDriveRequired: the instance flag, img_config_drive=mandatory, force_config_drive for new guests only', () => {
  const off = buildConfig('', {});
  const forced = buildConfig('[DEFAULT]\nforce_config_drive = true\n', {});
  assert.equal(configDriveRequired(sampleSpec({ configDrive: true }), off), true);
  assert.equal(configDriveRequired(sampleSpec({ configDrive: false }), off), false);
  assert.equal(configDriveRequired(sampleSpec({ configDrive: false, imageProps: { img_config_drive: 'mandatory' } }), off), true);
  assert.equal(configDriveRequired(sampleSpec({ configDrive: false, imageProps: { img_config_drive: 'optional' } }), off), false);
  assert.equal(configDriveRequired(sampleSpec({ configDrive: false }), forced), true);
  assert.equal(configDriveRequired(sampleSpec({ configDrive: false }), forced, { launched: true }), false);
});
