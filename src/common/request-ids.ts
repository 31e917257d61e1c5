// The request ids of the work in progress, as oslo.context keeps them per thread: `requestId` is
// the id of the request (or RPC message) this process is handling, `globalRequestId` the id of
// the request that started the whole chain (a client's X-OpenStack-Request-ID, Nova's
// global_request_id). They live in an AsyncLocalStorage entered by the RPC servers and the HTTP
// apps, so every log line and every outbound HTTP call made on behalf of a request carries them
// without being handed them.
import { AsyncLocalStorage } from 'node:async_hooks';

export const REQUEST_ID_HEADER = 'x-openstack-request-id';

export interface RequestIds { requestId: string; globalRequestId?: string }

const store = new AsyncLocalStorage<RequestIds>();

/** oslo.middleware's rule: only a well-formed id is accepted as the global one. */
const VALID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The global request id a caller sent, if it is well formed (otherwise ignored, as oslo does). */
export function inboundGlobalId(headers: Record<string, string | string[] | undefined>): string | undefined {
  const v = headers[REQUEST_ID_HEADER];
  const id = Array.isArray(v) ? v[0] : v;
  return id && VALID.test(id) ? id : undefined;
}

export function withRequestIds<T>(ids: RequestIds, fn: () => T): T {
  return store.run(ids, fn);
}

/** For a scope whose end is not a callback (a fastify request's hooks and handler). */
export function enterRequestIds(ids: RequestIds): void {
  store.enterWith(ids);
}

export function currentRequestIds(): RequestIds | undefined {
  return store.getStore();
}

/** The id to send downstream: the chain's global id, else this request's own. */
export function forwardedRequestId(ids: RequestIds | undefined = store.getStore()): string | undefined {
  return ids?.globalRequestId ?? ids?.requestId;
}

/** Log fields of the current request (empty outside one): pino's mixin. */
export function requestLogFields(): Record<string, string> {
  const ids = store.getStore();
  if (!ids) return {};
  return ids.globalRequestId ? { request_id: ids.requestId, global_request_id: ids.globalRequestId } : { request_id: ids.requestId };
}
