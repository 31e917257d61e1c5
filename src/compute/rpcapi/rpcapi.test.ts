// Compute's typed RPC contracts over the memory transport: errors cross the bus with their class
// and status, versions are checked as declared, RequestSpecs are versioned.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTransport } from '../../common/rpc/transport.ts';
import { RpcClient, serveApi } from '../../common/rpc/typed.ts';
import { conductorApi } from './conductor.ts';
import { computeApi } from './compute.ts';
import { InstanceNotFound, UnexpectedState, NotSupported, NoValidHost } from '../errors.ts';
import { InstanceNotFound as GuestNotFound } from '../virt/errors.ts';
import { systemContext } from '../rpc.ts';
import { loadRequestSpec, REQUEST_SPEC_VERSION } from '../request-spec.ts';
import { BadRequest } from '../../common/errors.ts';

const bus = await createTransport('memory://', { exchange: `rpcapi-test-${randomUUID()}` });
after(() => bus.close());

test('a remote InstanceNotFound arrives as InstanceNotFound (404), UnexpectedState as UnexpectedState (409)', async () => {
  const server = await bus.serve({ topic: conductorApi.topic, server: 'c1' }, {
    instance_get: () => { throw new InstanceNotFound('Instance abc could not be found.'); },
    instance_update: () => { throw new UnexpectedState('Unexpected task state: expecting [None] but the instance has powering-off'); },
    host_usage: () => { throw new NoValidHost('No valid host was found.'); },
  }, { version: conductorApi.version });
  const c = new RpcClient(bus, conductorApi);
  await assert.rejects(c.call(systemContext(), 'instance_get', { uuid: 'abc' }), (e) => {
    assert.ok(e instanceof InstanceNotFound, `got ${(e as Error).name}`);
    assert.equal((e as InstanceNotFound).status, 404);
    assert.equal((e as Error).message, 'Instance abc could not be found.');
    return true;
  });
  await assert.rejects(c.call(systemContext(), 'instance_update', { uuid: 'abc', updates: {} }), (e) => e instanceof UnexpectedState && e.status === 409);
  await assert.rejects(c.call(systemContext(), 'host_usage', { host: 'h' }), (e) => e instanceof NoValidHost);
  await server.stop();
});

test("a driver's typed errors cross the bus from a compute host: NotSupported is 501, the driver's InstanceNotFound is compute's", async () => {
  const handlers = Object.fromEntries(Object.keys(computeApi.methods).map((name) => [name, () => {
    throw name === 'get_console' ? new NotSupported('no consoles') : new GuestNotFound('gone');
  }]));
  const server = await serveApi(bus, computeApi, { server: 'h1' }, handlers as never);
  const c = new RpcClient(bus, computeApi, 'h1');
  await assert.rejects(c.call(systemContext(), 'get_console', { instance_uuid: 'x', kind: 'vnc' }), (e) => e instanceof NotSupported && e.status === 501);
  await assert.rejects(c.call(systemContext(), 'get_console_output', { instance_uuid: 'x' }), (e) => e instanceof InstanceNotFound);
  assert.equal(GuestNotFound, InstanceNotFound, 'one class: the driver contract and the cell database say the same thing');
  await server.stop();
});

test('messages carry their method\'s version: a server of an older API refuses a newer method with BadRequest', async () => {
  const old = await bus.serve({ topic: 'compute', server: 'old-host' }, { get_console: () => ({ kind: 'vnc' }), get_console_output: () => 'log' }, { version: '1.0' });
  const c = new RpcClient(bus, computeApi, 'old-host');
  assert.equal(await c.call(systemContext(), 'get_console_output', { instance_uuid: 'x' }), 'log');
  await assert.rejects(c.call(systemContext(), 'get_console', { instance_uuid: 'x', kind: 'vnc' }), (e) => e instanceof BadRequest && /version/i.test((e as Error).message));
  await old.stop();
});

test('RequestSpec: an unversioned (1.0) spec is upgraded, a newer major one refused', () => {
  const s = loadRequestSpec(JSON.stringify({ instance_uuid: 'u', project_id: 'p', user_id: 'x', flavor: { flavorid: '1' }, image: { id: 'i' } }));
  assert.equal(s.version, REQUEST_SPEC_VERSION);
  assert.deepEqual(s.image.properties, {});
  assert.deepEqual(s.ignore_hosts, []);
  assert.equal(s.num_attempts, 0);
  assert.throws(() => loadRequestSpec({ version: '2.0', instance_uuid: 'u', flavor: {}, image: {} }), BadRequest);
  assert.throws(() => loadRequestSpec({ version: '1.0' }), BadRequest);
});
