// Moving servers on a real all-in-one with two fake compute hosts (`--compute-hosts 2`): resize
// with confirm and revert, cold migration to a named host, live migration (auto, abort, force
// complete), evacuation off a host forced down and the clean-up when its agent comes back, an
// agent restarted in the middle of a live or a cold migration (ended, nothing stuck), the
// destination refusing (rolled back), and Nova's 400/403/404/409s. After every step: the
// instance's host, flavor and state, the placement allocations of the instance and of the
// migration record, the quota usage, the migration's status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';
import type { FakeDriver } from '../src/compute/virt/fake.ts';

let cloud: TestCloud;
let token: string;
let member: string;
let imageId: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
const action = (id: string, body: unknown, v = '2.93', tok = token) => api('POST', `/servers/${id}/action`, body, mv(v), tok);
const TINY = { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 };
const SMALL = { VCPU: 1, MEMORY_MB: 2048, DISK_GB: 20 };

async function boot(name: string, flavorRef = '1'): Promise<any> {
  const r = await api('POST', '/servers', { server: { name, imageRef: imageId, flavorRef, networks: 'none' } }, mv('2.37'));
  assert.equal(r.status, 202, r.text);
  return waitFor(r.body.server.id, ['ACTIVE']);
}

const providers = new Map<string, string>();
async function providerOf(host: string): Promise<string> {
  if (!providers.has(host)) {
    const r = await cloud.req('GET', `/placement/resource_providers?name=${host}`, { token });
    providers.set(host, r.body.resource_providers[0].uuid);
  }
  return providers.get(host)!;
}

/** A consumer's allocations as {host: resources}. */
async function allocations(consumer: string): Promise<Record<string, Record<string, number>>> {
  const r = await cloud.req('GET', `/placement/allocations/${consumer}`, { token, headers: { 'OpenStack-API-Version': 'placement 1.28' } });
  const out: Record<string, Record<string, number>> = {};
  for (const [rp, a] of Object.entries(r.body.allocations as Record<string, { resources: Record<string, number> }>)) {
    const host = [...providers.entries()].find(([, u]) => u === rp)?.[0] ?? rp;
    out[host] = a.resources;
  }
  return out;
}

async function migrations(instance: string): Promise<any[]> {
  const r = await api('GET', `/os-migrations?instance_uuid=${instance}`, undefined, mv('2.80'));
  assert.equal(r.status, 200, r.text);
  return r.body.migrations;
}

async function usage(): Promise<{ cores: number; ram: number }> {
  const r = await api('GET', '/limits');
  return { cores: r.body.limits.absolute.totalCoresUsed, ram: r.body.limits.absolute.totalRAMUsed };
}

const server = async (id: string) => (await api('GET', `/servers/${id}`, undefined, mv('2.93'))).body.server;
const other = (host: string) => (host === 'compute1' ? 'compute2' : 'compute1');
const driverOf = (host: string) => cloud.compute!.agents.find((a) => a.host === host)!.driver as FakeDriver;

/** The source's live migration offers (the disk channel token of qemu) still open: none once a migration ended. */
async function noOpenOffer(host: string, uuid: string): Promise<void> {
  for (let i = 0; driverOf(host).openOffers().includes(uuid); i++) {
    assert.ok(i < 100, `${host} still offers ${uuid} to the destination after the migration ended`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const consoleOutput = async (id: string): Promise<string> => {
  const r = await action(id, { 'os-getConsoleOutput': {} });
  assert.equal(r.status, 200, r.text);
  return r.body.output;
};

async function waitMigration(instance: string, statuses: string[], ms = 20_000): Promise<any> {
  const end = Date.now() + ms;
  for (;;) {
    const [m] = await migrations(instance);
    if (m && statuses.includes(m.status)) return m;
    // The server's fault says why a move ended early (the migration row does not).
    if (Date.now() > end) assert.fail(`migration of ${instance} did not reach ${statuses} (now ${m?.status}; server fault: ${JSON.stringify((await server(instance))?.fault ?? null)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function badRequest(r: { status: number; body: any; text: string }, msg: string | RegExp) {
  assert.equal(r.status, 400, r.text);
  if (typeof msg === 'string') assert.equal(r.body.badRequest.message, msg); else assert.match(r.body.badRequest.message, msg);
}

before(async () => {
  cloud = await startCloud({ computeHosts: 2, defaults: ['[fake_driver]', 'live_migration_ms = 1500'] });
  token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'cirros', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  imageId = img.body.id;
  const up = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  assert.equal(up.status, 204);
  await providerOf('compute1'); await providerOf('compute2');
  const I = '/identity/v3';
  const role = (await cloud.req('GET', `${I}/roles?name=member`, { token })).body.roles[0];
  const admin = (await cloud.req('GET', `${I}/projects?name=admin`, { token })).body.projects[0];
  const u = await cloud.req('POST', `${I}/users`, { token, body: { user: { name: 'moves-member', password: 'pw-moves-1', domain_id: 'default' } } });
  assert.equal((await cloud.req('PUT', `${I}/projects/${admin.id}/users/${u.body.user.id}/roles/${role.id}`, { token })).status, 204);
  member = (await cloud.login('moves-member', 'pw-moves-1', 'admin')).token;
});
after(async () => { await cloud?.stop(); });

test('two compute hosts in the all-in-one: compute1 and compute2, each its own compute node and provider', async () => {
  assert.deepEqual(cloud.compute!.agents.map((a) => a.host).sort(), ['compute1', 'compute2']);
  const h = await api('GET', '/os-hypervisors/detail', undefined, mv('2.53'));
  assert.deepEqual(h.body.hypervisors.map((x: any) => x.service.host).sort(), ['compute1', 'compute2']);
  assert.notEqual(providers.get('compute1'), providers.get('compute2'));
});

test('resize, then confirm: VERIFY_RESIZE on the other host, the old flavor held by the migration, confirm drops it', async () => {
  const s0 = await boot('resize-confirm');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const before = await usage();
  assert.equal((await action(s0.id, { resize: { flavorRef: '2' } })).status, 202);
  const s1 = await waitFor(s0.id, ['VERIFY_RESIZE']);
  const dst = s1['OS-EXT-SRV-ATTR:host'];
  assert.equal(dst, other(src), 'allow_resize_to_same_host is false by default: the source host is ignored');
  assert.equal(s1.flavor.original_name, 'm1.small');
  assert.equal(s1['OS-EXT-STS:vm_state'], 'resized');
  const [m] = await migrations(s0.id);
  assert.equal(m.status, 'finished');
  assert.equal(m.migration_type, 'resize');
  assert.equal(m.source_compute, src);
  assert.equal(m.dest_compute, dst);
  assert.deepEqual(await allocations(s0.id), { [dst]: SMALL });
  assert.deepEqual(await allocations(m.uuid), { [src]: TINY });
  assert.deepEqual(await usage(), { cores: before.cores, ram: before.ram - 512 + 2048 });
  assert.equal(driverOf(dst).specOf(s0.id)?.flavor?.name, 'm1.small');
  // Actions and events as Nova records them.
  const acts = await api('GET', `/servers/${s0.id}/os-instance-actions`, undefined, mv('2.51'));
  assert.ok(acts.body.instanceActions.some((a: any) => a.action === 'resize'));

  const c = await action(s0.id, { confirmResize: null });
  assert.equal(c.status, 204, c.text);
  const s2 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s2['OS-EXT-SRV-ATTR:host'], dst);
  assert.equal(s2.flavor.original_name, 'm1.small');
  assert.equal((await waitMigration(s0.id, ['confirmed'])).status, 'confirmed');
  assert.deepEqual(await allocations(m.uuid), {});
  assert.deepEqual(await allocations(s0.id), { [dst]: SMALL });
  assert.equal(driverOf(src).specOf(s0.id), undefined, 'nothing of the guest stays on the source');
  // Confirm again: not resized any more.
  assert.equal((await action(s0.id, { confirmResize: null })).status, 409);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('resize, then revert: back on the source with the old flavor, the allocation back on the instance', async () => {
  const s0 = await boot('resize-revert');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const before = await usage();
  assert.equal((await action(s0.id, { resize: { flavorRef: '2' } }, '2.1')).status, 202);
  const s1 = await waitFor(s0.id, ['VERIFY_RESIZE']);
  const [m] = await migrations(s0.id);
  assert.equal((await action(s0.id, { revertResize: null })).status, 202);
  const s2 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s2['OS-EXT-SRV-ATTR:host'], src);
  assert.equal(s2.flavor.original_name, 'm1.tiny');
  assert.equal((await waitMigration(s0.id, ['reverted'])).status, 'reverted');
  assert.deepEqual(await allocations(s0.id), { [src]: TINY });
  assert.deepEqual(await allocations(m.uuid), {});
  assert.deepEqual(await usage(), before);
  assert.equal(driverOf(s1['OS-EXT-SRV-ATTR:host']).specOf(s0.id), undefined);
  assert.equal((await driverOf(src).info(s0.id)).powerState, 1);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('a stopped server resizes and stays stopped after confirm', async () => {
  const s0 = await boot('resize-stopped');
  assert.equal((await action(s0.id, { 'os-stop': null })).status, 202);
  await waitFor(s0.id, ['SHUTOFF']);
  assert.equal((await action(s0.id, { resize: { flavorRef: '2', 'OS-DCF:diskConfig': 'MANUAL' } })).status, 202);
  const s1 = await waitFor(s0.id, ['VERIFY_RESIZE']);
  assert.equal(s1['OS-EXT-STS:power_state'], 4);
  assert.equal(s1['OS-DCF:diskConfig'], 'MANUAL');
  assert.equal((await action(s0.id, { confirmResize: null })).status, 204);
  await waitFor(s0.id, ['SHUTOFF']);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('cold migration to a named host (2.56), the same flavor, confirmed', async () => {
  const s0 = await boot('cold');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const dst = other(src);
  const r = await action(s0.id, { migrate: { host: dst } }, '2.56');
  assert.equal(r.status, 202, r.text);
  const s1 = await waitFor(s0.id, ['VERIFY_RESIZE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], dst);
  assert.equal(s1.flavor.original_name, 'm1.tiny');
  const [m] = await migrations(s0.id);
  assert.equal(m.migration_type, 'migration');
  assert.deepEqual(await allocations(m.uuid), { [src]: TINY });
  assert.deepEqual(await allocations(s0.id), { [dst]: TINY });
  assert.equal((await action(s0.id, { confirmResize: null })).status, 204);
  await waitFor(s0.id, ['ACTIVE']);
  assert.deepEqual(await allocations(m.uuid), {});
  // Without a host (the scheduler picks the other host: a cold migration always leaves its host).
  assert.equal((await action(s0.id, { migrate: null })).status, 202);
  const s2 = await waitFor(s0.id, ['VERIFY_RESIZE']);
  assert.equal(s2['OS-EXT-SRV-ATTR:host'], src);
  assert.equal((await action(s0.id, { confirmResize: null })).status, 204);
  await waitFor(s0.id, ['ACTIVE']);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('live migration (block_migration auto): progress on the migration row, the instance on the other host, the source allocation gone', async () => {
  const s0 = await boot('live');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const r = await action(s0.id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, '2.25');
  assert.equal(r.status, 202, r.text);
  const running = await waitMigration(s0.id, ['running']);
  assert.equal(running.migration_type, 'live-migration');
  const list = await api('GET', `/servers/${s0.id}/migrations`, undefined, mv('2.80'));
  assert.equal(list.status, 200, list.text);
  assert.equal(list.body.migrations.length, 1);
  assert.equal(list.body.migrations[0].server_uuid, s0.id);
  assert.equal((await server(s0.id)).status, 'MIGRATING');
  assert.deepEqual(await allocations(running.uuid), { [src]: TINY });
  const m = await waitMigration(s0.id, ['completed']);
  const s1 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], other(src));
  assert.equal(m.dest_compute, other(src));
  const row = (await api('GET', `/os-migrations?instance_uuid=${s0.id}`, undefined, mv('2.59'))).body.migrations[0];
  assert.equal(row.status, 'completed');
  assert.deepEqual(await allocations(s0.id), { [other(src)]: TINY });
  assert.deepEqual(await allocations(m.uuid), {});
  assert.equal(driverOf(src).specOf(s0.id), undefined);
  assert.equal((await driverOf(other(src)).info(s0.id)).powerState, 1);
  await noOpenOffer(src, s0.id);
  // Done: no migration in progress any more.
  assert.deepEqual((await api('GET', `/servers/${s0.id}/migrations`, undefined, mv('2.23'))).body.migrations, []);
  assert.equal((await api('GET', `/servers/${s0.id}/migrations/${m.id}`, undefined, mv('2.23'))).status, 404);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('live migration abort (2.24): cancelled, the guest still runs on the source, the allocation back', async () => {
  const s0 = await boot('live-abort');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  assert.equal((await action(s0.id, { 'os-migrateLive': { host: other(src), block_migration: true } }, '2.30')).status, 202);
  const m = await waitMigration(s0.id, ['running']);
  const d = await api('DELETE', `/servers/${s0.id}/migrations/${m.id}`, undefined, mv('2.24'));
  assert.equal(d.status, 202, d.text);
  assert.equal((await waitMigration(s0.id, ['cancelled'])).status, 'cancelled');
  const s1 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], src);
  assert.deepEqual(await allocations(s0.id), { [src]: TINY });
  assert.deepEqual(await allocations(m.uuid), {});
  assert.equal((await driverOf(src).info(s0.id)).powerState, 1);
  assert.equal(driverOf(other(src)).specOf(s0.id), undefined, 'the destination rolled back');
  await noOpenOffer(src, s0.id);
  // Aborting a finished migration: 409 (no longer migrating).
  assert.equal((await api('DELETE', `/servers/${s0.id}/migrations/${m.id}`, undefined, mv('2.24'))).status, 409);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('live migration force complete (2.22): the guest is paused so that it converges, then runs on the destination', async () => {
  const s0 = await boot('live-force');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  assert.equal((await action(s0.id, { 'os-migrateLive': { host: null, block_migration: 'auto', force: false } }, '2.30')).status, 202);
  const m = await waitMigration(s0.id, ['running']);
  const f = await api('POST', `/servers/${s0.id}/migrations/${m.id}/action`, { force_complete: null }, mv('2.22'));
  assert.equal(f.status, 202, f.text);
  await waitMigration(s0.id, ['completed'], 1200);
  const s1 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], other(src));
  assert.equal((await driverOf(other(src)).info(s0.id)).powerState, 1);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('the console log goes on across a cold and a live migration: the source\'s lines, then the destination\'s', async () => {
  const s0 = await boot('console-moves');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  // A line only the source's guest printed.
  assert.equal((await action(s0.id, { reboot: { type: 'SOFT' } })).status, 202);
  await waitFor(s0.id, ['ACTIVE']);
  const before = await consoleOutput(s0.id);
  assert.match(before, /reboot: Restarting system/);
  assert.equal((await action(s0.id, { migrate: null })).status, 202);
  await waitFor(s0.id, ['VERIFY_RESIZE']);
  assert.equal((await server(s0.id))['OS-EXT-SRV-ATTR:host'], other(src));
  const cold = await consoleOutput(s0.id);
  assert.ok(cold.startsWith(before.trimEnd()), `the source's console came along: ${JSON.stringify(cold)}`);
  assert.match(cold.slice(before.trimEnd().length), /migrate/);
  assert.equal((await action(s0.id, { confirmResize: null })).status, 204);
  await waitFor(s0.id, ['ACTIVE']);
  assert.equal(await consoleOutput(s0.id), cold, 'confirm changes nothing on the console');
  assert.equal((await action(s0.id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, '2.25')).status, 202);
  await waitMigration(s0.id, ['running']);
  // Printed on the source after its console was offered to the destination, before the switch-over.
  driverOf(other(src)).guestPrints(s0.id, 'printed during the move');
  await waitMigration(s0.id, ['completed']);
  const s2 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s2['OS-EXT-SRV-ATTR:host'], src);
  const live = await consoleOutput(s0.id);
  assert.ok(live.startsWith(cold.trimEnd()), `the console so far came along: ${JSON.stringify(live)}`);
  assert.match(live.slice(cold.trimEnd().length), /^\nprinted during the move\nlive-migrated\n$/);
  assert.equal(live.match(/FAKE CONSOLE OUTPUT/g)?.length, 1, 'one boot only');
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('the destination refusing: a resize and a live migration are rolled back, allocations right', async () => {
  const s0 = await boot('refused');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const before = await usage();
  driverOf(other(src)).failFinishMigrations = 1;
  assert.equal((await action(s0.id, { resize: { flavorRef: '2' } })).status, 202);
  const m = await waitMigration(s0.id, ['error']);
  const s1 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], src);
  assert.equal(s1.flavor.original_name, 'm1.tiny');
  assert.deepEqual(await allocations(s0.id), { [src]: TINY });
  assert.deepEqual(await allocations(m.uuid), {});
  assert.deepEqual(await usage(), before);
  assert.equal((await driverOf(src).info(s0.id)).powerState, 1);
  assert.equal(driverOf(other(src)).specOf(s0.id), undefined);

  driverOf(other(src)).failPreLiveMigrations = 1;
  assert.equal((await action(s0.id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, '2.25')).status, 202);
  const lm = await waitMigration(s0.id, ['error']);
  assert.equal(lm.migration_type, 'live-migration');
  const s2 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s2['OS-EXT-SRV-ATTR:host'], src);
  assert.deepEqual(await allocations(s0.id), { [src]: TINY });
  assert.deepEqual(await allocations(lm.uuid), {});
  // The offer the source made for it (its disk channel token) is revoked now, not at its 10-minute TTL.
  await noOpenOffer(src, s0.id);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('no other host: the resize fails to schedule and is rolled back (migration error, allocation back)', async () => {
  const s0 = await boot('no-host');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const put = (status: string) => api('PUT', '/os-services/disable'.replace('disable', status), { host: other(src), binary: 'nova-compute' });
  assert.equal((await put('disable')).status, 200);
  try {
    assert.equal((await action(s0.id, { resize: { flavorRef: '2' } })).status, 202);
    const m = await waitMigration(s0.id, ['error']);
    const s1 = await waitFor(s0.id, ['ACTIVE']);
    assert.equal(s1['OS-EXT-SRV-ATTR:host'], src);
    assert.deepEqual(await allocations(s0.id), { [src]: TINY });
    assert.deepEqual(await allocations(m.uuid), {});
  } finally {
    assert.equal((await put('enable')).status, 200);
  }
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('bad input: Nova\'s 400s, 403 for a member, 404s and 409s', async () => {
  const s0 = await boot('bad', '2');
  const id = s0.id;
  const src = s0['OS-EXT-SRV-ATTR:host'];
  badRequest(await action(id, { resize: { flavorRef: '2' } }), 'Resize requires a flavor change.');
  badRequest(await action(id, { resize: { flavorRef: 'nope' } }), 'Unable to locate requested flavor.');
  badRequest(await action(id, { resize: { flavorRef: '1' } }), 'Server disk was unable to be resized because: Unable to resize disk down.');
  assert.equal((await action(id, { resize: {} })).status, 400);
  assert.equal((await action(id, { resize: { flavorRef: '3', extra: 1 } })).status, 400);
  badRequest(await action(id, { migrate: { host: src } }, '2.56'), 'Cannot migrate to the host where the server exists.');
  badRequest(await action(id, { migrate: { host: 'nowhere' } }, '2.56'), 'Compute host nowhere could not be found.');
  assert.equal((await action(id, { migrate: { host: 7 } }, '2.56')).status, 400);
  assert.equal((await action(id, { migrate: { host: other(src), bogus: 1 } }, '2.56')).status, 400);
  assert.equal((await action(id, { 'os-migrateLive': { host: null } }, '2.25')).status, 400);
  assert.equal((await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, '2.24')).status, 400, "'auto' is 2.25+");
  assert.equal((await action(id, { 'os-migrateLive': { host: null, block_migration: true, force: true } }, '2.68')).status, 400, 'force is gone in 2.68');
  badRequest(await action(id, { 'os-migrateLive': { host: src, block_migration: 'auto' } }, '2.25'), `Unable to migrate instance (${id}) to current host (${src}).`);
  badRequest(await action(id, { evacuate: {} }, '2.29'), `Compute service of ${src} is still in use.`);
  assert.equal((await action(id, { evacuate: { host: 'nowhere' } }, '2.29')).status, 404);
  assert.equal((await action(id, { evacuate: { host: other(src) } }, '2.13')).status, 400, 'onSharedStorage is required before 2.14');
  // Not resized: confirm and revert are refused on state.
  assert.equal((await action(id, { confirmResize: null })).status, 409);
  assert.equal((await action(id, { revertResize: null })).status, 409);
  // Quota on the delta (m1.small → m1.medium adds a vCPU and 2 GiB).
  const project = (await cloud.req('GET', '/identity/v3/projects?name=admin', { token })).body.projects[0].id;
  const u = await usage();
  assert.equal((await api('PUT', `/os-quota-sets/${project}`, { quota_set: { cores: u.cores } })).status, 200);
  const q = await action(id, { resize: { flavorRef: '3' } });
  assert.equal(q.status, 403, q.text);
  assert.match(q.body.forbidden.message, /Quota exceeded for cores/);
  assert.equal((await api('DELETE', `/os-quota-sets/${project}`)).status, 202);
  // Admin-only moves.
  for (const body of [{ migrate: null }, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, { evacuate: {} }]) {
    const r = await action(id, body, '2.29', member);
    assert.equal(r.status, 403, `${Object.keys(body)[0]}: ${r.text}`);
  }
  assert.equal((await api('GET', `/servers/${id}/migrations`, undefined, mv('2.23'), member)).status, 403);
  // Unknown server and migration.
  const none = '00000000-0000-4000-8000-000000000000';
  assert.equal((await action(none, { resize: { flavorRef: '3' } })).status, 404);
  assert.equal((await action(none, { migrate: null })).status, 404);
  assert.equal((await api('GET', `/servers/${id}/migrations/999999`, undefined, mv('2.23'))).status, 404);
  assert.equal((await api('GET', `/servers/${id}/migrations/abc`, undefined, mv('2.23'))).status, 404);
  assert.equal((await api('GET', `/servers/${id}/migrations`, undefined, mv('2.22'))).status, 404, 'the resource is 2.23+');
  // Force complete and abort need a live migration in progress.
  assert.equal((await api('POST', `/servers/${id}/migrations/1/action`, { force_complete: null }, mv('2.22'))).status, 409);
  assert.equal((await api('POST', `/servers/${id}/migrations/1/action`, { bogus: null }, mv('2.22'))).status, 400);
  // Locked: a member's resize is refused (admins pass the lock).
  await api('DELETE', `/servers/${id}`);
  await waitFor(id, ['DELETED']);
});

test('evacuate after the host is forced down; its agent comes back and removes what was evacuated', async () => {
  const s0 = await boot('evac');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const dst = other(src);
  const agents = cloud.compute!.agents;
  const i = agents.findIndex((a) => a.host === src);
  const dead = agents[i];
  const drv = dead.driver as FakeDriver;
  await dead.kill();
  const fd = await api('PUT', '/os-services/force-down', { host: src, binary: 'nova-compute', forced_down: true }, mv('2.11'));
  assert.equal(fd.status, 200, fd.text);
  const r = await action(s0.id, { evacuate: { adminPass: 'Evac-pass-1' } }, '2.29');
  assert.equal(r.status, 200, r.text);
  const s1 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], dst);
  const m = await waitMigration(s0.id, ['done']);
  assert.equal(m.migration_type, 'evacuation');
  assert.deepEqual(await allocations(s0.id), { [dst]: TINY });
  assert.deepEqual(await allocations(m.uuid), { [src]: TINY }, 'the dead host keeps its allocation until it comes back');
  assert.ok(drv.specOf(s0.id) || drv.listGuests().includes(s0.id), 'the dead host still has its guest');
  // The host's agent comes back (same hypervisor): it destroys the evacuated guest and frees the source.
  const again = dead.restarted();
  await again.start();
  agents[i] = again;
  assert.ok(!drv.listGuests().includes(s0.id));
  assert.equal((await waitMigration(s0.id, ['completed'])).status, 'completed');
  assert.deepEqual(await allocations(m.uuid), {});
  assert.deepEqual(await allocations(s0.id), { [dst]: TINY });
  assert.equal((await api('PUT', '/os-services/force-down', { host: src, binary: 'nova-compute', forced_down: false }, mv('2.11'))).status, 200);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

/** The host's agent killed and started again on the same hypervisor (its guests ran on meanwhile). */
async function restartAgent(host: string, between: () => Promise<void> = async () => {}): Promise<void> {
  const agents = cloud.compute!.agents;
  const i = agents.findIndex((a) => a.host === host);
  await agents[i].kill();
  await between();
  const again = agents[i].restarted();
  await again.start();
  agents[i] = again;
}

test('the source agent restarted during a live migration: the migration ends in error, the guest runs on at the source, allocations and host agree', async () => {
  const s0 = await boot('live-restart');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  assert.equal((await action(s0.id, { 'os-migrateLive': { host: other(src), block_migration: 'auto' } }, '2.30')).status, 202);
  const m = await waitMigration(s0.id, ['running']);
  await restartAgent(src);
  assert.equal((await waitMigration(s0.id, ['error', 'completed'])).status, 'error');
  const s1 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], src);
  assert.equal(s1['OS-EXT-STS:task_state'], null);
  assert.deepEqual(await allocations(s0.id), { [src]: TINY });
  assert.deepEqual(await allocations(m.uuid), {});
  assert.equal((await driverOf(src).info(s0.id)).powerState, 1);
  for (let i = 0; driverOf(other(src)).specOf(s0.id) !== undefined; i++) {
    assert.ok(i < 100, 'the destination was not rolled back');
    await new Promise((r) => setTimeout(r, 50));
  }
  // Nothing stuck: it moves again, to the end.
  assert.equal((await action(s0.id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, '2.30')).status, 202);
  const again = await waitMigration(s0.id, ['completed', 'error'], 20_000);
  assert.equal(again.status, 'completed', JSON.stringify(await migrations(s0.id)));
  assert.equal((await waitFor(s0.id, ['ACTIVE']))['OS-EXT-SRV-ATTR:host'], other(src));
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

// Both agents of a live migration killed while it runs (the guest still copying) and started
// again, in either order: the move ends — in error with the guest running on at the source, or
// completed with it on the destination — with the instance on exactly one host, that host's
// guest running and the other's gone, the allocations on that host alone, nothing in progress,
// and the server movable again.
for (const first of ['source', 'destination'] as const) {
  test(`both agents restarted during a live migration (the ${first} first): one consistent end, the guest running on exactly one host`, async () => {
    const s0 = await boot(`live-restart-both-${first}`);
    const src = s0['OS-EXT-SRV-ATTR:host'];
    const dst = other(src);
    assert.equal((await action(s0.id, { 'os-migrateLive': { host: dst, block_migration: 'auto' } }, '2.30')).status, 202);
    const m = await waitMigration(s0.id, ['running']);
    await new Promise((r) => setTimeout(r, 300)); // well into the copy (1.5 s)
    const agents = cloud.compute!.agents;
    const idx = (h: string) => agents.findIndex((a) => a.host === h);
    await Promise.all([agents[idx(src)].kill(), agents[idx(dst)].kill()]);
    await new Promise((r) => setTimeout(r, 200));
    for (const h of first === 'source' ? [src, dst] : [dst, src]) {
      const again = agents[idx(h)].restarted();
      await again.start();
      agents[idx(h)] = again;
    }
    const end = await waitMigration(s0.id, ['error', 'completed']);
    const s1 = await waitFor(s0.id, ['ACTIVE']);
    const on = s1['OS-EXT-SRV-ATTR:host'];
    assert.equal(on, end.status === 'completed' ? dst : src, `migration ${end.status}, instance on ${on}`);
    assert.equal(s1['OS-EXT-STS:task_state'], null);
    assert.deepEqual(await allocations(s0.id), { [on]: TINY });
    assert.deepEqual(await allocations(m.uuid), {});
    assert.equal((await driverOf(on).info(s0.id)).powerState, 1, 'the guest runs where the instance is');
    for (let i = 0; driverOf(other(on)).specOf(s0.id) !== undefined || driverOf(other(on)).listGuests().includes(s0.id); i++) {
      assert.ok(i < 100, `the guest is left on ${other(on)} too`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await noOpenOffer(src, s0.id);
    assert.deepEqual((await api('GET', `/servers/${s0.id}/migrations`, undefined, mv('2.23'))).body.migrations, []);
    // Nothing stuck: it moves again, to the end.
    assert.equal((await action(s0.id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, '2.30')).status, 202);
    const again = await waitMigration(s0.id, ['completed', 'error'], 20_000);
    assert.equal(again.status, 'completed', JSON.stringify(await migrations(s0.id)));
    assert.equal((await waitFor(s0.id, ['ACTIVE']))['OS-EXT-SRV-ATTR:host'], other(on));
    await api('DELETE', `/servers/${s0.id}`);
    await waitFor(s0.id, ['DELETED']);
  });
}

// The cold counterpart: both agents dead when a cold migration is sent (its prep_resize waits in
// the destination's queue), then started again in either order: each one's recovery and the
// queued messages must settle on one end — the move rolled back to the source.
for (const first of ['source', 'destination'] as const) {
  test(`both agents down during a cold migration, restarted (the ${first} first): rolled back to the source, nothing left on the destination`, async () => {
    const s0 = await boot(`cold-restart-both-${first}`);
    const src = s0['OS-EXT-SRV-ATTR:host'];
    const dst = other(src);
    const agents = cloud.compute!.agents;
    const idx = (h: string) => agents.findIndex((a) => a.host === h);
    await Promise.all([agents[idx(src)].kill(), agents[idx(dst)].kill()]);
    assert.equal((await action(s0.id, { migrate: { host: dst } }, '2.56')).status, 202);
    let m: any;
    for (let i = 0; (m = (await migrations(s0.id))[0])?.dest_compute !== dst; i++) {
      assert.ok(i < 200, 'the conductor never chose the destination');
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const h of first === 'source' ? [src, dst] : [dst, src]) {
      const again = agents[idx(h)].restarted();
      await again.start();
      agents[idx(h)] = again;
    }
    assert.equal((await waitMigration(s0.id, ['error', 'finished'])).status, 'error');
    const s1 = await waitFor(s0.id, ['ACTIVE']);
    assert.equal(s1['OS-EXT-SRV-ATTR:host'], src);
    assert.equal(s1.flavor.original_name, 'm1.tiny');
    assert.deepEqual(await allocations(s0.id), { [src]: TINY });
    assert.deepEqual(await allocations(m.uuid), {});
    assert.equal((await driverOf(src).info(s0.id)).powerState, 1);
    assert.equal(driverOf(dst).specOf(s0.id), undefined);
    // Nothing stuck: the same move goes through now.
    assert.equal((await action(s0.id, { migrate: { host: dst } }, '2.56')).status, 202);
    await waitFor(s0.id, ['VERIFY_RESIZE']);
    assert.equal((await action(s0.id, { confirmResize: null })).status, 204);
    assert.equal((await waitFor(s0.id, ['ACTIVE']))['OS-EXT-SRV-ATTR:host'], dst);
    assert.deepEqual(await allocations(s0.id), { [dst]: TINY });
    await api('DELETE', `/servers/${s0.id}`);
    await waitFor(s0.id, ['DELETED']);
  });
}

test('the destination agent down when a cold migration reaches it, then restarted: the move goes back to the source, allocations and host agree', async () => {
  const s0 = await boot('cold-restart');
  const src = s0['OS-EXT-SRV-ATTR:host'];
  const dst = other(src);
  let m: any;
  await restartAgent(dst, async () => {
    // Sent while the destination's agent is dead: its prep_resize finds nobody.
    assert.equal((await action(s0.id, { migrate: { host: dst } }, '2.56')).status, 202);
    // The conductor has claimed the destination (and cast prep_resize to it) once the migration names it.
    for (let i = 0; (m = (await migrations(s0.id))[0])?.dest_compute !== dst; i++) {
      assert.ok(i < 200, 'the conductor never chose the destination');
      await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 200));
  });
  assert.equal((await waitMigration(s0.id, ['error', 'finished'])).status, 'error');
  const s1 = await waitFor(s0.id, ['ACTIVE']);
  assert.equal(s1['OS-EXT-SRV-ATTR:host'], src);
  assert.deepEqual(await allocations(s0.id), { [src]: TINY });
  assert.deepEqual(await allocations(m.uuid), {});
  assert.equal((await driverOf(src).info(s0.id)).powerState, 1);
  assert.equal(driverOf(dst).specOf(s0.id), undefined);
  await api('DELETE', `/servers/${s0.id}`);
  await waitFor(s0.id, ['DELETED']);
});

test('a resize may stay on its host when allow_resize_to_same_host is set (the all-in-one default)', async () => {
  const one = await startCloud({ defaults: ['allow_resize_to_same_host = true'] });
  try {
    const t = await one.adminToken();
    const a = computeApi(() => one, () => t, { settled: true });
    const img = await one.req('POST', '/image/v2/images', { token: t, body: { name: 'c', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
    await fetch(`${one.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': t, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(16) });
    const c = await a.api('POST', '/servers', { server: { name: 'same', imageRef: img.body.id, flavorRef: '1', networks: 'none' } }, mv('2.37'));
    assert.equal(c.status, 202, c.text);
    const id = c.body.server.id;
    const s0 = await a.waitFor(id, ['ACTIVE']);
    const host = s0['OS-EXT-SRV-ATTR:host'];
    assert.equal((await a.api('POST', `/servers/${id}/action`, { resize: { flavorRef: '2' } })).status, 202);
    const s1 = await a.waitFor(id, ['VERIFY_RESIZE']);
    assert.equal(s1['OS-EXT-SRV-ATTR:host'], host);
    assert.equal((await a.api('POST', `/servers/${id}/action`, { revertResize: null })).status, 202);
    const s2 = await a.waitFor(id, ['ACTIVE']);
    assert.equal(s2.flavor.original_name, 'm1.tiny');
    assert.equal((await a.api('POST', `/servers/${id}/action`, { resize: { flavorRef: '2' } })).status, 202);
    await a.waitFor(id, ['VERIFY_RESIZE']);
    assert.equal((await a.api('POST', `/servers/${id}/action`, { confirmResize: null })).status, 204);
    const s3 = await a.waitFor(id, ['ACTIVE']);
    assert.equal(s3['OS-EXT-SRV-ATTR:host'], host);
    const drv = one.compute!.agents[0].driver as FakeDriver;
    assert.equal(drv.specOf(id)?.flavor?.name, 'm1.small');
    assert.equal((await drv.info(id)).powerState, 1);
  } finally {
    await one.stop();
  }
});
