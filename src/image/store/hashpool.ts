// Hashing off the event loop. md5 and sha512 of a 1 GiB upload cost seconds of CPU; done on the
// main thread they would stall every other request (a list request waits behind each chunk's
// hash). Here each upload's data is copied once into a SharedArrayBuffer ring; two worker
// threads (md5, and the configured multihash) read it in place, in order, while the main thread
// writes the same bytes to disk. No data is copied to the workers.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

// Plain JavaScript, evaluated in the worker: it must load without the TypeScript loader.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
// Hashing is bulk work: run it below the API thread's priority so requests stay fast when the
// CPUs are busy (Linux: nice applies per thread, found through /proc/thread-self).
try { require('node:os').setPriority(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()), 10); } catch {}
parentPort.on('message', (m) => {
  try {
    if (m.t === 'open') { jobs.set(m.job, { hash: createHash(m.algo), view: Buffer.from(m.sab) }); return; }
    const j = jobs.get(m.job);
    if (!j) return;
    if (m.t === 'update') { j.hash.update(j.view.subarray(m.off, m.off + m.len)); parentPort.postMessage({ t: 'done', job: m.job, seq: m.seq }); }
    else if (m.t === 'digest') { jobs.delete(m.job); parentPort.postMessage({ t: 'digest', job: m.job, hex: j.hash.digest('hex') }); }
    else if (m.t === 'drop') jobs.delete(m.job);
  } catch (e) { jobs.delete(m.job); parentPort.postMessage({ t: 'error', job: m.job, message: String(e && e.message || e) }); }
});
`;

interface Pending { resolve: (v: string) => void; reject: (e: Error) => void }

class HashWorker {
  readonly worker: Worker;
  load = 0;
  private waits = new Map<string, Pending>();

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on('message', (m: { t: string; job: number; seq?: number; hex?: string; message?: string }) => {
      const key = m.t === 'done' ? `${m.job}:${m.seq}` : `${m.job}:digest`;
      if (m.t === 'error') {
        for (const [k, p] of this.waits) if (k.startsWith(`${m.job}:`)) { this.waits.delete(k); p.reject(new Error(m.message)); }
        if (this.waits.size === 0) this.worker.unref();
        return;
      }
      const p = this.waits.get(key);
      if (!p) return;
      this.waits.delete(key);
      if (this.waits.size === 0) this.worker.unref();
      p.resolve(m.hex ?? '');
    });
    this.worker.on('error', (e) => {
      for (const p of this.waits.values()) p.reject(e);
      this.waits.clear();
    });
    // After the listeners (adding one re-references the port): an idle worker never keeps the
    // process alive; one with work pending does (see request()).
    this.worker.unref();
  }

  request(job: number, key: string, msg: unknown): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.waits.size === 0) this.worker.ref();
      this.waits.set(`${job}:${key}`, { resolve, reject });
      this.worker.postMessage(msg);
    });
  }

  post(msg: unknown): void { this.worker.postMessage(msg); }
}

let workers: HashWorker[] | undefined;
let nextJob = 1;

function pool(): HashWorker[] {
  workers ??= Array.from({ length: Math.max(2, Math.min(4, availableParallelism())) }, () => new HashWorker());
  return workers;
}

/** One upload's two hashes, fed from slots of a shared buffer ring. */
export class HashJob {
  readonly id = nextJob++;
  private readonly md5: HashWorker;
  private readonly multi: HashWorker;
  private seq = 0;
  private closed = false;

  constructor(readonly sab: SharedArrayBuffer, algo: string) {
    const byLoad = [...pool()].sort((a, b) => a.load - b.load);
    this.md5 = byLoad[0];
    this.multi = byLoad[1];
    this.md5.load++;
    this.multi.load++;
    this.md5.post({ t: 'open', job: this.id, algo: 'md5', sab });
    this.multi.post({ t: 'open', job: this.id, algo, sab });
  }

  /** Hashes bytes [off, off+len) of the ring; resolves when both hashes have consumed them. */
  update(off: number, len: number): Promise<unknown> {
    const seq = this.seq++;
    const msg = { t: 'update', job: this.id, off, len, seq };
    return Promise.all([this.md5.request(this.id, String(seq), msg), this.multi.request(this.id, String(seq), msg)]);
  }

  async digests(): Promise<{ md5: string; multi: string }> {
    const msg = { t: 'digest', job: this.id };
    const [md5, multi] = await Promise.all([this.md5.request(this.id, 'digest', msg), this.multi.request(this.id, 'digest', msg)]);
    this.release();
    return { md5, multi };
  }

  abort(): void {
    if (this.closed) return;
    this.md5.post({ t: 'drop', job: this.id });
    this.multi.post({ t: 'drop', job: this.id });
    this.release();
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.md5.load--;
    this.multi.load--;
  }
}
