// The EC2 Query API on a real all-in-one (fake compute driver), on the database STRATUS_TEST_DB
// selects: signatures (V4, V2, wrong secret, clock skew, replay, tampering), ids, instances
// through their lifecycle, reservations and paging, key pairs, tags, images, and bad input.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { all, ec2Call, first, form, parseReply, signV2Url, signV4, type Keys } from './helpers/ec2.ts';
import { ec2IdFor } from '../src/ec2/ids.ts';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { metadataRelayArgv } from '../src/compute/metadata/relay.ts';
import { responses, runRelay } from '../src/compute/metadata/testing.ts';

/** A fresh RSA public key in OpenSSH's one-line form. */
function sshPublicKey(): string {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  const mpint = (b64: string) => { const b = Buffer.from(b64, 'base64url'); return b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b; };
  const str = (b: Buffer) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]); };
  return `ssh-rsa ${Buffer.concat([str(Buffer.from('ssh-rsa')), str(mpint(jwk.e!)), str(mpint(jwk.n!))]).toString('base64')} test@ec2`;
}

let cloud: TestCloud;
let EP: string;
let keys: Keys;
let other: Keys;
let projectId: string;
let ami: string;

const call = (action: string, params: Record<string, string> = {}, k = keys) => ec2Call(EP, k, action, params);
const ok = async (action: string, params: Record<string, string> = {}, k = keys) => {
  const r = await call(action, params, k);
  assert.equal(r.status, 200, `${action}: ${r.xml}`);
  assert.match(r.xml, new RegExp(`^<\\?xml[^>]*>\\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>[0-9a-f-]{36}</requestId>`));
  return r.xml;
};
const fails = async (code: string, action: string, params: Record<string, string> = {}, status = 400) => {
  const r = await call(action, params);
  assert.equal(r.code, code, `${action} ${JSON.stringify(params)}: ${r.xml}`);
  assert.equal(r.status, status);
  assert.match(r.xml, /^<\?xml[^>]*>\n<Response><Errors><Error><Code>[^<]+<\/Code><Message>[^<]*<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/);
  return r;
};

async function credentialsFor(token: string, userId: string, project: string): Promise<Keys> {
  const r = await cloud.req('POST', `/identity/v3/users/${userId}/credentials/OS-EC2`, { token, body: { tenant_id: project } });
  assert.equal(r.status, 201, r.text);
  return { access: r.body.credential.access, secret: r.body.credential.secret };
}

async function waitState(ids: string[], state: string): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    const xml = await ok('DescribeInstances', Object.fromEntries(ids.map((id, i) => [`InstanceId.${i + 1}`, id])));
    const states = [...xml.matchAll(/<instanceState><code>\d+<\/code><name>([^<]+)<\/name>/g)].map((m) => m[1]);
    if (states.length === ids.length && states.every((s) => s === state)) return;
    if (Date.now() > end) assert.fail(`${ids} never all ${state}: ${states}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits until no server has a task in flight: as in Nova, metadata writes and createImage are
 * refused while a reboot is still running (the EC2 state shows `running` throughout).
 */
async function waitSettled(): Promise<void> {
  const token = await cloud.adminToken();
  const end = Date.now() + 20_000;
  for (;;) {
    const r = await cloud.req('GET', '/compute/v2.1/servers/detail?all_tenants=1', { token });
    if (r.status === 200 && r.body.servers.every((s: Record<string, unknown>) => s['OS-EXT-STS:task_state'] == null)) return;
    if (Date.now() > end) assert.fail(`servers never settled: ${r.text.slice(0, 300)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

before(async () => {
  cloud = await startCloud();
  EP = `${cloud.url}/ec2/`;
  const admin = await cloud.login('admin', cloud.adminPassword, 'admin');
  projectId = admin.body.token.project.id;
  keys = await credentialsFor(admin.token, admin.body.token.user.id, projectId);
  // A second project with its own user and key pair: it must never see the first's instances.
  const t = admin.token;
  const p = await cloud.req('POST', '/identity/v3/projects', { token: t, body: { project: { name: 'other', domain_id: 'default' } } });
  const u = await cloud.req('POST', '/identity/v3/users', { token: t, body: { user: { name: 'bob', password: 'bob-pass', domain_id: 'default', default_project_id: p.body.project.id } } });
  const role = (await cloud.req('GET', '/identity/v3/roles?name=member', { token: t })).body.roles[0];
  await cloud.req('PUT', `/identity/v3/projects/${p.body.project.id}/users/${u.body.user.id}/roles/${role.id}`, { token: t });
  const bob = await cloud.login('bob', 'bob-pass', 'other');
  other = await credentialsFor(bob.token, u.body.user.id, p.body.project.id);
  const img = await cloud.req('POST', '/image/v2/images', { token: t, body: { name: 'cirros', disk_format: 'raw', container_format: 'bare', visibility: 'public', architecture: 'x86_64' } });
  await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': t, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(65536) });
  ami = ec2IdFor('ami', img.body.id);
});
after(async () => { await cloud?.stop(); });

describe('signatures', () => {
  test('SigV4 (POST) and SigV2 (GET) are accepted', async () => {
    assert.match(await ok('DescribeRegions'), /<regionName>RegionOne<\/regionName>/);
    const res = await fetch(signV2Url(EP, { Action: 'DescribeAvailabilityZones', Version: '2016-11-15' }, keys));
    const xml = await res.text();
    assert.equal(res.status, 200, xml);
    assert.match(xml, /<zoneName>nova<\/zoneName><zoneState>available<\/zoneState>/);
  });

  test('a wrong secret, an unknown key, a tampered body or no signature: AuthFailure', async () => {
    assert.equal((await call('DescribeRegions', {}, { access: keys.access, secret: 'wrong' })).code, 'AuthFailure');
    const unknown = await call('DescribeRegions', {}, { access: 'nope', secret: keys.secret });
    assert.equal(unknown.code, 'AuthFailure');
    assert.equal(unknown.status, 401);
    const body = form({ Action: 'DescribeRegions', Version: '2016-11-15' });
    const headers = signV4(EP, body, keys);
    const tampered = await fetch(EP, { method: 'POST', headers, body: `${body}&RegionName.1=x` });
    assert.equal(parseReply(tampered.status, await tampered.text()).code, 'AuthFailure');
    const unsigned = await fetch(EP, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    assert.equal(parseReply(unsigned.status, await unsigned.text()).code, 'AuthFailure');
    const v2bad = await fetch(signV2Url(EP, { Action: 'DescribeRegions', Version: '2016-11-15' }, { ...keys, secret: 'wrong' }));
    assert.equal(parseReply(v2bad.status, await v2bad.text()).code, 'AuthFailure');
  });

  test('Identity hands the SigV4 signing key only to a service token, and never the secret', async () => {
    const body = form({ Action: 'DescribeRegions', Version: '2016-11-15' });
    const h = signV4(EP, body, keys);
    const credentials = { access: keys.access, signature: /Signature=([0-9a-f]+)/.exec(h.authorization)![1], host: h.host, verb: 'POST', path: '/ec2/', params: {}, headers: { Authorization: h.authorization, 'X-Amz-Date': h['x-amz-date'], host: h.host, 'content-type': h['content-type'] }, body_hash: createHash('sha256').update(body).digest('hex') };
    const ask = (token?: string) => cloud.req('POST', '/identity/v3/ec2tokens', { body: { credentials }, ...(token ? { token } : {}) });
    const anon = await ask();
    assert.equal(anon.status, 200, anon.text);
    assert.equal(anon.headers.get('x-ec2-signing-key'), null);
    assert.ok(!anon.text.includes(keys.secret));
    assert.equal((await ask(await cloud.adminToken())).headers.get('x-ec2-signing-key'), null);
    const svc = await cloud.login('stratus', 'service-pass', 'service');
    const withSvc = await ask(svc.token);
    assert.match(withSvc.headers.get('x-ec2-signing-key') ?? '', /^[0-9a-f]{64}$/);
    assert.match(withSvc.headers.get('x-ec2-signing-scope') ?? '', /^\d{8}\/RegionOne\/ec2\/aws4_request$/);
    assert.ok(!withSvc.text.includes(keys.secret) && withSvc.headers.get('x-ec2-signing-key') !== keys.secret);
  });

  test('clock skew beyond 15 minutes either way: RequestExpired (V4 and V2)', async () => {
    for (const minutes of [-16, 16]) {
      const r = await ec2Call(EP, keys, 'DescribeRegions', {}, { date: new Date(Date.now() + minutes * 60_000) });
      assert.equal(r.code, 'RequestExpired', r.xml);
      const v2 = await fetch(signV2Url(EP, { Action: 'DescribeRegions', Version: '2016-11-15' }, keys, { date: new Date(Date.now() + minutes * 60_000) }));
      assert.equal(parseReply(v2.status, await v2.text()).code, 'RequestExpired');
    }
    // Within the window is fine.
    assert.equal((await ec2Call(EP, keys, 'DescribeRegions', {}, { date: new Date(Date.now() - 10 * 60_000) })).status, 200);
  });

  test('replay: the same signed request is good only inside its window, and only as signed', async () => {
    const send = async (b: string, h: Record<string, string>) => { const r = await fetch(EP, { method: 'POST', headers: h, body: b }); return parseReply(r.status, await r.text()); };
    const read = form({ Action: 'DescribeKeyPairs', Version: '2016-11-15' });
    const rh = signV4(EP, read, keys);
    assert.equal((await send(read, rh)).status, 200);
    assert.equal((await send(read, rh)).status, 200);
    // A write replayed is the same request again, as on AWS (ClientToken makes launches safe).
    const write = form({ Action: 'CreateKeyPair', Version: '2016-11-15', KeyName: 'replayed' });
    const wh = signV4(EP, write, keys);
    assert.equal((await send(write, wh)).status, 200);
    assert.equal((await send(write, wh)).code, 'InvalidKeyPair.Duplicate');
    // Its signature lent to other parameters, or another path: refused.
    assert.equal((await send(form({ Action: 'DeleteKeyPair', Version: '2016-11-15', KeyName: 'replayed' }), wh)).code, 'AuthFailure');
    const elsewhere = await fetch(`${cloud.url}/ec2/x`, { method: 'POST', headers: wh, body: write });
    assert.equal(parseReply(elsewhere.status, await elsewhere.text()).code, 'AuthFailure');
    // A request captured more than 15 minutes ago (the window) is refused whatever it says.
    const old = form({ Action: 'DeleteKeyPair', Version: '2016-11-15', KeyName: 'replayed' });
    assert.equal((await send(old, signV4(EP, old, keys, { date: new Date(Date.now() - 16 * 60_000) }))).code, 'RequestExpired');
    await ok('DeleteKeyPair', { KeyName: 'replayed' });
  });
});

describe('instances', () => {
  let ids: string[] = [];

  test('RunInstances MinCount/MaxCount 3 with a key, user data, tags and a client token; idempotent', async () => {
    await ok('CreateKeyPair', { KeyName: 'k1' });
    const params = {
      ImageId: ami, InstanceType: 'm1.tiny', MinCount: '3', MaxCount: '3', KeyName: 'k1', UserData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
      ClientToken: 'tok-1', 'TagSpecification.1.ResourceType': 'instance', 'TagSpecification.1.Tag.1.Key': 'Name', 'TagSpecification.1.Tag.1.Value': 'web',
    };
    const xml = await ok('RunInstances', params);
    ids = all(xml, 'instanceId');
    assert.equal(ids.length, 3);
    assert.deepEqual(all(xml, 'amiLaunchIndex'), ['0', '1', '2']);
    for (const id of ids) assert.match(id, /^i-[0-9a-f]{17}$/);
    const rid = first(xml, 'reservationId');
    assert.match(rid, /^r-/);
    assert.equal(first(xml, 'ownerId'), projectId);
    // Same token, same parameters: the same reservation, nothing new launched.
    const again = await ok('RunInstances', params);
    assert.equal(first(again, 'reservationId'), rid);
    assert.deepEqual(all(again, 'instanceId'), ids);
    // Same token, other parameters: refused.
    await fails('IdempotentParameterMismatch', 'RunInstances', { ...params, MaxCount: '4' });
    await waitState(ids, 'running');
  });

  test('DescribeInstances: one reservation, filters, tags, image, type, key', async () => {
    const xml = await ok('DescribeInstances', { 'Filter.1.Name': 'instance-state-name', 'Filter.1.Value.1': 'running', 'Filter.2.Name': 'tag:Name', 'Filter.2.Value.1': 'w*' });
    assert.equal(all(xml, 'reservationId').length, 1);
    assert.deepEqual(all(xml, 'instanceId').sort(), [...ids].sort());
    assert.equal(all(xml, 'imageId')[0], ami);
    assert.equal(all(xml, 'instanceType')[0], 'm1.tiny');
    assert.equal(all(xml, 'keyName')[0], 'k1');
    assert.equal(all(xml, 'architecture')[0], 'x86_64');
    assert.match(xml, /<tagSet><item><key>Name<\/key><value>web<\/value><\/item><\/tagSet>/);
    const none = await ok('DescribeInstances', { 'Filter.1.Name': 'instance-state-name', 'Filter.1.Value.1': 'stopped' });
    assert.equal(all(none, 'instanceId').length, 0);
    const one = await ok('DescribeInstances', { 'Filter.1.Name': 'instance-id', 'Filter.1.Value.1': ids[1] });
    assert.deepEqual(all(one, 'instanceId'), [ids[1]]);
    const attr = await ok('DescribeInstanceAttribute', { InstanceId: ids[0], Attribute: 'userData' });
    assert.equal(Buffer.from(first(attr, 'value'), 'base64').toString(), '#!/bin/sh\necho hi\n');
    assert.equal(first(await ok('DescribeInstanceAttribute', { InstanceId: ids[0], Attribute: 'instanceType' }), 'value'), 'm1.tiny');
  });

  test('metadata parity: a guest reads the ids DescribeInstances shows', async () => {
    const servers = (await cloud.req('GET', '/compute/v2.1/servers/detail?name=web', { token: await cloud.adminToken() })).body.servers;
    const xml = await ok('DescribeInstances', { 'InstanceId.1': ids[1] });
    const s = servers.find((x: any) => ec2IdFor('i', x.id) === ids[1]);
    assert.ok(s, 'the EC2 id is the one derived from the server UUID');
    const paths = ['instance-id', 'ami-id', 'reservation-id', 'ami-launch-index', 'instance-type'].map((p) => `/latest/meta-data/${p}`);
    const reqs = paths.map((p, i) => `GET ${p} HTTP/1.1\r\nHost: 169.254.169.254\r\n${i === paths.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    const got = responses((await runRelay(metadataRelayArgv(cloud.config, s.id), reqs)).out).map((r) => r.body);
    assert.deepEqual(got, [ids[1], ami, first(xml, 'reservationId'), first(xml, 'amiLaunchIndex'), 'm1.tiny']);
  });

  test('paging with MaxResults and NextToken covers every instance once', async () => {
    const more = await ok('RunInstances', { ImageId: ami, InstanceType: 'm1.tiny', MinCount: '3', MaxCount: '3' });
    ids.push(...all(more, 'instanceId'));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const xml = await ok('DescribeInstances', { MaxResults: '5', ...(token ? { NextToken: token } : {}) });
      seen.push(...all(xml, 'instanceId'));
      token = first(xml, 'nextToken');
      pages++;
    } while (token);
    assert.equal(pages, 2);
    assert.deepEqual(seen.sort(), [...ids].sort());
    await fails('InvalidParameterValue', 'DescribeInstances', { MaxResults: '5', NextToken: 'garbage' });
    await fails('InvalidParameterValue', 'DescribeInstances', { MaxResults: '2' });
  });

  test('stop, start, reboot, console output (base64), status', async () => {
    const stop = await ok('StopInstances', { 'InstanceId.1': ids[0] });
    assert.match(stop, /<currentState><code>64<\/code><name>stopping<\/name><\/currentState><previousState><code>16<\/code><name>running<\/name><\/previousState>/);
    await waitState([ids[0]], 'stopped');
    const status = await ok('DescribeInstanceStatus', { IncludeAllInstances: 'true', 'InstanceId.1': ids[0] });
    assert.match(status, /<instanceState><code>80<\/code><name>stopped<\/name><\/instanceState>/);
    assert.match(await ok('StartInstances', { 'InstanceId.1': ids[0] }), /<previousState><code>80<\/code><name>stopped<\/name>/);
    await waitState([ids[0]], 'running');
    assert.match(await ok('RebootInstances', { 'InstanceId.1': ids[0] }), /<return>true<\/return>/);
    const out = await ok('GetConsoleOutput', { InstanceId: ids[0] });
    assert.match(Buffer.from(first(out, 'output'), 'base64').toString(), /FAKE CONSOLE OUTPUT/);
    assert.match(await ok('DescribeInstanceStatus'), /<instanceStatus><status>ok<\/status>/);
    await waitSettled();
  });

  test('tags: CreateTags, DescribeTags with filters, DeleteTags', async () => {
    await ok('CreateTags', { 'ResourceId.1': ids[0], 'ResourceId.2': ids[1], 'Tag.1.Key': 'env', 'Tag.1.Value': 'prod', 'Tag.2.Key': 'team', 'Tag.2.Value': '' });
    const t = await ok('DescribeTags', { 'Filter.1.Name': 'key', 'Filter.1.Value.1': 'env' });
    assert.deepEqual(all(t, 'resourceId').sort(), [ids[0], ids[1]].sort());
    await ok('DeleteTags', { 'ResourceId.1': ids[0], 'Tag.1.Key': 'env', 'Tag.1.Value': 'not-prod' });
    assert.equal(all(await ok('DescribeTags', { 'Filter.1.Name': 'resource-id', 'Filter.1.Value.1': ids[0], 'Filter.2.Name': 'key', 'Filter.2.Value.1': 'env' }), 'key').length, 1);
    await ok('DeleteTags', { 'ResourceId.1': ids[0], 'Tag.1.Key': 'env' });
    assert.equal(all(await ok('DescribeTags', { 'Filter.1.Name': 'resource-id', 'Filter.1.Value.1': ids[0], 'Filter.2.Name': 'key', 'Filter.2.Value.1': 'env' }), 'key').length, 0);
    assert.deepEqual(all(await ok('DescribeInstances', { 'Filter.1.Name': 'tag:env', 'Filter.1.Value.1': 'prod' }), 'instanceId'), [ids[1]]);
    await fails('InvalidParameterValue', 'CreateTags', { 'ResourceId.1': ids[0], 'Tag.1.Key': 'aws:reserved', 'Tag.1.Value': 'x' });
  });

  test('CreateImage: a snapshot AMI with the instance\'s architecture; duplicate names refused; DeregisterImage', async () => {
    const xml = await ok('CreateImage', { InstanceId: ids[0], Name: 'snap-1', Description: 'nightly' });
    const snap = first(xml, 'imageId');
    assert.match(snap, /^ami-[0-9a-f]{17}$/);
    await fails('InvalidAMIName.Duplicate', 'CreateImage', { InstanceId: ids[0], Name: 'snap-1' });
    const end = Date.now() + 20_000;
    let d = '';
    while (first(d, 'imageState') !== 'available') {
      if (Date.now() > end) assert.fail(`snapshot never available: ${d}`);
      await new Promise((r) => setTimeout(r, 100));
      d = await ok('DescribeImages', { 'ImageId.1': snap });
    }
    assert.equal(first(d, 'name'), 'snap-1');
    assert.equal(first(d, 'description'), 'nightly');
    assert.equal(first(d, 'architecture'), 'x86_64');
    assert.equal(first(d, 'isPublic'), 'false');
    assert.deepEqual(all(await ok('DescribeImages', { 'Owner.1': 'self', 'Filter.1.Name': 'name', 'Filter.1.Value.1': 'snap-*' }), 'imageId'), [snap]);
    // The instance can boot from it.
    const run = await ok('RunInstances', { ImageId: snap, InstanceType: 'm1.tiny', MinCount: '1', MaxCount: '1' });
    ids.push(first(run, 'instanceId'));
    await waitState([ids[ids.length - 1]], 'running');
    assert.match(await ok('DeregisterImage', { ImageId: snap }), /<return>true<\/return>/);
    await fails('InvalidAMIID.NotFound', 'DescribeImages', { 'ImageId.1': snap });
  });

  test('another project cannot see or touch these instances', async () => {
    for (const action of ['DescribeInstances', 'TerminateInstances', 'StopInstances']) {
      const r = await call(action, { 'InstanceId.1': ids[0] }, other);
      assert.equal(r.code, 'InvalidInstanceID.NotFound', `${action}: ${r.xml}`);
    }
    const r = await call('GetConsoleOutput', { InstanceId: ids[0] }, other);
    assert.equal(r.code, 'InvalidInstanceID.NotFound');
    const theirs = await ec2Call(EP, other, 'DescribeInstances');
    assert.equal(all(theirs.xml, 'instanceId').length, 0);
  });

  test('servers made through the Nova API: the ids and the reservation their guests see', async () => {
    const bob = await cloud.login('bob', 'bob-pass', 'other');
    const imageUuid = (await cloud.req('GET', '/image/v2/images?name=cirros', { token: bob.token })).body.images[0].id;
    const r = await cloud.req('POST', '/compute/v2.1/servers', { token: bob.token, headers: { 'OpenStack-API-Version': 'compute 2.37' }, body: { server: { name: 'nova', imageRef: imageUuid, flavorRef: '1', networks: 'none', min_count: 2, max_count: 2, return_reservation_id: true } } });
    assert.equal(r.status, 202, r.text);
    const rid = r.body.reservation_id;
    const xml = (await ec2Call(EP, other, 'DescribeInstances')).xml;
    // One reservation, Nova's own id (what the metadata service gives the guest as reservation-id).
    assert.deepEqual(all(xml, 'reservationId'), [rid]);
    const uuids = (await cloud.req('GET', `/compute/v2.1/servers?reservation_id=${rid}`, { token: bob.token })).body.servers.map((s: any) => s.id);
    // The instance ids are the ones the metadata service computes from the UUIDs.
    assert.deepEqual(all(xml, 'instanceId').sort(), uuids.map((u: string) => ec2IdFor('i', u)).sort());
    assert.deepEqual(all(xml, 'amiLaunchIndex').sort(), ['0', '1']);
    assert.equal(first(xml, 'imageId'), ami);
    const t = await ec2Call(EP, other, 'TerminateInstances', Object.fromEntries(all(xml, 'instanceId').map((id, i) => [`InstanceId.${i + 1}`, id])));
    assert.equal(t.status, 200, t.xml);
  });

  test('TerminateInstances: shutting-down, then gone', async () => {
    const xml = await ok('TerminateInstances', Object.fromEntries(ids.map((id, i) => [`InstanceId.${i + 1}`, id])));
    assert.equal(all(xml, 'instanceId').length, ids.length);
    assert.match(xml, /<currentState><code>32<\/code><name>shutting-down<\/name>/);
    const end = Date.now() + 20_000;
    while (all(await ok('DescribeInstances'), 'instanceId').length) {
      if (Date.now() > end) assert.fail('instances never went away');
      await new Promise((r) => setTimeout(r, 100));
    }
    // Asked for by id, a terminated instance still shows (as on AWS, for an hour): what
    // boto3's instance_terminated waiter polls for. To another project it does not exist.
    const gone = await ok('DescribeInstances', { 'InstanceId.1': ids[0] });
    assert.match(gone, /<instanceState><code>48<\/code><name>terminated<\/name><\/instanceState>/);
    assert.match(await ok('TerminateInstances', { 'InstanceId.1': ids[0] }), /<currentState><code>48<\/code>/);
    await fails('IncorrectInstanceState', 'StartInstances', { 'InstanceId.1': ids[0] });
    assert.equal((await call('DescribeInstances', { 'InstanceId.1': ids[0] }, other)).code, 'InvalidInstanceID.NotFound');
  });
});

describe('images, key pairs, account', () => {
  test('DescribeImages with owner and executable-by; DeregisterImage refusals', async () => {
    const xml = await ok('DescribeImages', { 'ExecutableBy.1': 'all' });
    assert.deepEqual(all(xml, 'imageId'), [ami]);
    assert.equal(first(xml, 'imageState'), 'available');
    assert.equal(first(xml, 'architecture'), 'x86_64');
    assert.equal(first(xml, 'imageType'), 'machine');
    assert.deepEqual(all(await ok('DescribeImages', { 'Owner.1': 'self' }), 'imageId'), [ami]);
    assert.deepEqual(all(await ok('DescribeImages', { 'Owner.1': 'amazon' }), 'imageId'), []);
    assert.deepEqual(all(await ok('DescribeImages', { 'Filter.1.Name': 'image-type', 'Filter.1.Value.1': 'kernel' }), 'imageId'), []);
    await fails('InvalidAMIID.NotFound', 'DescribeImages', { 'ImageId.1': 'ami-00000000000000000' });
    await fails('InvalidAMIID.Malformed', 'DescribeImages', { 'ImageId.1': 'ami-xyz' });
    await fails('InvalidAMIID.NotFound', 'DeregisterImage', { ImageId: 'ami-00000000000000000' });
    // The other project sees the public image but cannot remove it.
    const r = await call('DeregisterImage', { ImageId: ami }, other);
    assert.ok(r.status >= 400 && r.code, r.xml);
  });

  test('key pairs: create, import, describe, duplicate, delete', async () => {
    const kp = await ok('CreateKeyPair', { KeyName: 'k2' });
    assert.match(first(kp, 'keyMaterial'), /PRIVATE KEY/);
    assert.match(first(kp, 'keyPairId'), /^key-/);
    await fails('InvalidKeyPair.Duplicate', 'CreateKeyPair', { KeyName: 'k2' });
    const pub = sshPublicKey();
    const imp = await ok('ImportKeyPair', { KeyName: 'imp', PublicKeyMaterial: Buffer.from(pub).toString('base64') });
    assert.match(first(imp, 'keyFingerprint'), /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    await fails('InvalidKey.Format', 'ImportKeyPair', { KeyName: 'bad', PublicKeyMaterial: Buffer.from('not a key').toString('base64') });
    const d = await ok('DescribeKeyPairs', { 'KeyName.1': 'imp' });
    assert.deepEqual(all(d, 'keyName'), ['imp']);
    await fails('InvalidKeyPair.NotFound', 'DescribeKeyPairs', { 'KeyName.1': 'ghost' });
    await ok('DeleteKeyPair', { KeyName: 'imp' });
    await ok('DeleteKeyPair', { KeyName: 'imp' }); // EC2 answers true for one already gone
    await fails('UnsupportedOperation', 'CreateKeyPair', { KeyName: 'ed', KeyType: 'ed25519' });
  });

  test('DescribeAccountAttributes max-instances from the quota; DescribeInstanceTypes from flavors', async () => {
    assert.match(await ok('DescribeAccountAttributes', { 'AttributeName.1': 'max-instances' }), /<attributeName>max-instances<\/attributeName><attributeValueSet><item><attributeValue>10<\/attributeValue>/);
    const t = await ok('DescribeInstanceTypes', { 'InstanceType.1': 'm1.tiny' });
    assert.match(t, /<instanceType>m1.tiny<\/instanceType>/);
    assert.match(t, /<vCpuInfo><defaultVCpus>1<\/defaultVCpus><\/vCpuInfo><memoryInfo><sizeInMiB>512<\/sizeInMiB><\/memoryInfo>/);
    await fails('InvalidParameterValue', 'DescribeInstanceTypes', { 'InstanceType.1': 'x9.huge' });
  });
});

describe('bad input', () => {
  test('each answers its EC2 error code, never a 500', async () => {
    await fails('InvalidAction', 'FlyToTheMoon');
    await fails('UnsupportedOperation', 'CreateVpc');
    await fails('InvalidParameterValue', 'RunInstances', { ImageId: ami, MinCount: 'abc', MaxCount: '1' });
    await fails('InvalidParameterValue', 'RunInstances', { ImageId: ami, MinCount: '2', MaxCount: '1' });
    await fails('MissingParameter', 'RunInstances', { ImageId: ami, MinCount: '1' });
    await fails('InvalidAMIID.Malformed', 'RunInstances', { ImageId: 'i-123', MinCount: '1', MaxCount: '1' });
    await fails('InvalidAMIID.NotFound', 'RunInstances', { ImageId: 'ami-00000000000000000', MinCount: '1', MaxCount: '1' });
    await fails('InvalidParameterValue', 'RunInstances', { ImageId: ami, MinCount: '1', MaxCount: '1', InstanceType: 'no.such' });
    await fails('InvalidParameterValue', 'RunInstances', { ImageId: ami, MinCount: '1', MaxCount: '1', UserData: '***' });
    await fails('InvalidKeyPair.NotFound', 'RunInstances', { ImageId: ami, MinCount: '1', MaxCount: '1', InstanceType: 'm1.tiny', KeyName: 'ghost' });
    await fails('InstanceLimitExceeded', 'RunInstances', { ImageId: ami, MinCount: '50', MaxCount: '50', InstanceType: 'm1.tiny' });
    await fails('InvalidInstanceID.Malformed', 'DescribeInstances', { 'InstanceId.1': 'bogus' });
    await fails('InvalidInstanceID.NotFound', 'DescribeInstances', { 'InstanceId.1': 'i-00000000000000000' });
    await fails('InvalidParameterValue', 'DescribeInstances', { 'Filter.1.Name': 'no-such-filter', 'Filter.1.Value.1': 'x' });
    await fails('InvalidParameterValue', 'DescribeInstances', { 'Filter.x.Name': 'instance-id' });
    await fails('InvalidParameterValue', 'DescribeInstanceAttribute', { InstanceId: 'i-00000000000000000', Attribute: 'nonsense' });
    await fails('MissingParameter', 'TerminateInstances');
    await fails('InvalidParameterValue', 'CreateImage', { InstanceId: 'i-00000000000000000', Name: 'x' });
    await fails('InvalidParameterValue', 'DescribeRegions', { 'RegionName.1': 'mars-1' });
    await fails('InvalidParameterValue', 'RunInstances', { ImageId: ami, MinCount: '99999999999999999999', MaxCount: '1' });
    await fails('InvalidParameterValue', 'DescribeInstances', { 'InstanceId.0': 'i-1' });
    await fails('InvalidParameterValue', 'DescribeInstances', { 'Filter.1.Name': 'instance-id' });
    await fails('InvalidID', 'CreateTags', { 'ResourceId.1': 'vol-1', 'Tag.1.Key': 'a' });
    await fails('InvalidKey.Format', 'ImportKeyPair', { KeyName: 'k', PublicKeyMaterial: '!!!' });
    await fails('InvalidAction', '__proto__');
    const noAction = await fetch(EP, { method: 'POST', headers: signV4(EP, 'Version=2016-11-15', keys), body: 'Version=2016-11-15' });
    assert.equal(parseReply(noAction.status, await noAction.text()).code, 'MissingAction');
    // The HTTP layer's refusals are EC2 documents too.
    const body = form({ Action: 'DescribeRegions', Version: '2016-11-15' });
    const put = await fetch(EP, { method: 'PUT', headers: signV4(EP, body, keys), body });
    assert.deepEqual([put.status, parseReply(put.status, await put.text()).code], [405, 'InvalidAction']);
    const json = await fetch(EP, { method: 'POST', headers: { ...signV4(EP, body, keys), 'content-type': 'application/json' }, body: '{bad' });
    assert.deepEqual([json.status, parseReply(json.status, await json.text()).code], [400, 'InvalidParameterValue']);
    const big = await fetch(EP, { method: 'POST', headers: signV4(EP, 'x', keys), body: 'A='.padEnd(300_000, 'x') });
    assert.deepEqual([big.status, parseReply(big.status, await big.text()).code], [413, 'InvalidParameterValue']);
  });
});
