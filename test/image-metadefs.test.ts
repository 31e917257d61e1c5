// Metadata definitions: the seeded catalog of properties compute honours, and the CRUD API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from './helpers/service.ts';
import { imageService } from '../src/image/index.ts';
import { GlanceClient } from './fixtures/image/client.ts';

let svc: TestService;
let c: GlanceClient;
before(async () => { svc = await startTestService(imageService); c = new GlanceClient(svc.url); });
after(async () => { svc?.app.server.closeAllConnections(); await svc?.close(); });

test('the seeded catalog documents the properties compute honours', async () => {
  const list = await c.get('/v2/metadefs/namespaces');
  assert.equal(list.status, 200);
  assert.equal(list.body.schema, '/v2/schemas/metadefs/namespaces');
  const names = list.body.namespaces.map((n: any) => n.namespace);
  for (const n of ['OS::Compute::Architecture', 'OS::Compute::Hypervisor', 'OS::OperatingSystem', 'OS::Compute::DiskConfig', 'OS::Compute::LibvirtImage', 'OS::Compute::VMware']) {
    assert.ok(names.includes(n), n);
  }
  const props: Record<string, any> = {};
  for (const n of names) Object.assign(props, (await c.get(`/v2/metadefs/namespaces/${n}`)).body.properties ?? {});
  assert.ok(props.architecture.enum.includes('x86_64') && props.architecture.enum.includes('aarch64'));
  assert.deepEqual(props.hypervisor_type.enum.slice(0, 8), ['qemu', 'kvm', 'xen', 'lxc', 'uml', 'vmware', 'hyperv', 'powervm']);
  assert.deepEqual(props.vm_mode.enum, ['hvm', 'xen', 'uml', 'exe']);
  assert.deepEqual(props.os_type.enum, ['linux', 'windows']);
  assert.equal(props.os_distro.type, 'string');
  assert.equal(props.auto_disk_config.type, 'boolean');
  assert.deepEqual(props.vmware_adaptertype.enum.slice(0, 3), ['lsiLogic', 'busLogic', 'ide']);
  assert.equal(props.vmware_ostype.default, 'otherGuest');
  assert.equal(props.vmware_image_version.default, 1);
  assert.deepEqual(props.img_config_drive.enum, ['optional', 'mandatory']);
  assert.ok(Object.keys(props).filter((k) => k.startsWith('hw_')).length >= 20);
  const byType = await c.get('/v2/metadefs/namespaces?resource_types=OS::Glance::Image');
  assert.equal(byType.body.namespaces.length, names.length);
  assert.equal(byType.body.namespaces[0].resource_type_associations[0].name, 'OS::Cinder::Volume');
  const rts = await c.get('/v2/metadefs/resource_types');
  assert.ok(rts.body.resource_types.some((r: any) => r.name === 'OS::Glance::Image'));
  // Values stay free-form on images: compute validates them at boot.
  const id = await c.create({ name: 'free', hypervisor_type: 'not-in-the-enum' });
  assert.equal((await c.get(`/v2/images/${id}`)).body.hypervisor_type, 'not-in-the-enum');
});

test('seeded namespaces are protected; only admins write', async () => {
  const del = await c.delete('/v2/metadefs/namespaces/OS::Compute::Hypervisor', 'admin');
  assert.equal(del.status, 403);
  assert.equal((await c.post('/v2/metadefs/namespaces', { namespace: 'Mine' })).status, 403);
  assert.equal((await c.post('/v2/metadefs/namespaces/OS::Compute::Hypervisor/properties', { name: 'x', title: 'X', type: 'string' })).status, 403);
});

test('namespace, property, object, tag and association CRUD (admin)', async () => {
  const ns = 'Test::Stratus';
  const r = await c.post('/v2/metadefs/namespaces', {
    namespace: ns, display_name: 'Test', description: 'd', visibility: 'private', protected: false,
    properties: { speed: { title: 'Speed', type: 'integer', minimum: 1 } }, tags: [{ name: 'a' }],
  }, 'admin');
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.properties.speed.minimum, 1);
  assert.equal((await c.post('/v2/metadefs/namespaces', { namespace: ns }, 'admin')).status, 409);
  const bad = await c.post('/v2/metadefs/namespaces', { namespace: 'x', visibility: 'world' }, 'admin');
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /Provided object does not match schema 'namespace'/);
  // Private: other projects do not see it.
  assert.equal((await c.get(`/v2/metadefs/namespaces/${ns}`, 'member-b')).status, 404);
  assert.equal((await c.get(`/v2/metadefs/namespaces/${ns}`, 'admin')).status, 200);

  const base = `/v2/metadefs/namespaces/${ns}`;
  assert.equal((await c.post(`${base}/properties`, { name: 'color', title: 'Color', type: 'string', enum: ['red', 'blue'] }, 'admin')).status, 201);
  assert.equal((await c.post(`${base}/properties`, { name: 'color', title: 'Color', type: 'string' }, 'admin')).status, 409);
  assert.equal((await c.post(`${base}/properties`, { name: 'nope' }, 'admin')).status, 400);
  assert.deepEqual((await c.get(`${base}/properties/color`, 'admin')).body, { name: 'color', title: 'Color', type: 'string', enum: ['red', 'blue'] });
  assert.equal((await c.call('PUT', `${base}/properties/color`, { body: { name: 'colour', title: 'Colour', type: 'string' }, token: 'admin' })).body.name, 'colour');
  assert.deepEqual(Object.keys((await c.get(`${base}/properties`, 'admin')).body.properties).sort(), ['colour', 'speed']);
  assert.equal((await c.delete(`${base}/properties/colour`, 'admin')).status, 204);
  assert.equal((await c.delete(`${base}/properties/colour`, 'admin')).status, 404);

  const o = await c.post(`${base}/objects`, { name: 'Disk', required: ['size'], properties: { size: { title: 'Size', type: 'integer' } } }, 'admin');
  assert.equal(o.status, 201);
  assert.equal(o.body.self, `${base}/objects/Disk`);
  assert.equal((await c.get(`${base}/objects`, 'admin')).body.objects.length, 1);
  assert.equal((await c.call('PUT', `${base}/objects/Disk`, { body: { name: 'Disk', description: 'x' }, token: 'admin' })).body.description, 'x');
  assert.equal((await c.delete(`${base}/objects/Disk`, 'admin')).status, 204);

  assert.equal((await c.post(`${base}/tags/b`, undefined, 'admin')).status, 201);
  assert.deepEqual((await c.get(`${base}/tags`, 'admin')).body.tags.map((t: any) => t.name), ['a', 'b']);
  assert.equal((await c.post(`${base}/tags`, { tags: [{ name: 'x' }, { name: 'y' }] }, 'admin')).status, 201);
  assert.deepEqual((await c.get(`${base}/tags`, 'admin')).body.tags.map((t: any) => t.name), ['x', 'y']);
  assert.equal((await c.call('PUT', `${base}/tags/x`, { body: { name: 'z' }, token: 'admin' })).body.name, 'z');
  assert.equal((await c.delete(`${base}/tags/z`, 'admin')).status, 204);

  assert.equal((await c.post(`${base}/resource_types`, { name: 'OS::Nova::Flavor', prefix: 'test:' }, 'admin')).status, 201);
  assert.deepEqual((await c.get(`${base}/resource_types`, 'admin')).body.resource_type_associations.map((a: any) => [a.name, a.prefix]), [['OS::Nova::Flavor', 'test:']]);
  assert.equal((await c.delete(`${base}/resource_types/OS::Nova::Flavor`, 'admin')).status, 204);

  const upd = await c.call('PUT', base, { body: { namespace: ns, visibility: 'public', description: 'now public' }, token: 'admin' });
  assert.equal(upd.status, 200);
  assert.equal((await c.get(base, 'member-b')).body.description, 'now public');
  assert.equal((await c.delete(base, 'admin')).status, 204);
  assert.equal((await c.get(base, 'admin')).status, 404);
});

test('metadef schemas are published', async () => {
  for (const s of ['namespace', 'namespaces', 'object', 'objects', 'property', 'properties', 'resource_type', 'resource_types', 'tag', 'tags']) {
    assert.equal((await c.get(`/v2/schemas/metadefs/${s}`)).status, 200, s);
  }
});
