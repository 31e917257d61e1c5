// The content module against Nova's shapes (nova/api/metadata/base.py and the Zed capture).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildConfig } from '../../common/config.ts';
import { KEY, UUID, sampleSpec } from './testing.ts';
import { InstanceMetadata, MetadataNotFound, OPENSTACK_VERSIONS, pyJson, type LookupResult } from './content.ts';
import { ec2IdFor } from '../../common/ec2-ids.ts';

const config = buildConfig('', {});
const md = (spec = sampleSpec(), o: { configDrive?: boolean; password?: string; now?: () => Date } = {}) => new InstanceMetadata(spec, { config, ...o });
const body = (r: LookupResult) => { assert.equal(r.kind, 'data'); return (r as { body: Buffer }).body.toString(); };
const type = (r: LookupResult) => (r as { contentType: string }).contentType;

test('/ lists the EC2 versions exactly as the Zed capture', () => {
  const capture = readFileSync(new URL('../../../test/fixtures/reference/openstack-zed/08-nova-metadata-root.txt', import.meta.url), 'utf8');
  const expected = capture.slice(capture.indexOf('1.0\n'));
  assert.equal(body(md().lookup('/')), expected);
  assert.equal(type(md().lookup('/')), 'text/plain; charset=UTF-8');
});

test('/openstack hides versions dated in the future; latest is always listed', () => {
  const zed = md(sampleSpec(), { now: () => new Date('2022-10-05T00:00:00Z') });
  assert.equal(body(zed.lookup('/openstack')), [...OPENSTACK_VERSIONS.filter((v) => v <= '2022-10-05'), 'latest'].join('\n'));
  assert.ok(body(md().lookup('/openstack/')).endsWith('2020-10-14\n2025-04-04\nlatest'));
  // A future version is still served when asked for.
  assert.equal(JSON.parse(body(zed.lookup('/openstack/2025-04-04/meta_data.json'))).uuid, UUID);
});

test('a version directory lists what that version has', () => {
  assert.equal(body(md().lookup('/openstack/latest')), 'meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json');
  assert.equal(body(md().lookup('/openstack/2012-08-10/')), 'meta_data.json\nuser_data');
  assert.equal(body(md(sampleSpec({ userData: null })).lookup('/openstack/2018-08-27')), 'meta_data.json\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json');
});

test('meta_data.json has Nova\'s keys, per version, and the admin password only on the config drive', () => {
  const r = md().lookup('/openstack/latest/meta_data.json');
  assert.equal(type(r), 'application/json');
  const j = JSON.parse(body(r));
  assert.deepEqual(Object.keys(j), ['uuid', 'meta', 'public_keys', 'keys', 'hostname', 'name', 'launch_index', 'availability_zone', 'random_seed', 'project_id', 'devices', 'dedicated_cpus']);
  assert.equal(j.hostname, 'vm1.novalocal');
  assert.equal(j.name, 'vm1');
  assert.deepEqual(j.public_keys, { k1: KEY });
  assert.deepEqual(j.keys, [{ name: 'k1', type: 'ssh', data: KEY }]);
  assert.deepEqual(j.meta, { role: 'web', 'über': 'ß' });
  assert.equal(Buffer.from(j.random_seed, 'base64').length, 512);
  assert.equal(j.project_id, 'p-123');
  assert.equal(j.admin_pass, undefined);
  assert.equal(j.files, undefined, 'injected files exist only on the config drive');
  // Python's json.dumps: ", " / ": " separators, non-ASCII escaped.
  assert.match(body(r), /"meta": \{"role": "web", "\\u00fcber": "\\u00df"\}/);

  const folsom = JSON.parse(body(md().lookup('/openstack/2012-08-10/meta_data.json')));
  assert.deepEqual(Object.keys(folsom), ['uuid', 'meta', 'public_keys', 'keys', 'hostname', 'name', 'launch_index', 'availability_zone']);
  const liberty = JSON.parse(body(md().lookup('/openstack/2015-10-15/meta_data.json')));
  assert.ok('project_id' in liberty && !('devices' in liberty));

  const drive = JSON.parse(body(md(sampleSpec(), { configDrive: true }).lookup('/openstack/latest/meta_data.json')));
  assert.equal(drive.admin_pass, 'S3cret');
  assert.deepEqual(drive.files, [{ path: '/etc/motd', content_path: '/content/0000' }]);

  const bare = JSON.parse(body(md(sampleSpec({ keyName: null, keyData: null, metadata: {} })).lookup('/openstack/latest/meta_data.json')));
  assert.ok(!('public_keys' in bare) && !('keys' in bare) && !('meta' in bare));
});

test('user_data is served raw; vendor data is Nova\'s empty StaticJSON', () => {
  assert.equal(body(md().lookup('/openstack/latest/user_data')), '#!/bin/sh\necho hello\n');
  assert.throws(() => md(sampleSpec({ userData: null })).lookup('/openstack/latest/user_data'), MetadataNotFound);
  assert.equal(body(md().lookup('/openstack/latest/vendor_data.json')), '{}');
  assert.equal(body(md().lookup('/openstack/latest/vendor_data2.json')), '{"static": {}}');
  assert.throws(() => md().lookup('/openstack/2013-04-04/vendor_data.json'), MetadataNotFound);
  assert.deepEqual(md().lookup('/openstack/latest/password'), { kind: 'password' });
  assert.throws(() => md().lookup('/openstack/2012-08-10/password'), MetadataNotFound);
});

test('network_data.json: a physical link with the VIF\'s MAC and DHCP on it; {} without a NIC', () => {
  const r = md().lookup('/openstack/latest/network_data.json');
  assert.equal(type(r), 'text/plain; charset=UTF-8');
  const j = JSON.parse(body(r));
  assert.equal(j.links.length, 1);
  assert.deepEqual(j.links[0], { id: 'tap0d3ad3b3-5c', vif_id: '0d3ad3b3-5c1a-4f6e-8f37-1234567890ab', type: 'phy', mtu: null, ethernet_mac_address: 'fa:16:3e:12:34:56' });
  assert.equal(j.networks[0].type, 'ipv4_dhcp');
  assert.equal(j.networks[0].link, 'tap0d3ad3b3-5c');
  assert.match(j.networks[0].network_id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(j.services, []);
  assert.equal(body(md(sampleSpec({ network: { mode: 'none', vifs: [] } })).lookup('/openstack/latest/network_data.json')), '{}');
});

test('the EC2 tree as cloud-init walks it', () => {
  const m = md();
  assert.equal(body(m.lookup('/latest')), 'meta-data/\nuser-data');
  assert.equal(body(m.lookup('/latest/meta-data/')), [
    'ami-id', 'ami-launch-index', 'ami-manifest-path', 'block-device-mapping/', 'hostname', 'instance-action', 'instance-id',
    'instance-type', 'local-hostname', 'local-ipv4', 'placement/', 'public-hostname', 'public-ipv4', 'public-keys/', 'reservation-id', 'security-groups',
  ].join('\n'));
  assert.equal(body(m.lookup('/latest/meta-data/public-keys')), '0=k1');
  assert.equal(body(m.lookup('/latest/meta-data/public-keys/0/')), 'openssh-key');
  assert.equal(body(m.lookup('/latest/meta-data/public-keys/0/openssh-key')), KEY);
  assert.equal(body(m.lookup('/latest/meta-data/placement/availability-zone')), 'nova');
  assert.equal(body(m.lookup('/latest/meta-data/instance-id')), ec2IdFor('i', UUID));
  assert.equal(body(m.lookup('/latest/meta-data/ami-id')), ec2IdFor('ami', 'f0e1d2c3-1111-4222-8333-444455556666'));
  assert.equal(body(m.lookup('/latest/meta-data/ami-launch-index')), '0');
  assert.equal(body(m.lookup('/latest/meta-data/hostname')), 'vm1.novalocal');
  assert.equal(body(m.lookup('/latest/meta-data/local-hostname')), 'vm1.novalocal');
  assert.equal(body(m.lookup('/latest/meta-data/local-ipv4')), '169.254.0.15');
  assert.equal(body(m.lookup('/latest/meta-data/instance-type')), 'm1.small');
  assert.equal(body(m.lookup('/latest/meta-data/reservation-id')), 'r-abc12345');
  assert.equal(body(m.lookup('/latest/meta-data/security-groups')), 'default');
  assert.equal(body(m.lookup('/latest/meta-data/block-device-mapping/')), 'ami\nroot');
  assert.equal(body(m.lookup('/latest/meta-data/block-device-mapping/root')), '/dev/vda');
  assert.equal(body(m.lookup('/latest/user-data')), '#!/bin/sh\necho hello\n');
  assert.equal(body(m.lookup('/2009-04-04/meta-data/instance-id')), ec2IdFor('i', UUID));
  assert.equal(body(m.lookup('/ec2/latest/meta-data/instance-id')), ec2IdFor('i', UUID));
  // Older versions lack what came later.
  assert.equal(body(m.lookup('/1.0/meta-data/')), 'ami-id\nami-launch-index\nami-manifest-path\nhostname\ninstance-id\nlocal-ipv4\npublic-keys/\nreservation-id\nsecurity-groups');
  // No NIC: no address, no security group.
  const none = md(sampleSpec({ network: { mode: 'none', vifs: [] } }));
  assert.equal(body(none.lookup('/latest/meta-data/local-ipv4')), 'None');
  assert.equal(body(none.lookup('/latest/meta-data/security-groups')), '');
});

test('paths that do not exist are MetadataNotFound, never a crash', () => {
  const m = md();
  for (const p of ['/openstack/2099-01-01/meta_data.json', '/openstack/latest/nope', '/2010-01-01/meta-data/', '/latest/meta-data/nope',
    '/latest/meta-data/public-keys/0/_name', '/latest/meta-data/hostname/x', '/latest/meta-data/security-groups/default', '/openstack/content',
    '/openstack/content/9999', '/openstack/latest/meta_data.json/x', '/latest/meta-data/constructor', '/latest/meta-data/__proto__']) {
    assert.throws(() => m.lookup(p), MetadataNotFound, p);
  }
  // Dot segments are resolved before lookup (posixpath.normpath), so they cannot escape the tree.
  assert.equal(body(m.lookup('/openstack/../latest/meta-data/instance-id')), ec2IdFor('i', UUID));
  assert.equal(body(m.lookup('//openstack//latest//user_data')), '#!/bin/sh\necho hello\n');
});

test('config drive files: Nova\'s set, EC2 versions skipped as [api] config_drive_skip_versions says', () => {
  const files = md(sampleSpec(), { configDrive: true }).configDriveFiles();
  const paths = files.map((f) => f.path);
  assert.deepEqual(paths.filter((p) => p.startsWith('ec2/')), ['ec2/2009-04-04/user-data', 'ec2/2009-04-04/meta-data.json', 'ec2/latest/user-data', 'ec2/latest/meta-data.json']);
  for (const v of [...OPENSTACK_VERSIONS, 'latest']) assert.ok(paths.includes(`openstack/${v}/meta_data.json`), v);
  assert.ok(paths.includes('openstack/latest/network_data.json') && paths.includes('openstack/latest/vendor_data2.json'));
  assert.ok(!paths.includes('openstack/2013-04-04/vendor_data.json') && paths.includes('openstack/2013-10-17/vendor_data.json'));
  assert.ok(!paths.some((p) => p.endsWith('/password')));
  assert.equal(files.find((f) => f.path === 'openstack/content/0000')!.data.toString(), 'hi\n');
  const ec2 = JSON.parse(files.find((f) => f.path === 'ec2/latest/meta-data.json')!.data.toString());
  assert.deepEqual(ec2['public-keys'], { 0: { 'openssh-key': KEY } }, 'the _name marker is an HTTP listing detail');
  assert.equal(ec2['local-ipv4'], '169.254.0.15');
});

test('pyJson writes what Python\'s json.dumps writes', () => {
  assert.equal(pyJson({ a: [1, 'x', null, true], b: { c: 'é\u007f"\n' } }), '{"a": [1, "x", null, true], "b": {"c": "\\u00e9\\u007f\\"\\n"}}');
});
