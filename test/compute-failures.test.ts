// Failure handling of the boot path, against a real all-in-one with short heartbeats and a slow
// fake spawn: a compute agent killed during 20 builds, deleting servers while they build, a create
// whose cast fails, and the scheduler down while builds are requested (last: it leaves no
// scheduler running).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { startWorkers, type Workers } from '../src/compute/workers.ts';
import { Scheduler } from '../src/compute/scheduler/scheduler.ts';
import { createLogger } from '../src/common/logging.ts';
import { createTransport } from '../src/common/rpc/transport.ts';
import { openDatabase } from '../src/common/db/database.ts';
import { MessagingTimeout } from '../src/common/errors.ts';

let cloud: TestCloud;
let token: string;
let imageId: string;
let extra: Workers | undefined;
const C = '/compute/v2.1';
const MV = { 'OpenStack-API-Version': 'compute 2.37' };

// Fast failure detection and a spawn slow enough to catch builds in flight.
for (const [k, v] of Object.entries({ OS_DEFAULT__SERVICE_DOWN_TIME: '3', OS_DEFAULT__REPORT_INTERVAL: '1', OS_FAKE_DRIVER__SPAWN_DELAY_MS: '400', OS_SCHEDULER__HOST_STATE_REFRESH_SECONDS: '0' })) process.env[k] = v;

const api = (method: string, path: string, body?: unknown) => cloud.req(method, `${C}${path}`, { token, body, headers: MV });

async function servers(): Promise<any[]> {
  const r = await api('GET', '/servers/detail?all_tenants=1');
  assert.equal(r.status, 200, `GET /servers/detail: ${r.text}`);
  return r.body.servers;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 40_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function allocationsOf(id: string): Promise<Record<string, unknown>> {
  const r = await cloud.req('GET', `/placement/allocations/${id}`, { token, headers: { 'OpenStack-API-Version': 'placement 1.28' } });
  return r.body.allocations;
}

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  const r = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'img', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  imageId = r.body.id;
  await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
  const project = (await cloud.login('admin', cloud.adminPassword, 'admin')).body.token.project.id;
  await api('PUT', `/os-quota-sets/${project}`, { quota_set: { instances: 100, cores: 100, ram: 1_000_000 } });
});
after(async () => {
  await extra?.stop();
  await cloud?.stop();
});

test('a compute agent killed during 20 builds: every server ends ACTIVE elsewhere or ERROR with a fault; allocations and quota match', async () => {
  // A second compute host in this process, registered through the conductor, then discovered.
  extra = await startWorkers({ config: cloud.config.with({ DEFAULT: { host: 'victim' } }), logger: createLogger({ level: 'silent' }), kinds: ['compute'], authUrl: `${cloud.url}/identity` });
  const { discoverNow } = await import('../src/compute/workers.ts');
  await discoverNow(cloud.config);
  const victim = extra.agents[0];
  const created: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await api('POST', '/servers', { server: { name: `k${i}`, imageRef: imageId, flavorRef: '1', networks: 'none' } });
    assert.equal(r.status, 202, r.text);
    created.push(r.body.server.id);
  }
  // Kill the victim as soon as it has builds assigned.
  await until('builds on the victim', async () => (await servers()).some((s) => s['OS-EXT-SRV-ATTR:host'] === 'victim'));
  await victim.kill();
  // Servers the victim finished before it died stay ACTIVE there (as in Nova, until evacuated);
  // that includes a spawn whose "active" report was already on the bus when it was killed.
  const final = await until('no server left in BUILD', async () => {
    const all = (await servers()).filter((s) => created.includes(s.id));
    return all.length === 20 && all.every((s) => s.status !== 'BUILD') ? all : undefined;
  }, 60_000);
  for (const s of final) {
    if (s.status === 'ERROR') assert.ok(s.fault?.message, `server ${s.id} in ERROR without a fault`);
    else assert.equal(s.status, 'ACTIVE');
  }
  // Allocations: exactly the ACTIVE servers hold one, on the host they run on.
  const hv = await api('GET', '/os-hypervisors');
  assert.ok(hv.body.hypervisors.length >= 2);
  for (const s of final) {
    const a = await allocationsOf(s.id);
    assert.equal(Object.keys(a).length, s.status === 'ACTIVE' ? 1 : 0, `allocations of ${s.status} server ${s.id}`);
  }
  const lim = await api('GET', '/limits');
  assert.equal(lim.body.limits.absolute.totalInstancesUsed, final.length);
  assert.equal(lim.body.limits.absolute.totalCoresUsed, final.length);
  // Delete everything; usage goes back to zero.
  for (const s of final) assert.equal((await api('DELETE', `/servers/${s.id}`)).status, 204);
  await until('all deleted', async () => (await servers()).filter((s) => created.includes(s.id)).length === 0);
  assert.equal((await api('GET', '/limits')).body.limits.absolute.totalInstancesUsed, 0);
  for (const id of created) assert.deepEqual(await allocationsOf(id), {});
  // The dead host is down and the AZ stays available through the live one.
  const svc = (await api('GET', '/os-services?host=victim')).body.services[0];
  assert.equal(svc.state, 'down');
});

test('deleting servers while they build leaves no instance, allocation or quota usage behind', async () => {
  // Usage is compared with what it was before, so a failure of another test cannot cascade here.
  const before = (await api('GET', '/limits')).body.limits.absolute;
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await api('POST', '/servers', { server: { name: `d${i}`, imageRef: imageId, flavorRef: '1', networks: 'none' } });
    ids.push(r.body.server.id);
  }
  // Delete at different moments: right away (build request), and during the spawn.
  assert.equal((await api('DELETE', `/servers/${ids[0]}`)).status, 204);
  await new Promise((r) => setTimeout(r, 150));
  for (const id of ids.slice(1)) {
    const r = await api('DELETE', `/servers/${id}`);
    assert.ok([204, 404].includes(r.status), r.text);
  }
  await until('deleted', async () => (await servers()).filter((s) => ids.includes(s.id)).length === 0);
  await new Promise((r) => setTimeout(r, 1000)); // a spawn that was in flight finishes and cleans up
  assert.equal((await servers()).filter((s) => ids.includes(s.id)).length, 0);
  for (const id of ids) assert.deepEqual(await allocationsOf(id), {});
  const after = (await api('GET', '/limits')).body.limits.absolute;
  assert.equal(after.totalInstancesUsed, before.totalInstancesUsed);
  assert.equal(after.totalCoresUsed, before.totalCoresUsed);
});

test('a create whose cast fails: accepted when a conductor took the build anyway (one server), nothing left when none did', async () => {
  // The API's cast is wrapped: 'lost' delivers the message and then fails as a lost broker
  // confirm would; 'unsent' fails without sending and the message arrives only afterwards.
  const probe = await createTransport(cloud.config.get('DEFAULT', 'transport_url'), { exchange: cloud.config.get('DEFAULT', 'control_exchange'), logger: createLogger({ level: 'silent' }) });
  const proto = Object.getPrototypeOf(probe);
  const cast = proto.cast;
  let mode: 'lost' | 'unsent' = 'lost';
  let late: (() => Promise<void>) | undefined;
  proto.cast = async function (this: unknown, ...a: [unknown, unknown, string, ...unknown[]]) {
    if (a[2] !== 'schedule_and_build_instances') return cast.apply(this, a);
    if (mode === 'unsent') { late = () => cast.apply(this, a); throw new MessagingTimeout('test: the broker did not confirm the cast'); }
    await cast.apply(this, a);
    await until('the conductor has taken the build', async () => (await servers()).some((s) => s.name === 'cast-lost' && s.status !== 'BUILD'));
    throw new MessagingTimeout('test: the confirm was lost with the connection');
  };
  try {
    const lost = await api('POST', '/servers', { server: { name: 'cast-lost', imageRef: imageId, flavorRef: '1', networks: 'none' } });
    assert.equal(lost.status, 202, lost.text);
    const mine = (await servers()).filter((s) => s.name === 'cast-lost');
    assert.deepEqual(mine.map((s) => s.id), [lost.body.server.id]);
    mode = 'unsent';
    const unsent = await api('POST', '/servers', { server: { name: 'cast-unsent', imageRef: imageId, flavorRef: '1', networks: 'none' } });
    assert.equal(unsent.status, 504, unsent.text);
    assert.equal((await servers()).filter((s) => s.name === 'cast-unsent').length, 0);
    // The message turns up after the API forgot the build: the conductor builds nothing.
    await late!();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await servers()).filter((s) => s.name === 'cast-unsent').length, 0);
    assert.equal((await api('DELETE', `/servers/${lost.body.server.id}`)).status, 204);
    await until('cast-lost deleted', async () => !(await servers()).some((s) => s.name === 'cast-lost'));
  } finally {
    proto.cast = cast;
    await probe.close();
  }
});

test('with the scheduler down builds wait, and proceed when it returns', async () => {
  const w = cloud.compute!;
  await w.scheduler!.stop();
  const r = await api('POST', '/servers', { server: { name: 'wait', imageRef: imageId, flavorRef: '1', networks: 'none' } });
  assert.equal(r.status, 202);
  await new Promise((res) => setTimeout(res, 1500));
  const s = (await api('GET', `/servers/${r.body.server.id}`)).body.server;
  assert.equal(s.status, 'BUILD');
  // A new scheduler process comes up.
  const config = cloud.config;
  const transport = await createTransport(config.get('DEFAULT', 'transport_url'), { exchange: config.get('DEFAULT', 'control_exchange') });
  const local = await openDatabase(config.get('database', 'connection'));
  const sched = new Scheduler({ config, logger: createLogger({ level: 'silent' }), cells: w.cells!, localCell: local.db, transport, placement: (w.conductor as any).d.placement });
  await sched.start('scheduler-2');
  try {
    await until('ACTIVE after the scheduler returned', async () => (await api('GET', `/servers/${r.body.server.id}`)).body.server.status === 'ACTIVE', 90_000);
  } finally {
    await api('DELETE', `/servers/${r.body.server.id}`);
    await sched.stop();
    await transport.close();
    await local.close();
  }
});
