// A lost database connection is a retriable 503 at the HTTP APIs and ServiceUnavailable across
// RPC (the agent retries it); a real bug stays a 500 / InternalError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadRequest, deserializeError, isConnectionError, serializeError, ServiceUnavailable } from './errors.ts';
import { toStratusError } from './http/errors.ts';

const err = (message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), extra);

test('connection errors of mysql2, pg and node sockets are recognised; others are not', () => {
  for (const e of [
    err('Connection lost: The server closed the connection.', { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }),
    err('read ECONNRESET', { code: 'ECONNRESET' }),
    err('connect ECONNREFUSED 127.0.0.1:3306', { code: 'ECONNREFUSED' }),
    err('Connection terminated unexpectedly'),
    err('terminating connection due to administrator command', { code: '57P01' }),
    err('connection failure', { code: '08006' }),
    err("MySQL server has gone away", { errno: 2006 }),
    err('sorry, too many clients already', { code: '53300' }),
    err('Too many connections', { errno: 1040, code: 'ER_CON_COUNT_ERROR' }),
  ]) assert.ok(isConnectionError(e), e.message);
  for (const e of [err('syntax error at or near "x"', { code: '42601' }), err('Duplicate entry', { code: 'ER_DUP_ENTRY', errno: 1062 }), new TypeError('x is undefined'), new BadRequest('no'), undefined, null]) {
    assert.equal(isConnectionError(e), false, String((e as Error | undefined)?.message));
  }
});

test('across RPC a lost connection is ServiceUnavailable; over HTTP it is 503', () => {
  const lost = err('read ECONNRESET', { code: 'ECONNRESET' });
  const s = serializeError(lost);
  assert.equal(s.name, 'ServiceUnavailable');
  assert.ok(deserializeError(s) instanceof ServiceUnavailable);
  assert.equal(toStratusError(lost).status, 503);
  assert.equal(serializeError(new TypeError('bug')).name, 'InternalError');
  assert.equal(toStratusError(new TypeError('bug')).status, 500);
});
