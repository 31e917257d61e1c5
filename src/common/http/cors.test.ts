import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { registerCors } from './cors.ts';

const opts = { allowedOrigins: ['http://dash:9999'], exposeHeaders: ['X-Subject-Token'], allowHeaders: ['X-Auth-Token', 'Content-Type'], allowMethods: ['GET', 'POST'], maxAge: 60 };

test('CORS: listed origins get grants and preflights; others and disallowed headers get none', async () => {
  const app = Fastify();
  registerCors(app, opts);
  app.post('/v3/auth/tokens', async (_r, reply) => reply.header('x-subject-token', 't').code(201).send({}));
  const pre = await app.inject({ method: 'OPTIONS', url: '/v3/auth/tokens', headers: { origin: 'http://dash:9999', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-auth-token' } });
  assert.equal(pre.statusCode, 200);
  assert.equal(pre.headers['access-control-allow-origin'], 'http://dash:9999');
  assert.match(pre.headers['access-control-allow-headers'] as string, /X-Auth-Token/);
  const real = await app.inject({ method: 'POST', url: '/v3/auth/tokens', headers: { origin: 'http://dash:9999' } });
  assert.equal(real.headers['access-control-allow-origin'], 'http://dash:9999');
  assert.equal(real.headers['access-control-expose-headers'], 'X-Subject-Token');
  const other = await app.inject({ method: 'POST', url: '/v3/auth/tokens', headers: { origin: 'http://evil' } });
  assert.equal(other.headers['access-control-allow-origin'], undefined);
  const badHeader = await app.inject({ method: 'OPTIONS', url: '/v3/auth/tokens', headers: { origin: 'http://dash:9999', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-evil' } });
  assert.equal(badHeader.headers['access-control-allow-origin'], undefined);
  const badMethod = await app.inject({ method: 'OPTIONS', url: '/v3/auth/tokens', headers: { origin: 'http://dash:9999', 'access-control-request-method': 'DELETE' } });
  assert.equal(badMethod.headers['access-control-allow-origin'], undefined);
  await app.close();
});

test('CORS: nothing is added when no origin is configured', async () => {
  const app = Fastify();
  registerCors(app, { ...opts, allowedOrigins: [] });
  app.get('/', async () => ({}));
  const r = await app.inject({ url: '/', headers: { origin: 'http://dash:9999' } });
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  await app.close();
});
