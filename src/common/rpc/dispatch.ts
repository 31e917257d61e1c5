// What both transports share: the message envelope, the version rule and the server-side
// dispatch that turns a message into a handler call and the handler's outcome into a reply.
import { BadRequest, MessagingTimeout, StratusError, deserializeError, isConnectionError, serializeError, type SerializedError } from '../errors.ts';
import type { Handler, RequestContext, RpcLogger } from './transport.ts';

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_VERSION = '1.0';

/** The body of every message on the bus (JSON on the wire, JSON-copied in memory). */
export interface RpcMessage {
  method: string;
  args: unknown;
  version: string;
  context: RequestContext;
  /** Set on a monitored call: the server heartbeats while it runs (oslo's call_monitor_timeout). */
  monitorMs?: number;
}

/** The reply to a call: exactly one of `result` / `error`, or a `heartbeat` (more to come). */
export interface RpcReply { result?: unknown; error?: SerializedError; heartbeat?: true }

export const HEARTBEAT: RpcReply = { heartbeat: true };

export function monitorTimeoutError(msgId: string, method: string, key: string, ms: number): MessagingTimeout {
  return new MessagingTimeout(`No heartbeat for ${ms} ms from a server handling message ${msgId} (method ${method} on ${key}): none picked it up, or it died`);
}

/**
 * Heartbeats a monitored call while its handler runs: one at once (the call was picked up), then
 * every third of the monitor timeout — a third, not oslo's half, so that one late timer on a
 * loaded host does not make the caller give up on a live server. `beat` returning false stops them.
 */
export function heartbeatWhile(work: Promise<unknown>, monitorMs: unknown, beat: () => boolean | void): void {
  if (typeof monitorMs !== 'number' || !Number.isFinite(monitorMs) || monitorMs <= 0 || beat() === false) return;
  // Bounded both ways: a value off the wire must neither flood the caller (a tiny one) nor overflow
  // the timer (over 2^31 - 1 ms Node fires it after 1 ms).
  const every = Math.min(2 ** 31 - 1, Math.max(50, Math.floor(monitorMs / 3)));
  const timer = setInterval(() => { if (beat() === false) clearInterval(timer); }, every);
  void work.finally(() => clearInterval(timer));
}

/**
 * The caller's side of a pending call: the overall timer, and the monitor timer that each
 * heartbeat re-arms. Shared by both transports.
 */
export class PendingCall {
  private monitor?: NodeJS.Timeout;
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly settle: (p: PendingCall) => void,
    readonly resolve: (v: unknown) => void,
    readonly reject: (e: Error) => void,
    timeoutMs: number, private readonly monitorMs: number,
    private readonly errors: { timeout: () => Error; monitor: () => Error },
  ) {
    this.timer = setTimeout(() => this.fail(errors.timeout()), timeoutMs);
  }

  /** Starts (or restarts, on a heartbeat) the monitor: the call fails if nothing comes within monitorMs. */
  beat(): void {
    if (!(this.monitorMs > 0)) return;
    clearTimeout(this.monitor);
    this.monitor = setTimeout(() => this.fail(this.errors.monitor()), this.monitorMs);
  }

  /** A reply (final or heartbeat) arrived. */
  onReply(r: RpcReply): void {
    if (r.heartbeat) { this.beat(); return; }
    this.done();
    if (r.error) this.reject(deserializeError(r.error));
    else this.resolve(r.result);
  }

  fail(e: Error): void { this.done(); this.reject(e); }

  private done(): void {
    clearTimeout(this.timer);
    clearTimeout(this.monitor);
    this.settle(this);
  }
}

export function routingKey(target: { topic: string; server?: string }): string {
  return target.server ? `${target.topic}.${target.server}` : target.topic;
}

export function callTimeoutError(msgId: string, method: string, key: string): MessagingTimeout {
  return new MessagingTimeout(`Timed out waiting for a reply to message ${msgId} (method ${method} on ${key})`);
}

function parseVersion(v: unknown): [number, number] | undefined {
  const m = typeof v === 'string' ? /^(\d+)\.(\d+)$/.exec(v) : null;
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * oslo.messaging's rule: same major version, and a minor no newer than the server's, so old
 * callers keep working against upgraded servers but never the other way round.
 */
export function versionAccepted(serverVersion: string, messageVersion: unknown): boolean {
  const s = parseVersion(serverVersion);
  const m = parseVersion(messageVersion);
  return !!s && !!m && s[0] === m[0] && m[1] <= s[1];
}

export function assertValidVersion(v: string): void {
  if (!parseVersion(v)) throw new BadRequest(`Invalid RPC version ${JSON.stringify(v)}: expected "<major>.<minor>"`);
}

/** Runs the handler a message names; never throws, the outcome is always a reply. */
export async function dispatch(
  endpoints: Record<string, Handler>, serverVersion: string, msg: RpcMessage, where: string, logger: RpcLogger,
): Promise<RpcReply> {
  try {
    if (!versionAccepted(serverVersion, msg.version)) {
      throw new BadRequest(`Endpoint does not support RPC version ${String(msg.version)}. Attempted method: ${msg.method}`);
    }
    // Own properties only, so a message can never reach Object.prototype's methods.
    const handler = Object.hasOwn(endpoints, msg.method) ? endpoints[msg.method] : undefined;
    if (typeof handler !== 'function') throw new BadRequest(`Endpoint does not support RPC method ${msg.method}`);
    const context = { ...msg.context, roles: Array.isArray(msg.context?.roles) ? msg.context.roles : [] };
    return { result: await handler(context, msg.args) };
  } catch (err) {
    // Typed errors are part of the handler's contract; anything else is a bug worth a loud log,
    // but a lost database connection (a restart: the caller may retry) is only a warning.
    if (isConnectionError(err)) {
      logger.warn({ err: (err as Error).message, method: msg.method, where, requestId: msg.context?.requestId }, 'database unreachable while handling a message');
    } else if (!(err instanceof StratusError)) {
      logger.error({ err, method: msg.method, where, requestId: msg.context?.requestId }, 'Exception during message handling');
    }
    return { error: serializeError(err) };
  }
}

/** Structural check of a decoded message, so a malformed one is dropped instead of crashing a server. */
export function isRpcMessage(x: unknown): x is RpcMessage {
  const m = x as RpcMessage;
  return !!m && typeof m === 'object' && typeof m.method === 'string' && typeof m.version === 'string'
    && !!m.context && typeof m.context === 'object';
}

/** Used when the service passes no logger: problems still reach stderr. */
export const defaultLogger: RpcLogger = {
  info() {},
  warn: (o, m) => console.warn(m ?? 'rpc', o),
  error: (o, m) => console.error(m ?? 'rpc', o),
};

/** Resolves when every tracked promise settled, or after `graceMs` — whichever comes first. */
export async function drain(inFlight: Set<Promise<unknown>>, graceMs: number): Promise<void> {
  if (inFlight.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); timer.unref(); });
  await Promise.race([Promise.allSettled([...inFlight]), grace]);
  clearTimeout(timer);
}
