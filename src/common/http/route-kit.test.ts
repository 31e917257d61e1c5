import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { BadRequest, Forbidden } from '../errors.ts';
import { sendError } from './errors.ts';
import { Version } from './microversion.ts';
import { parseJsonBody } from './json.ts';
import { allowedStatuses, checkResponse, registerRows, type RouteRow } from './route-kit.ts';

type H = (req: { body: unknown; params: unknown }) => Promise<{ status: number; body?: unknown }>;

const rows: RouteRow<H>[] = [
  { method: 'GET', path: '/things', policy: 'list', errors: [], response: { 200: { type: 'object', required: ['things'], properties: { things: { type: 'array' } }, additionalProperties: false } },
    handler: async () => ({ status: 200, body: { things: [] } }) },
  { method: 'POST', path: '/things', policy: 'create', errors: [409],
    body: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 5 } } },
    handler: async (req) => ({ status: 201, body: req.body }) },
  { method: 'POST', path: '/things/:id/action', policy: 'act', errors: [], notImplemented: 'Not built yet.', handler: async () => ({ status: 202 }) },
  { method: 'PUT', path: '/things/:id', policy: 'update', until: '1.4', errors: [], handler: async () => ({ status: 200, body: { old: true } }) },
  { method: 'PUT', path: '/things/:id', policy: 'update', since: '1.5', errors: [], handler: async () => ({ status: 200, body: { new: true } }) },
  { method: 'DELETE', path: '/things/:id', policy: 'delete', since: '1.2', outOfRange: 405, errors: [], handler: async () => ({ status: 204 }) },
];

async function app() {
  const f = Fastify();
  f.removeContentTypeParser('application/json');
  f.addContentTypeParser('application/json', { parseAs: 'string' }, (_r, b, done) => { try { done(null, parseJsonBody(b as string)); } catch (e) { done(e as Error, undefined); } });
  f.setErrorHandler((e, req, reply) => sendError('nova', e, req, reply));
  const calls: string[] = [];
  registerRows<H>(f, rows, {
    onRequest: async (req) => { (req as unknown as { v: Version }).v = Version.parse(String(req.headers['x-version'] ?? '1.0'))!; },
    version: (req) => (req as unknown as { v: Version }).v,
    authorize: (req, rule) => {
      calls.push(rule);
      const role = String(req.headers['x-role'] ?? '');
      if (role !== 'admin' && !(role === 'reader' && rule === 'list')) throw new Forbidden(`Policy does not allow ${rule} to be performed.`);
    },
    schemaError: (errors, where) => new BadRequest(`Invalid input for ${where}: ${errors[0]?.instancePath} ${errors[0]?.message}`),
    run: async (row, req, reply) => {
      const out = await row.handler({ body: req.body, params: req.params });
      reply.code(out.status);
      return out.body === undefined ? reply.send() : reply.send(out.body);
    },
  });
  await f.ready();
  return { f, calls };
}

const inject = (f: Awaited<ReturnType<typeof app>>['f'], method: string, url: string, headers: Record<string, string> = {}, payload?: string) =>
  f.inject({ method: method as 'GET', url, headers: { 'content-type': 'application/json', ...headers }, payload });

test('the policy runs before the body is parsed or validated: a reader with a malformed body gets 403', async () => {
  const { f, calls } = await app();
  const r = await inject(f, 'POST', '/things', { 'x-role': 'reader' }, '{bad');
  assert.equal(r.statusCode, 403);
  assert.deepEqual(calls, ['create']);
  const deep = await inject(f, 'POST', '/things', { 'x-role': 'reader' }, '['.repeat(10_000));
  assert.equal(deep.statusCode, 403);
  assert.equal((await inject(f, 'POST', '/things', { 'x-role': 'admin' }, '{bad')).statusCode, 400);
});

test('an unbuilt action answers 403 to a reader and 501 only to whoever passes its policy', async () => {
  const { f } = await app();
  assert.equal((await inject(f, 'POST', '/things/1/action', { 'x-role': 'reader' }, '{}')).statusCode, 403);
  const admin = await inject(f, 'POST', '/things/1/action', { 'x-role': 'admin' }, '{}');
  assert.equal(admin.statusCode, 501);
  assert.deepEqual(admin.json(), { notImplemented: { code: 501, message: 'Not built yet.' } });
});

test('request schemas go through the one ajv engine and the service formatter', async () => {
  const { f } = await app();
  const r = await inject(f, 'POST', '/things', { 'x-role': 'admin' }, JSON.stringify({ name: 'too long' }));
  assert.equal(r.statusCode, 400);
  assert.deepEqual(r.json(), { badRequest: { code: 400, message: 'Invalid input for body: /name must NOT have more than 5 characters' } });
  assert.equal((await inject(f, 'POST', '/things', { 'x-role': 'admin' }, JSON.stringify({ name: 'ok' }))).statusCode, 201);
});

test('methods and microversion ranges: 405 with Allow, the row for the version, 404 or 405 outside its range', async () => {
  const { f } = await app();
  const patch = await inject(f, 'PATCH', '/things', { 'x-role': 'admin' });
  assert.equal(patch.statusCode, 405);
  assert.equal(patch.headers.allow, 'GET, POST');
  assert.deepEqual((await inject(f, 'PUT', '/things/1', { 'x-role': 'admin', 'x-version': '1.4' })).json(), { old: true });
  assert.deepEqual((await inject(f, 'PUT', '/things/1', { 'x-role': 'admin', 'x-version': '1.9' })).json(), { new: true });
  assert.equal((await inject(f, 'DELETE', '/things/1', { 'x-role': 'admin', 'x-version': '1.1' })).statusCode, 405);
  assert.equal((await inject(f, 'DELETE', '/things/1', { 'x-role': 'admin', 'x-version': '1.2' })).statusCode, 204);
});

test('response schemas and declared statuses are checkable', () => {
  assert.deepEqual(checkResponse(rows[0], 200, { things: [] }), []);
  assert.deepEqual(checkResponse(rows[0], 200, { things: 1 }), ['/things must be array']);
  assert.match(checkResponse(rows[1], 201, {})[0], /declares no response schema/);
  assert.ok(allowedStatuses(rows[1]).has(409));
  assert.ok(allowedStatuses(rows[2]).has(501));
  assert.ok(!allowedStatuses(rows[0]).has(409));
});
