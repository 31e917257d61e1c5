// One suite for every transport: STRATUS_TEST_TRANSPORT=memory (default) or rabbit. Each test
// gets its own exchange, so tests never see each other's messages.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { BadRequest, InternalError, MessagingTimeout, NotFound, ServiceUnavailable } from '../errors.ts';
import { testTransport, testTransportUrl } from '../../../test/helpers/backends.ts';
import { createTransport, type RequestContext, type Transport } from './transport.ts';

const run = promisify(execFile);
const logs: { level: string; msg?: string; o: object }[] = [];
const logger = {
  info: (o: object, msg?: string) => { logs.push({ level: 'info', msg, o }); },
  warn: (o: object, msg?: string) => { logs.push({ level: 'warn', msg, o }); },
  error: (o: object, msg?: string) => { logs.push({ level: 'error', msg, o }); },
};
const exchanges: string[] = [];

/** `n` transports on one fresh exchange, as if in `n` separate services; closed after the test. */
async function open(t: TestContext, n = 1): Promise<Transport[]> {
  const { url, exchange } = testTransportUrl();
  exchanges.push(exchange);
  const transports: Transport[] = [];
  for (let i = 0; i < n; i++) transports.push(await createTransport(url, { exchange, logger }));
  t.after(() => Promise.all(transports.map((x) => x.close())));
  return transports;
}

function ctx(extra: Partial<RequestContext> = {}): RequestContext {
  return { requestId: `req-${randomUUID()}`, userId: 'u1', projectId: 'p1', roles: ['member', 'reader'], ...extra };
}

/** A promise plus its resolver, for waiting on something a handler does. */
function signal<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); });
  try { return await Promise.race([p, expired]); } finally { clearTimeout(timer); }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// RabbitMQ keeps durable queues and exchanges after the test; remove what this run created.
after(async () => {
  if (testTransport !== 'rabbit' || exchanges.length === 0) return;
  const amqp = (await import('amqplib')).default;
  let names: { queues: string[]; exchanges: string[] };
  try {
    const q = await run('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name']);
    const x = await run('rabbitmqctl', ['list_exchanges', '-q', '--no-table-headers', 'name']);
    names = { queues: q.stdout.split('\n'), exchanges: x.stdout.split('\n') };
  } catch {
    return; // no rabbitmqctl (not root): leave the leftovers
  }
  const ours = (name: string) => exchanges.some((e) => name === e || name.startsWith(`${e}.`) || name.startsWith(`${e}_`));
  const conn = await amqp.connect(testTransportUrl().url.replace(/^rabbit:/, 'amqp:'));
  const ch = await conn.createChannel();
  for (const q of names.queues.map((s) => s.trim()).filter(ours)) await ch.deleteQueue(q);
  for (const x of names.exchanges.map((s) => s.trim()).filter(ours)) await ch.deleteExchange(x);
  await conn.close();
});

test('call delivers args and context and returns the result', async (t) => {
  const [client, service] = await open(t, 2);
  await service.serve({ topic: 'conductor' }, {
    echo: (c, args) => ({ context: c, args }),
  });
  const c = ctx({ isAdmin: true, custom: 'x' });
  const when = new Date('2024-01-02T03:04:05.000Z');
  const r = await client.call<{ context: RequestContext; args: any }>(c, { topic: 'conductor' }, 'echo', { n: 1, list: [1, 'a'], when });
  assert.deepEqual(r.context, c);
  // Payloads go through JSON on every transport, so a Date arrives as its ISO string.
  assert.deepEqual(r.args, { n: 1, list: [1, 'a'], when: when.toISOString() });
  assert.equal(await client.call(ctx(), { topic: 'conductor' }, 'echo', undefined).then((x: any) => x.args), undefined);
});

test('cast is delivered, and never handled inside the cast() call itself', async (t) => {
  const [client, service] = await open(t, 2);
  const got = signal<{ c: RequestContext; args: unknown; afterReturn: boolean }>();
  let returned = false;
  await service.serve({ topic: 'compute' }, {
    build: (c, args) => { got.resolve({ c, args, afterReturn: returned }); },
  });
  const c = ctx();
  const pending = client.cast(c, { topic: 'compute' }, 'build', { id: 'i-1' });
  returned = true;
  await pending;
  const r = await within(got.promise, 5000, 'the cast');
  assert.deepEqual(r.args, { id: 'i-1' });
  assert.equal(r.c.requestId, c.requestId);
  assert.equal(r.afterReturn, true);
});

test('fanout reaches every server of the topic and no other', async (t) => {
  const [client, a, b, other] = await open(t, 4);
  const seen: string[] = [];
  const both = signal();
  const note = (who: string) => () => { seen.push(who); if (seen.length === 2) both.resolve(); };
  await a.serve({ topic: 'scheduler', server: 'a' }, { refresh: note('a') });
  await b.serve({ topic: 'scheduler', server: 'b' }, { refresh: note('b') });
  await other.serve({ topic: 'conductor' }, { refresh: note('other') });
  await client.fanout(ctx(), 'scheduler', 'refresh', { full: true });
  await within(both.promise, 5000, 'both fanout deliveries');
  await sleep(100);
  assert.deepEqual(seen.sort(), ['a', 'b']);
});

test('topic.server reaches only that server', async (t) => {
  const [client, host1, host2] = await open(t, 3);
  await host1.serve({ topic: 'compute', server: 'host1' }, { whoami: () => 'host1' });
  await host2.serve({ topic: 'compute', server: 'host2' }, { whoami: () => 'host2' });
  const answers = await Promise.all(Array.from({ length: 10 }, () => client.call(ctx(), { topic: 'compute', server: 'host2' }, 'whoami')));
  assert.deepEqual(answers, Array(10).fill('host2'));
  assert.equal(await client.call(ctx(), { topic: 'compute', server: 'host1' }, 'whoami'), 'host1');
});

test('servers of one topic share the work', async (t) => {
  const [client, s1, s2] = await open(t, 3);
  const count = { s1: 0, s2: 0 };
  await s1.serve({ topic: 'conductor', server: 's1' }, { work: async () => { count.s1++; await sleep(5); return 's1'; } });
  await s2.serve({ topic: 'conductor', server: 's2' }, { work: async () => { count.s2++; await sleep(5); return 's2'; } });
  const answers = await Promise.all(Array.from({ length: 20 }, () => client.call(ctx(), { topic: 'conductor' }, 'work')));
  assert.equal(answers.length, 20);
  assert.equal(count.s1 + count.s2, 20);
  assert.ok(count.s1 > 0 && count.s2 > 0, `both servers worked: ${JSON.stringify(count)}`);
});

test('a call with no reply in time rejects with MessagingTimeout', async (t) => {
  const [client, service] = await open(t, 2);
  await service.serve({ topic: 'slow' }, { nap: () => sleep(1500) });
  const started = Date.now();
  await assert.rejects(
    client.call(ctx(), { topic: 'slow' }, 'nap', {}, { timeoutMs: 300 }),
    (err: Error) => {
      assert.ok(err instanceof MessagingTimeout);
      assert.match(err.message, /^Timed out waiting for a reply to message \S+ \(method nap on slow\)$/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 1200, 'rejected at the timeout, not when the handler finished');
});

// Call heartbeats (oslo's call_monitor_timeout): the server beats while a monitored call runs.
test('a monitored call outlives its monitor timeout while its server heartbeats', async (t) => {
  const [client, service] = await open(t, 2);
  await service.serve({ topic: 'slow' }, { nap: async () => { await sleep(1200); return 'rested'; } });
  assert.equal(await client.call(ctx(), { topic: 'slow' }, 'nap', {}, { timeoutMs: 10_000, monitorMs: 300 }), 'rested');
});

test('a monitored call fails fast when the server handling it dies', async (t) => {
  const [client, service] = await open(t, 2);
  const exchange = exchanges[exchanges.length - 1]!;
  const picked = signal();
  let raw: { close(): Promise<void> } | undefined;
  if ('crash' in service) {
    // Memory bus: the server process is killed -9 while its handler runs.
    await service.serve({ topic: 'conductor' }, { work: async () => { picked.resolve(); await new Promise(() => { /* runs on, as in a killed process */ }); } });
  } else {
    // RabbitMQ: a server that took the call and then died answers nothing, as this bare consumer.
    const amqp = (await import('amqplib')).default;
    const conn = await amqp.connect(testTransportUrl().url.replace(/^rabbit:/, 'amqp:'));
    raw = conn;
    const ch = await conn.createChannel();
    const q = `${exchange}.conductor`;
    await ch.assertQueue(q, { durable: true, autoDelete: false, exclusive: false });
    await ch.bindQueue(q, exchange, 'conductor');
    await ch.consume(q, (m) => { if (m) { ch.ack(m); picked.resolve(); } });
  }
  t.after(() => raw?.close());
  const started = Date.now();
  const call = client.call(ctx(), { topic: 'conductor' }, 'work', {}, { timeoutMs: 20_000, monitorMs: 400 });
  call.catch(() => undefined);
  await within(picked.promise, 5000, 'the call picked up');
  (service as unknown as { crash?: () => void }).crash?.();
  await assert.rejects(call, (e: unknown) => e instanceof MessagingTimeout && /No heartbeat/.test((e as Error).message));
  assert.ok(Date.now() - started < 3000, `failed at the monitor timeout, not the 20 s timeout (${Date.now() - started} ms)`);
});

test('a monitored call nobody picks up fails at its monitor timeout and is never run afterwards', async (t) => {
  const [client, late] = await open(t, 2);
  const started = Date.now();
  await assert.rejects(client.call(ctx(), { topic: 'nobody' }, 'work', {}, { timeoutMs: 20_000, monitorMs: 300 }), MessagingTimeout);
  assert.ok(Date.now() - started < 3000, `failed at the monitor timeout (${Date.now() - started} ms)`);
  let ran = false;
  await late.serve({ topic: 'nobody' }, { work: () => { ran = true; } });
  await sleep(500);
  assert.equal(ran, false, 'the expired call was dropped, not run for a caller that gave up');
});

test('the transport default monitors every call; monitorMs 0 turns it off for one', async (t) => {
  const { url, exchange } = testTransportUrl();
  exchanges.push(exchange);
  const client = await createTransport(url, { exchange, logger, callMonitorMs: 300 });
  const [service] = await open(t, 1);
  t.after(() => client.close());
  void service;
  // Nobody serves the topic: a monitored call gives up at 300 ms, an unmonitored one at its timeout.
  const t0 = Date.now();
  await assert.rejects(client.call(ctx(), { topic: 'idle' }, 'x', {}, { timeoutMs: 20_000 }), /No heartbeat/);
  assert.ok(Date.now() - t0 < 3000);
  const t1 = Date.now();
  await assert.rejects(client.call(ctx(), { topic: 'idle' }, 'x', {}, { timeoutMs: 1200, monitorMs: 0 }), /Timed out waiting for a reply/);
  assert.ok(Date.now() - t1 >= 1100, 'the unmonitored call waited for its timeout');
});

test('a typed error thrown by the handler is re-raised as the same class', async (t) => {
  const [client, service] = await open(t, 2);
  await service.serve({ topic: 'image' }, {
    get: (_c, args: { id: string }) => { throw new NotFound(`Image ${args.id} could not be found.`, { code: 'image.not_found' }); },
  });
  await assert.rejects(client.call(ctx(), { topic: 'image' }, 'get', { id: 'abc' }), (err: Error) => {
    assert.ok(err instanceof NotFound);
    assert.equal(err.message, 'Image abc could not be found.');
    assert.equal((err as NotFound).code, 'image.not_found');
    return true;
  });
});

test('a plain Error thrown by the handler arrives as InternalError', async (t) => {
  const [client, service] = await open(t, 2);
  await service.serve({ topic: 'image' }, { boom: () => { throw new Error('disk on fire'); } });
  await assert.rejects(client.call(ctx(), { topic: 'image' }, 'boom'), (err: Error) => {
    assert.ok(err instanceof InternalError);
    assert.equal(err.message, 'disk on fire');
    return true;
  });
});

test('a call to a topic nobody serves times out', async (t) => {
  const [client] = await open(t);
  await assert.rejects(client.call(ctx(), { topic: 'nobody', server: 'home' }, 'ping', {}, { timeoutMs: 300 }), MessagingTimeout);
});

test('versions: same major and an older or equal minor only; unknown methods refused', async (t) => {
  const [client, service] = await open(t, 2);
  await service.serve({ topic: 'compute' }, { ping: () => 'pong' }, { version: '1.2' });
  const target = { topic: 'compute' };
  assert.equal(await client.call(ctx(), target, 'ping'), 'pong'); // default 1.0
  assert.equal(await client.call(ctx(), target, 'ping', {}, { version: '1.2' }), 'pong');
  for (const version of ['1.3', '2.0', '0.9']) {
    await assert.rejects(client.call(ctx(), target, 'ping', {}, { version }), (err: Error) => {
      assert.ok(err instanceof BadRequest);
      assert.equal(err.message, `Endpoint does not support RPC version ${version}. Attempted method: ping`);
      return true;
    });
  }
  await assert.rejects(client.call(ctx(), target, 'toString'), (err: Error) => {
    assert.ok(err instanceof BadRequest);
    assert.match(err.message, /does not support RPC method toString/);
    return true;
  });
});

test('a cast sent before any server exists is delivered once one starts', async (t) => {
  const [client, service] = await open(t, 2);
  await client.cast(ctx(), { topic: 'compute', server: 'late' }, 'build', { id: 1 });
  await client.cast(ctx(), { topic: 'compute', server: 'late' }, 'build', { id: 2 });
  await sleep(100);
  const ids: number[] = [];
  const both = signal();
  await service.serve({ topic: 'compute', server: 'late' }, {
    build: (_c, args: { id: number }) => { ids.push(args.id); if (ids.length === 2) both.resolve(); },
  });
  await within(both.promise, 5000, 'the queued casts');
  assert.deepEqual(ids.sort(), [1, 2]);
});

test('a stopped server receives nothing more', async (t) => {
  const [client, service] = await open(t, 2);
  let calls = 0;
  const server = await service.serve({ topic: 'temp' }, { ping: () => { calls++; return 'pong'; } });
  assert.equal(await client.call(ctx(), { topic: 'temp' }, 'ping'), 'pong');
  await server.stop();
  await assert.rejects(client.call(ctx(), { topic: 'temp' }, 'ping', {}, { timeoutMs: 300 }), MessagingTimeout);
  assert.equal(calls, 1);
});

test('close() rejects calls still waiting with ServiceUnavailable', async (t) => {
  const [client, service] = await open(t, 2);
  const started = signal();
  await service.serve({ topic: 'slow' }, { nap: async () => { started.resolve(); await sleep(500); } });
  const pending = client.call(ctx(), { topic: 'slow' }, 'nap');
  await within(started.promise, 5000, 'the handler to start');
  const rejected = assert.rejects(pending, ServiceUnavailable);
  await client.close();
  await rejected;
  await assert.rejects(client.call(ctx(), { topic: 'slow' }, 'nap'), ServiceUnavailable);
});

test('transport URLs: oslo-style multi-host rabbit URLs parse; unknown schemes are refused', async () => {
  const { parseRabbitUrl } = await import('./amqp.ts');
  assert.deepEqual(parseRabbitUrl('rabbit://u:p%40ss@h1:5673,h2,u2:x@[::1]:5674/my%2Fvhost?ssl=0'), {
    hosts: [
      { hostname: 'h1', port: 5673, username: 'u', password: 'p@ss' },
      { hostname: 'h2', port: 5672, username: 'u', password: 'p@ss' },
      { hostname: '::1', port: 5674, username: 'u2', password: 'x' },
    ],
    vhost: 'my%2Fvhost',
  });
  assert.deepEqual(parseRabbitUrl('amqp://guest:guest@127.0.0.1:5672/').vhost, '');
  await assert.rejects(createTransport('kafka://h:1/'), /Unsupported transport_url scheme/);
});

if (testTransport === 'rabbit') {
  test('an unreachable broker at start-up fails fast with ServiceUnavailable, without the password', async () => {
    await assert.rejects(createTransport('rabbit://guest:secret@127.0.0.1:1/', { logger }), (err: Error) => {
      assert.ok(err instanceof ServiceUnavailable);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
  });

  test('no cast is lost when the broker restarts in the middle of a stream', { timeout: 180_000 }, async (t) => {
    const [client, service] = await open(t, 2);
    const received = new Map<number, number>();
    await service.serve({ topic: 'stream' }, { item: (_c, args: { i: number }) => { received.set(args.i, (received.get(args.i) ?? 0) + 1); } });
    await service.serve({ topic: 'slow' }, { nap: () => sleep(1500) });
    const logsBefore = logs.length;
    // A call in flight across the outage must settle by its timeout, never hang.
    const callStarted = Date.now();
    const inFlight = client.call(ctx(), { topic: 'slow' }, 'nap', {}, { timeoutMs: 4000 }).then(
      () => 'ok',
      (err: Error) => (err instanceof MessagingTimeout || err instanceof ServiceUnavailable ? 'timed out' : `unexpected ${err.name}`),
    );

    let restarted = false;
    const restart = (async () => {
      await sleep(300);
      await run('rabbitmqctl', ['stop_app']);
      await sleep(500);
      await run('rabbitmqctl', ['start_app']);
      restarted = true;
    })();
    // Keep casting before, during and for a while after the outage.
    const casts: Promise<void>[] = [];
    let i = 0;
    let afterRestart = 0;
    while (afterRestart < 30) {
      casts.push(client.cast(ctx(), { topic: 'stream' }, 'item', { i: i++ }));
      if (restarted) afterRestart++;
      await sleep(20);
    }
    await restart;
    await Promise.all(casts);
    assert.match(await inFlight, /^(ok|timed out)$/);
    assert.ok(Date.now() - callStarted < 6000);
    const total = i;
    for (const deadline = Date.now() + 60_000; received.size < total && Date.now() < deadline;) await sleep(100);
    const missing = Array.from({ length: total }, (_, n) => n).filter((n) => !received.has(n));
    assert.deepEqual(missing, [], `${missing.length} of ${total} casts lost`);
    assert.ok(logs.slice(logsBefore).some((l) => l.msg === 'AMQP connection lost; reconnecting'), 'the connection did drop');
    // Still fully working afterwards.
    await service.serve({ topic: 'after' }, { ping: () => 'pong' });
    assert.equal(await client.call(ctx(), { topic: 'after' }, 'ping', {}, { timeoutMs: 10_000 }), 'pong');
  });
}

test('heartbeats: a monitorMs off the wire that is no positive finite number sends none; a huge one does not flood', async () => {
  const { heartbeatWhile } = await import('./dispatch.ts');
  let beats = 0;
  const work = sleep(300);
  for (const bad of ['100', -1, 0, NaN, Infinity, null, undefined, {}]) heartbeatWhile(work, bad, () => { beats++; });
  assert.equal(beats, 0);
  heartbeatWhile(work, 1e300, () => { beats++; });
  await work;
  assert.equal(beats, 1, 'one heartbeat at once, the next one not before 2^31 - 1 ms');
});
