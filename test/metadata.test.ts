// The metadata service on a real all-in-one (fake driver): servers booted with user data, a key,
// metadata and a config drive, every path read through each instance's own relay in the order
// cloud-init 22.4 reads them, the signature refusals, the guest password, the standalone
// service, and the config drive built from the same instance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';
import { freePort } from './helpers/service.ts';
import { metadataRelayArgv, instanceSignature } from '../src/compute/metadata/relay.ts';
import { responses, runRelay } from '../src/compute/metadata/testing.ts';
import { launch } from '../src/cli/launcher.ts';
import { metadataService } from '../src/compute/metadata/service.ts';
import { Cells } from '../src/compute/cells.ts';
import { loadInstance } from '../src/compute/metadata/instance-source.ts';
import { buildConfigDrive } from '../src/compute/metadata/configdrive.ts';
import { createLogger } from '../src/common/logging.ts';
import { ec2IdFor } from '../src/common/ec2-ids.ts';

// Re-read instances after 1 s (Nova's default 15 s), so a deleted server's 404 shows quickly.
process.env.OS_API__METADATA_CACHE_EXPIRATION = '1';

let cloud: TestCloud;
let token: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm0Jf6rZ0hS3J3u4n0b1mTq3oQ9m6iQm0b3YbVqkQ2D k1@metadata-test';
const USER_DATA = '#!/bin/sh\necho "hello from user_data"\n';
let vm1: any;
let vm2: any;
let vm3: any;
let projectId: string;

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  projectId = (await cloud.req('GET', '/identity/v3/auth/tokens', { token, headers: { 'x-subject-token': token } })).body.token.project.id;
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'guest', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  const put = await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  assert.equal(put.status, 204);
  assert.equal((await api('POST', '/os-keypairs', { keypair: { name: 'k1', public_key: KEY } }, mv('2.2'))).status, 201);
  const boot = async (server: Record<string, unknown>) => {
    const r = await api('POST', '/servers', { server: { imageRef: img.body.id, flavorRef: '1', networks: 'none', ...server } }, mv('2.93'));
    assert.equal(r.status, 202, r.text);
    await waitFor(r.body.server.id, ['ACTIVE']);
    return (await api('GET', `/servers/${r.body.server.id}`, undefined, mv('2.93'))).body.server;
  };
  vm1 = await boot({ name: 'vm1', key_name: 'k1', user_data: Buffer.from(USER_DATA).toString('base64'), metadata: { role: 'web' }, config_drive: true });
  vm2 = await boot({ name: 'vm2' });
  vm3 = await boot({ name: 'vm3', networks: 'auto', key_name: 'k1' });
});
after(async () => { await cloud?.stop(); });

/** Requests through an instance's own relay, on one keep-alive connection as a guest would. */
async function viaRelay(uuid: string, paths: string[], method = 'GET', body?: string) {
  const reqs = paths.map((p, i) => {
    const last = i === paths.length - 1;
    const b = body ?? '';
    return `${method} ${p} HTTP/1.1\r\nHost: 169.254.169.254\r\nAccept: */*\r\nUser-Agent: Cloud-Init/22.4.2\r\n${body !== undefined ? `Content-Length: ${Buffer.byteLength(b)}\r\n` : ''}${last ? 'Connection: close\r\n' : ''}\r\n${b}`;
  }).join('');
  const r = await runRelay(metadataRelayArgv(cloud.config, uuid), reqs);
  assert.equal(r.err, '');
  const rs = responses(r.out);
  assert.equal(rs.length, paths.length, r.out.slice(0, 500));
  return rs;
}

test('cloud-init\'s OpenStack reads, through the relay, describe exactly that instance', async () => {
  const [versions, md, ud, vd, vd2, nd] = await viaRelay(vm1.id, ['/openstack', '/openstack/2018-08-27/meta_data.json', '/openstack/2018-08-27/user_data',
    '/openstack/2018-08-27/vendor_data.json', '/openstack/2018-08-27/vendor_data2.json', '/openstack/2018-08-27/network_data.json']);
  assert.equal(versions.status, 200);
  assert.ok(versions.body.split('\n').includes('2018-08-27') && versions.body.endsWith('\nlatest'));
  assert.equal(versions.headers['content-type'], 'text/plain; charset=UTF-8');
  assert.equal(md.headers['content-type'], 'application/json');
  const j = JSON.parse(md.body);
  assert.equal(j.uuid, vm1.id);
  assert.equal(j.name, 'vm1');
  assert.equal(j.hostname, 'vm1.novalocal');
  assert.deepEqual(j.public_keys, { k1: KEY });
  assert.deepEqual(j.keys, [{ name: 'k1', type: 'ssh', data: KEY }]);
  assert.deepEqual(j.meta, { role: 'web' });
  assert.equal(j.project_id, projectId);
  assert.equal(j.availability_zone, 'nova');
  assert.equal(j.launch_index, 0);
  assert.deepEqual(j.devices, []);
  assert.equal(j.admin_pass, undefined, 'the admin password is never served over HTTP');
  assert.equal(ud.body, USER_DATA);
  assert.equal(vd.body, '{}');
  assert.equal(vd2.body, '{"static": {}}');
  assert.equal(nd.body, '{}', 'networks: none');
});

test('cloud-init\'s EC2 reads through the relay', async () => {
  const paths = ['/latest/meta-data/', '/latest/meta-data/placement/availability-zone', '/latest/meta-data/public-keys/', '/latest/meta-data/public-keys/0/',
    '/latest/meta-data/public-keys/0/openssh-key', '/latest/meta-data/ami-id', '/latest/meta-data/ami-launch-index', '/latest/meta-data/hostname',
    '/latest/meta-data/instance-id', '/latest/meta-data/instance-type', '/latest/meta-data/local-hostname', '/latest/meta-data/local-ipv4',
    '/latest/meta-data/reservation-id', '/latest/user-data', '/2009-04-04/meta-data/instance-id'];
  const rs = await viaRelay(vm1.id, paths);
  const got = Object.fromEntries(paths.map((p, i) => [p.replace('/latest/meta-data/', ''), rs[i]]));
  for (const r of rs) assert.equal(r.status, 200);
  assert.match(got[''].body, /^ami-id\n/);
  assert.ok(got[''].body.split('\n').includes('public-keys/'));
  assert.equal(got['placement/availability-zone'].body, 'nova');
  assert.equal(got['public-keys/'].body, '0=k1');
  assert.equal(got['public-keys/0/'].body, 'openssh-key');
  assert.equal(got['public-keys/0/openssh-key'].body, KEY);
  // The EC2 API's ids for this instance and its image (src/common/ec2-ids.ts).
  assert.equal(got['ami-id'].body, ec2IdFor('ami', vm1.image.id));
  assert.equal(got['ami-launch-index'].body, '0');
  assert.equal(got.hostname.body, 'vm1.novalocal');
  assert.equal(got['instance-id'].body, ec2IdFor('i', vm1.id));
  assert.equal(got['/2009-04-04/meta-data/instance-id'].body, got['instance-id'].body);
  assert.equal(got['instance-type'].body, 'm1.tiny');
  assert.equal(got['local-hostname'].body, 'vm1.novalocal');
  assert.equal(got['reservation-id'].body, vm1['OS-EXT-SRV-ATTR:reservation_id']);
  assert.equal(got['/latest/user-data'].body, USER_DATA);
  // One connection per request (what cloud-init's fresh sessions do) works as well.
  const [one] = await viaRelay(vm1.id, ['/latest/meta-data/instance-id']);
  assert.equal(one.body, got['instance-id'].body);
});

test('each relay gets its own instance\'s data only', async () => {
  const [md, key, ud] = await viaRelay(vm2.id, ['/openstack/latest/meta_data.json', '/latest/meta-data/public-keys/0/openssh-key', '/openstack/latest/user_data']);
  const j = JSON.parse(md.body);
  assert.equal(j.uuid, vm2.id);
  assert.equal(j.name, 'vm2');
  assert.equal(j.public_keys, undefined);
  assert.equal(key.status, 404);
  assert.equal(key.headers['content-type'], 'text/html; charset=UTF-8');
  assert.equal(ud.status, 404);
  // Whatever identity headers the guest sends, the relay's own win.
  const forged = await runRelay(metadataRelayArgv(cloud.config, vm2.id),
    `GET /openstack/latest/meta_data.json HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Instance-ID: ${vm1.id}\r\nX-Instance-ID-Signature: ${instanceSignature(cloud.config.get('neutron', 'metadata_proxy_shared_secret'), vm1.id)}\r\nConnection: close\r\n\r\n`);
  assert.equal(JSON.parse(responses(forged.out)[0].body).uuid, vm2.id);
});

test('networks: auto — network_data.json gives cloud-init the NIC to bring up with DHCP, EC2 its address', async () => {
  const [nd, ip, sg] = await viaRelay(vm3.id, ['/openstack/2018-08-27/network_data.json', '/latest/meta-data/local-ipv4', '/latest/meta-data/security-groups']);
  const mac = vm3.addresses.user[0]['OS-EXT-IPS-MAC:mac_addr'];
  const j = JSON.parse(nd.body);
  assert.equal(j.links.length, 1);
  assert.equal(j.links[0].ethernet_mac_address, mac);
  assert.equal(j.links[0].type, 'phy');
  assert.deepEqual(j.networks.map((n: any) => [n.type, n.link]), [['ipv4_dhcp', j.links[0].id]]);
  assert.equal(ip.body, vm3.addresses.user[0].addr);
  assert.equal(ip.body, '169.254.0.15');
  assert.equal(sg.body, 'default');
});

/** A request straight to the service (no relay), with raw header lists (duplicates allowed). */
function direct(path: string, headers: [string, string][] = [], method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const u = new URL(`${cloud.url}/metadata${path}`);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname, method, headers: ['Host', u.host, ...headers.flat()] }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('unsigned, mis-signed and unknown requests are refused as Nova refuses them', async () => {
  const secret = cloud.config.get<string>('neutron', 'metadata_proxy_shared_secret');
  assert.ok(secret.length >= 24, 'the all-in-one generated a shared secret');
  const root = await direct('/');
  assert.equal(root.status, 200);
  assert.match(root.body, /^1\.0\n2007-01-19\n[\s\S]*\nlatest$/);
  const none = await direct('/openstack');
  assert.equal(none.status, 400);
  assert.match(none.body, /X-Instance-ID header is missing from request\./);
  const unsigned = await direct('/openstack', [['X-Instance-ID', vm1.id]]);
  assert.equal(unsigned.status, 403);
  assert.equal(unsigned.type, 'text/html; charset=UTF-8');
  assert.match(unsigned.body, /<title>403 Forbidden<\/title>[\s\S]*Invalid proxy request signature\./);
  // Another instance's id with this instance's signature: refused, nothing of either leaks.
  const other = await direct('/openstack/latest/meta_data.json', [['X-Instance-ID', vm2.id], ['X-Instance-ID-Signature', instanceSignature(secret, vm1.id)]]);
  assert.equal(other.status, 403);
  assert.ok(!other.body.includes(vm1.id) && !other.body.includes(vm2.id));
  for (const sig of [instanceSignature('wrong-secret', vm1.id), instanceSignature(secret, vm1.id).toUpperCase(), instanceSignature(secret, vm1.id).slice(0, 63), '', 'x'.repeat(5000)]) {
    assert.equal((await direct('/openstack', [['X-Instance-ID', vm1.id], ['X-Instance-ID-Signature', sig]])).status, 403, sig.slice(0, 10));
  }
  const twice = await direct('/openstack', [['X-Instance-ID', vm1.id], ['X-Instance-ID', vm2.id], ['X-Instance-ID-Signature', instanceSignature(secret, vm1.id)]]);
  assert.equal(twice.status, 400);
  const signed = (id: string): [string, string][] => [['X-Instance-ID', id], ['X-Instance-ID-Signature', instanceSignature(secret, id)]];
  assert.equal((await direct('/openstack', signed('00000000-1111-4222-8333-444444444444'))).status, 404);
  assert.equal((await direct('/openstack', signed('not-a-uuid'))).status, 404);
  assert.equal((await direct('/openstack', [...signed(vm1.id), ['X-Tenant-ID', 'another-project']])).status, 404);
  assert.equal((await direct('/openstack', [...signed(vm1.id), ['X-Tenant-ID', projectId]])).status, 200);
  assert.equal((await direct('/openstack/latest/nothing', signed(vm1.id))).status, 404);
  assert.equal((await direct('/openstack/2010-01-01/meta_data.json', signed(vm1.id))).status, 404);
  assert.equal((await direct('/latest/meta-data/../../../../etc/passwd', signed(vm1.id))).status, 404);
});

test('bad input is a 4xx, never a 500', async () => {
  const secret = cloud.config.get<string>('neutron', 'metadata_proxy_shared_secret');
  const signed: [string, string][] = [['X-Instance-ID', vm1.id], ['X-Instance-ID-Signature', instanceSignature(secret, vm1.id)]];
  for (const [path, method] of [['/openstack/%zz', 'GET'], [`/${'a'.repeat(5000)}`, 'GET'], ['/openstack/latest/meta_data.json%00', 'GET'],
    ['/openstack/latest/%2e%2e/%2e%2e/x', 'GET'], ['/openstack/latest/meta_data.json', 'PROPFIND'],
    ['/openstack/latest/password', 'DELETE'], ['/latest/meta-data/__proto__/constructor', 'GET']] as const) {
    const r = await direct(path, signed, method);
    assert.ok(r.status >= 400 && r.status < 500, `${method} ${path.slice(0, 40)} → ${r.status} ${r.body.slice(0, 200)}`);
  }
  // Encoded dot segments resolve inside the instance's own tree (as webob + posixpath.normpath in Nova).
  assert.equal((await direct('/latest/meta-data/public-keys/0/openssh-key/..%2f..%2f', signed)).body, '0=k1');
  // Oversized password bodies: Nova's 400 "Request is too large.", and 413 beyond the body limit.
  const post = (size: number) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const u = new URL(`${cloud.url}/metadata/openstack/latest/password`);
    const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: ['Host', u.host, ...signed.flat(), 'Content-Type', 'text/plain'] }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end('x'.repeat(size));
  });
  const tooLarge = await post(30 * 1024);
  assert.equal(tooLarge.status, 400);
  assert.match(tooLarge.body, /Request is too large\./);
  assert.equal((await post(1024 * 1024)).status, 413);
});

test('the guest posts its password once; os-server-password shows and clears it', async () => {
  const pw = 'ZW5jcnlwdGVkLXBhc3N3b3Jk'.repeat(4);
  const [empty] = await viaRelay(vm1.id, ['/openstack/latest/password']);
  assert.equal(empty.status, 200);
  assert.equal(empty.body, '');
  const [posted] = await viaRelay(vm1.id, ['/openstack/latest/password'], 'POST', pw);
  assert.equal(posted.status, 200);
  const [again] = await viaRelay(vm1.id, ['/openstack/2013-04-04/password'], 'POST', 'other');
  assert.equal(again.status, 409);
  const [read] = await viaRelay(vm1.id, ['/openstack/latest/password']);
  assert.equal(read.body, pw);
  assert.equal((await api('GET', `/servers/${vm1.id}/os-server-password`)).body.password, pw);
  assert.equal((await api('DELETE', `/servers/${vm1.id}/os-server-password`)).status, 204);
  const [tooBig] = await viaRelay(vm1.id, ['/openstack/latest/password'], 'POST', 'x'.repeat(1021));
  assert.equal(tooBig.status, 400);
  assert.match(tooBig.body, /Request is too large\./);
  const [put] = await viaRelay(vm1.id, ['/openstack/latest/password'], 'PUT', 'x');
  assert.equal(put.status, 400);
  const [json] = await viaRelay(vm1.id, ['/openstack/latest/password'], 'POST', '{"not": "parsed"}');
  assert.equal(json.status, 200, 'any body is taken as the password, whatever its content type');
  assert.equal((await api('GET', `/servers/${vm1.id}/os-server-password`)).body.password, '{"not": "parsed"}');
  const [old] = await viaRelay(vm1.id, ['/openstack/2012-08-10/password']);
  assert.equal(old.status, 404, 'password came with 2013-04-04');
});

test('stratus serve metadata: the same service alone at /', async () => {
  const port = await freePort();
  const logger = createLogger({ level: 'silent' });
  const r = await launch({ config: cloud.config, logger, services: [metadataService], bind: '127.0.0.1', port, allInOne: false });
  try {
    const secret = cloud.config.get<string>('neutron', 'metadata_proxy_shared_secret');
    const res = await fetch(`http://127.0.0.1:${port}/openstack/latest/meta_data.json`, { headers: { 'x-instance-id': vm2.id, 'x-instance-id-signature': instanceSignature(secret, vm2.id) } });
    assert.equal(res.status, 200);
    assert.equal((await res.json() as { uuid: string }).uuid, vm2.id);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
    const relayed = await runRelay(metadataRelayArgv(cloud.config.with({ DEFAULT: { metadata_url: `http://127.0.0.1:${port}` } }), vm2.id), 'GET /latest/meta-data/local-hostname HTTP/1.1\r\nConnection: close\r\n\r\n');
    assert.equal(responses(relayed.out)[0].body, 'vm2.novalocal');
  } finally {
    await r.stop();
  }
});

test('the config drive of an instance says what the service says', async () => {
  const cells = await Cells.open(cloud.config.get('api_database', 'connection'));
  const dir = mkdtempSync(join(tmpdir(), 'stratus-md-'));
  try {
    const inst = (await loadInstance(cells, vm1.id, cloud.config))!;
    assert.equal(inst.spec.configDrive, true);
    const iso = join(dir, 'disk.config');
    await buildConfigDrive(inst.spec, iso, { config: cloud.config });
    const exec = promisify(execFile);
    const fromDrive = JSON.parse((await exec('isoinfo', ['-J', '-i', iso, '-x', '/openstack/latest/meta_data.json'])).stdout);
    const [served] = await viaRelay(vm1.id, ['/openstack/latest/meta_data.json']);
    const fromService = JSON.parse(served.body);
    delete fromDrive.random_seed; delete fromService.random_seed;
    assert.deepEqual(fromDrive, fromService);
    assert.equal((await exec('isoinfo', ['-J', '-i', iso, '-x', '/openstack/latest/user_data'])).stdout, USER_DATA);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cells.close();
  }
});

test('a deleted server\'s relay gets 404s', async () => {
  assert.equal((await api('DELETE', `/servers/${vm2.id}`)).status, 204);
  await waitFor(vm2.id, ['DELETED']);
  await new Promise((r) => setTimeout(r, 1100)); // past [api] metadata_cache_expiration
  const [md] = await viaRelay(vm2.id, ['/openstack/latest/meta_data.json']);
  assert.equal(md.status, 404);
});
