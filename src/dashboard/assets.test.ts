// The dashboard's server side: files with their CSP and caching, compression, the trailing-slash
// redirect, a clear 503 when the app was never built, and `/` redirecting only browsers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { contentSecurityPolicy, loadAssets, registerAssetRoutes } from './assets.ts';

function builtApp() {
  const dir = mkdtempSync(join(tmpdir(), 'dash-assets-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="assets/app-ABCDEFGH.js"></script>');
  writeFileSync(join(dir, 'assets', 'app-ABCDEFGH.js'), `console.log(${JSON.stringify('x'.repeat(4000))});`);
  return dir;
}

async function server(dir?: string) {
  const app = Fastify({ routerOptions: { ignoreTrailingSlash: true } });
  const assets = await loadAssets(dir ?? join(tmpdir(), 'no-such-dashboard-build'));
  await app.register(async (s) => registerAssetRoutes(s, assets, { csp: contentSecurityPolicy(['http://id.example:5000']), clientConfig: { identityUrl: 'http://id.example:5000/v3', region: 'R1' } }), { prefix: '/dashboard' });
  return app;
}

test('index and hashed assets carry the CSP; assets are immutable, index revalidates; gzip when asked', async () => {
  const dir = builtApp();
  const app = await server(dir);
  try {
    const index = await app.inject({ url: '/dashboard/' });
    assert.equal(index.statusCode, 200);
    assert.match(index.headers['content-type'] as string, /text\/html/);
    const csp = index.headers['content-security-policy'] as string;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /connect-src 'self' http:\/\/id\.example:5000/);
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.equal(index.headers['x-content-type-options'], 'nosniff');

    const js = await app.inject({ url: '/dashboard/assets/app-ABCDEFGH.js', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(js.statusCode, 200);
    assert.equal(js.headers['content-encoding'], 'gzip');
    assert.match(js.headers['cache-control'] as string, /immutable/);
    assert.match(gunzipSync(js.rawPayload).toString(), /^console\.log/);

    const again = await app.inject({ url: '/dashboard/assets/app-ABCDEFGH.js', headers: { 'if-none-match': js.headers.etag as string } });
    assert.equal(again.statusCode, 304);

    const cfg = await app.inject({ url: '/dashboard/config.json' });
    assert.deepEqual(cfg.json(), { identityUrl: 'http://id.example:5000/v3', region: 'R1' });

    const missing = await app.inject({ url: '/dashboard/assets/nope.js' });
    assert.equal(missing.statusCode, 404);
    const escape = await app.inject({ url: '/dashboard/../package.json' });
    assert.notEqual(escape.statusCode, 200);

    const bare = await app.inject({ url: '/dashboard' });
    assert.equal(bare.statusCode, 301);
    assert.equal(bare.headers.location, '/dashboard/');
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the build's compressed forms are sent as they are, and are not files of their own; a file without them is compressed on first request", async () => {
  const dir = builtApp();
  // What `npm run build` writes beside a file; marked so that serving it verbatim shows.
  writeFileSync(join(dir, 'assets', 'app-ABCDEFGH.js.gz'), gzipSync(Buffer.from('/* built */')));
  writeFileSync(join(dir, 'assets', 'style-ABCDEFGH.css'), `body{color:red}${' '.repeat(600)}`);
  const app = await server(dir);
  try {
    const js = await app.inject({ url: '/dashboard/assets/app-ABCDEFGH.js', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(js.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(js.rawPayload).toString(), '/* built */');
    assert.equal((await app.inject({ url: '/dashboard/assets/app-ABCDEFGH.js.gz' })).statusCode, 404);
    const css = await app.inject({ url: '/dashboard/assets/style-ABCDEFGH.css', headers: { 'accept-encoding': 'br' } });
    assert.equal(css.headers['content-encoding'], 'br');
    assert.match(brotliDecompressSync(css.rawPayload).toString(), /^body\{color:red\}/);
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unbuilt dashboard answers 503 saying how to build it', async () => {
  const app = await server();
  try {
    const r = await app.inject({ url: '/dashboard/' });
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /npm run build/);
  } finally {
    await app.close();
  }
});
