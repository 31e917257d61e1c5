import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiate, Version } from './microversion.ts';
import { BadRequest, NotAcceptable } from '../errors.ts';

const spec = { service: 'compute', min: '2.1', max: '2.93', legacyHeader: 'X-OpenStack-Nova-API-Version' };

test('versions compare as pairs, not floats', () => {
  assert.ok(new Version(2, 10).cmp('2.9') > 0);
  assert.ok(Version.parse('2.93')!.atLeast('2.37'));
});

test('no header is the minimum; latest is the maximum; the legacy header works', () => {
  assert.equal(negotiate({}, spec).toString(), '2.1');
  assert.equal(negotiate({ 'openstack-api-version': 'compute latest' }, spec).toString(), '2.93');
  assert.equal(negotiate({ 'x-openstack-nova-api-version': '2.37' }, spec).toString(), '2.37');
  assert.equal(negotiate({ 'openstack-api-version': 'placement 1.5, compute 2.60' }, spec).toString(), '2.60');
});

test('out of range is 406 with Nova\'s message; malformed is 400', () => {
  assert.throws(() => negotiate({ 'openstack-api-version': 'compute 9.99' }, spec), (e: Error) =>
    e instanceof NotAcceptable && e.message === 'Version 9.99 is not supported by the API. Minimum is 2.1 and maximum is 2.93.');
  assert.throws(() => negotiate({ 'openstack-api-version': 'compute 2.x' }, spec), BadRequest);
});
