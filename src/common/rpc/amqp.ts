// RabbitMQ transport (AMQP 0-9-1 through amqplib), laid out the way oslo.messaging lays out
// its queues so operators recognise them:
//   - a durable topic exchange `<exchange>` routes `topic` and `topic.server` to durable,
//     shared queues `<exchange>.<topic>` / `<exchange>.<topic>.<server>` — shared so servers of
//     a topic compete for work, durable so casts survive a server or broker restart;
//   - a fanout exchange per topic `<exchange>_fanout_<topic>`, with one exclusive queue per
//     server instance, so a fanout reaches the servers alive right now and nobody else;
//   - one exclusive reply queue per connection; replies find their call by correlation id.
// The connection is rebuilt with exponential backoff when it drops; publishes made meanwhile
// wait (bounded by their timeout) and go out once it is back.
import { randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import { MessagingTimeout, ServiceUnavailable } from '../errors.ts';
import { logFailure } from '../logging.ts';
import {
  DEFAULT_TIMEOUT_MS, DEFAULT_VERSION, HEARTBEAT, PendingCall, assertValidVersion, callTimeoutError, defaultLogger, dispatch, drain,
  heartbeatWhile, isRpcMessage, monitorTimeoutError, routingKey, type RpcMessage, type RpcReply,
} from './dispatch.ts';
import type { CallOptions, Handler, RequestContext, RpcLogger, RpcServer, Target, Transport, TransportOptions } from './transport.ts';

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;
/** Unacknowledged messages a server holds at once: bounds its concurrency and what a crash hands back. */
const PREFETCH = 64;
/** How long stopping a server waits for running handlers before closing their channel. */
const STOP_GRACE_MS = 10_000;

export interface BrokerHost { hostname: string; port: number; username?: string; password?: string }

/**
 * Parses oslo's transport_url: `rabbit://user:pw@host1:5672,user:pw@host2:5672/vhost`. A host
 * without credentials borrows the previous host's, as oslo does. The vhost stays URL-encoded
 * (amqplib decodes it); an empty one means `/`.
 */
export function parseRabbitUrl(url: string): { hosts: BrokerHost[]; vhost: string } {
  const m = /^(?:rabbit|amqp):\/\/([^/?#]*)(?:\/([^?#]*))?/i.exec(url);
  if (!m) throw new Error('Not a rabbit:// or amqp:// URL');
  const hosts: BrokerHost[] = [];
  let username: string | undefined;
  let password: string | undefined;
  for (const netloc of m[1]!.split(',')) {
    if (!netloc) continue;
    const at = netloc.lastIndexOf('@');
    if (at >= 0) {
      const creds = netloc.slice(0, at);
      const colon = creds.indexOf(':');
      username = decodeURIComponent(colon >= 0 ? creds.slice(0, colon) : creds);
      password = colon >= 0 ? decodeURIComponent(creds.slice(colon + 1)) : '';
    }
    const hostPort = netloc.slice(at + 1);
    const hp = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(hostPort);
    if (!hp) throw new Error(`Cannot parse broker address ${JSON.stringify(hostPort)}`);
    hosts.push({ hostname: hp[1] ?? (hp[2] || 'localhost'), port: hp[3] ? Number(hp[3]) : 5672, username, password });
  }
  if (hosts.length === 0) hosts.push({ hostname: 'localhost', port: 5672 });
  return { hosts, vhost: m[2] ?? '' };
}

/** The transport URL without its passwords, for logs. */
function redact(url: string): string {
  return url.replace(/([/,][^:/@,]*:)[^@/,]*@/g, '$1***@');
}

/** One live connection and what was built on it; a new one replaces it after every drop. */
interface Session {
  conn: ChannelModel;
  /** Confirm channel: every publish resolves only once the broker has taken the message. */
  pub: ConfirmChannel;
  replyQueue: string;
  /** Queues and exchanges this connection already declared, so repeated casts skip the round trip. */
  declared: Set<string>;
  alive: boolean;
}

interface Publish {
  exchange: string;
  key: string;
  body: Buffer;
  props: Options.Publish;
  deadline: number;
  /** Calls need the reply queue of the session the message finally goes out on. */
  withReplyTo?: boolean;
  /** Declarations the message needs on this session before it can be routed. */
  prepare?: (s: Session) => Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves to undefined when the deadline passes first; the racing promise is left to settle on its own. */
function beforeDeadline<T>(p: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now())); });
  return Promise.race([p, expiry]).finally(() => clearTimeout(timer));
}

class AmqpTransport implements Transport {
  readonly exchange: string;
  private readonly hosts: BrokerHost[];
  private readonly vhost: string;
  private readonly heartbeat: number;
  private readonly callMonitorMs: number;
  private session?: Session;
  private connecting?: Promise<void>;
  /** Woken whenever a session comes up or the transport closes. */
  private readonly waiters = new Set<() => void>();
  private reconnectTimer?: NodeJS.Timeout;
  private attempt = 0;
  private nextHost = 0;
  private readonly pending = new Map<string, PendingCall>();
  readonly servers = new Set<AmqpServer>();
  /** No new work accepted. */
  private closing = false;
  /** Connection gone for good; publishes fail instead of waiting. */
  private closed = false;

  /**
   * For closing what may already be closed or broken (the broker went away, amqplib's
   * IllegalOperationError "Channel closed"): expected during teardown and reconnects, so debug.
   */
  closeFailed(what: string): (err: unknown) => undefined { return logFailure(this.logger, `close ${what}`, {}, 'debug'); }

  constructor(
    readonly url: string,
    opts: TransportOptions,
    readonly logger: RpcLogger,
  ) {
    this.exchange = opts.exchange ?? 'stratus';
    this.heartbeat = opts.heartbeatSeconds ?? 30;
    this.callMonitorMs = opts.callMonitorMs ?? 0;
    ({ hosts: this.hosts, vhost: this.vhost } = parseRabbitUrl(url));
  }

  // ---- connection management ---------------------------------------------------------------

  /** Tries every broker once, starting with the one after the last that worked. */
  async connect(): Promise<void> {
    let lastErr: unknown;
    for (let i = 0; i < this.hosts.length; i++) {
      if (this.closed) throw new ServiceUnavailable('The RPC transport is closed');
      const host = this.hosts[(this.nextHost + i) % this.hosts.length]!;
      try {
        const p = this.openSession(host);
        this.connecting = p.then(() => {}, () => {});
        await p;
        this.nextHost = (this.nextHost + i) % this.hosts.length;
        return;
      } catch (err) {
        lastErr = err;
        this.logger.warn({ err: String(err), host: `${host.hostname}:${host.port}` }, 'Cannot connect to the AMQP broker');
      } finally {
        this.connecting = undefined;
      }
    }
    throw lastErr;
  }

  private async openSession(host: BrokerHost): Promise<void> {
    const conn = await amqp.connect(
      {
        protocol: 'amqp', hostname: host.hostname, port: host.port, username: host.username, password: host.password,
        vhost: this.vhost, heartbeat: this.heartbeat,
      },
      { timeout: 10_000, clientProperties: { connection_name: `stratus pid ${process.pid} exchange ${this.exchange}` } },
    );
    let session: Session | undefined;
    let dropped = false;
    // amqplib emits 'error' before 'close'; without a listener an error would crash the process.
    conn.on('error', (err) => this.logger.warn({ err: String(err) }, 'AMQP connection error'));
    conn.on('close', () => { dropped = true; if (session) this.lost(session); });
    try {
      const pub = await conn.createConfirmChannel();
      pub.on('error', (err) => this.logger.warn({ err: String(err) }, 'AMQP publishing channel error'));
      // Without its publishing channel the session is useless; rebuilding everything is simplest.
      pub.on('close', () => { if (session?.alive) void conn.close().catch(this.closeFailed('the connection after its publishing channel closed')); });
      await pub.assertExchange(this.exchange, 'topic', { durable: true });
      // A fresh name per connection: the old exclusive queue may linger until the broker notices
      // the old connection is dead, and redeclaring it would be refused.
      const { queue: replyQueue } = await pub.assertQueue(`${this.exchange}.reply_${randomUUID()}`, { exclusive: true, autoDelete: true, durable: false });
      await pub.consume(replyQueue, (m) => this.onReply(m), { noAck: true });
      if (dropped) throw new Error('Connection closed while being set up');
      if (this.closed) throw new ServiceUnavailable('The RPC transport was closed while connecting');
      session = { conn, pub, replyQueue, declared: new Set(), alive: true };
    } catch (err) {
      await conn.close().catch(this.closeFailed('a half-opened connection'));
      throw err;
    }
    this.session = session;
    this.attempt = 0;
    for (const w of [...this.waiters]) w();
    // Servers registered from now on attach themselves (serve() sees the session).
    for (const server of [...this.servers]) {
      server.attach(session).catch((err) => {
        if (session!.alive) this.logger.error({ err: String(err), topic: server.topic }, 'Cannot re-establish an RPC server');
      });
    }
  }

  private lost(session: Session): void {
    if (!session.alive) return;
    session.alive = false;
    if (this.session === session) this.session = undefined;
    if (this.closed) return;
    this.logger.warn({ url: redact(this.url) }, 'AMQP connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closed) return;
    const delay = Math.min(RECONNECT_MIN_MS * 2 ** this.attempt, RECONNECT_MAX_MS);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed) return;
      this.connect().then(
        () => this.logger.info({ url: redact(this.url) }, 'AMQP connection re-established'),
        () => this.scheduleReconnect(),
      );
    }, delay);
  }

  /** The live session, waiting for a reconnect if need be; undefined once the deadline passed. */
  private async sessionBefore(deadline: number): Promise<Session | undefined> {
    while (!this.closed) {
      if (this.session?.alive) return this.session;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => { clearTimeout(timer); this.waiters.delete(wake); resolve(); };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
    throw new ServiceUnavailable('The RPC transport is closed');
  }

  /**
   * Publishes with a broker confirm, retrying across reconnects until the deadline.
   * Returns false when the deadline passed without a confirm. A message whose confirm was lost
   * with the connection is sent again, so delivery is at-least-once.
   */
  async publish(p: Publish): Promise<boolean> {
    for (;;) {
      const s = await this.sessionBefore(p.deadline);
      if (!s) return false;
      const attempt = (async () => {
        await p.prepare?.(s);
        const props = p.withReplyTo ? { ...p.props, replyTo: s.replyQueue } : p.props;
        await new Promise<void>((resolve, reject) => {
          s.pub.publish(p.exchange, p.key, p.body, props, (err) => (err ? reject(err) : resolve()));
        });
        return true;
      })();
      try {
        // A blocked broker (memory alarm) may never confirm: the deadline still holds.
        const sent = await beforeDeadline(attempt, p.deadline);
        if (!sent) { attempt.catch(logFailure(this.logger, 'publish before the deadline (given up)', { exchange: p.exchange, key: p.key }, 'debug')); return false; }
        return true;
      } catch (err) {
        if (this.closed) throw new ServiceUnavailable('The RPC transport is closed');
        // A dropped connection: the loop waits for the next session. A nack on a live one: pause
        // briefly rather than spin.
        if (s.alive) {
          this.logger.warn({ err: String(err), exchange: p.exchange, key: p.key }, 'Publish failed; retrying');
          await sleep(Math.max(0, Math.min(250, p.deadline - Date.now())));
        }
      }
    }
  }

  private async declareTopicQueue(ch: Channel, declared: Set<string>, key: string): Promise<string> {
    const queue = `${this.exchange}.${key}`;
    if (!declared.has(queue)) {
      await ch.assertQueue(queue, { durable: true, autoDelete: false, exclusive: false });
      await ch.bindQueue(queue, this.exchange, key);
      declared.add(queue);
    }
    return queue;
  }

  fanoutExchange(topic: string): string {
    return `${this.exchange}_fanout_${topic}`;
  }

  private async declareFanoutExchange(ch: Channel, declared: Set<string>, topic: string): Promise<string> {
    const ex = this.fanoutExchange(topic);
    if (!declared.has(ex)) {
      // Not auto-delete: publishing to an exchange that vanished when its last server left
      // would be a channel error, not a silently dropped fanout.
      await ch.assertExchange(ex, 'fanout', { durable: false, autoDelete: false });
      declared.add(ex);
    }
    return ex;
  }

  /** Declares what a server consumes from on its own channel; returns the queues. */
  async declareServerQueues(ch: Channel, target: { topic: string; server?: string }): Promise<string[]> {
    const declared = new Set<string>();
    const queues = [await this.declareTopicQueue(ch, declared, target.topic)];
    if (target.server) queues.push(await this.declareTopicQueue(ch, declared, routingKey(target)));
    const fanEx = await this.declareFanoutExchange(ch, declared, target.topic);
    const { queue } = await ch.assertQueue(`${this.exchange}.${target.topic}_fanout_${randomUUID()}`, { exclusive: true, autoDelete: true, durable: false });
    await ch.bindQueue(queue, fanEx, '');
    queues.push(queue);
    return queues;
  }

  private onReply(m: ConsumeMessage | null): void {
    if (!m) return; // reply consumer cancelled: only happens as the connection goes away
    const p = this.pending.get(m.properties.correlationId as string);
    if (!p) return; // a reply to a call that already timed out
    let reply: RpcReply;
    try {
      reply = JSON.parse(m.content.toString('utf8')) as RpcReply;
    } catch (err) {
      p.fail(new ServiceUnavailable(`Malformed RPC reply: ${(err as Error).message}`));
      return;
    }
    p.onReply(reply);
  }

  // ---- Transport ---------------------------------------------------------------------------

  private message(ctx: RequestContext, method: string, args: unknown, version: string): RpcMessage {
    if (this.closing) throw new ServiceUnavailable('The RPC transport is closed');
    assertValidVersion(version);
    return { method, args, version, context: ctx };
  }

  private encode(ctx: RequestContext, method: string, args: unknown, version: string): Buffer {
    return Buffer.from(JSON.stringify(this.message(ctx, method, args, version)));
  }

  async call<T = unknown>(ctx: RequestContext, target: Target, method: string, args?: unknown, opts: CallOptions = {}): Promise<T> {
    const monitorMs = opts.monitorMs ?? this.callMonitorMs;
    const msg = this.message(ctx, method, args, opts.version ?? DEFAULT_VERSION);
    if (monitorMs > 0) msg.monitorMs = monitorMs;
    const body = Buffer.from(JSON.stringify(msg));
    const msgId = randomUUID();
    const key = routingKey(target);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const result = new Promise<T>((resolve, reject) => {
      this.pending.set(msgId, new PendingCall((x) => { if (this.pending.get(msgId) === x) this.pending.delete(msgId); }, resolve as (v: unknown) => void, reject, timeoutMs, monitorMs, {
        timeout: () => callTimeoutError(msgId, method, key), monitor: () => monitorTimeoutError(msgId, method, key, monitorMs),
      }));
    });
    // The TTL drops a call nobody picked up in time, so a server starting late never acts on it:
    // for a monitored call that is its monitor timeout, when the caller gives up on it.
    const ttl = monitorMs > 0 ? Math.min(monitorMs, timeoutMs) : timeoutMs;
    this.publish({
      exchange: this.exchange, key, body, deadline: Date.now() + timeoutMs, withReplyTo: true,
      props: { correlationId: msgId, messageId: msgId, contentType: 'application/json', expiration: String(ttl) },
      // Declared like a cast's queue so a call to a restarting server waits for it, as on the memory bus.
      prepare: (s) => this.declareTopicQueue(s.pub, s.declared, key).then(() => {}),
    }).then(
      // The monitor runs from the broker's confirm: waiting out a reconnect is the timeout's business.
      (sent) => { if (sent) this.pending.get(msgId)?.beat(); },
      // The timer reports a publish that ran out of time; this reports one that cannot happen at all.
      (err: Error) => this.pending.get(msgId)?.fail(err),
    );
    return result;
  }

  async cast(ctx: RequestContext, target: Target, method: string, args?: unknown, opts: { version?: string } = {}): Promise<void> {
    const body = this.encode(ctx, method, args, opts.version ?? DEFAULT_VERSION);
    const msgId = randomUUID();
    const key = routingKey(target);
    const sent = await this.publish({
      exchange: this.exchange, key, body, deadline: Date.now() + DEFAULT_TIMEOUT_MS,
      // Persistent into a durable queue: a confirmed cast survives a broker restart.
      props: { messageId: msgId, contentType: 'application/json', persistent: true },
      prepare: (s) => this.declareTopicQueue(s.pub, s.declared, key).then(() => {}),
    });
    if (!sent) throw new MessagingTimeout(`Timed out sending message ${msgId} (method ${method} on ${key}): the broker did not confirm it`);
  }

  async fanout(ctx: RequestContext, topic: string, method: string, args?: unknown, opts: { version?: string } = {}): Promise<void> {
    const body = this.encode(ctx, method, args, opts.version ?? DEFAULT_VERSION);
    const msgId = randomUUID();
    const sent = await this.publish({
      exchange: this.fanoutExchange(topic), key: '', body, deadline: Date.now() + DEFAULT_TIMEOUT_MS,
      props: { messageId: msgId, contentType: 'application/json' },
      prepare: (s) => this.declareFanoutExchange(s.pub, s.declared, topic).then(() => {}),
    });
    if (!sent) throw new MessagingTimeout(`Timed out sending message ${msgId} (method ${method} on fanout ${topic}): the broker did not confirm it`);
  }

  async serve(target: { topic: string; server?: string }, endpoints: Record<string, Handler>, opts: { version?: string } = {}): Promise<RpcServer> {
    if (this.closing) throw new ServiceUnavailable('The RPC transport is closed');
    const version = opts.version ?? DEFAULT_VERSION;
    assertValidVersion(version);
    const server = new AmqpServer(this, target, endpoints, version);
    this.servers.add(server);
    const s = this.session;
    if (s?.alive) {
      try {
        await server.attach(s);
      } catch (err) {
        // Lost with the connection: the reconnect attaches it. Refused by a live broker: report it.
        if (s.alive) { this.servers.delete(server); throw err; }
      }
    }
    return server;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Servers first, while their last replies can still go out.
    await Promise.all([...this.servers].map((s) => s.stop()));
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const w of [...this.waiters]) w();
    for (const [id, p] of [...this.pending]) p.fail(new ServiceUnavailable(`The RPC transport was closed while waiting for a reply to message ${id}`));
    await this.connecting;
    const s = this.session;
    this.session = undefined;
    if (s) {
      s.alive = false;
      await s.conn.close().catch(this.closeFailed('the connection at close'));
    }
  }
}

class AmqpServer implements RpcServer {
  private session?: Session;
  private channel?: Channel;
  private consumerTags: string[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(
    private readonly transport: AmqpTransport,
    private readonly target: { topic: string; server?: string },
    private readonly endpoints: Record<string, Handler>,
    private readonly version: string,
  ) {}

  get topic(): string { return routingKey(this.target); }

  /** Declares this server's queues on a (new) session and starts consuming. */
  async attach(s: Session): Promise<void> {
    if (this.stopped || this.session === s) return;
    this.session = s;
    const log = this.transport.logger;
    // Its own channel, so a server's prefetch and acks never mix with publishing.
    const ch = await s.conn.createChannel();
    ch.on('error', (err) => log.warn({ err: String(err), topic: this.topic }, 'AMQP server channel error'));
    ch.on('close', () => {
      // Consumers lost on a live connection (e.g. a queue deleted under us): rebuild everything.
      if (this.channel === ch && s.alive && !this.stopped) void s.conn.close().catch(this.transport.closeFailed('the connection after a server channel closed'));
    });
    try {
      await ch.prefetch(PREFETCH);
      const queues = await this.transport.declareServerQueues(ch, this.target);
      const tags: string[] = [];
      for (const q of queues) tags.push((await ch.consume(q, (m) => this.onMessage(ch, m), { noAck: false })).consumerTag);
      this.consumerTags = tags;
    } catch (err) {
      await ch.close().catch(this.transport.closeFailed('a half-attached server channel'));
      throw err;
    }
    this.channel = ch;
    if (this.stopped) await ch.close().catch(this.transport.closeFailed('the channel of a server stopped while attaching'));
  }

  private onMessage(ch: Channel, m: ConsumeMessage | null): void {
    const log = this.transport.logger;
    if (!m) {
      // The broker cancelled our consumer (its queue was deleted): reconnecting re-declares it.
      if (this.channel === ch && !this.stopped) {
        log.warn({ topic: this.topic }, 'RPC consumer cancelled by the broker; reconnecting');
        void this.session?.conn.close().catch(this.transport.closeFailed('the connection after a consumer cancel'));
      }
      return;
    }
    let msg: unknown;
    try { msg = JSON.parse(m.content.toString('utf8')); } catch { /* reported below */ }
    if (!isRpcMessage(msg)) {
      log.error({ topic: this.topic, messageId: m.properties.messageId }, 'Dropping a malformed RPC message');
      ack(ch, m);
      return;
    }
    const { replyTo, correlationId } = m.properties as { replyTo?: string; correlationId?: string };
    const isCall = !!replyTo && !!correlationId;
    // A call is acknowledged on receipt: its caller gives up at the timeout, so running it again
    // after a crash would repeat side effects for nobody. A cast is acknowledged once handled,
    // so a crash mid-way hands it to another server (at-least-once).
    if (isCall) ack(ch, m);
    const rpc = msg;
    const running = dispatch(this.endpoints, this.version, rpc, this.topic, log);
    if (isCall) {
      // Heartbeats of a monitored call: each is dropped if it cannot go out before the next one is due.
      heartbeatWhile(running, rpc.monitorMs, () => {
        void this.transport.publish({
          exchange: '', key: replyTo!, body: Buffer.from(JSON.stringify(HEARTBEAT)), deadline: Date.now() + Math.floor((rpc.monitorMs ?? 0) / 3),
          props: { correlationId, contentType: 'application/json' },
        }).catch(logFailure(log, 'send an RPC heartbeat', { method: rpc.method }, 'debug'));
      });
    }
    const work = running.then(async (reply) => {
      if (isCall) {
        let body: Buffer;
        try {
          body = Buffer.from(JSON.stringify(reply));
        } catch (err) {
          body = Buffer.from(JSON.stringify({ error: { name: 'InternalError', message: `Cannot serialize the reply of ${rpc.method}: ${(err as Error).message}` } }));
        }
        const sent = await this.transport.publish({
          exchange: '', key: replyTo!, body, deadline: Date.now() + DEFAULT_TIMEOUT_MS,
          props: { correlationId, contentType: 'application/json' },
        });
        if (!sent) log.warn({ method: rpc.method, requestId: rpc.context.requestId }, 'Could not send an RPC reply in time');
      } else {
        if (reply.error) log.warn({ method: rpc.method, error: reply.error, requestId: rpc.context.requestId }, 'RPC cast failed');
        ack(ch, m);
      }
    }).catch((err) => log.error({ err: String(err), method: rpc.method }, 'RPC reply failed'));
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.transport.servers.delete(this);
    const ch = this.channel;
    if (!ch) return;
    // Stop taking messages, let running handlers finish (and ack), then close; anything still
    // unacknowledged after the grace period goes back to the queue for another server.
    await Promise.all(this.consumerTags.map((tag) => ch.cancel(tag).catch(this.transport.closeFailed(`cancel consumer ${tag}`))));
    await drain(this.inFlight, STOP_GRACE_MS);
    await ch.close().catch(this.transport.closeFailed('the server channel at stop'));
  }
}

/** Acks on a channel that may have died with its connection; the broker then redelivers anyway. */
function ack(ch: Channel, m: ConsumeMessage): void {
  try { ch.ack(m); } catch { /* channel closed: the message is redelivered */ }
}

export async function createAmqpTransport(url: string, opts: TransportOptions): Promise<Transport> {
  const t = new AmqpTransport(url, opts, opts.logger ?? defaultLogger);
  try {
    await t.connect();
  } catch (err) {
    // Fail fast at start-up (a wrong URL or password should not look like a hang); once
    // connected, drops are survived by reconnecting.
    throw new ServiceUnavailable(`Cannot connect to the message broker at ${redact(url)}: ${(err as Error).message ?? String(err)}`, { cause: err });
  }
  return t;
}
