// Compute's RPC plumbing. The interfaces themselves are declared in rpcapi/ (one module per
// topic: methods, arguments, results, versions), and clients and servers are typed against them:
//   conductor (rpcapi/conductor.ts): build orchestration, and every database access of the
//     compute agents (they never open a database themselves)
//   scheduler (rpcapi/scheduler.ts): select_destinations
//   compute   (rpcapi/compute.ts, server = host): the instance lifecycle on one host
// Errors that cross the bus are compute's error classes (errors.ts), registered by name.
import { randomUUID } from 'node:crypto';
import { createTransport, type RequestContext, type Transport, type TransportOptions } from '../common/rpc/transport.ts';
import { RpcClient } from '../common/rpc/typed.ts';
import type { CellMapping } from './cells.ts';
import { computeApi } from './rpcapi/compute.ts';
import { conductorApi } from './rpcapi/conductor.ts';
import './errors.ts';

export type ComputeRpc = RpcClient<typeof computeApi.methods>;
export type ConductorRpc = RpcClient<typeof conductorApi.methods>;

export function conductorRpc(transport: Transport | (() => Promise<Transport>)): ConductorRpc {
  return new RpcClient(transport, conductorApi);
}

/** The compute API of one host, on the bus of its cell. */
export async function computeRpc(cellTransports: CellTransports, cell: CellMapping | undefined, host: string): Promise<ComputeRpc> {
  return new RpcClient(await cellTransports.forCell(cell), computeApi, host);
}
/** Service version recorded in the services table (nova-status compares them). */
export const SERVICE_VERSION = 66;

export function systemContext(extra: Partial<RequestContext> = {}): RequestContext {
  return { requestId: `req-${randomUUID()}`, roles: ['admin'], isAdmin: true, ...extra };
}

/**
 * The bus of each cell: a cell mapping may name its own transport_url; cells on the default bus
 * (or cell0's `none:///`) share the process's transport.
 */
export class CellTransports {
  private extra = new Map<string, Promise<Transport>>();
  constructor(private readonly main: () => Promise<Transport>, private readonly defaultUrl: string, private readonly opts: TransportOptions) {}

  forCell(cell: CellMapping | undefined): Promise<Transport> {
    const url = cell?.transport_url;
    if (!url || url === this.defaultUrl || url.startsWith('none:') || url.startsWith('memory:')) return this.main();
    let t = this.extra.get(url);
    if (!t) {
      t = createTransport(url, this.opts);
      t.catch(() => this.extra.delete(url));
      this.extra.set(url, t);
    }
    return t;
  }

  async close(): Promise<void> {
    for (const t of this.extra.values()) await t.then((x) => x.close(), () => undefined);
    this.extra.clear();
  }
}
