// The RPC bus every service talks through (oslo.messaging's roles): `call` waits for a reply,
// `cast` is fire-and-forget to one server of a topic, `fanout` reaches every server of a topic.
// Two transports implement it: an in-process one for the all-in-one shape (`memory://`) and
// RabbitMQ for the distributed one (`rabbit://`, `amqp://`). Services code only against
// `Transport`, so both shapes run the same service code.
import type { Config } from '../config.ts';

export interface RequestContext {
  requestId: string;
  /** The id of the request that started the chain (a client's X-OpenStack-Request-ID), as Nova's global_request_id. */
  globalRequestId?: string;
  userId?: string;
  projectId?: string;
  roles: string[];
  domainId?: string;
  isAdmin?: boolean;
  authToken?: string;
  [k: string]: unknown;
}

/** `server` narrows delivery to the `topic.server` queue (e.g. `compute.host1`). */
export interface Target { topic: string; server?: string }

export type Handler = (ctx: RequestContext, args: any) => unknown | Promise<unknown>;

/**
 * `timeoutMs` defaults to 60 s, oslo's rpc_response_timeout. `monitorMs` (oslo's
 * call_monitor_timeout; default: the transport's `callMonitorMs`, 0 = off): the server sends a
 * heartbeat while the call runs, and the caller fails with MessagingTimeout as soon as no
 * heartbeat came for this long — a server killed mid-call is noticed in seconds, not at the
 * timeout, while a slow but alive one still has the whole timeout.
 */
export interface CallOptions { timeoutMs?: number; version?: string; monitorMs?: number }

export interface RpcServer { stop(): Promise<void> }

export interface Transport {
  readonly url: string;
  call<T = unknown>(ctx: RequestContext, target: Target, method: string, args?: unknown, opts?: CallOptions): Promise<T>;
  cast(ctx: RequestContext, target: Target, method: string, args?: unknown, opts?: { version?: string }): Promise<void>;
  fanout(ctx: RequestContext, topic: string, method: string, args?: unknown, opts?: { version?: string }): Promise<void>;
  /** Listens on `topic` (shared, competing consumers), on `topic.server` when server is given, and on the fanout of `topic`. */
  serve(target: { topic: string; server?: string }, endpoints: Record<string, Handler>, opts?: { version?: string }): Promise<RpcServer>;
  close(): Promise<void>;
}

export interface RpcLogger {
  debug?(o: object, m?: string): void;
  warn(o: object, m?: string): void;
  info(o: object, m?: string): void;
  error(o: object, m?: string): void;
}

export interface TransportOptions {
  /** Namespaces everything on the bus; two exchanges never see each other's messages. */
  exchange?: string;
  logger?: RpcLogger;
  /** AMQP heartbeat; ignored by the memory transport. */
  heartbeatSeconds?: number;
  /** Default `CallOptions.monitorMs` of every call (0 or unset: calls are not monitored). */
  callMonitorMs?: number;
}

/** The transport options a service's configuration gives ([DEFAULT] control_exchange, rpc_call_monitor_timeout). */
export function transportOptions(config: Config, logger?: RpcLogger): TransportOptions {
  return {
    exchange: config.get<string>('DEFAULT', 'control_exchange'), logger,
    callMonitorMs: config.get<number>('DEFAULT', 'rpc_call_monitor_timeout') * 1000,
  };
}

export async function createTransport(url: string, opts: TransportOptions = {}): Promise<Transport> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  // Imported lazily so the all-in-one process never loads amqplib.
  if (scheme === 'memory') return (await import('./memory.ts')).createMemoryTransport(url, opts);
  if (scheme === 'rabbit' || scheme === 'amqp') return (await import('./amqp.ts')).createAmqpTransport(url, opts);
  throw new Error(`Unsupported transport_url scheme in ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//***@'))}: expected memory://, rabbit:// or amqp://`);
}
