// A QMP client over the instance's unix socket. QEMU serves one QMP client at a time, so the
// driver holds exactly one connection per running guest and multiplexes commands on it (QMP
// answers in order); asynchronous events are emitted as 'event'. 'close' means QEMU went away
// (or the socket was closed by us).
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

export class QmpError extends Error {
  constructor(readonly klass: string, message: string) { super(message); }
}

export interface QmpEvent { event: string; data?: Record<string, unknown>; timestamp?: { seconds: number; microseconds: number } }

export class Qmp extends EventEmitter {
  private sock?: Socket;
  private buf = '';
  private pending: { resolve: (v: any) => void; reject: (e: Error) => void }[] = [];
  private greeted?: () => void;
  closed = false;

  private constructor(private readonly path: string) { super(); }

  /** Connects and negotiates capabilities; retries while QEMU is still creating the socket. */
  static async connect(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const q = new Qmp(path);
      try {
        await q.open(Math.max(500, deadline - Date.now()));
        return q;
      } catch (e) {
        q.close();
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private open(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no QMP greeting on ${this.path} within ${timeoutMs} ms (another client connected?)`)), timeoutMs);
      const sock = createConnection(this.path);
      this.sock = sock;
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => this.onData(d));
      sock.on('error', (e) => { clearTimeout(timer); this.fail(e); reject(e); });
      sock.on('close', () => { clearTimeout(timer); this.fail(new Error('QMP connection closed')); if (!this.closed) { this.closed = true; this.emit('close'); } });
      this.greeted = () => {
        this.greeted = undefined;
        this.execute('qmp_capabilities').then(() => { clearTimeout(timer); resolve(); }, (e) => { clearTimeout(timer); reject(e); });
      };
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: any;
      try { msg = JSON.parse(line); } catch { continue; }
      if (msg.QMP) this.greeted?.();
      else if (msg.event) this.emit('event', msg as QmpEvent);
      else if ('return' in msg) this.pending.shift()?.resolve(msg.return);
      else if (msg.error) this.pending.shift()?.reject(new QmpError(msg.error.class, msg.error.desc));
    }
  }

  private fail(e: Error): void {
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (!this.sock || this.sock.destroyed) return Promise.reject(new Error('QMP connection closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock!.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  /** Resolves with the first event named (and matching), or undefined after timeoutMs. */
  waitEvent(name: string, timeoutMs: number, match: (e: QmpEvent) => boolean = () => true): Promise<QmpEvent | undefined> {
    return new Promise((resolve) => {
      const on = (e: QmpEvent) => { if (e.event === name && match(e)) done(e); };
      const onClose = () => done(undefined);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done = (e: QmpEvent | undefined) => { clearTimeout(timer); this.off('event', on); this.off('close', onClose); resolve(e); };
      this.on('event', on);
      this.once('close', onClose);
    });
  }

  close(): void {
    this.closed = true;
    this.sock?.destroy();
  }
}
