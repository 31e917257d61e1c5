// The consistency audit on a real all-in-one: `stratus status audit`, `stratus manage placement
// audit [--delete]` / `heal_allocations`, `stratus manage db online_data_migrations` (their
// output and nova-manage's exit codes), and the conductor's reconciler fixing what it finds only
// once two passes saw it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

// The reconciler of the cloud's own conductor must not race the test's manual breakage.
process.env.OS_DEFAULT__RECONCILE_INTERVAL = '0';
const { startCloud } = await import('./helpers/cloud.ts');
const { Cells } = await import('../src/compute/cells.ts');
const { PlacementClient } = await import('../src/compute/clients.ts');
const { until } = await import('./deploy/deployment.ts');

let cloud: Awaited<ReturnType<typeof startCloud>>;
let token: string;
let ids: string[] = [];
const MV = { 'OpenStack-API-Version': 'compute 2.37' };
const PV = { 'OpenStack-API-Version': 'placement 1.36' };
const root = join(import.meta.dirname, '..');

async function stratus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [join(root, 'bin/stratus.mjs'), ...args, '--config', join(cloud.dataDir, 'stratus.conf')], {
      env: { ...process.env, OS_AUTH_URL: cloud.identityUrl }, timeout: 120_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e: any) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const apiUrl = () => cloud.config.get<string>('api_database', 'connection');
const placement = () => new PlacementClient({ endpoint: async () => `${cloud.url}/placement`, token: async () => token });

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'audit', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  await cloud.req('PUT', `/image/v2/images/${img.body.id}/file`, { token, raw: 'x'.repeat(1024), headers: { 'content-type': 'application/octet-stream' } });
  ids = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (await cloud.req('POST', '/compute/v2.1/servers', { token, headers: MV, body: { server: { name: `a${i}`, imageRef: img.body.id, flavorRef: '1', networks: 'none' } } })).body.server.id));
  await until('5 ACTIVE', async () => {
    const r = await cloud.req('GET', '/compute/v2.1/servers/detail', { token, headers: MV });
    return r.body.servers.filter((s: any) => s.status === 'ACTIVE').length === 5;
  });
});

after(async () => { await cloud?.stop(); });

test('status audit: a consistent cloud has nothing to report (exit 0)', { timeout: 120_000 }, async () => {
  const r = await stratus('status', 'audit');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /No inconsistencies found\./);
});

test('orphaned and missing allocations: reported with fixes, placement audit --delete and heal_allocations repair them', { timeout: 240_000 }, async () => {
  const P = placement();
  const rp = (await P.request('GET', '/resource_providers')).body.resource_providers[0].uuid;
  const orphan = randomUUID();
  assert.ok(await P.claim(orphan, { [rp]: { resources: { VCPU: 1, MEMORY_MB: 64 } } }, randomUUID(), randomUUID()));
  await P.deleteAllocations(ids[0]);

  const audit = await stratus('status', 'audit', '--format', 'json');
  assert.equal(audit.code, 2, audit.stderr);
  const out = JSON.parse(audit.stdout);
  assert.equal(out.summary.orphan_allocation, 1);
  assert.equal(out.summary.missing_allocation, 1);
  const o = out.findings.find((f: any) => f.kind === 'orphan_allocation');
  assert.equal(o.subject, orphan);
  assert.equal(o.fix, 'stratus manage placement audit --delete');
  assert.equal(out.findings.find((f: any) => f.kind === 'missing_allocation').fix, `stratus manage placement heal_allocations --instance ${ids[0]}`);

  // nova-manage placement audit: 3 found; --delete: 4; then 0.
  assert.equal((await stratus('manage', 'placement', 'audit', '--resource_uuid', 'nope')).code, 127);
  const found = await stratus('manage', 'placement', 'audit', '--verbose');
  assert.equal(found.code, 3);
  assert.match(found.stdout, new RegExp(`Allocation of consumer ${orphan}`));
  const del = await stratus('manage', 'placement', 'audit', '--delete', '--verbose');
  assert.equal(del.code, 4, del.stderr);
  assert.match(del.stdout, new RegExp(`Deleted allocation of consumer ${orphan}`));
  assert.equal((await stratus('manage', 'placement', 'audit')).code, 0);
  assert.deepEqual(await P.getAllocations(orphan), {});

  // heal_allocations: bad input 127, dry run changes nothing, then 0, then 4 (nothing to do).
  assert.equal((await stratus('manage', 'placement', 'heal_allocations', '--instance', 'not-a-uuid')).code, 127);
  assert.equal((await stratus('manage', 'placement', 'heal_allocations', '--max-count', '0')).code, 127);
  const dry = await stratus('manage', 'placement', 'heal_allocations', '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`Would heal allocations of instance ${ids[0]}`));
  assert.deepEqual(await P.getAllocations(ids[0]), {});
  const heal = await stratus('manage', 'placement', 'heal_allocations', '--verbose');
  assert.equal(heal.code, 0, heal.stderr);
  assert.deepEqual(Object.values(await P.getAllocations(ids[0])).map((a) => a.resources), [Object.values(await P.getAllocations(ids[1]))[0].resources]);
  assert.equal((await stratus('manage', 'placement', 'heal_allocations')).code, 4);
  assert.equal((await stratus('status', 'audit')).code, 0);
});

test('quota drift and a stuck task state: reported; online_data_migrations fixes the drift', { timeout: 240_000 }, async () => {
  const cells = await Cells.open(apiUrl());
  try {
    assert.equal((await cloud.req('DELETE', `/compute/v2.1/servers/${ids[2]}`, { token, headers: MV })).status, 204);
    await until('deleted', async () => (await cloud.req('GET', `/compute/v2.1/servers/${ids[2]}`, { token, headers: MV })).status === 404);
    await cells.db.updateTable('instance_mappings').set({ queued_for_delete: 0 }).where('instance_uuid', '=', ids[2]).execute();
    const where = (await cells.cellOfInstance(ids[1]))!;
    await where.db.updateTable('instances').set({ task_state: 'rebooting', updated_at: new Date(Date.now() - 3600_000).toISOString() }).where('uuid', '=', ids[1]).execute();

    const r = await stratus('status', 'audit', '--format', 'json', '--task-timeout', '60');
    assert.equal(r.code, 2, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.summary.quota_drift, 1);
    assert.equal(out.findings.find((f: any) => f.kind === 'quota_drift').fix, 'stratus manage db online_data_migrations');
    const stuck = out.findings.find((f: any) => f.kind === 'stuck_instance');
    assert.equal(stuck.subject, ids[1]);
    assert.equal(stuck.fix, `openstack server set --state active ${ids[1]}`);
    assert.equal((await stratus('status', 'audit', '--task-timeout', 'soon')).code, 1); // commander's invalid argument

    const mig = await stratus('manage', 'db', 'online_data_migrations');
    assert.equal(mig.code, 0, mig.stderr);
    assert.match(mig.stdout, /populate_queued_for_delete \|\s+1\s+\|\s+1/);
    await where.db.updateTable('instances').set({ task_state: null }).where('uuid', '=', ids[1]).execute();
    const clean = await stratus('status', 'audit', '--task-timeout', '60');
    assert.equal(clean.code, 0, clean.stdout);
  } finally {
    await cells.close();
  }
});

test('the reconciler fixes an orphaned allocation only when two passes saw it', { timeout: 120_000 }, async () => {
  const cells = await Cells.open(apiUrl());
  try {
    const P = placement();
    const rp = (await P.request('GET', '/resource_providers')).body.resource_providers[0].uuid;
    const orphan = randomUUID();
    assert.ok(await P.claim(orphan, { [rp]: { resources: { VCPU: 1, MEMORY_MB: 64 } } }, randomUUID(), randomUUID()));
    const rec = cloud.compute!.conductor!.reconciler;
    assert.deepEqual(await rec.run(), []);
    assert.notDeepEqual(await P.getAllocations(orphan), {});
    const fixed = await rec.run();
    assert.deepEqual(fixed.map((f) => [f.kind, f.subject]), [['orphan_allocation', orphan]]);
    assert.deepEqual(await P.getAllocations(orphan), {});
    assert.deepEqual(await rec.run(), []);
  } finally {
    await cells.close();
  }
});

// A terminate_instance cast lost (a broker cut, or the host's conductor calls failing while the
// database restarted): the instance stays `deleting` with its host up. Nova's delete casts again.
const loseDelete = async (cells: InstanceType<typeof Cells>, uuid: string) => {
  const where = (await cells.cellOfInstance(uuid))!;
  await where.db.updateTable('instances').set({ task_state: 'deleting', updated_at: new Date(Date.now() - 3600_000).toISOString() }).where('uuid', '=', uuid).execute();
};
const gone = (uuid: string) => until(`${uuid} deleted`, async () => (await cloud.req('GET', `/compute/v2.1/servers/${uuid}`, { token, headers: MV })).status === 404, 30_000);
/** Deleted to the end: gone from the API, no allocation left, and the audit clean. */
async function goneCleanly(uuid: string): Promise<void> {
  await gone(uuid);
  assert.deepEqual(await placement().getAllocations(uuid), {});
  assert.equal((await stratus('status', 'audit')).code, 0);
}

test('a delete whose cast was lost: DELETE again casts terminate_instance again', { timeout: 120_000 }, async () => {
  const cells = await Cells.open(apiUrl());
  try {
    await loseDelete(cells, ids[0]);
    assert.equal((await cloud.req('GET', `/compute/v2.1/servers/${ids[0]}`, { token, headers: MV })).body.server['OS-EXT-STS:task_state'], 'deleting');
    assert.equal((await cloud.req('DELETE', `/compute/v2.1/servers/${ids[0]}`, { token, headers: MV })).status, 204);
    await gone(ids[0]);
  } finally {
    await cells.close();
  }
});

test('the reconciler finishes a delete stuck in deleting on a live host (seen by two passes)', { timeout: 120_000 }, async () => {
  const cells = await Cells.open(apiUrl());
  try {
    await loseDelete(cells, ids[1]);
    const rec = cloud.compute!.conductor!.reconciler;
    assert.deepEqual(await rec.run(), []);
    assert.equal((await cloud.req('GET', `/compute/v2.1/servers/${ids[1]}`, { token, headers: MV })).status, 200);
    assert.deepEqual((await rec.run()).map((f) => [f.kind, f.subject]), [['stuck_instance', ids[1]]]);
    await goneCleanly(ids[1]);
  } finally {
    await cells.close();
  }
});

test('the reconciler deletes a build its user deleted while the conductor wrote it into its cell', { timeout: 120_000 }, async () => {
  const cells = await Cells.open(apiUrl());
  try {
    // What a conductor that could not undo its create leaves: live, BUILDING, mapping queued for delete.
    const where = (await cells.cellOfInstance(ids[3]))!;
    await where.db.updateTable('instances').set({ vm_state: 'building', task_state: 'scheduling' }).where('uuid', '=', ids[3]).execute();
    await cells.db.updateTable('instance_mappings').set({ queued_for_delete: 1 }).where('instance_uuid', '=', ids[3]).execute();
    const rec = cloud.compute!.conductor!.reconciler;
    assert.deepEqual(await rec.run(), []);
    assert.deepEqual((await rec.run()).map((f) => f.kind), ['quota_drift']);
    await goneCleanly(ids[3]);
  } finally {
    await cells.close();
  }
});

test('an instance without a mapping: reported, mapped again by cell_v2 map_instances and by the reconciler (two passes)', { timeout: 120_000 }, async () => {
  const cells = await Cells.open(apiUrl());
  try {
    const where = (await cells.cellOfInstance(ids[4]))!;
    const unmap = () => cells.db.deleteFrom('instance_mappings').where('instance_uuid', '=', ids[4]).execute();
    await unmap();
    assert.equal((await cloud.req('GET', `/compute/v2.1/servers/${ids[4]}`, { token, headers: MV })).status, 404);
    const r = await stratus('status', 'audit', '--format', 'json');
    assert.equal(r.code, 2, r.stderr);
    const f = JSON.parse(r.stdout).findings.find((x: any) => x.kind === 'unmapped_instance');
    assert.equal(f.subject, ids[4]);
    assert.equal(f.fix, `stratus manage cell_v2 map_instances --cell_uuid ${where.cell.uuid}`);
    assert.equal((await stratus('manage', 'cell_v2', 'map_instances', '--cell_uuid', randomUUID())).code, 1);
    const m = await stratus('manage', 'cell_v2', 'map_instances', '--cell_uuid', where.cell.uuid);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stdout, /^1 instance\(s\) mapped/);
    assert.equal((await cloud.req('GET', `/compute/v2.1/servers/${ids[4]}`, { token, headers: MV })).status, 200);
    assert.equal((await stratus('status', 'audit')).code, 0);
    await unmap();
    const rec = cloud.compute!.conductor!.reconciler;
    assert.deepEqual(await rec.run(), []);
    assert.deepEqual((await rec.run()).map((x) => [x.kind, x.subject]), [['unmapped_instance', ids[4]]]);
    assert.equal((await cloud.req('GET', `/compute/v2.1/servers/${ids[4]}`, { token, headers: MV })).status, 200);
  } finally {
    await cells.close();
  }
});

test('the reconciler puts a build nobody scheduled in ERROR (its conductor died), and the late cast does not bring it back', { timeout: 120_000 }, async () => {
  const { hostName } = await import('../src/compute/workers.ts');
  const conductor = cloud.compute!.conductor!;
  const cells = await Cells.open(apiUrl());
  const img = (await cloud.req('GET', '/image/v2/images?name=audit', { token })).body.images[0].id;
  // The conductor dies: the create's cast waits on the bus, its build request in the API database.
  await conductor.stop();
  let uuid = '';
  try {
    const r = await cloud.req('POST', '/compute/v2.1/servers', { token, headers: MV, body: { server: { name: 'orphan-build', imageRef: img, flavorRef: '1', networks: 'none' } } });
    assert.equal(r.status, 202);
    uuid = r.body.server.id;
    await cells.db.updateTable('build_requests').set({ created_at: new Date(Date.now() - 3600_000).toISOString() }).where('instance_uuid', '=', uuid).execute();
    const audit = JSON.parse((await stratus('status', 'audit', '--format', 'json')).stdout);
    assert.deepEqual(audit.findings.map((f: any) => [f.kind, f.subject]), [['stuck_build_request', uuid]]);
    const rec = conductor.reconciler;
    assert.deepEqual(await rec.run(), []);
    assert.deepEqual((await rec.run()).map((f) => [f.kind, f.subject]), [['stuck_build_request', uuid]]);
    const s = (await cloud.req('GET', `/compute/v2.1/servers/${uuid}`, { token, headers: MV })).body.server;
    assert.equal(s.status, 'ERROR');
    assert.match(s.fault.message, /never scheduled within instance_build_timeout/);
    assert.equal(await cells.db.selectFrom('build_requests').select('instance_uuid').where('instance_uuid', '=', uuid).executeTakeFirst(), undefined);
  } finally {
    await conductor.start(hostName(cloud.config));
    await cells.close();
  }
  // The conductor is back and handles the cast that waited: it finds no build request and does nothing.
  await new Promise((r) => setTimeout(r, 1500));
  const servers = (await cloud.req('GET', '/compute/v2.1/servers/detail?name=orphan-build', { token, headers: MV })).body.servers;
  assert.deepEqual(servers.map((s: any) => [s.id, s.status]), [[uuid, 'ERROR']]);
  assert.equal((await stratus('status', 'audit')).code, 0);
  assert.equal((await cloud.req('DELETE', `/compute/v2.1/servers/${uuid}`, { token, headers: MV })).status, 204);
  await goneCleanly(uuid);
});

test("the agent destroys a guest still running for a deleted instance (Nova's _cleanup_running_deleted_instances)", { timeout: 120_000 }, async () => {
  const cells = await Cells.open(apiUrl());
  try {
    // Deleted without its host (a local delete while the host was unreachable): the guest stays.
    const where = (await cells.cellOfInstance(ids[4]))!;
    await where.db.updateTable('instances').set({ deleted: 1, vm_state: 'deleted', task_state: null }).where('uuid', '=', ids[4]).execute();
    const agents = cloud.compute!.agents;
    const reap = async () => (await Promise.all(agents.map((a) => a.cleanupRunningDeleted()))).flat();
    assert.deepEqual(await reap(), [ids[4]]);
    assert.deepEqual(await reap(), []); // destroyed: nothing left to find
    assert.deepEqual(await placement().getAllocations(ids[4]), {});
  } finally {
    await cells.close();
  }
});
