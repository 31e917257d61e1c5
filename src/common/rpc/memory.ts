// The in-process bus for the all-in-one shape. It mirrors what RabbitMQ does closely enough
// that code tested here behaves the same between hosts: every delivery happens on a later tick,
// payloads are copied through JSON, servers of one topic compete round-robin, casts to a topic
// nobody serves yet wait in a backlog, fanouts reach only the servers alive at the time.
import { randomUUID } from 'node:crypto';
import { ServiceUnavailable } from '../errors.ts';
import {
  DEFAULT_TIMEOUT_MS, DEFAULT_VERSION, HEARTBEAT, PendingCall, assertValidVersion, defaultLogger, callTimeoutError, dispatch, drain,
  heartbeatWhile, monitorTimeoutError, routingKey, type RpcMessage, type RpcReply,
} from './dispatch.ts';
import type { CallOptions, Handler, RequestContext, RpcLogger, RpcServer, Target, Transport, TransportOptions } from './transport.ts';

/** A message waiting in (or handed out of) a queue. `reply` is set for calls only. */
interface Delivery {
  body: string;
  /** Calls expire like AMQP messages with a TTL, so a server starting late never answers a caller that gave up. */
  expiresAt?: number;
  /** Called with heartbeats (monitored calls) and then once with the final reply. */
  reply?: (r: RpcReply) => void;
}

interface Consumer { deliver(d: Delivery): void }

/** A named queue: consumers compete for its messages; with none, messages wait. */
class Queue {
  consumers: Consumer[] = [];
  private next = 0;
  private backlog: Delivery[] = [];

  push(d: Delivery): void {
    if (this.consumers.length === 0) { this.backlog.push(d); return; }
    const c = this.consumers[this.next++ % this.consumers.length]!;
    c.deliver(d);
  }

  add(c: Consumer): void {
    this.consumers.push(c);
    const waiting = this.backlog.splice(0);
    for (const d of waiting) {
      if (d.expiresAt === undefined || d.expiresAt > Date.now()) this.push(d);
    }
  }

  remove(c: Consumer): void {
    this.consumers = this.consumers.filter((x) => x !== c);
  }
}

/** Everything that shares one exchange in this process. */
class Bus {
  readonly queues = new Map<string, Queue>();
  readonly fanouts = new Map<string, Set<Consumer>>();

  queue(key: string): Queue {
    let q = this.queues.get(key);
    if (!q) { q = new Queue(); this.queues.set(key, q); }
    return q;
  }
}

// Keyed by exchange so separately created "services" in one process find each other. Buses are
// never removed: like durable queues on a broker, casts waiting for a server must outlive the
// transports that sent them, and a process only ever uses a handful of exchanges.
const buses = new Map<string, Bus>();

class MemoryServer implements RpcServer, Consumer {
  private inFlight = new Set<Promise<unknown>>();
  private stopped = false;
  /** Killed (crash()): handlers still running answer nothing, as in a process killed -9. */
  crashed = false;
  private readonly keys: string[];

  constructor(
    private readonly bus: Bus,
    private readonly target: { topic: string; server?: string },
    private readonly endpoints: Record<string, Handler>,
    private readonly version: string,
    private readonly logger: RpcLogger,
    private readonly onStop: (s: MemoryServer) => void,
  ) {
    this.keys = target.server ? [target.topic, routingKey(target)] : [target.topic];
  }

  start(): void {
    for (const k of this.keys) this.bus.queue(k).add(this);
    let fans = this.bus.fanouts.get(this.target.topic);
    if (!fans) { fans = new Set(); this.bus.fanouts.set(this.target.topic, fans); }
    fans.add(this);
  }

  deliver(d: Delivery): void {
    // Always on a later tick: a handler never runs inside the caller's call()/cast().
    const work = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      if (d.expiresAt !== undefined && d.expiresAt <= Date.now()) return;
      const msg = JSON.parse(d.body) as RpcMessage;
      const running = dispatch(this.endpoints, this.version, msg, routingKey(this.target), this.logger);
      if (d.reply) heartbeatWhile(running, msg.monitorMs, () => !this.crashed && (d.reply!(HEARTBEAT), true));
      const reply = await running;
      if (this.crashed) return;
      if (d.reply) {
        let copied: RpcReply;
        try {
          copied = JSON.parse(JSON.stringify(reply)) as RpcReply;
        } catch (err) {
          // A result JSON cannot carry (cycles, BigInt) would fail on the wire too.
          copied = { error: { name: 'InternalError', message: `Cannot serialize the reply of ${msg.method}: ${(err as Error).message}` } };
        }
        d.reply(copied);
      } else if (reply.error) {
        this.logger.warn({ method: msg.method, error: reply.error, requestId: msg.context.requestId }, 'RPC cast failed');
      }
    });
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const k of this.keys) this.bus.queue(k).remove(this);
    this.bus.fanouts.get(this.target.topic)?.delete(this);
    this.onStop(this);
    if (!this.crashed) await drain(this.inFlight, 10_000);
  }
}

class MemoryTransport implements Transport {
  private readonly bus: Bus;
  private readonly pending = new Map<string, PendingCall>();
  private readonly servers = new Set<MemoryServer>();
  private closed = false;

  constructor(readonly url: string, exchange: string, private readonly logger: RpcLogger, private readonly callMonitorMs = 0) {
    let bus = buses.get(exchange);
    if (!bus) { bus = new Bus(); buses.set(exchange, bus); }
    this.bus = bus;
  }

  private message(ctx: RequestContext, method: string, args: unknown, version: string): RpcMessage {
    if (this.closed) throw new ServiceUnavailable('The RPC transport is closed');
    assertValidVersion(version);
    return { method, args, version, context: ctx };
  }

  private encode(ctx: RequestContext, method: string, args: unknown, version: string): string {
    return JSON.stringify(this.message(ctx, method, args, version));
  }

  call<T = unknown>(ctx: RequestContext, target: Target, method: string, args?: unknown, opts: CallOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const monitorMs = opts.monitorMs ?? this.callMonitorMs;
      const msg = this.message(ctx, method, args, opts.version ?? DEFAULT_VERSION);
      if (monitorMs > 0) msg.monitorMs = monitorMs;
      const body = JSON.stringify(msg);
      const msgId = randomUUID();
      const key = routingKey(target);
      const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const p = new PendingCall((x) => { if (this.pending.get(msgId) === x) this.pending.delete(msgId); }, resolve as (v: unknown) => void, reject, timeoutMs, monitorMs, {
        timeout: () => callTimeoutError(msgId, method, key), monitor: () => monitorTimeoutError(msgId, method, key, monitorMs),
      });
      this.pending.set(msgId, p);
      this.bus.queue(key).push({
        body,
        // A monitored call nobody picked up within its monitor timeout was given up by its caller.
        expiresAt: Date.now() + (monitorMs > 0 ? Math.min(monitorMs, timeoutMs) : timeoutMs),
        // Timed out or closed meanwhile: the reply is dropped, as on the wire.
        reply: (r) => this.pending.get(msgId)?.onReply(r),
      });
      p.beat();
    });
  }

  async cast(ctx: RequestContext, target: Target, method: string, args?: unknown, opts: { version?: string } = {}): Promise<void> {
    const body = this.encode(ctx, method, args, opts.version ?? DEFAULT_VERSION);
    this.bus.queue(routingKey(target)).push({ body });
  }

  async fanout(ctx: RequestContext, topic: string, method: string, args?: unknown, opts: { version?: string } = {}): Promise<void> {
    const body = this.encode(ctx, method, args, opts.version ?? DEFAULT_VERSION);
    for (const c of this.bus.fanouts.get(topic) ?? []) c.deliver({ body });
  }

  async serve(target: { topic: string; server?: string }, endpoints: Record<string, Handler>, opts: { version?: string } = {}): Promise<RpcServer> {
    if (this.closed) throw new ServiceUnavailable('The RPC transport is closed');
    const version = opts.version ?? DEFAULT_VERSION;
    assertValidVersion(version);
    const server = new MemoryServer(this.bus, target, endpoints, version, this.logger, (s) => this.servers.delete(s));
    this.servers.add(server);
    server.start();
    return server;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.servers].map((s) => s.stop()));
    for (const [id, p] of [...this.pending]) p.fail(new ServiceUnavailable(`The RPC transport was closed while waiting for a reply to message ${id}`));
  }

  /**
   * This transport dies as its process would under kill -9: its servers stop taking messages and
   * answer nothing more (no reply, no heartbeat) while their handlers run on. On the one-process
   * bus that is how a test kills a service.
   */
  crash(): void {
    for (const s of [...this.servers]) { s.crashed = true; void s.stop(); }
    this.closed = true;
    for (const [id, p] of [...this.pending]) p.fail(new ServiceUnavailable(`The RPC transport crashed while waiting for a reply to message ${id}`));
  }
}

export function createMemoryTransport(url: string, opts: TransportOptions): Transport {
  return new MemoryTransport(url, opts.exchange ?? 'stratus', opts.logger ?? defaultLogger, opts.callMonitorMs ?? 0);
}
