// Rescue/unrescue and server diagnostics against a real all-in-one (the API, the conductor and the
// fake compute agent over the selected RPC transport): the state machine through the agent and
// its driver, Nova's 409s for wrong states and locked servers, bad bodies, instance actions, and
// diagnostics per microversion (legacy dictionary below 2.48, the standard object from 2.48).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv, projectUser, uploadImage } from './helpers/compute.ts';

let cloud: TestCloud;
let token: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
let member: string;
let imageId: string;




async function boot(name: string, tok = token): Promise<string> {
  const r = await api('POST', '/servers', { server: { name, imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'), tok);
  assert.equal(r.status, 202, r.text);
  await waitFor(r.body.server.id, ['ACTIVE']);
  return r.body.server.id;
}

const action = (id: string, body: unknown, tok = token, v = '2.1') => api('POST', `/servers/${id}/action`, body, mv(v), tok);

function conflict(r: { status: number; body: any }, msg: string | RegExp): void {
  assert.equal(r.status, 409, JSON.stringify(r.body));
  if (typeof msg === 'string') assert.equal(r.body.conflictingRequest.message, msg); else assert.match(r.body.conflictingRequest.message, msg);
}

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  imageId = await uploadImage(cloud, token, { visibility: 'public' });
  // A project member (not admin) in a project of its own.
  member = await projectUser(cloud, token, 'rescue-proj', 'rescue-user', 'member');
  assert.ok(member);
});
after(async () => { await cloud?.stop(); });

test('rescue and unrescue: RESCUE through the agent and back to ACTIVE, password, instance actions', async () => {
  const id = await boot('r1');
  const r = await action(id, { rescue: { adminPass: 'MySecretPass' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body, { adminPass: 'MySecretPass' });
  const s = await waitFor(id, ['RESCUE']);
  assert.equal(s['OS-EXT-STS:vm_state'], 'rescued');
  assert.equal(s['OS-EXT-STS:power_state'], 1);
  // Already rescued: 409; the other actions follow Nova's state checks.
  conflict(await action(id, { rescue: null }), `Cannot 'rescue' instance ${id} while it is in vm_state rescued`);
  conflict(await action(id, { reboot: { type: 'HARD' } }), `Cannot 'reboot' instance ${id} while it is in vm_state rescued`);
  conflict(await action(id, { reboot: { type: 'SOFT' } }), /vm_state rescued/);
  conflict(await action(id, { rebuild: { imageRef: imageId } }), `Cannot 'rebuild' instance ${id} while it is in vm_state rescued`);
  conflict(await action(id, { 'os-stop': null }), /vm_state rescued/);
  conflict(await action(id, { pause: null }), /vm_state rescued/);
  conflict(await action(id, { shelve: null }), /vm_state rescued/);
  // The console of a rescued guest is readable.
  const out = await action(id, { 'os-getConsoleOutput': {} });
  assert.equal(out.status, 200);
  assert.match(out.body.output, /rescue: booting from image/);

  const u = await action(id, { unrescue: null });
  assert.equal(u.status, 202, u.text);
  assert.equal(u.text, '');
  const a = await waitFor(id, ['ACTIVE']);
  assert.equal(a['OS-EXT-STS:vm_state'], 'active');
  conflict(await action(id, { unrescue: null }), `Cannot 'unrescue' instance ${id} while it is in vm_state active`);

  // A generated password when none is given; the events of the agent under each action.
  const g = await action(id, { rescue: {} });
  assert.equal(g.status, 200);
  assert.equal(typeof g.body.adminPass, 'string');
  assert.ok(g.body.adminPass.length >= 8);
  await waitFor(id, ['RESCUE']);
  assert.equal((await action(id, { unrescue: {} })).status, 202);
  await waitFor(id, ['ACTIVE']);
  const acts = await api('GET', `/servers/${id}/os-instance-actions`, undefined, mv('2.21'));
  assert.deepEqual(acts.body.instanceActions.map((x: any) => x.action), ['unrescue', 'rescue', 'unrescue', 'rescue', 'create']);
  const one = await api('GET', `/servers/${id}/os-instance-actions/${acts.body.instanceActions[1].request_id}`, undefined, mv('2.51'));
  assert.deepEqual(one.body.instanceAction.events.map((e: any) => [e.event, e.result]), [['compute_rescue_instance', 'Success']]);
  await api('DELETE', `/servers/${id}`);
});

test('rescue from SHUTOFF and ERROR, not from PAUSED; a rescue image; driver failure goes to ERROR', async () => {
  const id = await boot('r2');
  assert.equal((await action(id, { 'os-stop': null })).status, 202);
  await waitFor(id, ['SHUTOFF']);
  const other = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'rescue-img', disk_format: 'raw', container_format: 'bare' } });
  assert.equal((await action(id, { rescue: { rescue_image_ref: other.body.id } })).status, 200);
  const s = await waitFor(id, ['RESCUE']);
  assert.equal(s['OS-EXT-STS:power_state'], 1);
  assert.equal((await action(id, { unrescue: null })).status, 202);
  await waitFor(id, ['ACTIVE']);

  assert.equal((await action(id, { pause: null })).status, 202);
  await waitFor(id, ['PAUSED']);
  conflict(await action(id, { rescue: null }), `Cannot 'rescue' instance ${id} while it is in vm_state paused`);
  assert.equal((await action(id, { unpause: null })).status, 202);
  await waitFor(id, ['ACTIVE']);

  // The hypervisor fails the rescue: ERROR with a fault; from ERROR a rescue is allowed again.
  const driver = (cloud.compute!.agents[0] as any).d.driver;
  driver.failRescues = 1;
  assert.equal((await action(id, { rescue: null })).status, 200);
  const e = await waitFor(id, ['ERROR']);
  assert.match(e.fault.message, /cannot be rescued: Driver Error: Fake driver: injected rescue failure/);
  assert.equal((await action(id, { rescue: null })).status, 200);
  await waitFor(id, ['RESCUE']);
  // A rescued server can be deleted.
  assert.equal((await api('DELETE', `/servers/${id}`)).status, 204);
  await waitFor(id, ['DELETED']);
});

test('rescue: bad bodies (400), unknown server (404), unknown rescue image (400), locked (409 unless admin)', async () => {
  const id = await boot('r3', member);
  const bad = async (body: unknown, msg?: RegExp) => {
    const r = await action(id, body, member);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    if (msg) assert.match(r.body.badRequest.message, msg);
  };
  await bad({ rescue: 'yes' });
  await bad({ rescue: { adminPass: 123 } });
  await bad({ rescue: { rescue_image_ref: 'not-a-uuid' } });
  await bad({ rescue: { other: 1 } });
  await bad({ rescue: { rescue_image_ref: '8b8f2d4e-2d6a-4b39-9d8f-4b1f2d2b9a10' } }, /^Requested rescue image '8b8f2d4e-2d6a-4b39-9d8f-4b1f2d2b9a10' is not supported$/);
  assert.equal((await action('8b8f2d4e-2d6a-4b39-9d8f-4b1f2d2b9a10', { rescue: null }, member)).status, 404);
  assert.equal((await action('8b8f2d4e-2d6a-4b39-9d8f-4b1f2d2b9a10', { unrescue: null }, member)).status, 404);
  // Nothing happened to the server.
  assert.equal((await api('GET', `/servers/${id}`, undefined, {}, member)).body.server.status, 'ACTIVE');

  // Locked by the admin: the owner gets 409 for rescue and unrescue, the admin may.
  assert.equal((await action(id, { lock: null })).status, 202);
  conflict(await action(id, { rescue: null }, member), `Instance ${id} is locked`);
  assert.equal((await action(id, { rescue: null })).status, 200);
  await waitFor(id, ['RESCUE']);
  conflict(await action(id, { unrescue: null }, member), `Instance ${id} is locked`);
  assert.equal((await action(id, { unlock: null })).status, 202);
  assert.equal((await action(id, { unrescue: null }, member)).status, 202);
  await waitFor(id, ['ACTIVE']);
  // The member may rescue its own server, and gets the password back.
  const r = await action(id, { rescue: { adminPass: 'pw' } }, member);
  assert.deepEqual([r.status, r.body], [200, { adminPass: 'pw' }]);
  await waitFor(id, ['RESCUE']);
  await api('DELETE', `/servers/${id}`, undefined, {}, member);
  await waitFor(id, ['DELETED']);
});

test('diagnostics: legacy dictionary below 2.48, the standard object from 2.48, admin only, 409 unless running', async () => {
  const id = await boot('d1', member);
  const legacy = await api('GET', `/servers/${id}/diagnostics`, undefined, mv('2.47'));
  assert.equal(legacy.status, 200, legacy.text);
  assert.deepEqual(legacy.body, { cpu0_time: 17300000000, memory: 524288, vda_errors: -1, vda_read: 262144, vda_read_req: 112, vda_write: 5778432, vda_write_req: 488 });
  assert.deepEqual((await api('GET', `/servers/${id}/diagnostics`)).body, legacy.body);

  const std = await api('GET', `/servers/${id}/diagnostics`, undefined, mv('2.48'));
  assert.equal(std.status, 200, std.text);
  const d = std.body;
  assert.deepEqual(Object.keys(d).sort(), ['config_drive', 'cpu_details', 'disk_details', 'driver', 'hypervisor', 'hypervisor_os', 'memory_details', 'nic_details', 'num_cpus', 'num_disks', 'num_nics', 'state', 'uptime']);
  assert.equal(d.state, 'running');
  assert.ok(['libvirt', 'xenapi', 'vmwareapi', 'ironic', 'hyperv'].includes(d.driver)); // Tempest's schema
  assert.equal(typeof d.uptime, 'number');
  assert.equal(d.config_drive, false);
  assert.deepEqual([d.num_cpus, d.num_nics, d.num_disks], [1, 0, 1]);
  assert.deepEqual(d.cpu_details, [{ id: 0, time: 17300000000, utilisation: 15 }]);
  assert.deepEqual(d.nic_details, []);
  assert.deepEqual(d.disk_details, [{ read_bytes: 262144, read_requests: 112, write_bytes: 5778432, write_requests: 488, errors_count: 1 }]);
  assert.deepEqual(d.memory_details, { maximum: 512, used: 0 });
  assert.equal((await api('GET', `/servers/${id}/diagnostics`, undefined, mv('latest'))).body.state, 'running');

  // Not for a project member (even the owner): 403; 404 for nobody's server.
  const forbidden = await api('GET', `/servers/${id}/diagnostics`, undefined, mv('2.48'), member);
  assert.equal(forbidden.status, 403);
  assert.match(forbidden.body.forbidden.message, /os_compute_api:os-server-diagnostics/);
  assert.equal((await api('GET', '/servers/8b8f2d4e-2d6a-4b39-9d8f-4b1f2d2b9a10/diagnostics')).status, 404);

  // A rescued guest runs (two disks: the rescue disk and its own).
  assert.equal((await action(id, { rescue: null }, member)).status, 200);
  await waitFor(id, ['RESCUE']);
  const rd = await api('GET', `/servers/${id}/diagnostics`, undefined, mv('2.48'));
  assert.deepEqual([rd.status, rd.body.state, rd.body.num_disks], [200, 'running', 2]);
  assert.equal((await action(id, { unrescue: null }, member)).status, 202);
  await waitFor(id, ['ACTIVE']);

  // Stopped or paused: Nova's InstanceInvalidState on power_state.
  assert.equal((await action(id, { 'os-stop': null }, member)).status, 202);
  await waitFor(id, ['SHUTOFF']);
  conflict(await api('GET', `/servers/${id}/diagnostics`, undefined, mv('2.48')), `Cannot 'get_diagnostics' instance ${id} while it is in power_state shutdown`);
  conflict(await api('GET', `/servers/${id}/diagnostics`), `Cannot 'get_diagnostics' instance ${id} while it is in power_state shutdown`);
  assert.equal((await action(id, { 'os-start': null }, member)).status, 202);
  await waitFor(id, ['ACTIVE']);
  assert.equal((await action(id, { pause: null }, member)).status, 202);
  await waitFor(id, ['PAUSED']);
  conflict(await api('GET', `/servers/${id}/diagnostics`, undefined, mv('2.48')), /while it is in power_state paused$/);
  await api('DELETE', `/servers/${id}`, undefined, {}, member);
  await waitFor(id, ['DELETED']);
});
