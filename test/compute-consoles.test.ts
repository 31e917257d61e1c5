// Consoles on a real all-in-one with the fake driver's console servers: console URLs through the
// API (remote-consoles 2.6+, the legacy actions < 2.6, Nova's errors), the token store (sha256
// at rest, os-console-auth-tokens for admins, TTL honoured, single use, removed with the
// instance), and the proxies: a websocket client completes the RFB handshake through /novnc
// with the token and reads a framebuffer; without the token, after the TTL, replayed, with a
// foreign Origin, or with another proxy's token it is refused (an empty close frame, as websockify).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv, projectUser, uploadImage } from './helpers/compute.ts';
import { openDatabase } from '../src/common/db/database.ts';
import type { ComputeCellDB } from '../src/compute/db/tables.ts';
import { hashToken } from '../src/compute/console/tokens.ts';

const TTL_S = 3;
let cloud: TestCloud;
let token: string;
let member: string;
let imageId: string;
const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });

async function boot(name: string): Promise<string> {
  const r = await api('POST', '/servers', { server: { name, imageRef: imageId, flavorRef: '1', networks: 'none' } }, mv('2.37'), token);
  assert.equal(r.status, 202, r.text);
  await waitFor(r.body.server.id, ['ACTIVE']);
  return r.body.server.id;
}

const remote = (id: string, protocol: string, type: string, tok = token, v = '2.6') => api('POST', `/servers/${id}/remote-consoles`, { remote_console: { protocol, type } }, mv(v), tok);
const action = (id: string, body: unknown, v = '2.1') => api('POST', `/servers/${id}/action`, body, mv(v), token);

/** The websocket URL a client opens for a console URL (noVNC's `path`, or the URL itself). */
function wsUrl(url: string): string {
  const u = new URL(url);
  const path = u.searchParams.get('path');
  const scheme = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss' : 'ws';
  return path !== null ? `${scheme}://${u.host}/${path.replace(/^\//, '')}` : `${scheme}://${u.host}${u.pathname}${u.search}`;
}

/** A websocket with a byte reader over its binary messages. */
async function openWs(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, ['binary'], { headers });
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (d: Buffer) => { buf = Buffer.concat([buf, d]); wake?.(); });
  ws.on('close', (code, reason) => { closed = { code, reason: reason.toString() }; wake?.(); });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const read = async (n: number, ms = 5000): Promise<Buffer> => {
    const until = Date.now() + ms;
    while (buf.length < n) {
      if (closed) throw Object.assign(new Error(`closed ${closed.code} ${closed.reason}`), { closed });
      if (Date.now() > until) throw new Error(`timed out waiting for ${n} bytes (have ${buf.length})`);
      await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
    }
    const out = buf.subarray(0, n); buf = buf.subarray(n); return out;
  };
  const closedWith = async (ms = 5000) => {
    const until = Date.now() + ms;
    while (!closed && Date.now() < until) await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
    return closed;
  };
  /** Everything received so far, after a pause for the rest to arrive. */
  const drain = async (ms = 300) => { await sleep(ms); const out = buf; buf = Buffer.alloc(0); return out; };
  return { ws, read, drain, closedWith, protocol: ws.protocol };
}

/** RFB 3.8 client side up to ServerInit, then one full framebuffer. */
async function rfbHandshake(url: string) {
  const c = await openWs(wsUrl(url));
  assert.equal(c.protocol, 'binary');
  assert.equal((await c.read(12)).toString('latin1'), 'RFB 003.008\n');
  c.ws.send(Buffer.from('RFB 003.008\n'));
  const n = (await c.read(1))[0]!;
  const types = [...(await c.read(n))];
  assert.ok(types.includes(1), `security types ${types}`);
  c.ws.send(Buffer.from([1]));
  assert.equal((await c.read(4)).readUInt32BE(0), 0, 'SecurityResult OK');
  c.ws.send(Buffer.from([1]));
  const init = await c.read(24);
  const width = init.readUInt16BE(0), height = init.readUInt16BE(2), bpp = init[4]!;
  const name = (await c.read(init.readUInt32BE(20))).toString('latin1');
  // FramebufferUpdateRequest, not incremental, the whole screen.
  const req = Buffer.alloc(10); req[0] = 3; req[1] = 0; req.writeUInt16BE(width, 6); req.writeUInt16BE(height, 8);
  c.ws.send(req);
  const head = await c.read(16);
  assert.equal(head[0], 0, 'FramebufferUpdate');
  assert.equal(head.readUInt16BE(2), 1);
  assert.equal(head.readInt32BE(12), 0, 'raw encoding');
  const pixels = await c.read(head.readUInt16BE(8) * head.readUInt16BE(10) * (bpp / 8));
  c.ws.close();
  return { width, height, bpp, name, pixels };
}

/** The proxy closes without sending any data: an empty close frame (1005, no status), as websockify. */
async function refused(url: string, headers: Record<string, string> = {}): Promise<void> {
  const c = await openWs(wsUrl(url), headers);
  const closed = await c.closedWith();
  assert.ok(closed, 'the proxy closes the connection');
  assert.equal(closed.code, 1005, JSON.stringify(closed));
  assert.equal(closed.reason, '');
  assert.equal((await c.drain(0)).length, 0, 'no console data before the close');
}

before(async () => {
  process.env.OS_CONSOLEAUTH__TOKEN_TTL = String(TTL_S);
  cloud = await startCloud();
  token = await cloud.adminToken();
  imageId = await uploadImage(cloud, token, { visibility: 'public' });
  // A project member (not admin) in a project of its own.
  member = await projectUser(cloud, token, 'console-proj', 'console-user', 'member');
});
after(async () => { delete process.env.OS_CONSOLEAUTH__TOKEN_TTL; await cloud?.stop(); });

test('noVNC console: URL from the API, RFB handshake and a framebuffer through the proxy; the token works once', async () => {
  const id = await boot('c1');
  const r = await remote(id, 'vnc', 'novnc');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.remote_console.protocol, 'vnc');
  assert.equal(r.body.remote_console.type, 'novnc');
  const url: string = r.body.remote_console.url;
  assert.ok(url.startsWith(`${cloud.url}/novnc/vnc_auto.html?path=%3Ftoken%3D`), url);
  // The page is noVNC's, and its client is served.
  const page = await fetch(url);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>noVNC<\/title>/);
  assert.equal((await fetch(`${cloud.url}/novnc/core/rfb.js`)).status, 200);
  assert.equal((await fetch(`${cloud.url}/novnc/core/..%2f..%2fpackage.json`)).status, 404);
  const fb = await rfbHandshake(url);
  assert.equal(fb.width, 64);
  assert.equal(fb.height, 48);
  assert.equal(fb.bpp, 32);
  assert.equal(fb.name, 'stratus fake guest');
  assert.equal(fb.pixels.length, 64 * 48 * 4);
  // Replayed: single use by default.
  await refused(url);
});

test('the token is stored as its sha256 only, and os-console-auth-tokens shows it to admins (2.31)', async () => {
  const id = await boot('c2');
  const url: string = (await remote(id, 'vnc', 'novnc')).body.remote_console.url;
  const tok = new URL(wsUrl(url)).searchParams.get('token')!;
  const db = await openDatabase<ComputeCellDB>(cloud.config.get('database', 'connection'));
  try {
    const rows = await db.db.selectFrom('console_auth_tokens').selectAll().where('instance_uuid', '=', id).execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.token_hash, hashToken(tok));
    assert.ok(!JSON.stringify(rows).includes(tok));
    const exp = Number(rows[0]!.expires);
    assert.ok(Math.abs(exp - (Date.now() + TTL_S * 1000)) < 2000, `expires ${exp}`);
  } finally { await db.close(); }
  const show = await api('GET', `/os-console-auth-tokens/${tok}`, undefined, mv('2.31'), token);
  assert.equal(show.status, 200, show.text);
  assert.equal(show.body.console.instance_uuid, id);
  assert.equal(show.body.console.host, '127.0.0.1');
  assert.equal(typeof show.body.console.port, 'number');
  assert.equal(show.body.console.internal_access_path, null);
  // Before 2.31 only rdp-html5 tokens are shown (Nova's 401); members are refused; unknown is 404.
  assert.equal((await api('GET', `/os-console-auth-tokens/${tok}`, undefined, mv('2.30'), token)).status, 401);
  assert.equal((await api('GET', `/os-console-auth-tokens/${tok}`, undefined, mv('2.31'), member)).status, 403);
  const nf = await api('GET', '/os-console-auth-tokens/00000000-0000-0000-0000-000000000000', undefined, mv('2.31'), token);
  assert.equal(nf.status, 404);
  assert.equal(nf.body.itemNotFound.message, 'Token not found');
  // Showing does not consume it: it still opens the console.
  await rfbHandshake(url);
});

test('refused: no token, a wrong token, after the TTL, a foreign Origin, another proxy\'s token', async () => {
  const id = await boot('c3');
  const base = `${cloud.url.replace(/^http/, 'ws')}`;
  await refused(`${base}/novnc/websockify`);
  await refused(`${base}/?token=not-a-token`);
  // Origin: a page of another site may not use a token (it is burnt by the attempt).
  const u1 = (await remote(id, 'vnc', 'novnc')).body.remote_console.url;
  await refused(u1, { origin: 'http://evil.example' });
  const u2 = (await remote(id, 'vnc', 'novnc')).body.remote_console.url;
  await refused(u2, { origin: 'ftp://127.0.0.1' });
  // The proxy's own origin is fine.
  const u3 = (await remote(id, 'vnc', 'novnc')).body.remote_console.url;
  const ok = await openWs(wsUrl(u3), { origin: cloud.url });
  assert.equal((await ok.read(12)).toString('latin1'), 'RFB 003.008\n');
  ok.ws.close();
  // A serial token at the noVNC proxy's path.
  const s = (await remote(id, 'serial', 'serial')).body.remote_console.url;
  const tok = new URL(s).searchParams.get('token');
  await refused(`${base}/novnc/websockify?token=${tok}`);
  // TTL: valid just before, refused after.
  const late = (await remote(id, 'vnc', 'novnc')).body.remote_console.url;
  const lateTok = new URL(wsUrl(late)).searchParams.get('token');
  await sleep(TTL_S * 1000 + 200);
  await refused(late);
  assert.equal((await api('GET', `/os-console-auth-tokens/${lateTok}`, undefined, mv('2.31'), token)).status, 404);
});

test('serial console: the guest\'s log through the proxy, input echoed; SPICE URL; the legacy actions', async () => {
  const id = await boot('c4');
  const s = await remote(id, 'serial', 'serial');
  assert.equal(s.status, 200, s.text);
  const url: string = s.body.remote_console.url;
  assert.ok(url.startsWith(`${cloud.url.replace(/^http/, 'ws')}/serial/?token=`), url);
  const c = await openWs(url);
  assert.match((await c.read(19)).toString(), /^FAKE CONSOLE OUTPUT/);
  assert.match((await c.drain()).toString(), /LAST LINE/);
  c.ws.send(Buffer.from('hello\r'));
  assert.match((await c.read(6)).toString(), /hello/);
  c.ws.close();
  const sp = await remote(id, 'spice', 'spice-html5');
  assert.equal(sp.status, 200, sp.text);
  assert.ok(sp.body.remote_console.url.startsWith(`${cloud.url}/spice/spice_auto.html?token=`));
  // Legacy actions (< 2.6) answer {"console": {type, url}}; from 2.6 they are gone (404).
  const v = await action(id, { 'os-getVNCConsole': { type: 'novnc' } });
  assert.equal(v.status, 200, v.text);
  assert.equal(v.body.console.type, 'novnc');
  await rfbHandshake(v.body.console.url);
  const sc = await action(id, { 'os-getSerialConsole': { type: 'serial' } });
  assert.equal(sc.status, 200, sc.text);
  assert.equal((await action(id, { 'os-getSPICEConsole': { type: 'spice-html5' } })).status, 200);
  assert.equal((await action(id, { 'os-getVNCConsole': { type: 'novnc' } }, '2.6')).status, 404);
  assert.equal((await action(id, { 'os-getVNCConsole': { type: 'bogus' } })).status, 400);
  assert.equal((await action(id, { 'os-getVNCConsole': {} })).status, 400);
  assert.equal((await action(id, { 'os-getRDPConsole': { type: 'rdp-html5' } })).status, 501);
});

test('bad inputs and states: Nova\'s 400/404/409/501; the member of another project; tokens go with the instance', async () => {
  const id = await boot('c5');
  const bad = async (body: unknown, status: number, v = '2.6') => {
    const r = await api('POST', `/servers/${id}/remote-consoles`, body, mv(v), token);
    assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
    return r;
  };
  await bad({ remote_console: { protocol: 'vnc', type: 'spice-html5' } }, 400);
  assert.equal((await bad({ remote_console: { protocol: 'vnc', type: 'xvpvnc' } }, 400)).body.badRequest.message, 'Invalid console type xvpvnc');
  await bad({ remote_console: { protocol: 'telnet', type: 'novnc' } }, 400);
  await bad({ remote_console: { protocol: 'vnc' } }, 400);
  await bad({ remote_console: { protocol: 'vnc', type: 'novnc', extra: 1 } }, 400);
  await bad({}, 400);
  await bad([], 400);
  await bad({ remote_console: { protocol: 'mks', type: 'webmks' } }, 400, '2.6');
  await bad({ remote_console: { protocol: 'mks', type: 'webmks' } }, 501, '2.8');
  await bad({ remote_console: { protocol: 'rdp', type: 'rdp-html5' } }, 501);
  assert.equal((await api('POST', `/servers/${id}/remote-consoles`, { remote_console: { protocol: 'vnc', type: 'novnc' } }, mv('2.5'), token)).status, 404);
  assert.equal((await api('POST', '/servers/00000000-0000-0000-0000-000000000001/remote-consoles', { remote_console: { protocol: 'vnc', type: 'novnc' } }, mv('2.6'), token)).status, 404);
  assert.equal((await remote(id, 'vnc', 'novnc', member)).status, 404);
  // Not running: 409.
  assert.equal((await action(id, { 'os-stop': null })).status, 202);
  await waitFor(id, ['SHUTOFF']);
  const c = await remote(id, 'vnc', 'novnc');
  assert.equal(c.status, 409, c.text);
  assert.equal(c.body.conflictingRequest.message, `Instance ${id} is not ready`);
  assert.equal((await action(id, { 'os-start': null })).status, 202);
  await waitFor(id, ['ACTIVE']);
  // Deleting the server removes its tokens.
  const url = (await remote(id, 'vnc', 'novnc')).body.remote_console.url;
  const tok = new URL(wsUrl(url)).searchParams.get('token');
  assert.equal((await api('DELETE', `/servers/${id}`, undefined, mv('2.6'), token)).status, 204);
  const until = Date.now() + 10_000;
  while ((await api('GET', `/os-console-auth-tokens/${tok}`, undefined, mv('2.31'), token)).status !== 404) {
    assert.ok(Date.now() < until, 'the token outlived its instance');
    await sleep(100);
  }
});
