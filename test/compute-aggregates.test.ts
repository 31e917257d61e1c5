// os-aggregates against a real all-in-one: Nova's shapes per microversion (2.41 uuid), host
// membership mirrored into placement (the compute node provider's aggregates), availability zones
// through aggregates (os-availability-zone, os-services, a server's OS-EXT-AZ), and bad input per
// class (malformed body, wrong types, unknown ids, duplicates, non-admin).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';

let cloud: TestCloud;
let token: string;
const { api } = computeApi(() => cloud, () => token);
let memberToken: string;
let host: string;
let rp: string;

const I = '/identity/v3';

async function action(id: number, body: unknown, tok = token) {
  return api('POST', `/os-aggregates/${id}/action`, body, {}, tok);
}
async function rpAggregates(): Promise<string[]> {
  const r = await cloud.req('GET', `/placement/resource_providers/${rp}/aggregates`, { token, headers: { 'OpenStack-API-Version': 'placement 1.19' } });
  assert.equal(r.status, 200, r.text);
  return r.body.aggregates;
}
function errMsg(r: { body: any }): string {
  return (Object.values(r.body ?? {})[0] as any)?.message;
}
async function expectError(r: { status: number; body: any }, status: number, msg?: string | RegExp) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  const key = { 400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound', 409: 'conflictingRequest' }[status];
  if (key) assert.ok(r.body?.[key], `error key ${key} in ${JSON.stringify(r.body)}`);
  if (typeof msg === 'string') assert.equal(errMsg(r), msg);
  else if (msg) assert.match(errMsg(r), msg);
}

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  // A member of another project: no admin role.
  const p = await cloud.req('POST', `${I}/projects`, { token, body: { project: { name: 'agg-proj', domain_id: 'default' } } });
  assert.equal(p.status, 201, p.text);
  const u = await cloud.req('POST', `${I}/users`, { token, body: { user: { name: 'agg-user', password: 'agg-pass', domain_id: 'default' } } });
  assert.equal(u.status, 201, u.text);
  const role = (await cloud.req('GET', `${I}/roles?name=member`, { token })).body.roles[0];
  assert.equal((await cloud.req('PUT', `${I}/projects/${p.body.project.id}/users/${u.body.user.id}/roles/${role.id}`, { token })).status, 204);
  memberToken = (await cloud.login('agg-user', 'agg-pass', 'agg-proj')).token;
  assert.ok(memberToken);
  const svcs = await api('GET', '/os-services?binary=nova-compute');
  host = svcs.body.services[0].host;
  const hv = await api('GET', '/os-hypervisors/detail', undefined, mv('2.53'));
  rp = hv.body.hypervisors.find((h: any) => h.service.host === host).id;
});
after(async () => { await cloud?.stop(); });

test('create, list, show, update, set_metadata, delete in Nova shapes', async () => {
  const c = await api('POST', '/os-aggregates', { aggregate: { name: 'agg-a', availability_zone: null } });
  assert.equal(c.status, 200, c.text);
  const a = c.body.aggregate;
  assert.deepEqual(Object.keys(a).sort(), ['availability_zone', 'created_at', 'deleted', 'deleted_at', 'id', 'name', 'updated_at']);
  assert.equal(a.name, 'agg-a');
  assert.equal(a.availability_zone, null);
  assert.equal(a.deleted, false);
  assert.equal(a.deleted_at, null);
  assert.equal(a.updated_at, null);
  assert.equal(typeof a.id, 'number');
  assert.match(a.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);

  const s = await api('GET', `/os-aggregates/${a.id}`);
  assert.equal(s.status, 200);
  assert.deepEqual(Object.keys(s.body.aggregate).sort(), ['availability_zone', 'created_at', 'deleted', 'deleted_at', 'hosts', 'id', 'metadata', 'name', 'updated_at']);
  assert.deepEqual(s.body.aggregate.hosts, []);
  assert.deepEqual(s.body.aggregate.metadata, {});

  // 2.41 adds uuid everywhere, including to create.
  const s241 = await api('GET', `/os-aggregates/${a.id}`, undefined, mv('2.41'));
  assert.match(s241.body.aggregate.uuid, /^[0-9a-f-]{36}$/);
  const c241 = await api('POST', '/os-aggregates', { aggregate: { name: 'agg-b', availability_zone: 'zone-b' } }, mv('2.41'));
  assert.equal(c241.status, 200);
  assert.match(c241.body.aggregate.uuid, /^[0-9a-f-]{36}$/);
  assert.equal(c241.body.aggregate.availability_zone, 'zone-b');
  const b = c241.body.aggregate;

  const l = await api('GET', '/os-aggregates');
  assert.deepEqual(l.body.aggregates.map((x: any) => [x.id, x.name, x.availability_zone]), [[a.id, 'agg-a', null], [b.id, 'agg-b', 'zone-b']]);
  assert.equal(l.body.aggregates[1].metadata.availability_zone, 'zone-b');
  assert.equal(l.body.aggregates[0].uuid, undefined);

  const u = await api('PUT', `/os-aggregates/${a.id}`, { aggregate: { name: ' agg-a2 ', availability_zone: 'zone-a' } });
  assert.equal(u.status, 200, u.text);
  assert.equal(u.body.aggregate.name, 'agg-a2');
  assert.equal(u.body.aggregate.availability_zone, 'zone-a');
  assert.deepEqual(u.body.aggregate.metadata, { availability_zone: 'zone-a' });
  assert.ok(u.body.aggregate.updated_at);

  const m = await action(a.id, { set_metadata: { metadata: { ssd: 'true', speed: 'fast' } } });
  assert.equal(m.status, 200, m.text);
  assert.deepEqual(m.body.aggregate.metadata, { availability_zone: 'zone-a', ssd: 'true', speed: 'fast' });
  // A null value deletes the key; others stay.
  const m2 = await action(a.id, { set_metadata: { metadata: { ssd: null, speed: 'slow' } } });
  assert.deepEqual(m2.body.aggregate.metadata, { availability_zone: 'zone-a', speed: 'slow' });
  const m3 = await action(a.id, { set_metadata: { metadata: { availability_zone: 'zone-a3' } } });
  assert.equal(m3.body.aggregate.availability_zone, 'zone-a3');

  for (const x of [a, b]) {
    const d = await api('DELETE', `/os-aggregates/${x.id}`);
    assert.equal(d.status, 200);
    assert.equal(d.text, '');
  }
  await expectError(await api('GET', `/os-aggregates/${a.id}`), 404, `Aggregate ${a.id} could not be found.`);
  assert.deepEqual((await api('GET', '/os-aggregates')).body.aggregates, []);
});

test('add_host / remove_host mirror the aggregate into placement', async () => {
  const c = await api('POST', '/os-aggregates', { aggregate: { name: 'agg-p' } }, mv('2.41'));
  const agg = c.body.aggregate;
  assert.deepEqual(await rpAggregates(), []);
  const add = await action(agg.id, { add_host: { host } });
  assert.equal(add.status, 200, add.text);
  assert.deepEqual(add.body.aggregate.hosts, [host]);
  assert.deepEqual(await rpAggregates(), [agg.uuid]);

  // A second aggregate: both uuids on the provider; removing one keeps the other.
  const c2 = await api('POST', '/os-aggregates', { aggregate: { name: 'agg-p2' } }, mv('2.41'));
  const agg2 = c2.body.aggregate;
  await action(agg2.id, { add_host: { host } });
  assert.deepEqual((await rpAggregates()).sort(), [agg.uuid, agg2.uuid].sort());

  // Duplicate add → 409; deleting a non-empty aggregate → 400.
  await expectError(await action(agg.id, { add_host: { host } }), 409, `Aggregate ${agg.id} already has host ${host}.`);
  await expectError(await api('DELETE', `/os-aggregates/${agg.id}`), 400, `Cannot remove host from aggregate ${agg.id}. Reason: Host aggregate is not empty.`);

  const rm = await action(agg.id, { remove_host: { host } });
  assert.equal(rm.status, 200, rm.text);
  assert.deepEqual(rm.body.aggregate.hosts, []);
  assert.deepEqual(await rpAggregates(), [agg2.uuid]);
  await expectError(await action(agg.id, { remove_host: { host } }), 404, `Cannot remove host ${host} in aggregate ${agg.id}`);
  await action(agg2.id, { remove_host: { host } });
  assert.deepEqual(await rpAggregates(), []);
  assert.equal((await api('DELETE', `/os-aggregates/${agg.id}`)).status, 200);
  assert.equal((await api('DELETE', `/os-aggregates/${agg2.id}`)).status, 200);
});

test('availability zones through aggregates: AZ list, os-services, server OS-EXT-AZ, one zone per host', async () => {
  const c = await api('POST', '/os-aggregates', { aggregate: { name: 'agg-az', availability_zone: 'az1' } });
  const agg = c.body.aggregate;
  // Not yet: no host in it, so no zone az1.
  let zones = (await api('GET', '/os-availability-zone')).body.availabilityZoneInfo.map((z: any) => z.zoneName);
  assert.ok(!zones.includes('az1'));
  await action(agg.id, { add_host: { host } });
  zones = (await api('GET', '/os-availability-zone')).body.availabilityZoneInfo.map((z: any) => z.zoneName);
  assert.deepEqual(zones, ['az1']);
  const detail = (await api('GET', '/os-availability-zone/detail')).body.availabilityZoneInfo;
  assert.ok(detail.find((z: any) => z.zoneName === 'az1').hosts[host]['nova-compute']);
  const svc = (await api('GET', '/os-services?binary=nova-compute')).body.services[0];
  assert.equal(svc.zone, 'az1');

  // A host cannot be in two zones: adding it to an aggregate of another zone is a 409, and so is
  // giving a second aggregate holding it another zone (400 on update/set_metadata, as Nova).
  const other = (await api('POST', '/os-aggregates', { aggregate: { name: 'agg-az2', availability_zone: 'az2' } })).body.aggregate;
  await expectError(await action(other.id, { add_host: { host } }), 409, `Cannot add host to aggregate ${other.id}. Reason: One or more hosts already in availability zone(s) ['az1'].`);
  const plain = (await api('POST', '/os-aggregates', { aggregate: { name: 'agg-plain' } })).body.aggregate;
  assert.equal((await action(plain.id, { add_host: { host } })).status, 200);
  await expectError(await action(plain.id, { set_metadata: { metadata: { availability_zone: 'az9' } } }), 400,
    `Cannot update metadata of aggregate ${plain.id}. Reason: One or more hosts already in availability zone(s) ['az1'].`);
  await expectError(await api('PUT', `/os-aggregates/${plain.id}`, { aggregate: { availability_zone: 'az9' } }), 400,
    `Cannot update aggregate ${plain.id}. Reason: One or more hosts already in availability zone(s) ['az1'].`);
  // The same zone is fine.
  assert.equal((await action(plain.id, { set_metadata: { metadata: { availability_zone: 'az1' } } })).status, 200);
  await expectError(await action(agg.id, { set_metadata: { metadata: { availability_zone: null } } }), 400,
    `Cannot update metadata of aggregate ${agg.id}. Reason: Aggregate agg-az does not support empty named availability zone.`);

  // A server booted into az1 lands on the host and shows az1.
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'agg-img', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  const s = await api('POST', '/servers', { server: { name: 'in-az1', imageRef: img.body.id, flavorRef: '1', networks: 'none', availability_zone: 'az1' } }, mv('2.37'));
  assert.equal(s.status, 202, s.text);
  let server: any;
  for (const end = Date.now() + 20_000; Date.now() < end;) {
    server = (await api('GET', `/servers/${s.body.server.id}`)).body.server;
    if (server.status === 'ACTIVE' || server.status === 'ERROR') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
  assert.equal(server['OS-EXT-AZ:availability_zone'], 'az1');
  assert.equal(server['OS-EXT-SRV-ATTR:host'], host);
  const det = (await api('GET', '/servers/detail')).body.servers.find((x: any) => x.id === server.id);
  assert.equal(det['OS-EXT-AZ:availability_zone'], 'az1');
  // Its host runs an instance: the zone of its aggregates cannot change now.
  await expectError(await api('PUT', `/os-aggregates/${agg.id}`, { aggregate: { availability_zone: 'az3' } }), 400, /^Cannot update aggregate \d+\. Reason: /);
  await api('DELETE', `/servers/${server.id}`);
  for (const end = Date.now() + 20_000; Date.now() < end;) {
    if ((await api('GET', `/servers/${server.id}`)).status === 404) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  // Out of the aggregates, the host is back in the default zone.
  await action(agg.id, { remove_host: { host } });
  await action(plain.id, { remove_host: { host } });
  zones = (await api('GET', '/os-availability-zone')).body.availabilityZoneInfo.map((z: any) => z.zoneName);
  assert.deepEqual(zones, ['nova']);
  for (const x of [agg, other, plain]) assert.equal((await api('DELETE', `/os-aggregates/${x.id}`)).status, 200);
});

test('bad input per class', async () => {
  const agg = (await api('POST', '/os-aggregates', { aggregate: { name: 'agg-bad' } })).body.aggregate;

  // Malformed bodies and wrong types → 400.
  await expectError(await api('POST', '/os-aggregates', { name: 'x' }), 400, /'aggregate' is a required property|Additional properties/);
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: '' } }), 400);
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: ' lead' } }), 400, /An invalid 'name' value was provided/);
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: 'a'.repeat(256) } }), 400);
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: 5 } }), 400, /is not of type 'string'/);
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: 'x', color: 'red' } }), 400, /Additional properties are not allowed/);
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: 'x', availability_zone: 'a:b' } }), 400);
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: 'x', availability_zone: 7 } }), 400);
  await expectError(await api('PUT', `/os-aggregates/${agg.id}`, { aggregate: {} }), 400);
  await expectError(await api('PUT', `/os-aggregates/${agg.id}`, { aggregate: { name: 'y', hosts: [] } }), 400);
  await expectError(await action(agg.id, { add_host: {} }), 400, /'host' is a required property/);
  await expectError(await action(agg.id, { add_host: { host: 42 } }), 400, /is not of type 'string'/);
  await expectError(await action(agg.id, { remove_host: { host: ['x'] } }), 400);
  await expectError(await action(agg.id, { set_metadata: { metadata: 'x' } }), 400);
  await expectError(await action(agg.id, { set_metadata: { metadata: { k: 5 } } }), 400);
  await expectError(await action(agg.id, { set_metadata: { metadata: { 'bad/key': 'v' } } }), 400);
  await expectError(await action(agg.id, { set_metadata: {} }), 400);
  await expectError(await action(agg.id, { bogus: {} }), 400);
  await expectError(await action(agg.id, []), 400);
  await expectError(await api('GET', '/os-aggregates/abc'), 400, 'Invalid input received: id must be an integer');

  // Unknown ids and hosts → 404.
  await expectError(await api('GET', '/os-aggregates/-1'), 404, 'Aggregate -1 could not be found.');
  await expectError(await api('GET', '/os-aggregates/99999'), 404);
  await expectError(await api('PUT', '/os-aggregates/99999', { aggregate: { name: 'z' } }), 404);
  await expectError(await api('DELETE', '/os-aggregates/99999'), 404);
  await expectError(await action(99999, { set_metadata: { metadata: { a: 'b' } } }), 404);
  await expectError(await action(99999, { add_host: { host } }), 404, 'Aggregate 99999 could not be found.');
  await expectError(await action(agg.id, { add_host: { host: 'nosuchhost' } }), 404, 'Compute host nosuchhost could not be found.');
  await expectError(await action(agg.id, { remove_host: { host: 'nosuchhost' } }), 404, `Cannot remove host nosuchhost in aggregate ${agg.id}`);

  // Duplicates → 409 (create and rename).
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: 'agg-bad' } }), 409, 'Aggregate agg-bad already exists.');
  const other = (await api('POST', '/os-aggregates', { aggregate: { name: 'agg-other' } })).body.aggregate;
  await expectError(await api('PUT', `/os-aggregates/${other.id}`, { aggregate: { name: 'agg-bad' } }), 409, 'Aggregate agg-bad already exists.');
  // Renaming to its own name is no conflict.
  assert.equal((await api('PUT', `/os-aggregates/${other.id}`, { aggregate: { name: 'agg-other' } })).status, 200);

  // Non-admin → 403 on every operation.
  const rule = (r: string) => new RegExp(`os_compute_api:os-aggregates:${r}\\.$`);
  await expectError(await api('GET', '/os-aggregates', undefined, {}, memberToken), 403, rule('index'));
  await expectError(await api('POST', '/os-aggregates', { aggregate: { name: 'mine' } }, {}, memberToken), 403, rule('create'));
  await expectError(await api('GET', `/os-aggregates/${agg.id}`, undefined, {}, memberToken), 403, rule('show'));
  await expectError(await api('PUT', `/os-aggregates/${agg.id}`, { aggregate: { name: 'mine' } }, {}, memberToken), 403, rule('update'));
  await expectError(await api('DELETE', `/os-aggregates/${agg.id}`, undefined, {}, memberToken), 403, rule('delete'));
  await expectError(await action(agg.id, { add_host: { host } }, memberToken), 403, rule('add_host'));
  await expectError(await action(agg.id, { remove_host: { host } }, memberToken), 403, rule('remove_host'));
  await expectError(await action(agg.id, { set_metadata: { metadata: { a: 'b' } } }, memberToken), 403, rule('set_metadata'));
  // Nothing changed.
  const l = await api('GET', '/os-aggregates');
  assert.deepEqual(l.body.aggregates.map((x: any) => x.name), ['agg-bad', 'agg-other']);
  assert.deepEqual(l.body.aggregates[0].hosts, []);
  for (const x of [agg, other]) assert.equal((await api('DELETE', `/os-aggregates/${x.id}`)).status, 200);
});
