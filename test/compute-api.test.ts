// Compute API against a real all-in-one (identity, image, placement, compute with its conductor,
// scheduler and fake compute agent): version documents and headers, flavors, keypairs, the boot
// path and server actions, the explained NoValidHost fault, quotas, and bad input per class.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, COMPUTE as C, mv } from './helpers/compute.ts';

let cloud: TestCloud;
let token: string;
const { api, waitFor } = computeApi(() => cloud, () => token);
let imageId: string;
let xenImageId: string;



async function uploadImage(name: string, props: Record<string, string> = {}): Promise<string> {
  const r = await cloud.req('POST', '/image/v2/images', { token, body: { name, disk_format: 'raw', container_format: 'bare', visibility: 'public', ...props } });
  assert.equal(r.status, 201, r.text);
  const up = await fetch(`${cloud.url}/image/v2/images/${r.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(65536) });
  assert.equal(up.status, 204);
  return r.body.id;
}


before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  imageId = await uploadImage('cirros');
  xenImageId = await uploadImage('xen-only', { hypervisor_type: 'xen' });
});
after(async () => { await cloud?.stop(); });

test('version documents and microversion headers', async () => {
  const root = await cloud.req('GET', '/compute/');
  assert.equal(root.status, 200);
  assert.deepEqual(root.body.versions.map((v: any) => [v.id, v.status, v.min_version]), [['v2.0', 'SUPPORTED', ''], ['v2.1', 'CURRENT', '2.1']]);
  const v21 = await cloud.req('GET', '/compute/v2.1/');
  assert.equal(v21.status, 200);
  assert.equal(v21.body.version.version, '2.93');
  assert.equal(v21.headers.get('openstack-api-version'), 'compute 2.1');
  assert.equal(v21.headers.get('x-openstack-nova-api-version'), '2.1');
  assert.match(v21.headers.get('vary') ?? '', /OpenStack-API-Version/);
  assert.ok(v21.headers.get('x-compute-request-id')?.startsWith('req-'));
  assert.equal(v21.headers.get('x-compute-request-id'), v21.headers.get('x-openstack-request-id'));
  const latest = await api('GET', '/flavors', undefined, mv('latest'));
  assert.equal(latest.headers.get('openstack-api-version'), 'compute 2.93');
  const legacy = await api('GET', '/flavors', undefined, { 'X-OpenStack-Nova-API-Version': '2.50' });
  assert.equal(legacy.headers.get('x-openstack-nova-api-version'), '2.50');
  const tooHigh = await api('GET', '/servers', undefined, mv('9.99'));
  assert.equal(tooHigh.status, 406);
  assert.deepEqual(tooHigh.body, { computeFault: { code: 406, message: 'Version 9.99 is not supported by the API. Minimum is 2.1 and maximum is 2.93.' } });
  assert.equal(tooHigh.headers.get('openstack-api-version'), 'compute 9.99');
  const bad = await api('GET', '/servers', undefined, mv('2.x'));
  assert.equal(bad.status, 400);
  const noToken = await cloud.req('GET', `${C}/servers`);
  assert.equal(noToken.status, 401);
  assert.deepEqual(noToken.body, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
  assert.match(noToken.headers.get('www-authenticate') ?? '', /^Keystone uri="/);
  const unknown = await api('GET', '/no-such-thing');
  assert.equal(unknown.status, 404);
  assert.ok(unknown.body.itemNotFound);
});

test('flavors: seeded sizes, shapes per microversion, admin create/delete, extra specs, access', async () => {
  const d = await api('GET', '/flavors/detail');
  const tiny = d.body.flavors.find((f: any) => f.name === 'm1.tiny');
  assert.deepEqual({ ...tiny, links: undefined }, { id: '1', name: 'm1.tiny', ram: 512, disk: 1, swap: '', 'OS-FLV-EXT-DATA:ephemeral': 0, 'OS-FLV-DISABLED:disabled': false, vcpus: 1, 'os-flavor-access:is_public': true, rxtx_factor: 1, links: undefined });
  assert.deepEqual(d.body.flavors.filter((f: any) => f.name.startsWith('m1.')).map((f: any) => [f.name, f.ram, f.vcpus, f.disk]), [['m1.tiny', 512, 1, 1], ['m1.small', 2048, 1, 20], ['m1.medium', 4096, 2, 40], ['m1.large', 8192, 4, 80], ['m1.xlarge', 16384, 8, 160]]);
  assert.match(tiny.links[0].href, /\/compute\/v2\.1\/flavors\/1$/);
  assert.match(tiny.links[1].href, /\/compute\/flavors\/1$/);
  const max = await api('GET', '/flavors/1', undefined, mv('2.93'));
  assert.equal(max.body.flavor.swap, 0);
  assert.equal(max.body.flavor.description, null);
  assert.deepEqual(max.body.flavor.extra_specs, {});

  const c = await api('POST', '/flavors', { flavor: { name: 'priv', ram: 128, vcpus: 1, disk: 1, id: 'priv-1', 'os-flavor-access:is_public': false } });
  assert.equal(c.status, 200, c.text);
  assert.equal((await api('POST', '/flavors', { flavor: { name: 'priv', ram: 128, vcpus: 1, disk: 1 } })).status, 409);
  assert.equal((await api('POST', '/flavors', { flavor: { name: 'x', ram: 0, vcpus: 1, disk: 1 } })).status, 400);
  const es = await api('POST', '/flavors/priv-1/os-extra_specs', { extra_specs: { 'hw:cpu_policy': 'shared', key2: 'v' } });
  assert.deepEqual(es.body, { extra_specs: { 'hw:cpu_policy': 'shared', key2: 'v' } });
  assert.deepEqual((await api('GET', '/flavors/priv-1/os-extra_specs/key2')).body, { key2: 'v' });
  assert.equal((await api('PUT', '/flavors/priv-1/os-extra_specs/key2', { other: 'v' })).status, 400);
  assert.equal((await api('DELETE', '/flavors/priv-1/os-extra_specs/key2')).status, 200);
  assert.equal((await api('GET', '/flavors/priv-1/os-extra_specs/key2')).status, 404);
  const acc = await api('POST', '/flavors/priv-1/action', { addTenantAccess: { tenant: 'p-x' } });
  assert.deepEqual(acc.body, { flavor_access: [{ flavor_id: 'priv-1', tenant_id: 'p-x' }] });
  assert.equal((await api('POST', '/flavors/priv-1/action', { addTenantAccess: { tenant: 'p-x' } })).status, 409);
  assert.equal((await api('GET', '/flavors/1/os-flavor-access')).status, 404);
  assert.equal((await api('DELETE', '/flavors/priv-1')).status, 202);
  assert.equal((await api('GET', '/flavors/priv-1')).status, 404);
  const nf = await api('GET', '/flavors/nope');
  assert.deepEqual(nf.body, { itemNotFound: { code: 404, message: 'Flavor nope could not be found.' } });
});

test('keypairs: generated below 2.92, imported, per-user, typed', async () => {
  const g = await api('POST', '/os-keypairs', { keypair: { name: 'gen' } });
  assert.equal(g.status, 200);
  assert.match(g.body.keypair.private_key, /BEGIN RSA PRIVATE KEY/);
  assert.match(g.body.keypair.public_key, /^ssh-rsa /);
  assert.match(g.body.keypair.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
  const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICyZGj3HuOV88qCcphS1pvmjdxZsaBhjodSprZTnObs3 anchor-capture';
  const i = await api('POST', '/os-keypairs', { keypair: { name: 'imp', public_key: pub } }, mv('2.2'));
  assert.equal(i.status, 201);
  assert.equal(i.body.keypair.fingerprint, '12:62:65:5f:aa:19:6f:ee:07:4d:da:dc:02:a3:2d:60');
  assert.equal(i.body.keypair.type, 'ssh');
  assert.equal((await api('POST', '/os-keypairs', { keypair: { name: 'imp', public_key: pub } })).status, 409);
  assert.equal((await api('POST', '/os-keypairs', { keypair: { name: 'nokey' } }, mv('2.92'))).status, 400);
  const bad = await api('POST', '/os-keypairs', { keypair: { name: 'bad', public_key: 'ssh-rsa not-base64!' } });
  assert.deepEqual(bad.body, { badRequest: { code: 400, message: 'Keypair data is invalid: failed to generate fingerprint' } });
  const l = await api('GET', '/os-keypairs', undefined, mv('2.93'));
  assert.deepEqual(l.body.keypairs.map((k: any) => k.keypair.name).sort(), ['gen', 'imp']);
  assert.equal(l.body.keypairs[0].keypair.type, 'ssh');
  const s = await api('GET', '/os-keypairs/imp');
  assert.equal(s.body.keypair.deleted, false);
  assert.equal((await api('DELETE', '/os-keypairs/gen')).status, 202);
  assert.equal((await api('DELETE', '/os-keypairs/gen', undefined, mv('2.2'))).status, 404);
});

test('boot path: create, ACTIVE on the fake host, show/list shapes, actions, events, console, delete', async () => {
  const c = await api('POST', '/servers', { server: { name: 'vm1', imageRef: imageId, flavorRef: '1', networks: 'none', key_name: 'imp', metadata: { purpose: 'test' } } }, mv('2.37'));
  assert.equal(c.status, 202, c.text);
  assert.deepEqual(Object.keys(c.body.server).sort(), ['OS-DCF:diskConfig', 'adminPass', 'id', 'links', 'security_groups']);
  assert.equal(c.headers.get('location'), `${cloud.url}/compute/v2.1/servers/${c.body.server.id}`);
  const id = c.body.server.id;
  const s = await waitFor(id, ['ACTIVE']);
  assert.equal(s.flavor.original_name, 'm1.tiny');
  assert.equal(s.host_status, 'UP');
  assert.equal(s['OS-EXT-STS:power_state'], 1);
  assert.deepEqual(s.metadata, { purpose: 'test' });
  const old = await api('GET', `/servers/${id}`);
  assert.deepEqual(old.body.server.flavor, { id: '1', links: [{ rel: 'bookmark', href: `${cloud.url}/compute/flavors/1` }] });
  assert.equal(old.body.server.locked, undefined);
  const list = await api('GET', '/servers');
  assert.deepEqual(Object.keys(list.body.servers.find((x: any) => x.id === id)).sort(), ['id', 'links', 'name']);
  const det = await api('GET', '/servers/detail?name=^vm1$&status=ACTIVE');
  assert.deepEqual(det.body.servers.map((x: any) => x.id), [id]);
  assert.equal((await api('GET', '/servers/detail?status=SHUTOFF')).body.servers.length, 0);

  for (const [action, status] of [[{ 'os-stop': null }, 'SHUTOFF'], [{ 'os-start': null }, 'ACTIVE'], [{ reboot: { type: 'HARD' } }, 'ACTIVE'], [{ pause: null }, 'PAUSED'], [{ unpause: null }, 'ACTIVE'], [{ suspend: null }, 'SUSPENDED'], [{ resume: null }, 'ACTIVE']] as const) {
    const r = await api('POST', `/servers/${id}/action`, action);
    assert.equal(r.status, 202, `${JSON.stringify(action)}: ${r.text}`);
    await waitFor(id, [status]);
  }
  const wrongState = await api('POST', `/servers/${id}/action`, { 'os-start': null });
  assert.equal(wrongState.status, 409);
  assert.equal(wrongState.body.conflictingRequest.message, `Cannot 'start' instance ${id} while it is in vm_state active`);
  const con = await api('POST', `/servers/${id}/action`, { 'os-getConsoleOutput': { length: 2 } });
  assert.equal(con.status, 200);
  assert.equal(con.body.output.split('\n').length, 2);
  const acts = await api('GET', `/servers/${id}/os-instance-actions`);
  assert.deepEqual(acts.body.instanceActions.map((a: any) => a.action), ['resume', 'suspend', 'unpause', 'pause', 'reboot', 'start', 'stop', 'create']);
  const create = acts.body.instanceActions.find((a: any) => a.action === 'create');
  const ev = await api('GET', `/servers/${id}/os-instance-actions/${create.request_id}`, undefined, mv('2.84'));
  assert.deepEqual(ev.body.instanceAction.events.map((e: any) => [e.event, e.result]), [['conductor_schedule_and_build_instances', 'Success'], ['compute_build_and_run_instance', 'Success']]);
  // metadata and tags
  assert.deepEqual((await api('POST', `/servers/${id}/metadata`, { metadata: { a: '1' } })).body, { metadata: { purpose: 'test', a: '1' } });
  assert.deepEqual((await api('PUT', `/servers/${id}/metadata/b`, { meta: { b: '2' } })).body, { meta: { b: '2' } });
  assert.equal((await api('PUT', `/servers/${id}/metadata/b`, { meta: { c: '2' } })).status, 400);
  assert.equal((await api('DELETE', `/servers/${id}/metadata/a`)).status, 204);
  assert.equal((await api('PUT', `/servers/${id}/tags/t1`, undefined, mv('2.26'))).status, 201);
  assert.deepEqual((await api('GET', `/servers/${id}/tags`, undefined, mv('2.26'))).body, { tags: ['t1'] });
  const upd = await api('PUT', `/servers/${id}`, { server: { name: 'renamed', description: 'd' } }, mv('2.19'));
  assert.equal(upd.body.server.name, 'renamed');
  assert.equal(upd.body.server.description, 'd');
  // hypervisor usage follows the instance (the resource tracker updates through the conductor)
  const hv = await api('GET', '/os-hypervisors/detail');
  assert.equal(hv.body.hypervisors.length, 1);
  assert.equal(hv.body.hypervisors[0].hypervisor_type, 'fake');
  // delete
  assert.equal((await api('DELETE', `/servers/${id}`)).status, 204);
  await waitFor(id, ['DELETED']);
  const gone = await api('GET', `/servers/${id}`);
  assert.deepEqual(gone.body, { itemNotFound: { code: 404, message: `Instance ${id} could not be found.` } });
  const alloc = await cloud.req('GET', `/placement/allocations/${id}`, { token, headers: { 'OpenStack-API-Version': 'placement 1.28' } });
  assert.deepEqual(alloc.body.allocations, {});
});

test('NoValidHost explains which filter rejected which hosts; placement shortage says so', async () => {
  const c = await api('POST', '/servers', { server: { name: 'xen', imageRef: xenImageId, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  assert.equal(c.status, 202);
  const s = await waitFor(c.body.server.id, ['ERROR']);
  assert.equal(s.fault.code, 500);
  assert.equal(s.fault.message, 'No valid host was found. ImagePropertiesFilter rejected 1 of 1 hosts: hypervisor_type=xen not supported.');
  const big = await api('POST', '/flavors', { flavor: { name: 'huge', ram: 100_000_000, vcpus: 1, disk: 1, id: 'huge' } });
  assert.equal(big.status, 200);
  await api('PUT', '/os-quota-sets/' + (await adminProject()), { quota_set: { ram: -1 } });
  const h = await api('POST', '/servers', { server: { name: 'huge', imageRef: imageId, flavorRef: 'huge', networks: 'none' } }, mv('2.37'));
  const hs = await waitFor(h.body.server.id, ['ERROR']);
  assert.match(hs.fault.message, /^No valid host was found\. Placement returned no allocation candidates for VCPU:1, MEMORY_MB:100000000, DISK_GB:1 /);
  // The fault names what ran out, so "which claim failed" needs no digging in placement.
  assert.match(hs.fault.message, /: no compute host has that much free capacity or those traits\. Short on every host: MEMORY_MB \(100000000 requested, at most \d+ of \d+ free\)\.$/);
  const wide = await api('POST', '/flavors', { flavor: { name: 'wide', ram: 64, vcpus: 4096, disk: 1, id: 'wide' } });
  assert.equal(wide.status, 200);
  await api('PUT', '/os-quota-sets/' + (await adminProject()), { quota_set: { cores: -1 } });
  const w = await api('POST', '/servers', { server: { name: 'wide', imageRef: imageId, flavorRef: 'wide', networks: 'none' } }, mv('2.37'));
  const ws = await waitFor(w.body.server.id, ['ERROR']);
  assert.match(ws.fault.message, / Short on every host: VCPU \(4096 requested, at most \d+ of \d+ free\)\.$/);
  assert.equal((await api('DELETE', `/servers/${w.body.server.id}`)).status, 204);
  // servers in cell0 are listed and deletable
  assert.equal((await api('DELETE', `/servers/${h.body.server.id}`)).status, 204);
  assert.equal((await api('DELETE', `/servers/${c.body.server.id}`)).status, 204);
  await waitFor(c.body.server.id, ['DELETED']);
});

async function adminProject(): Promise<string> {
  const t = await cloud.login('admin', cloud.adminPassword, 'admin');
  return t.body.token.project.id;
}

test('quotas: over-quota create is refused with 403 and creates nothing', async () => {
  const project = await adminProject();
  const before = (await api('GET', '/servers')).body.servers.length;
  const q = await api('PUT', `/os-quota-sets/${project}`, { quota_set: { instances: before + 1 } });
  assert.equal(q.status, 200, q.text);
  assert.equal(q.body.quota_set.instances, before + 1);
  const r = await api('POST', '/servers', { server: { name: 'q', imageRef: imageId, flavorRef: '1', min_count: 2, networks: 'none' } }, mv('2.37'));
  assert.equal(r.status, 403);
  assert.equal(r.body.forbidden.message, `Quota exceeded for instances: Requested 2, but already used ${before} of ${before + 1} instances`);
  assert.equal((await api('GET', '/servers')).body.servers.length, before);
  const lim = await api('GET', '/limits');
  assert.equal(lim.body.limits.absolute.maxTotalInstances, before + 1);
  assert.equal(lim.body.limits.absolute.totalInstancesUsed, before);
  // max_count shrinks to what the quota allows
  const m = await api('POST', '/servers', { server: { name: 'm', imageRef: imageId, flavorRef: '1', min_count: 1, max_count: 5, networks: 'none' }, }, mv('2.37'));
  assert.equal(m.status, 202);
  assert.equal((await api('GET', '/servers')).body.servers.length, before + 1);
  await api('DELETE', `/servers/${m.body.server.id}`);
  await waitFor(m.body.server.id, ['DELETED']);
  assert.equal((await api('PUT', `/os-quota-sets/${project}`, { quota_set: { instances: -2 } })).status, 400);
  await api('PUT', `/os-quota-sets/${project}`, { quota_set: { instances: 10 } });
});

test('bad input gets Nova\'s 4xx, never a 500', async () => {
  const srv = (server: Record<string, unknown>, v = '2.37') => api('POST', '/servers', { server }, mv(v));
  const base = { name: 'x', imageRef: imageId, flavorRef: '1', networks: 'none' };
  const cases: [string, Promise<{ status: number; body: any }>, number, string | RegExp][] = [
    ['missing flavorRef', srv({ name: 'x', imageRef: imageId, networks: 'none' }), 400, `Invalid input for field/attribute server. Value: {'name': 'x', 'imageRef': '${imageId}', 'networks': 'none'}. 'flavorRef' is a required property`],
    ['networks none below 2.37', srv({ ...base }, '2.1'), 400, "Invalid input for field/attribute networks. Value: none. 'none' is not of type 'array'"],
    ['unknown flavor', srv({ ...base, flavorRef: 'nope' }), 400, 'Invalid flavorRef provided.'],
    ['unknown image', srv({ ...base, imageRef: '3cdcb878-1440-4848-a392-ac3f85176036' }), 400, 'Image 3cdcb878-1440-4848-a392-ac3f85176036 could not be found.'],
    ['bad image uuid', srv({ ...base, imageRef: 'not-a-uuid' }), 400, /^Invalid input for field\/attribute imageRef/],
    ['unknown keypair', srv({ ...base, key_name: 'nope' }), 400, 'Invalid key_name provided.'],
    ['name with leading space', srv({ ...base, name: ' x' }), 400, "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."],
    ['name too long', srv({ ...base, name: 'a'.repeat(256) }), 400, /is too long$/],
    ['numeric name', srv({ ...base, name: 12345 }), 400, "Invalid input for field/attribute name. Value: 12345. 12345 is not of type 'string'"],
    ['min_count zero', srv({ ...base, min_count: 0 }), 400, /min_count/],
    ['unknown attribute', srv({ ...base, bogus: 1 }), 400, "Invalid input for field/attribute server. Value: {'name': 'x', 'imageRef': '" + imageId + "', 'flavorRef': '1', 'networks': 'none', 'bogus': 1}. Additional properties are not allowed ('bogus' was unexpected)"],
    ['user_data over 65535 bytes', srv({ ...base, user_data: 'A'.repeat(65536) }), 400, /is too long$/],
    ['user_data not base64', srv({ ...base, user_data: '%%%' }), 400, /is not a 'base64'$/],
    ['network uuid (no network service)', srv({ ...base, networks: [{ uuid: '3cdcb878-1440-4848-a392-ac3f85176036' }] }), 400, 'Network 3cdcb878-1440-4848-a392-ac3f85176036 could not be found.'],
    ['unknown availability zone', srv({ ...base, availability_zone: 'nowhere' }), 400, 'The requested availability zone is not available'],
    ['malformed JSON', cloud.req('POST', `${C}/servers`, { token, raw: '{"server":', headers: { 'content-type': 'application/json' } }), 400, /Malformed request body/],
    ['bad server id', api('GET', '/servers/not-a-uuid'), 404, 'Instance not-a-uuid could not be found.'],
    ['unknown server', api('GET', '/servers/3cdcb878-1440-4848-a392-ac3f85176036'), 404, 'Instance 3cdcb878-1440-4848-a392-ac3f85176036 could not be found.'],
    ['unknown action', api('POST', '/servers/3cdcb878-1440-4848-a392-ac3f85176036/action', { fly: null }), 400, 'There is no such action: fly'],
    ['reboot type', api('POST', '/servers/3cdcb878-1440-4848-a392-ac3f85176036/action', { reboot: { type: 'GENTLE' } }), 400, /is not one of/],
    ['bad limit', api('GET', '/servers?limit=-1'), 400, /limit/],
    ['bad marker', api('GET', '/servers?marker=3cdcb878-1440-4848-a392-ac3f85176036'), 400, 'marker [3cdcb878-1440-4848-a392-ac3f85176036] not found'],
    ['bad sort key', api('GET', '/servers?sort_key=bogus'), 400, /sort_key/],
    ['bad changes-since', api('GET', '/servers?changes-since=yesterday'), 400, /changes-since/],
    ['keypair bad name', api('POST', '/os-keypairs', { keypair: { name: 'a/b', public_key: 'x' } }), 400, /does not match/],
    ['quota wrong type', api('PUT', '/os-quota-sets/p', { quota_set: { instances: 'many' } }), 400, /instances/],
    ['flavor wrong type', api('POST', '/flavors', { flavor: { name: 'w', ram: true, vcpus: 1, disk: 1 } }), 400, /ram/],
    ['hypervisor bad id', api('GET', '/os-hypervisors/abc'), 404, /could not be found/],
    ['service bad id', api('DELETE', '/os-services/abc'), 400, /invalid/],
  ];
  for (const [what, p, status, msg] of cases) {
    const r = await p;
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    const m = (Object.values(r.body ?? {})[0] as any)?.message;
    if (typeof msg === 'string') assert.equal(m, msg, what); else assert.match(m, msg, what);
  }
  // A member of another project sees nothing of the admin's servers, and cannot act on them.
  const big = await api('POST', '/servers', { server: { name: 'mine', imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  const other = await api('GET', `/servers/${big.body.server.id}`, undefined, {}, 'not-a-token');
  assert.equal(other.status, 401);
  await waitFor(big.body.server.id, ['ACTIVE']);
  await api('DELETE', `/servers/${big.body.server.id}`);
  await waitFor(big.body.server.id, ['DELETED']);
});

test('os-services, availability zones, hypervisors in Nova shapes', async () => {
  const s = await api('GET', '/os-services');
  assert.deepEqual(s.body.services.map((x: any) => x.binary).sort(), ['nova-compute', 'nova-conductor', 'nova-scheduler']);
  for (const x of s.body.services) assert.deepEqual(Object.keys(x).sort(), ['binary', 'disabled_reason', 'host', 'id', 'state', 'status', 'updated_at', 'zone']);
  const compute = s.body.services.find((x: any) => x.binary === 'nova-compute');
  assert.equal(compute.zone, 'nova');
  assert.equal(compute.state, 'up');
  const f = await api('GET', '/os-services?binary=nova-compute');
  assert.equal(f.body.services.length, 1);
  const dis = await api('PUT', '/os-services/disable-log-reason', { host: compute.host, binary: 'nova-compute', disabled_reason: 'maintenance' });
  assert.deepEqual(dis.body, { service: { host: compute.host, binary: 'nova-compute', status: 'disabled', disabled_reason: 'maintenance' } });
  const r = await api('POST', '/servers', { server: { name: 'd', imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'));
  const e = await waitFor(r.body.server.id, ['ERROR']);
  assert.match(e.fault.message, /ComputeFilter rejected 1 of 1 hosts: service disabled \(maintenance\)/);
  await api('DELETE', `/servers/${r.body.server.id}`);
  assert.equal((await api('PUT', '/os-services/enable', { host: compute.host, binary: 'nova-compute' })).body.service.status, 'enabled');
  assert.equal((await api('PUT', '/os-services/enable', { host: 'nohost', binary: 'nova-compute' })).status, 404);
  const v253 = await api('GET', '/os-services', undefined, mv('2.53'));
  assert.match(v253.body.services[0].id, /^[0-9a-f-]{36}$/);
  const az = await api('GET', '/os-availability-zone');
  assert.deepEqual(az.body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }] });
  const azd = await api('GET', '/os-availability-zone/detail');
  assert.deepEqual(azd.body.availabilityZoneInfo.map((z: any) => z.zoneName).sort(), ['internal', 'nova']);
  const hv = await api('GET', '/os-hypervisors/detail', undefined, mv('2.93'));
  assert.deepEqual(Object.keys(hv.body.hypervisors[0]).sort(), ['host_ip', 'hypervisor_hostname', 'hypervisor_type', 'hypervisor_version', 'id', 'service', 'state', 'status', 'uptime']);
  const hv1 = await api('GET', '/os-hypervisors/detail');
  assert.equal(hv1.body.hypervisors[0].vcpus, 1000);
  assert.equal(typeof hv1.body.hypervisors[0].cpu_info, 'string');
});
