import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepth, jsonPreview, parseJsonBody, MAX_JSON_DEPTH } from './json.ts';
import { MalformedBody } from './errors.ts';

test('jsonDepth counts nesting, ignoring brackets inside strings and escaped quotes', () => {
  assert.equal(jsonDepth('1'), 0);
  assert.equal(jsonDepth('{"a":[1,{"b":[]}]}'), 4);
  assert.equal(jsonDepth('{"a":"[[[[\\"{{{"}'), 1);
  assert.equal(jsonDepth('['.repeat(10_000) + ']'.repeat(10_000)), 10_000);
  assert.equal(jsonDepth('['.repeat(10_000), 5), 6, 'stops once past the limit');
});

test('parseJsonBody refuses bodies nested deeper than the limit with a 400, and parses the rest', () => {
  assert.equal(parseJsonBody('  '), undefined);
  assert.deepEqual(parseJsonBody('{"a":[1]}'), { a: [1] });
  const ok = '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH);
  assert.ok(Array.isArray(parseJsonBody(ok)));
  for (const deep of ['['.repeat(10_000) + ']'.repeat(10_000), '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)]) {
    assert.throws(() => parseJsonBody(deep), (e) => e instanceof MalformedBody && e.status === 400 && /deeper than 100/.test(e.message));
  }
  assert.throws(() => parseJsonBody('{bad'), (e) => e instanceof MalformedBody && /^Malformed request body: /.test(e.message));
});

test('jsonPreview prints JSON up to a length, whatever the depth', () => {
  assert.equal(jsonPreview({ a: [1, 'x', null, true], b: {} }), '{"a":[1,"x",null,true],"b":{}}');
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  const p = jsonPreview(deep, 50);
  assert.equal(p, '['.repeat(50) + '…');
});
