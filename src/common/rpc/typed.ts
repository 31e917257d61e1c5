// Typed RPC contracts on top of Transport: a topic's API is declared once (each method: call or
// cast, its arguments, its result, and the version that introduced it), and both the client and
// the server are typed against that declaration, so a method name or an argument that does not
// match is a compile error on both sides instead of a runtime BadRequest.
//
//   export const schedulerApi = topicApi('scheduler', '1.1', {
//     select_destinations: call<{ spec: RequestSpec; instance_uuids: string[] }, Selection[]>('1.0'),
//   });
//   const client = new RpcClient(transport, schedulerApi);            // client.call(ctx, 'select_destinations', {...})
//   await serveApi(transport, schedulerApi, { server: host }, { select_destinations: async (ctx, a) => … });
//
// Each message is sent with the version of its method (the oldest server that understands it),
// and a server announces the topic's version: a server at 1.3 accepts 1.0…1.3 (Nova's rule).
import type { CallOptions, RequestContext, RpcServer, Target, Transport } from './transport.ts';
import { currentRequestIds, withRequestIds } from '../request-ids.ts';

/**
 * The context a message carries: the caller's, with the global request id of the work in
 * progress (Nova's global_request_id) when the caller did not set one, so that the chain an API
 * request starts keeps its id across the bus.
 */
function outbound(ctx: RequestContext): RequestContext {
  if (ctx.globalRequestId !== undefined) return ctx;
  const g = currentRequestIds()?.globalRequestId;
  return g ? { ...ctx, globalRequestId: g } : ctx;
}

declare const phantom: unique symbol;
export interface MethodSpec<A, R, K extends 'call' | 'cast'> {
  kind: K;
  /** The API version that introduced this method (or its current arguments). */
  since: string;
  /** Type carriers only (never set at runtime). */
  readonly [phantom]?: { args: A; result: R };
}

export const call = <A, R>(since: string): MethodSpec<A, R, 'call'> => ({ kind: 'call', since });
export const cast = <A>(since: string): MethodSpec<A, void, 'cast'> => ({ kind: 'cast', since });

export type Methods = Record<string, MethodSpec<any, any, 'call' | 'cast'>>;
export interface TopicApi<M extends Methods> { topic: string; version: string; methods: M }

export function topicApi<M extends Methods>(topic: string, version: string, methods: M): TopicApi<M> {
  return { topic, version, methods };
}

export type ArgsOf<S> = S extends MethodSpec<infer A, any, any> ? A : never;
export type ResultOf<S> = S extends MethodSpec<any, infer R, any> ? R : never;
export type CallNames<M extends Methods> = { [K in keyof M]: M[K]['kind'] extends 'call' ? K : never }[keyof M] & string;
export type CastNames<M extends Methods> = { [K in keyof M]: M[K]['kind'] extends 'cast' ? K : never }[keyof M] & string;

/** What a server implements: one handler per method, typed by the declaration. */
export type Handlers<M extends Methods> = {
  [K in keyof M]: (ctx: RequestContext, args: ArgsOf<M[K]>) => M[K]['kind'] extends 'cast' ? unknown : ResultOf<M[K]> | Promise<ResultOf<M[K]>>;
};

export class RpcClient<M extends Methods> {
  /** `server`: the `topic.server` queue (a compute host); omitted: any server of the topic. */
  constructor(private readonly transport: Transport | (() => Promise<Transport>), readonly api: TopicApi<M>, private readonly server?: string) {}

  /** The same API addressed to one server (compute.<host>), possibly on another transport (a cell's bus). */
  to(server: string, transport?: Transport): RpcClient<M> {
    return new RpcClient(transport ?? this.transport, this.api, server);
  }

  private async bus(): Promise<Transport> {
    return typeof this.transport === 'function' ? this.transport() : this.transport;
  }

  private target(): Target {
    return this.server ? { topic: this.api.topic, server: this.server } : { topic: this.api.topic };
  }

  async call<K extends CallNames<M>>(ctx: RequestContext, method: K, args: ArgsOf<M[K]>, opts: Omit<CallOptions, 'version'> = {}): Promise<ResultOf<M[K]>> {
    return (await this.bus()).call<ResultOf<M[K]>>(outbound(ctx), this.target(), method, args, { ...opts, version: this.api.methods[method].since });
  }

  async cast<K extends CastNames<M>>(ctx: RequestContext, method: K, args: ArgsOf<M[K]>): Promise<void> {
    await (await this.bus()).cast(outbound(ctx), this.target(), method, args, { version: this.api.methods[method].since });
  }
}

export function serveApi<M extends Methods>(transport: Transport, api: TopicApi<M>, o: { server?: string }, handlers: Handlers<M>): Promise<RpcServer> {
  // Each message is handled inside its request ids: log lines and outbound HTTP calls made for it carry them.
  const wrapped: Record<string, (ctx: RequestContext, a: any) => unknown> = {};
  for (const [name, h] of Object.entries(handlers as Record<string, (ctx: RequestContext, a: any) => unknown>)) {
    wrapped[name] = (ctx, a) => withRequestIds({ requestId: ctx.requestId, globalRequestId: typeof ctx.globalRequestId === 'string' ? ctx.globalRequestId : undefined }, () => h(ctx, a));
  }
  return transport.serve({ topic: api.topic, server: o.server }, wrapped, { version: api.version });
}
