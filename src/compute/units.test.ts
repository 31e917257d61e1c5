// Unit tests of compute's small pure pieces: Nova's validation messages, state → status,
// extra_specs operators, IPv6 canonical text, hostname sanitising, default cell0 URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validationMessage, P } from './api/validation.ts';
import { statusOf, statesForStatus, instanceName } from './objects.ts';
import { specMatches } from './scheduler/filters.ts';
import { canonicalIpv6, pyRepr } from './util.ts';
import { sanitizeHostname } from './api/servers.ts';
import { defaultCell0Url } from './cells.ts';
import { canonicalArch, imageProps } from './image-props.ts';

test('validation messages read as Nova/jsonschema write them', () => {
  const schema = { type: 'object', properties: { server: { type: 'object', properties: { name: P.name, flavorRef: { type: ['string', 'integer'] }, networks: { type: 'array' } }, required: ['name', 'flavorRef'], additionalProperties: false } }, required: ['server'] };
  assert.equal(validationMessage(schema, {}), "'server' is a required property");
  assert.equal(validationMessage(schema, { server: { name: 'x' } }), "Invalid input for field/attribute server. Value: {'name': 'x'}. 'flavorRef' is a required property");
  assert.equal(validationMessage(schema, { server: { name: 'x', flavorRef: 1, networks: 'none' } }), "Invalid input for field/attribute networks. Value: none. 'none' is not of type 'array'");
  assert.equal(validationMessage(schema, { server: { name: ' x', flavorRef: 1 } }), "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.");
  assert.equal(validationMessage(schema, { server: { name: 'x', flavorRef: 1, a: true } }), "Invalid input for field/attribute server. Value: {'name': 'x', 'flavorRef': 1, 'a': True}. Additional properties are not allowed ('a' was unexpected)");
  assert.equal(validationMessage(schema, { server: { name: 'x', flavorRef: 1 } }), undefined);
  assert.equal(pyRepr({ a: [1, 2.5, null, "it's"] }), `{'a': [1, 2.5, None, "it's"]}`);
});

test('pyRepr renders as Python\'s repr, iteratively: a 10,000-deep value does not overflow the stack', () => {
  assert.equal(pyRepr([]), '[]');
  assert.equal(pyRepr({}), '{}');
  assert.equal(pyRepr({ k: { 'a\'b': [true, false, { x: 'say "hi"' }], n: -1e21, t: 'tab\there\\' } }),
    `{'k': {"a'b": [True, False, {'x': 'say "hi"'}], 'n': -1e+21, 't': 'tab\\there\\\\'}}`.replace('-1e+21', String(-1e21)));
  let deep: unknown = 'x';
  for (let i = 0; i < 10_000; i++) deep = i % 2 ? [deep] : { a: deep };
  const r = pyRepr(deep);
  assert.equal(r.length, 10_000 / 2 * ('[]'.length + "{'a': }".length) + 3);
  assert.ok(r.startsWith("[{'a': [{'a': ") && r.endsWith(`{'a': 'x'${'}]'.repeat(5000)}`));
  // And through Nova's message for a refused body (the value is shown with its repr).
  const m = validationMessage({ type: 'object', properties: { a: { type: 'string' } } }, { a: deep });
  assert.ok(m?.startsWith('Invalid input for field/attribute a. Value: [{'), m?.slice(0, 80));
  assert.ok(m?.endsWith("is not of type 'string'"));
});

test('vm_state and task_state map to the API status', () => {
  assert.equal(statusOf('active', null), 'ACTIVE');
  assert.equal(statusOf('active', 'rebooting_hard'), 'HARD_REBOOT');
  assert.equal(statusOf('stopped', null), 'SHUTOFF');
  assert.equal(statusOf('building', 'spawning'), 'BUILD');
  assert.equal(statusOf('shelved_offloaded', null), 'SHELVED_OFFLOADED');
  assert.deepEqual(statesForStatus('shutoff')?.vm, ['stopped']);
  assert.deepEqual(statesForStatus('REBOOT'), { vm: ['active'], task: ['rebooting', 'reboot_pending', 'reboot_started'] });
  assert.equal(statesForStatus('nonsense'), undefined);
  assert.equal(instanceName(26), 'instance-0000001a');
});

test('extra_specs operators as the capabilities filter reads them', () => {
  assert.ok(specMatches(8, '= 4'));
  assert.ok(!specMatches(2, '= 4'));
  assert.ok(specMatches('kvm', 's== kvm'));
  assert.ok(specMatches('x86_64', '<or> aarch64 <or> x86_64'));
  assert.ok(specMatches('Intel Xeon', '<in> Xeon'));
  assert.ok(specMatches('fake', 'fake'));
});

test('small conversions', () => {
  assert.equal(canonicalIpv6('0000:0000:0000:0000:0000:babe:220.12.22.2'), '::babe:dc0c:1602');
  assert.equal(canonicalIpv6('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(sanitizeHostname('My_Server.example.com', 'x'), 'my-server-example-com');
  assert.equal(sanitizeHostname('---', 'server-1'), 'server-1');
  assert.equal(defaultCell0Url('sqlite:////var/lib/stratus/nova.db'), 'sqlite:////var/lib/stratus/nova_cell0.db');
  assert.equal(defaultCell0Url('mysql+pymysql://nova:pw@db/nova?charset=utf8'), 'mysql+pymysql://nova:pw@db/nova_cell0?charset=utf8');
  assert.equal(canonicalArch('amd64'), 'x86_64');
  assert.throws(() => imageProps({ architecture: 'pdp11' }), /Architecture name 'pdp11' is not recognised/);
  assert.throws(() => imageProps({ vm_mode: 'weird' }), /Virtual machine mode 'weird' is not recognised/);
  assert.deepEqual(imageProps({ hypervisor_type: 'QEMU', hw_disk_bus: 'virtio', name: 'x' }), { img_hv_type: 'qemu', hw_disk_bus: 'virtio' });
});
