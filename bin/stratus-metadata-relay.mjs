#!/usr/bin/env node
// One guest's connection to 169.254.169.254:80, relayed to the metadata service.
//
//   stratus-metadata-relay.mjs METADATA_URL INSTANCE_UUID SIGNATURE
//
// QEMU (guestfwd …-cmd:) starts this once per guest TCP connection with the connection on
// stdin/stdout (and stderr: nothing is ever written there, the guest would read it). It reads
// HTTP/1.x requests, drops any header the guest could use to pose as another instance, adds
// X-Instance-ID and X-Instance-ID-Signature, forwards each request to METADATA_URL and streams
// the answer back, in order (keep-alive and pipelining work; the connection closes when the
// guest asks, on HTTP/1.0, after an error, or after 60 s idle).
// Plain JavaScript with node: imports only, so it starts in tens of milliseconds.
import http from 'node:http';
import https from 'node:https';

const [base, instanceId, signature] = process.argv.slice(2);
const quit = (code) => process.exit(code);
process.on('uncaughtException', () => quit(1));
process.on('unhandledRejection', () => quit(1));
if (!base || !/^[0-9A-Za-z-]{1,64}$/.test(instanceId ?? '') || !/^[0-9a-f]{64}$/.test(signature ?? '')) quit(2);

const MAX_HEAD = 16 * 1024;
const MAX_BODY = 1024 * 1024;
const IDLE_MS = 60_000;
// Headers a guest must not choose: identity of the requester (what the signature vouches
// for) and hop-by-hop framing, which this relay redoes on each side.
const DROP = new Set(['x-instance-id', 'x-instance-id-signature', 'x-tenant-id', 'x-forwarded-for', 'x-metadata-provider',
  'x-metadata-provider-signature', 'host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te',
  'upgrade', 'content-length', 'expect', 'trailer', 'proxy-authorization']);
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer']);

const target = new URL(base);
const client = target.protocol === 'https:' ? https : http;
const agent = new client.Agent({ keepAlive: true, maxSockets: 1 });
const prefix = target.pathname.replace(/\/+$/, '');

const input = process.stdin;
const output = process.stdout;
let buf = Buffer.alloc(0);
let busy = false;
let ended = false;
let idle;

function armIdle() {
  clearTimeout(idle);
  idle = setTimeout(() => quit(0), IDLE_MS);
}

function write(chunk) {
  return new Promise((resolve) => { if (output.write(chunk)) resolve(); else output.once('drain', resolve); });
}

function finish() {
  output.write('', () => quit(0));
}

async function fail(status, reason, message) {
  const body = `${status} ${reason}\n\n${message}\n`;
  await write(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  finish();
}

/** Parses one request head at the start of buf; undefined while incomplete. */
function parseHead() {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (buf.length > MAX_HEAD) return { error: [431, 'Request Header Fields Too Large', 'The request head is too large.'] };
    return undefined;
  }
  if (end > MAX_HEAD) return { error: [431, 'Request Header Fields Too Large', 'The request head is too large.'] };
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^([A-Z]{1,20}) (\S+) HTTP\/(1\.[01])$/.exec(lines[0]);
  if (!m) return { error: [400, 'Bad Request', 'Malformed request line.'] };
  let [, method, path, version] = m;
  if (/^https?:\/\//i.test(path)) { const u = new URL(path); path = u.pathname + u.search; }
  if (!path.startsWith('/')) return { error: [400, 'Bad Request', 'Malformed request target.'] };
  const headers = [];
  const lower = {};
  for (const line of lines.slice(1)) {
    const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!h) return { error: [400, 'Bad Request', 'Malformed header.'] };
    const name = h[1].toLowerCase();
    lower[name] = lower[name] === undefined ? h[2] : `${lower[name]}, ${h[2]}`;
    if (!DROP.has(name)) headers.push([h[1], h[2]]);
  }
  if (lower['transfer-encoding'] !== undefined) return { error: [411, 'Length Required', 'Chunked request bodies are not accepted; send Content-Length.'] };
  const cl = lower['content-length'];
  if (cl !== undefined && !/^\d{1,9}$/.test(cl)) return { error: [400, 'Bad Request', 'Invalid Content-Length.'] };
  const length = cl === undefined ? 0 : Number(cl);
  if (length > MAX_BODY) return { error: [413, 'Request Entity Too Large', 'The request body is too large.'] };
  const conn = (lower.connection ?? '').toLowerCase();
  const keepAlive = version === '1.1' ? !/\bclose\b/.test(conn) : /\bkeep-alive\b/.test(conn);
  return { method, path, headers, length, keepAlive, headLength: end + 4, expectContinue: /100-continue/i.test(lower.expect ?? '') };
}

async function pump() {
  if (busy) return;
  busy = true;
  try {
    for (;;) {
      const req = parseHead();
      if (!req) break;
      if (req.error) return await fail(...req.error);
      if (req.expectContinue && buf.length < req.headLength + req.length) await write('HTTP/1.1 100 Continue\r\n\r\n');
      while (buf.length < req.headLength + req.length) {
        if (ended) return quit(0);
        input.resume();
        await new Promise((r) => { input.once('data', r); input.once('end', r); });
      }
      const body = buf.subarray(req.headLength, req.headLength + req.length);
      buf = buf.subarray(req.headLength + req.length);
      if (input.isPaused() && buf.length <= MAX_HEAD + MAX_BODY) input.resume();
      clearTimeout(idle);
      const keep = await forward(req, body);
      if (!keep) return finish();
      armIdle();
    }
    if (ended) finish();
  } finally {
    busy = false;
  }
}

function forward(req, body) {
  return new Promise((resolve) => {
    let started = false;
    const headers = ['Host', target.host, ...req.headers.flat(), 'X-Instance-ID', instanceId, 'X-Instance-ID-Signature', signature];
    if (req.length > 0 || ['POST', 'PUT', 'PATCH'].includes(req.method)) headers.push('Content-Length', String(body.length));
    const up = client.request({
      protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: prefix + req.path, headers, agent,
    }, async (res) => {
      started = true;
      const out = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage || http.STATUS_CODES[res.statusCode] || ''}`];
      let length;
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const name = res.rawHeaders[i];
        const lname = name.toLowerCase();
        if (HOP.has(lname)) continue;
        if (lname === 'content-length') length = res.rawHeaders[i + 1];
        out.push(`${name}: ${res.rawHeaders[i + 1]}`);
      }
      const noBody = req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
      // Without a length the guest learns where the body ends from chunks (HTTP/1.1) or the close.
      const chunked = !noBody && length === undefined && req.keepAlive;
      const keep = req.keepAlive && (noBody || length !== undefined || chunked);
      if (chunked) out.push('Transfer-Encoding: chunked');
      out.push(keep ? 'Connection: keep-alive' : 'Connection: close');
      await write(`${out.join('\r\n')}\r\n\r\n`);
      res.on('data', (d) => {
        const ok = output.write(chunked ? Buffer.concat([Buffer.from(`${d.length.toString(16)}\r\n`), d, Buffer.from('\r\n')]) : d);
        if (!ok) { res.pause(); output.once('drain', () => res.resume()); }
      });
      res.on('end', async () => {
        if (chunked) await write('0\r\n\r\n');
        resolve(keep);
      });
      res.on('error', () => resolve(false));
    });
    up.on('error', async () => {
      // Cut off after the answer began: the guest sees a short answer and a close, never a second status line.
      if (started) return quit(1);
      await fail(502, 'Bad Gateway', 'The metadata service is not reachable.');
      resolve(false);
    });
    up.end(body);
  });
}

input.on('data', (d) => {
  buf = buf.length ? Buffer.concat([buf, d]) : d;
  if (buf.length > MAX_HEAD + MAX_BODY) input.pause();
  pump();
});
input.on('end', () => { ended = true; if (!busy) pump(); });
input.on('error', () => quit(0));
output.on('error', () => quit(0));
armIdle();
