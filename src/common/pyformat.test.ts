import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pformat, pyRepr } from './pyformat.ts';

// Expected strings are Python 3.11's repr() / pprint.pformat(width=72) (jsonschema's) of the same values.
test('pyRepr and pformat print as Python does', () => {
  assert.equal(pyRepr({ b: [1, 'it\'s', null], a: true }), `{'a': True, 'b': [1, "it's", None]}`);
  assert.equal(pformat({ name: 'x'.repeat(10), properties: { a: [1, 2, 3], b: null, c: true } }),
    `{'name': 'xxxxxxxxxx',\n 'properties': {'a': [1, 2, 3], 'b': None, 'c': True}}`);
  assert.equal(pformat(['a'.repeat(30), 'b'.repeat(30), { k: 'v'.repeat(50) }]),
    `['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',\n 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',\n {'k': 'vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv'}]`);
  const enumList = [null, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmware', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
  const pad = ' '.repeat(26);
  assert.equal(pformat({ disk_format: { enum: enumList, type: ['null', 'string'] } }),
    `{'disk_format': {'enum': [None,\n${enumList.slice(1).map((s) => `${pad}'${s}'`).join(',\n')}],\n                 'type': ['null', 'string']}}`);
});

test('a 10,000-deep value is formatted without exhausting the stack', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = { a: [deep] };
  assert.equal(pyRepr(deep), `{'a': [`.repeat(10_000) + '1' + ']}'.repeat(10_000));
  let arr: unknown = [];
  for (let i = 0; i < 10_000; i++) arr = [arr];
  assert.ok(pformat(arr, 72).startsWith('[[[['));
});
