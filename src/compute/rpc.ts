// Topics and versions of compute's RPC interfaces, and the clients that call them.
//   conductor (topic 'conductor', 1.x): build orchestration, and every database access of the
//     compute agents (they never open a database themselves)
//   scheduler (topic 'scheduler', 1.x): select_destinations
//   compute   (topic 'compute', server = host, 1.x): the instance lifecycle on one host
import { randomUUID } from 'node:crypto';
import { createTransport, type RequestContext, type Transport } from '../common/rpc/transport.ts';
import type { Logger } from '../common/logging.ts';
import type { CellMapping } from './cells.ts';

export const CONDUCTOR_TOPIC = 'conductor';
export const SCHEDULER_TOPIC = 'scheduler';
export const COMPUTE_TOPIC = 'compute';
export const CONDUCTOR_VERSION = '1.0';
export const SCHEDULER_VERSION = '1.0';
export const COMPUTE_VERSION = '1.0';
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
  constructor(private readonly main: () => Promise<Transport>, private readonly defaultUrl: string, private readonly exchange: string, private readonly logger?: Logger) {}

  forCell(cell: CellMapping | undefined): Promise<Transport> {
    const url = cell?.transport_url;
    if (!url || url === this.defaultUrl || url.startsWith('none:') || url.startsWith('memory:')) return this.main();
    let t = this.extra.get(url);
    if (!t) {
      t = createTransport(url, { exchange: this.exchange, logger: this.logger });
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
