// A TCP proxy of our own between a deployment's processes and a server they depend on
// (RabbitMQ, the database, placement). Cutting it is how a "broker restart", a "database
// restart" or a partition is injected without touching the shared servers other engineers'
// tests use; delaying it is "slow placement".
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = 'open' | 'cut' | 'stalled';

export class FaultProxy {
  private server?: Server;
  private readonly conns = new Set<[Socket, Socket]>();
  private mode: ProxyMode = 'open';
  /** Milliseconds each chunk waits before it is forwarded (both directions). */
  delayMs = 0;
  port = 0;
  /** Connections accepted since start (to show a fault was really felt). */
  accepted = 0;

  constructor(readonly name: string, private readonly target: { host: string; port: number }, private readonly listenHost = '127.0.0.1') {}

  async start(): Promise<number> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((res, rej) => { this.server!.once('error', rej); this.server!.listen(0, this.listenHost, () => res()); });
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  private accept(client: Socket): void {
    this.accepted++;
    // While cut the port still accepts (as a restarting server's host would answer) but resets at once.
    if (this.mode === 'cut') { client.destroy(); return; }
    const upstream = connect(this.target);
    const pair: [Socket, Socket] = [client, upstream];
    this.conns.add(pair);
    const close = () => { client.destroy(); upstream.destroy(); this.conns.delete(pair); };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  private pipe(from: Socket, to: Socket): void {
    from.on('data', (chunk) => {
      const send = () => { if (!to.destroyed) to.write(chunk); };
      if (this.delayMs > 0) {
        // Keep order: pause while the delayed chunk waits.
        from.pause();
        setTimeout(() => { send(); if (this.mode !== 'stalled') from.resume(); }, this.delayMs);
      } else send();
    });
    if (this.mode === 'stalled') from.pause();
  }

  /** Every open connection reset, new ones refused until restore(): a server restart. */
  cut(): void {
    this.mode = 'cut';
    for (const [a, b] of this.conns) { a.destroy(); b.destroy(); }
    this.conns.clear();
  }

  /** Connections stay open but nothing flows: a partition (packets dropped, no reset). */
  stall(): void {
    this.mode = 'stalled';
    for (const [a, b] of this.conns) { a.pause(); b.pause(); }
  }

  restore(): void {
    const wasStalled = this.mode === 'stalled';
    this.mode = 'open';
    if (wasStalled) for (const [a, b] of this.conns) { a.resume(); b.resume(); }
  }

  get state(): ProxyMode { return this.mode; }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
  }
}
