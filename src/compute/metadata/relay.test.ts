// The guest relay, spawned as QEMU spawns it (the connection on stdin/stdout), against an HTTP
// server that echoes what it received.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '../../common/config.ts';
import { instanceSignature, metadataRelayArgv, metadataRelayCommand, relayProgram } from './relay.ts';
import { responses } from './testing.ts';

const UUID = '11111111-2222-4333-8444-555555555555';
const SIG = instanceSignature('s3cret', UUID);
let server: http.Server;
let base: string;

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/md/chunked') { res.write('part1-'); setTimeout(() => res.end('part2'), 20); return; }
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, raw: req.rawHeaders, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/md`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

/** Runs the relay with `input` as the guest's bytes; resolves with everything it wrote and its exit code. */
function relay(input: string | Buffer[], url = base, o: { endInput?: boolean; gapMs?: number } = {}): Promise<{ out: string; err: string; code: number | null; ms: number }> {
  const t0 = Date.now();
  const p = spawn(process.execPath, ['--no-warnings', relayProgram(), url, UUID, SIG], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  (async () => {
    for (const part of Array.isArray(input) ? input : [Buffer.from(input)]) {
      p.stdin.write(part);
      await new Promise((r) => setTimeout(r, o.gapMs ?? 30));
    }
    if (o.endInput) p.stdin.end();
  })();
  const kill = setTimeout(() => p.kill(), 10_000);
  return new Promise((resolve) => p.on('close', (code) => { clearTimeout(kill); resolve({ out, err, code, ms: Date.now() - t0 }); }));
}

test('pipelined requests are answered in order, signed as the instance, with the guest\'s identity headers dropped', async () => {
  const forged = 'X-Instance-ID: 99999999-2222-4333-8444-555555555555\r\nX-Instance-ID-Signature: forged\r\nX-Tenant-ID: other\r\nX-Forwarded-For: 10.0.0.9\r\nx-instance-id: again\r\n';
  const r = await relay(
    `GET /openstack HTTP/1.1\r\nHost: 169.254.169.254\r\n${forged}Accept: */*\r\n\r\n` +
    `GET http://169.254.169.254/latest/meta-data/?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n`);
  assert.equal(r.code, 0);
  assert.equal(r.err, '', 'nothing on stderr: it is the guest\'s connection under QEMU');
  const [a, b] = responses(r.out);
  assert.equal(a.status, 200);
  assert.equal(a.headers.connection, 'keep-alive');
  const ea = JSON.parse(a.body);
  assert.equal(ea.url, '/md/openstack');
  assert.equal(ea.headers['x-instance-id'], UUID);
  assert.equal(ea.headers['x-instance-id-signature'], SIG);
  assert.equal(ea.headers['x-tenant-id'], undefined);
  assert.equal(ea.headers['x-forwarded-for'], undefined);
  assert.equal(ea.raw.filter((h: string) => h.toLowerCase() === 'x-instance-id').length, 1);
  assert.equal(ea.headers.accept, '*/*');
  assert.equal(ea.headers.host, new URL(base).host);
  const eb = JSON.parse(b.body);
  assert.equal(eb.url, '/md/latest/meta-data/?x=1');
  assert.equal(b.headers.connection, 'close');
});

test('a POST body is forwarded (Expect: 100-continue answered); HTTP/1.0 closes after one answer', async () => {
  const r = await relay([
    Buffer.from('POST /openstack/latest/password HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n'),
    Buffer.from('hello '), Buffer.from('world'),
    Buffer.from('GET /a HTTP/1.0\r\n\r\n'),
    Buffer.from('GET /never HTTP/1.1\r\n\r\n'),
  ], base, { gapMs: 700 }); // the relay is up (and has read the head) before the body comes
  const rs = responses(r.out);
  assert.deepEqual(rs.map((x) => x.status), [100, 200, 200]);
  const post = JSON.parse(rs[1].body);
  assert.equal(post.method, 'POST');
  assert.equal(post.body, 'hello world');
  assert.equal(post.headers['content-length'], '11');
  assert.equal(post.headers.expect, undefined);
  assert.equal(rs[2].headers.connection, 'close');
  assert.equal(r.code, 0);
});

test('an upstream answer without a length is re-chunked for the guest; HEAD has no body', async () => {
  const r = await relay('GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n', base, { endInput: true });
  const [c] = responses(r.out);
  assert.equal(c.headers['transfer-encoding'], 'chunked');
  assert.equal(c.body, 'part1-part2');
  const h = await relay('HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(h.out, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(h.out, /content-length: \d+/i);
  assert.ok(h.out.endsWith('\r\n\r\n'), 'a HEAD answer is its head only');
});

test('bad requests get a 4xx and a close; an unreachable service a 502', async () => {
  for (const [input, status] of [
    ['garbage\r\n\r\n', 400], ['GET /x HTTP/1.1\r\nbad header\r\n\r\n', 400], ['GET x HTTP/1.1\r\n\r\n', 400],
    ['POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', 411], ['POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n', 413],
    ['POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 400], [`GET /${'a'.repeat(20000)} HTTP/1.1\r\n`, 431],
  ] as const) {
    const r = await relay(input);
    assert.equal(responses(r.out)[0].status, status, input.slice(0, 40));
    assert.equal(r.code, 0);
  }
  const down = await relay('GET / HTTP/1.1\r\n\r\n', 'http://127.0.0.1:1/md');
  assert.equal(responses(down.out)[0].status, 502);
  assert.equal(down.err, '');
});

test('a relay started with a malformed instance id or signature refuses to run (exit 2, says nothing)', async () => {
  for (const args of [[base, `${UUID}\n`, SIG], [base, UUID, 'nothex'], [base, UUID], []]) {
    const p = spawn(process.execPath, ['--no-warnings', relayProgram(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.stdin.end('GET / HTTP/1.1\r\n\r\n');
    assert.equal(await new Promise((r) => p.on('close', r)), 2);
    assert.equal(out, '');
  }
});

test('a guest that hangs up ends the relay; a half-sent request is dropped', async () => {
  const r = await relay('GET /openstack HTTP/1.1\r\nHost: x\r\n', base, { endInput: true });
  assert.equal(r.code, 0);
  assert.equal(r.out, '');
  const half = await relay('GET /openstack HTTP/1.1\r\nHost: x\r\n\r\n', base, { endInput: true });
  assert.equal(responses(half.out)[0].status, 200, 'a request sent before a half-close is still answered');
});

test('the same socket as stdin, stdout and stderr (as QEMU\'s guestfwd cmd: gives it)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'relay-'));
  const path = join(dir, 's');
  const srv = net.createServer((sock) => {
    const p = spawn(process.execPath, ['--no-warnings', relayProgram(), base, UUID, SIG], { stdio: [sock, sock, sock] });
    p.on('spawn', () => sock.destroy()); // the child holds its own copies of the fd
  });
  await new Promise<void>((r) => srv.listen(path, r));
  try {
    const c = net.connect(path);
    let out = '';
    c.on('data', (d) => { out += d.toString(); });
    c.write('GET /openstack/latest/meta_data.json HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n');
    await new Promise((r) => setTimeout(r, 400));
    c.write('GET /second HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n');
    await new Promise((r) => c.on('close', r));
    const rs = responses(out);
    assert.deepEqual(rs.map((x) => JSON.parse(x.body).url), ['/md/openstack/latest/meta_data.json', '/md/second']);
  } finally {
    srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('metadataRelayCommand: the relay\'s argv for guestfwd cmd:, commas doubled; no secret, no command', () => {
  const config = buildConfig(`[neutron]\nmetadata_proxy_shared_secret = s3cret\n[DEFAULT]\nmetadata_url = http://127.0.0.1:8775/a,b/\n`, {});
  const argv = metadataRelayArgv(config, UUID);
  assert.deepEqual(argv.slice(1), ['--no-warnings', relayProgram(), 'http://127.0.0.1:8775/a,b', UUID, SIG]);
  const cmd = metadataRelayCommand(config, UUID);
  assert.ok(cmd.includes("'http://127.0.0.1:8775/a,,b'"), cmd);
  assert.ok(!cmd.includes('s3cret'), 'the secret itself never leaves the host\'s config');
  assert.throws(() => metadataRelayCommand(buildConfig('', {}), UUID), /metadata_proxy_shared_secret/);
});

test('the relay starts and answers fast (no TypeScript, node: imports only)', async () => {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push((await relay('GET /x HTTP/1.1\r\nConnection: close\r\n\r\n')).ms);
  times.sort((a, b) => a - b);
  console.log(`relay spawn → answer → exit: median ${times[2]} ms (${times.join(', ')})`);
  assert.ok(times[2] < 1500, `median ${times[2]} ms`);
});
