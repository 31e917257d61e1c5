// Unit tests for the query-string parsers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Version } from '../../common/http/microversion.ts';
import { Query, isUuidLike, normalizeUuid } from './router.ts';
import { parseMemberOf, parseRequired, parseResources, parseRootRequired } from './query.ts';

const v = (s: string) => Version.parse(s)!;
const q = (pairs: [string, string][]) => new Query(pairs.reduce<Record<string, string[]>>((o, [k, x]) => ((o[k] ??= []).push(x), o), {}));
const A = 'aaaaaaaa-0000-4000-8000-00000000000a';
const B = 'bbbbbbbb-0000-4000-8000-00000000000b';

test('resources', () => {
  assert.deepEqual(parseResources('VCPU:2,MEMORY_MB:1024'), { VCPU: 2, MEMORY_MB: 1024 });
  for (const bad of ['', 'VCPU', 'VCPU:', 'VCPU:x', 'VCPU:0', 'VCPU:-2', 'VCPU:1:2', 'VCPU:1.5']) {
    assert.throws(() => parseResources(bad), { status: 400 }, bad);
  }
});

test('required: plain, forbidden, any-of, repetition by version', () => {
  assert.deepEqual(parseRequired(q([['required', 'A,!B']]), 'required', v('1.22')), { required: [['A']], forbidden: ['B'] });
  assert.throws(() => parseRequired(q([['required', '!B']]), 'required', v('1.21')), { status: 400 });
  assert.deepEqual(parseRequired(q([['required', 'in:A,B'], ['required', 'C,!D']]), 'required', v('1.39')),
    { required: [['A', 'B'], ['C']], forbidden: ['D'] });
  // Before 1.39 only the last value counts and in: is refused.
  assert.deepEqual(parseRequired(q([['required', 'A'], ['required', 'C']]), 'required', v('1.38')), { required: [['C']], forbidden: [] });
  assert.throws(() => parseRequired(q([['required', 'in:A,B']]), 'required', v('1.38')), { status: 400 });
  assert.throws(() => parseRequired(q([['required', 'in:A,!B']]), 'required', v('1.39')), { status: 400 });
  assert.throws(() => parseRequired(q([['required', 'A,,B']]), 'required', v('1.39')), { status: 400 });
});

test('root_required', () => {
  assert.deepEqual(parseRootRequired(q([['root_required', 'A,!B']])), { required: ['A'], forbidden: ['B'] });
  assert.throws(() => parseRootRequired(q([['root_required', 'A'], ['root_required', 'B']])), { code: 'placement.query.duplicate_key' });
  assert.throws(() => parseRootRequired(q([['root_required', 'A,!A']])), { code: 'placement.query.bad_value' });
});

test('member_of', () => {
  assert.deepEqual(parseMemberOf(q([['member_of', A]]), 'member_of', v('1.3')), { required: [[A]], forbidden: [] });
  assert.deepEqual(parseMemberOf(q([['member_of', `in:${A},${B}`], ['member_of', `!${B}`]]), 'member_of', v('1.32')), { required: [[A, B]], forbidden: [B] });
  assert.throws(() => parseMemberOf(q([['member_of', A], ['member_of', B]]), 'member_of', v('1.23')), { status: 400 });
  assert.throws(() => parseMemberOf(q([['member_of', `!${A}`]]), 'member_of', v('1.31')), { status: 400 });
  assert.throws(() => parseMemberOf(q([['member_of', `${A},${B}`]]), 'member_of', v('1.32')), { status: 400 });
  assert.throws(() => parseMemberOf(q([['member_of', 'nope']]), 'member_of', v('1.32')), { status: 400 });
});

test('uuid helpers accept what oslo accepts', () => {
  assert.ok(isUuidLike('AAAAAAAA00004000800000000000000A'));
  assert.ok(isUuidLike('{aaaaaaaa-0000-4000-8000-00000000000a}'));
  assert.ok(!isUuidLike('aaaaaaaa-0000-4000-8000'));
  assert.equal(normalizeUuid('AAAAAAAA00004000800000000000000A'), 'aaaaaaaa-0000-4000-8000-00000000000a');
});
