// The signature verifier against a stand-in Identity: what it sends to /v3/ec2tokens, the
// cache (one Identity round trip per distinct request), and the window that limits replays.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHmac } from 'node:crypto';
import { SignatureVerifier, type SignedParts } from './auth.ts';
import { Ec2Error } from './errors.ts';
import { form, signV4 } from '../../test/helpers/ec2.ts';

let server: Server;
let url: string;
const seen: any[] = [];
/** Signatures the stand-in Identity refuses (it does not recompute them). */
const forged = new Set<string>();
const SECRET = 's3cret';
const signingKey = (scope: string[]) => {
  let k = createHmac('sha256', `AWS4${SECRET}`).update(scope[0]).digest();
  for (const p of [scope[1], scope[2], 'aws4_request']) k = createHmac('sha256', k).update(p).digest();
  return k.toString('hex');
};

before(async () => {
  server = createServer((req, res) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => {
      const body = JSON.parse(b);
      seen.push({ url: req.url, body });
      if (body.credentials.access !== 'good' || forged.has(body.credentials.signature)) { res.writeHead(401).end('{}'); return; }
      const extra: Record<string, string> = {};
      const scope = /Credential=[^/]+\/([^,]+)/.exec(body.credentials.headers?.Authorization ?? '')?.[1];
      if (req.headers['x-auth-token'] === 'service-token' && scope) Object.assign(extra, { 'x-ec2-signing-key': signingKey(scope.split('/')), 'x-ec2-signing-scope': scope });
      res.writeHead(200, { 'content-type': 'application/json', 'x-subject-token': 'tok', ...extra });
      res.end(JSON.stringify({ token: { user: { id: 'u1' }, project: { id: 'p1' }, roles: [{ name: 'member' }], expires_at: new Date(Date.now() + 3600_000).toISOString() } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v3`;
});
after(() => server.close());

function parts(body: string, headers: Record<string, string>): SignedParts {
  return { method: 'POST', host: headers.host, path: '/ec2/', query: {}, params: Object.fromEntries(new URLSearchParams(body)), body, headers };
}

test('V4: Identity gets the request parts and the body hash, never a secret; the answer is cached', async () => {
  let now = Date.now();
  const v = new SignatureVerifier({ identityUrl: async () => url, maxSkewMs: 900_000, now: () => now });
  const body = form({ Action: 'DescribeRegions', Version: '2016-11-15' });
  const h = signV4('http://127.0.0.1:1/ec2/', body, { access: 'good', secret: 's3cret' }, { date: new Date(now) });
  seen.length = 0;
  const caller = await v.verify(parts(body, h));
  assert.deepEqual({ p: caller.projectId, u: caller.userId, t: caller.token }, { p: 'p1', u: 'u1', t: 'tok' });
  assert.equal(seen.length, 1);
  assert.match(seen[0].url, /\/v3\/ec2tokens\?nocatalog$/);
  const c = seen[0].body.credentials;
  assert.equal(c.access, 'good');
  assert.equal(c.verb, 'POST');
  assert.equal(c.path, '/ec2/');
  assert.match(c.body_hash, /^[0-9a-f]{64}$/);
  assert.ok(!JSON.stringify(seen[0].body).includes('s3cret'));
  // The identical request again: no second round trip.
  await v.verify(parts(body, h));
  assert.equal(seen.length, 1);
  // Another body under the same signature is another request: asked again (and Identity decides).
  await v.verify(parts(`${body}&X=1`, h));
  assert.equal(seen.length, 2);
  // Past the window, the cached request is refused without asking.
  now += 901_000;
  await assert.rejects(v.verify(parts(body, h)), (e: Ec2Error) => e.code === 'RequestExpired');
  assert.equal(seen.length, 2);
});

test('refusals: unknown key, unsigned, unsupported versions, malformed headers', async () => {
  const v = new SignatureVerifier({ identityUrl: async () => url, maxSkewMs: 900_000 });
  const body = form({ Action: 'DescribeRegions' });
  const code = async (p: SignedParts) => { try { await v.verify(p); return 'ok'; } catch (e) { return (e as Ec2Error).code; } };
  assert.equal(await code(parts(body, signV4('http://h/ec2/', body, { access: 'bad', secret: 'x' }))), 'AuthFailure');
  assert.equal(await code(parts(body, { host: 'h' })), 'AuthFailure');
  assert.equal(await code(parts(body, { host: 'h', authorization: 'AWS abc:def' })), 'AuthFailure');
  assert.equal(await code(parts(body, { host: 'h', authorization: 'AWS4-HMAC-SHA256 Credential=a/b, Signature=x' })), 'AuthFailure');
  const p = parts(body, { host: 'h' });
  p.params = { ...p.params, AWSAccessKeyId: 'good', Signature: 'x', SignatureVersion: '1', SignatureMethod: 'HmacSHA1', Timestamp: new Date().toISOString() };
  assert.equal(await code(p), 'AuthFailure');
  p.params.SignatureVersion = '2';
  p.params.Timestamp = 'yesterday-ish';
  assert.equal(await code(p), 'AuthFailure');
});

test('with a service token, Identity hands the day\'s signing key: later requests are checked locally', async () => {
  const v = new SignatureVerifier({ identityUrl: async () => url, maxSkewMs: 900_000, serviceToken: async () => 'service-token' });
  const req = (i: number, secret = SECRET) => {
    const body = form({ Action: 'DescribeRegions', Version: '2016-11-15', N: String(i) });
    return parts(body, signV4('http://127.0.0.1:1/ec2/', body, { access: 'good', secret }));
  };
  seen.length = 0;
  await v.verify(req(0));
  assert.equal(seen.length, 1);
  for (let i = 1; i <= 20; i++) await v.verify(req(i));
  assert.equal(seen.length, 1, 'distinct requests of the same scope need no round trip');
  // A request the cached key does not verify goes to Identity, which refuses it.
  const bad = req(99, 'not-the-secret');
  forged.add(String(/Signature=([0-9a-f]+)/.exec(String(bad.headers.authorization))![1]));
  await assert.rejects(v.verify(bad), (e: Ec2Error) => e.code === 'AuthFailure');
  assert.equal(seen.length, 2);
  // A revocation flushes the keys.
  v.flush();
  await v.verify(req(100));
  assert.equal(seen.length, 3);
  // Without the service token no key is handed out.
  const plain = new SignatureVerifier({ identityUrl: async () => url, maxSkewMs: 900_000 });
  await plain.verify(req(200));
  await plain.verify(req(201));
  assert.equal(seen.length, 5);
});
