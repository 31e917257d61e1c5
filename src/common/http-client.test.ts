import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { httpRequest, retryOnConflict, HttpTimeout } from './http-client.ts';
import { withRequestIds } from './request-ids.ts';

let hits = 0;
const seen: (string | undefined)[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  hits++;
  seen.push(req.headers['x-openstack-request-id'] as string | undefined);
  if (req.url === '/echo') { const parts: Buffer[] = []; req.on('data', (b) => parts.push(b)); req.on('end', () => { res.statusCode = 503; res.end(Buffer.concat(parts)); }); return; }
  if (req.url === '/flaky' && hits % 3 !== 0) { res.statusCode = 503; res.end('busy'); return; }
  if (req.url === '/slow') { setTimeout(() => { res.end('late'); }, 2000); return; }
  if (req.url === '/count') { let n = 0; req.on('data', (b: Buffer) => { n += b.length; }); req.on('end', () => { res.statusCode = 204; res.setHeader('x-bytes', String(n)); res.end(); }); return; }
  res.end('ok');
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
after(() => { server.closeAllConnections(); server.close(); });

test('idempotent requests are retried on 503, with the request id on every attempt', async () => {
  hits = 0; seen.length = 0;
  const res = await httpRequest(`${base}/flaky`, { requestId: 'req-abc' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
  assert.equal(hits, 3);
  assert.deepEqual(seen, ['req-abc', 'req-abc', 'req-abc']);
});

test('a POST is not retried', async () => {
  hits = 0;
  const res = await httpRequest(`${base}/flaky`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 503);
  await res.text();
  assert.equal(hits, 1);
});

test('a request that gets no answer in time fails with HttpTimeout', async () => {
  await assert.rejects(httpRequest(`${base}/slow`, { timeoutMs: 100, retries: 0 }), (e) => e instanceof HttpTimeout && /timed out after 100 ms/.test((e as Error).message));
});

test('retryOnConflict: retries until done, or gives up with the error', async () => {
  let n = 0;
  assert.equal(await retryOnConflict(5, async () => (++n < 3 ? { done: false } : { done: true, value: n }), () => new Error('x')), 3);
  await assert.rejects(retryOnConflict(2, async () => ({ done: false }), () => new Error('gave up')), /gave up/);
});

test('inside a request, its global id (else its own) is forwarded without being passed', async () => {
  seen.length = 0;
  await withRequestIds({ requestId: 'req-local', globalRequestId: 'req-global' }, async () => { await (await httpRequest(`${base}/`)).text(); });
  await withRequestIds({ requestId: 'req-local' }, async () => { await (await httpRequest(`${base}/`)).text(); });
  await (await httpRequest(`${base}/`)).text();
  assert.deepEqual(seen, ['req-global', 'req-local', undefined]);
});

test('a streamed body is sent once and never retried, even for a PUT', async () => {
  hits = 0;
  const res = await httpRequest(`${base}/echo`, { method: 'PUT', stream: Readable.from([Buffer.from('ab'), Buffer.from('cd')]) });
  assert.equal(res.status, 503);
  assert.equal(await res.text(), 'abcd');
  assert.equal(hits, 1);
});

test('a streamed body arrives whole (64 MiB in 1 MiB chunks); the answer is a Response; no answer in time is HttpTimeout', async () => {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const res = await httpRequest(`${base}/count`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, stream: Readable.from(Array.from({ length: 64 }, () => chunk)) });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('x-bytes'), String(64 * 1024 * 1024));
  assert.equal(await res.text(), '');
  await assert.rejects(httpRequest(`${base}/slow`, { method: 'PUT', stream: Readable.from([Buffer.from('x')]), timeoutMs: 100 }), (e) => e instanceof HttpTimeout);
});
