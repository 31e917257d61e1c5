// The agent-to-agent disk channel of cold moves: the source agent serves the files of one
// instance over HTTP on its [DEFAULT] my_ip ([qemu] migration_port, 0 = a random port) under a
// per-migration random token; the destination agent fetches them. Disk bytes never cross the
// message bus: only the offer (URL, token, file list) does.
//
// The body of a file is a sequence of frames — offset (8 bytes), length (4 bytes), data — that
// skips all-zero blocks, so a sparse raw ephemeral disk stays sparse and is not sent as zeros.
// A SHA-256 of the frames goes in the trailer and is checked by the receiver at the end. Both
// sides stream with backpressure (the sender waits for the socket, the receiver for the disk).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../../common/logging.ts';
import { MigrationPreCheckError } from '../errors.ts';

const BLOCK = 1024 * 1024;
const FRAME_HEADER = 12;
const ZERO = Buffer.alloc(BLOCK);
export const TOKEN_HEADER = 'x-stratus-migration-token';

/** What the destination needs to fetch the files (carried in MigratedDisks). */
export interface DiskOffer {
  url: string;
  token: string;
  files: { name: string; size: number }[];
}

interface Served { dir: string; token: Buffer; files: Map<string, number>; expiry?: NodeJS.Timeout }

/** Tokens are compared by their digests: equal lengths for timingSafeEqual, constant time. */
const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** The source side: one HTTP server per agent, listening only while an offer is open. */
export class DiskChannel {
  private server?: Server;
  private starting?: Promise<Server>;
  private offers = new Map<string, Served>();

  constructor(private readonly o: { address: string; port: number; logger: Logger }) {}

  /**
   * Serves `files` (of `dir`) until end(id), or for `ttlMs` at most (an offer whose move may
   * fail where this host never hears of it); `id` is the move's (the instance uuid).
   */
  async offer(id: string, dir: string, files: { name: string; size: number }[], o: { ttlMs?: number } = {}): Promise<DiskOffer> {
    const token = randomBytes(32).toString('base64url');
    clearTimeout(this.offers.get(id)?.expiry);
    const served: Served = { dir, token: digest(token), files: new Map(files.map((f) => [f.name, f.size])) };
    if (o.ttlMs) {
      served.expiry = setTimeout(() => {
        if (this.offers.get(id) !== served) return;
        this.end(id).catch((err) => this.o.logger.warn({ err, instance: id }, 'disk channel: could not close after the last offer expired'));
      }, o.ttlMs);
      served.expiry.unref();
    }
    this.offers.set(id, served);
    const server = await this.listen();
    const { port } = server.address() as AddressInfo;
    const host = this.o.address.includes(':') ? `[${this.o.address}]` : this.o.address;
    return { url: `http://${host}:${port}/migrations/${encodeURIComponent(id)}`, token, files };
  }

  /**
   * The migration ended: its token no longer opens anything; the server stops when no offer is
   * left. With `token`, only the offer made with that token ends (a later one for `id` stays).
   * Whether an offer of `id` is left open.
   */
  async end(id: string, token?: string): Promise<boolean> {
    const served = this.offers.get(id);
    if (served && token !== undefined && !timingSafeEqual(digest(token), served.token)) return true;
    clearTimeout(served?.expiry);
    this.offers.delete(id);
    if (this.offers.size === 0) await this.close();
    return false;
  }

  async close(): Promise<void> {
    for (const o of this.offers.values()) clearTimeout(o.expiry);
    this.offers.clear();
    let s = this.server;
    // A server still starting is waited for; one that failed to listen has nothing to close
    // (its error went to the offer() that started it).
    if (!s && this.starting) s = await this.starting.catch(() => undefined);
    this.server = undefined;
    this.starting = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private listen(): Promise<Server> {
    if (this.server) return Promise.resolve(this.server);
    this.starting ??= new Promise<Server>((resolve, reject) => {
      const s = createServer((req, res) => { void this.serve(req, res); });
      s.once('error', reject);
      s.listen(this.o.port, this.o.address, () => { this.server = s; resolve(s); });
    });
    return this.starting;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: status, message } }));
    };
    const m = /^\/migrations\/([^/]+)\/([^/]+)$/.exec(req.url ?? '');
    const served = m ? this.offers.get(decodeURIComponent(m[1]!)) : undefined;
    const given = req.headers[TOKEN_HEADER];
    // Unknown migrations and wrong tokens look the same from outside.
    if (!served || typeof given !== 'string' || !timingSafeEqual(digest(given), served.token)) return fail(403, 'Migration token refused');
    if (req.method !== 'GET') return fail(405, 'Only GET');
    const name = decodeURIComponent(m![2]!);
    const size = served.files.get(name);
    if (size === undefined) return fail(404, `No file ${name} in this migration`);
    const hash = createHash('sha256');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-file-size': String(size), trailer: 'x-sha256' });
    try {
      await pipeline(Readable.from(frames(join(served.dir, name), size, hash)), res, { end: false });
      res.addTrailers({ 'x-sha256': hash.digest('hex') });
      res.end();
    } catch (e) {
      this.o.logger.warn({ err: e, file: name }, 'disk channel: sending a file failed');
      res.destroy();
    }
  }
}

/** The frames of a file: each non-zero block with its offset; the hash sees exactly what is sent. */
async function* frames(path: string, size: number, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    for (let off = 0; off < size; off += BLOCK) {
      const buf = Buffer.allocUnsafe(FRAME_HEADER + BLOCK);
      const { bytesRead } = await fh.read(buf, FRAME_HEADER, Math.min(BLOCK, size - off), off);
      if (bytesRead === 0) break;
      const data = buf.subarray(FRAME_HEADER, FRAME_HEADER + bytesRead);
      if (data.equals(ZERO.subarray(0, bytesRead))) continue;
      buf.writeBigUInt64BE(BigInt(off), 0);
      buf.writeUInt32BE(bytesRead, 8);
      const frame = buf.subarray(0, FRAME_HEADER + bytesRead);
      hash.update(frame);
      yield frame;
    }
  } finally { await fh.close(); }
}

/** The destination side: fetches every file of the offer into dir (sparse where the source had zeros), hash-checked. */
export async function fetchOffer(offer: DiskOffer, dir: string, o: FetchOptions = {}): Promise<void> {
  for (const f of offer.files) await fetchFile(offer, f, join(dir, f.name), o);
}

interface FetchOptions { onBytes?: (n: number) => void; logger?: Logger }

async function fetchFile(offer: DiskOffer, f: { name: string; size: number }, out: string, o: FetchOptions): Promise<void> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(`${offer.url}/${encodeURIComponent(f.name)}`, { headers: { [TOKEN_HEADER]: offer.token } }, resolve);
    req.on('error', reject);
    req.end();
  }).catch((e: Error) => { throw new MigrationPreCheckError(`Could not reach the source host's disk channel at ${offer.url}: ${e.message}`); });
  if (res.statusCode !== 200) {
    res.resume();
    throw new MigrationPreCheckError(`The source host refused ${f.name} (HTTP ${res.statusCode})`);
  }
  const tmp = `${out}.part`;
  const fh = await open(tmp, 'w', 0o640);
  let closed = false;
  const hash = createHash('sha256');
  try {
    await fh.truncate(f.size);
    // Chunks are gathered until a whole frame is there, then joined once (no quadratic copying).
    let parts: Buffer[] = [];
    let have = 0;
    let frame: { off: number; len: number } | undefined;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      hash.update(chunk);
      parts.push(chunk);
      have += chunk.length;
      while (have >= (frame ? FRAME_HEADER + frame.len : FRAME_HEADER)) {
        const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
        parts = [buf];
        if (!frame) {
          frame = { off: Number(buf.readBigUInt64BE(0)), len: buf.readUInt32BE(8) };
          if (frame.len > BLOCK || frame.off + frame.len > f.size) throw new MigrationPreCheckError(`Malformed frame in ${f.name} from the source host`);
          continue;
        }
        await fh.write(buf, FRAME_HEADER, frame.len, frame.off);
        o.onBytes?.(frame.len);
        const rest = buf.subarray(FRAME_HEADER + frame.len);
        parts = rest.length ? [rest] : [];
        have = rest.length;
        frame = undefined;
      }
    }
    if (have) throw new MigrationPreCheckError(`${f.name} ended in the middle of a frame`);
    const want = res.trailers['x-sha256'];
    if (!want || want !== hash.digest('hex')) throw new MigrationPreCheckError(`${f.name} arrived damaged (SHA-256 ${want ? 'mismatch' : 'missing'})`);
    await fh.close();
    closed = true;
    await rename(tmp, out);
  } catch (e) {
    if (!closed) await fh.close().catch((err) => o.logger?.warn({ err, file: f.name }, 'disk channel: could not close a refused file'));
    await rm(tmp, { force: true });
    res.destroy();
    throw e;
  }
}
