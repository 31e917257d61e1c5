// The console proxies (nova-novncproxy, nova-spicehtml5proxy, nova-serialproxy): a browser or
// client opens a websocket with a console token; the proxy redeems the token in the cells'
// console_auth_tokens, checks the Origin as Nova does, connects to the console the token is
// bound to (TCP host:port or a unix socket on the compute host) and relays bytes both ways,
// with backpressure (websocket streams piped into the socket and back).
// Rejections happen after the websocket handshake with an empty close frame (the reason goes to
// the log), as websockify closes a connection whose token Nova refused: Tempest's
// test_novnc_bad_token counts a close frame with a status code as data.
import type { IncomingMessage, Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import type { Cells } from '../cells.ts';
import { redeemToken, purgeExpired, type ConsoleAuth, type ConsoleType } from './tokens.ts';
import './config.ts';

/** Largest websocket message accepted from a client (keys, pointer, clipboard; a paste at most). */
const MAX_MESSAGE = 1 << 20;
const CONNECT_TIMEOUT_MS = 10_000;

export class ConsoleRefused extends Error {}

/** The token a client presents: `?token=`, noVNC's `?path=?token=…`, or the `token` cookie. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const url = new URL(req.url ?? '/', 'http://x');
  const direct = url.searchParams.get('token');
  if (direct) return direct;
  const path = url.searchParams.get('path');
  if (path) {
    const inner = new URL(path.startsWith('/') || path.startsWith('?') ? path : `/${path}`, 'http://x').searchParams.get('token');
    if (inner) return inner;
  }
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'token' && v.length) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/**
 * Nova's origin check: a browser's Origin must name this proxy's host (the Host header) or one
 * of [console] allowed_origins, with the scheme of the URL the token was issued for (http(s) for
 * a page, ws(s) for a serial URL). A client that sends no Origin is not a browser: allowed.
 */
export function checkOrigin(req: IncomingMessage, accessUrlBase: string | null, allowed: string[]): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let o: URL;
  try { o = new URL(origin); } catch { throw new ConsoleRefused('Origin header not valid.'); }
  if (!o.hostname || !o.protocol) throw new ConsoleRefused('Origin header not valid.');
  const expectedHost = new URL(`http://${req.headers.host ?? ''}`).hostname;
  const scheme = o.protocol.replace(/:$/, '');
  const base = accessUrlBase ? new URL(accessUrlBase).protocol.replace(/:$/, '') : 'http';
  const protos = [base, ...(base === 'ws' ? ['http'] : base === 'wss' ? ['https'] : [])];
  if (!protos.includes(scheme)) throw new ConsoleRefused('Origin header protocol does not match this host.');
  if (o.hostname !== expectedHost && !allowed.includes(o.hostname)) throw new ConsoleRefused('Origin header does not match this host.');
}

/** The websocket library, loaded with the first console connection (most processes never see one). */
let wsModule: Promise<typeof import('ws')> | undefined;
const wsLib = () => (wsModule ??= import('ws'));

export class ConsoleProxy {
  private wss?: Promise<WebSocketServer>;
  private purge: NodeJS.Timeout;
  private open = new Set<WebSocket>();

  constructor(private readonly config: Config, private readonly logger: Logger, private readonly cells: Cells) {
    // Expired rows are useless; sweep them now and then (Nova's clean_expired_console_auths).
    this.purge = setInterval(() => { void this.purgeExpired(); }, 60_000);
    this.purge.unref();
  }

  private async purgeExpired(): Promise<void> {
    try { for (const { db } of await this.cells.all()) await purgeExpired(db); } catch (e) { this.logger.warn({ err: e }, 'console token purge failed'); }
  }

  /** Takes over an HTTP upgrade for consoles of `types`. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, types: ConsoleType[]): void {
    this.server().then((wss) => wss.handleUpgrade(req, socket, head, (ws) => {
      this.open.add(ws);
      ws.on('close', () => this.open.delete(ws));
      this.connect(ws, req, types).catch((e) => {
        const refused = e instanceof ConsoleRefused;
        this.logger[refused ? 'info' : 'error']({ err: refused ? undefined : e, from: req.socket.remoteAddress }, `console connection refused: ${(e as Error).message}`);
        ws.close();
      });
    }), (e) => {
      this.logger.error({ err: e }, 'console connection refused: the websocket server did not start');
      socket.destroy();
    });
  }

  private server(): Promise<WebSocketServer> {
    return (this.wss ??= wsLib().then(({ WebSocketServer }) => new WebSocketServer({
      noServer: true, maxPayload: MAX_MESSAGE, perMessageDeflate: false,
      // websockify's subprotocol: noVNC and Tempest ask for "binary"; base64 is not spoken.
      handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
    })));
  }

  /**
   * Tokens live in the cell of their instance (never cell0, which has no running instances): the
   * cells are asked at once, not one after the other — the connect latency is this lookup.
   */
  private async redeem(token: string): Promise<ConsoleAuth | undefined> {
    const single = this.config.get<boolean>('consoleauth', 'single_use');
    const found = await Promise.all((await this.cells.all({ includeCell0: false })).map(({ db }) => redeemToken(db, token, single)));
    return found.find((a) => a !== undefined);
  }

  private async connect(ws: WebSocket, req: IncomingMessage, types: ConsoleType[]): Promise<void> {
    const token = tokenOf(req);
    if (!token) throw new ConsoleRefused('The token is missing.');
    const auth = await this.redeem(token);
    if (!auth) throw new ConsoleRefused('The token has expired or is invalid.');
    if (!types.includes(auth.consoleType)) throw new ConsoleRefused(`This proxy does not serve ${auth.consoleType} consoles.`);
    checkOrigin(req, auth.accessUrlBase, this.config.get<string[]>('console', 'allowed_origins'));
    if (ws.readyState !== ws.OPEN) return;
    const target = await openTarget(auth);
    if (ws.readyState !== ws.OPEN) { target.destroy(); return; }
    this.logger.info({ instance: auth.instanceUuid, type: auth.consoleType }, 'console connection opened');
    const stream = (await wsLib()).createWebSocketStream(ws);
    const done = () => { target.destroy(); stream.destroy(); };
    pipeline(stream, target, done);
    pipeline(target, stream, done);
  }

  async close(): Promise<void> {
    clearInterval(this.purge);
    for (const ws of this.open) ws.terminate();
    const wss = await this.wss;
    if (wss) await new Promise((r) => wss.close(() => r(undefined)));
  }
}

/** The console's own socket on the compute host. */
function openTarget(a: ConsoleAuth): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = a.internalAccessPath ? connect({ path: a.internalAccessPath }) : connect({ host: a.host, port: a.port ?? 0 });
    sock.setNoDelay(true);
    const t = setTimeout(() => { sock.destroy(); reject(new Error(`console of ${a.instanceUuid}: no connection within ${CONNECT_TIMEOUT_MS / 1000} s`)); }, CONNECT_TIMEOUT_MS);
    sock.once('connect', () => { clearTimeout(t); sock.removeAllListeners('error'); resolve(sock); });
    sock.once('error', (e) => { clearTimeout(t); reject(new Error(`console of ${a.instanceUuid}: ${e.message}`)); });
  });
}

/**
 * One upgrade listener per HTTP server, shared by the proxies mounted on it: a path under a
 * proxy's prefix goes to that proxy; in the all-in-one a websocket at the root (where noVNC's
 * `path=?token=…` leads) goes to the proxy whose types the token is for — each proxy redeems
 * only its own types, so the root accepts the union.
 */
interface Mounted { prefix: string; proxy: ConsoleProxy; types: ConsoleType[] }
const dispatchers = new WeakMap<Server, Mounted[]>();

export function attachUpgrades(server: Server, m: Mounted): void {
  let list = dispatchers.get(server);
  if (!list) {
    const l: Mounted[] = [];
    list = l;
    dispatchers.set(server, l);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const hit = l.find((e) => e.prefix === '' || path === e.prefix || path.startsWith(`${e.prefix}/`));
      if (hit) return hit.proxy.upgrade(req, socket, head, hit.types);
      if (path === '/' || path === '/websockify') return l[0]!.proxy.upgrade(req, socket, head, l.flatMap((e) => e.types));
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }
  list.push(m);
}
