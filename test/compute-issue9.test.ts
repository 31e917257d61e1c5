// Issue 9's compute items against a real all-in-one: cross-project server group injection (2),
// all_projects by a non-admin (10), /ips and /os-interface (11), and 501s only after the policy
// check (7).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv, projectUser } from './helpers/compute.ts';

let cloud: TestCloud;
let token: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
let imageId: string;
const users: Record<string, string> = {};

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'img', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  imageId = img.body.id;
  await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  users.a = await projectUser(cloud, token, 'proj-a', 'alice', 'member');
  users.b = await projectUser(cloud, token, 'proj-b', 'bob', 'member');
  users.bReader = await projectUser(cloud, token, 'proj-b', 'bob-reader', 'reader');
});
after(async () => { await cloud?.stop(); });

const boot = async (tok: string, extra: Record<string, unknown> = {}, server: Record<string, unknown> = {}) =>
  api('POST', '/servers', { server: { name: 'vm', imageRef: imageId, flavorRef: '1', networks: 'none', ...server }, ...extra }, mv('2.37'), tok);

test("item 2: another project's server group cannot be joined through os:scheduler_hints (400, as Nova)", async () => {
  const g = await api('POST', '/os-server-groups', { server_group: { name: 'a-group', policies: ['anti-affinity'] } }, {}, users.a);
  assert.equal(g.status, 200, g.text);
  const gid = g.body.server_group.id;
  const r = await boot(users.b, { 'os:scheduler_hints': { group: gid } });
  assert.equal(r.status, 400, r.text);
  assert.deepEqual(r.body, { badRequest: { code: 400, message: `Instance group ${gid} could not be found.` } });
  const after = await api('GET', `/os-server-groups/${gid}`, undefined, {}, users.a);
  assert.deepEqual(after.body.server_group.members, []);
  // A non-uuid hint is a schema error; the owner may use its own group; an admin any group.
  assert.equal((await boot(users.b, { 'os:scheduler_hints': { group: 'not-a-uuid' } })).status, 400);
  const own = await boot(users.a, { 'os:scheduler_hints': { group: gid } });
  assert.equal(own.status, 202, own.text);
  await waitFor(own.body.server.id, ['ACTIVE']);
  const members = (await api('GET', `/os-server-groups/${gid}`, undefined, {}, users.a)).body.server_group.members;
  assert.deepEqual(members, [own.body.server.id]);
  await api('DELETE', `/servers/${own.body.server.id}`, undefined, {}, users.a);
});

test('item 10: GET /os-server-groups?all_projects=1 by a non-admin lists its own groups (200), an admin all', async () => {
  const mine = await api('POST', '/os-server-groups', { server_group: { name: 'b-group', policies: ['affinity'] } }, {}, users.b);
  assert.equal(mine.status, 200);
  for (const q of ['all_projects=1', 'all_projects=True', 'all_projects']) {
    const r = await api('GET', `/os-server-groups?${q}`, undefined, {}, users.b);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.server_groups.map((g: any) => g.name), ['b-group']);
  }
  const all = await api('GET', '/os-server-groups?all_projects=1', undefined, {}, token);
  assert.ok(all.body.server_groups.some((g: any) => g.name === 'a-group') && all.body.server_groups.some((g: any) => g.name === 'b-group'));
});

test('item 11: /ips and /os-interface answer as Nova for servers with and without a NIC', async () => {
  const none = await boot(users.b);
  const id = none.body.server.id;
  await waitFor(id, ['ACTIVE']);
  for (const v of ['2.1', '2.37', '2.93']) {
    const r = await api('GET', `/servers/${id}/ips`, undefined, mv(v), users.b);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { addresses: {} });
  }
  const nf = await api('GET', `/servers/${id}/ips/private`, undefined, {}, users.b);
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.body, { itemNotFound: { code: 404, message: 'Instance is not a member of specified network' } });
  const ifs = await api('GET', `/servers/${id}/os-interface`, undefined, {}, users.b);
  assert.equal(ifs.status, 200, ifs.text);
  assert.deepEqual(ifs.body, { interfaceAttachments: [] });
  // A reader of the project reads them; another project does not see the server.
  assert.equal((await api('GET', `/servers/${id}/ips`, undefined, {}, users.bReader)).status, 200);
  assert.equal((await api('GET', `/servers/${id}/ips`, undefined, {}, users.a)).status, 404);
  assert.equal((await api('GET', `/servers/${id}/os-interface`, undefined, {}, users.a)).status, 404);

  const auto = await boot(users.b, {}, { networks: 'auto' });
  const aid = auto.body.server.id;
  const s = await waitFor(aid, ['ACTIVE']);
  const mac = s.addresses.user[0]['OS-EXT-IPS-MAC:mac_addr'];
  assert.match(mac, /^fa:16:3e:/);
  assert.deepEqual((await api('GET', `/servers/${aid}/ips`, undefined, {}, users.b)).body, { addresses: { user: [{ version: 4, addr: '169.254.0.15' }] } });
  assert.deepEqual((await api('GET', `/servers/${aid}/ips/user`, undefined, {}, users.b)).body, { user: [{ version: 4, addr: '169.254.0.15' }] });
  await api('DELETE', `/servers/${id}`, undefined, {}, users.b);
  await api('DELETE', `/servers/${aid}`, undefined, {}, users.b);
});

test('item 7: an unsupported action answers 403 to a caller without the right, 501 only after the policy check', async () => {
  const r = await boot(users.b);
  const id = r.body.server.id;
  await waitFor(id, ['ACTIVE']);
  for (const body of [{ resize: { flavorRef: '2' } }, { createBackup: { name: 'b', backup_type: 'daily', rotation: 1 } }, { 'os-getVNCConsole': { type: 'novnc' } }, { migrate: null }]) {
    const ro = await api('POST', `/servers/${id}/action`, body, {}, users.bReader);
    assert.equal(ro.status, 403, `${Object.keys(body)[0]} as reader: ${ro.text}`);
  }
  // migrate is admin-only in Nova: a member gets 403 (it is built now: test/compute-moves.test.ts).
  assert.equal((await api('POST', `/servers/${id}/action`, { migrate: null }, {}, users.b)).status, 403);
  const m = await api('POST', `/servers/${id}/action`, { addFixedIp: { networkId: 'x' } }, {}, users.b);
  assert.equal(m.status, 501, m.text);
  assert.equal(m.body.notImplemented.code, 501);
  // Another project's server: 404 before anything else.
  assert.equal((await api('POST', `/servers/${id}/action`, { resize: { flavorRef: '2' } }, {}, users.a)).status, 404);
  await api('DELETE', `/servers/${id}`, undefined, {}, users.b);
});
