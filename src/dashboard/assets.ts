// The built dashboard files, held in memory with their gzip and brotli forms (the whole app is a
// few hundred KB), served with validators and caching suited to content-hashed names.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, gzip, constants as zc } from 'node:zlib';

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

interface Asset { body: Buffer; gzip?: Buffer; br?: Buffer; type: string; etag: string; immutable: boolean }
export type Assets = { ok: true; dir: string; files: Map<string, Asset> } | { ok: false; reason: string };

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.map': 'application/json',
};

/** dist/dashboard of this installation, found from this module (src/dashboard or the dist bundle). */
function defaultDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'package.json'))) return join(d, 'dist', 'dashboard');
    d = dirname(d);
  }
  return join(dirname(fileURLToPath(import.meta.url)), 'dashboard');
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await walk(p));
    else out.push(p);
  }
  return out;
}

export async function loadAssets(dir = defaultDir()): Promise<Assets> {
  if (!existsSync(join(dir, 'index.html'))) return { ok: false, reason: `The dashboard is not built (no ${join(dir, 'index.html')}): run \`npm run build\`.` };
  const files = new Map<string, Asset>();
  for (const path of await walk(dir)) {
    const name = relative(dir, path).split(sep).join('/');
    const body = await readFile(path);
    const type = TYPES[extname(name)] ?? 'application/octet-stream';
    const compressible = /^(text\/|application\/json|image\/svg)/.test(type) && body.length > 512;
    files.set(name, {
      body, type,
      etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`,
      // esbuild names bundles name-HASH.ext; those never change, index.html always revalidates.
      immutable: /-[A-Z0-9]{8,}\.(js|css)$/.test(name),
      gzip: compressible ? await gzipAsync(body, { level: 9 }) : undefined,
      br: compressible ? await brotliAsync(body, { params: { [zc.BROTLI_PARAM_QUALITY]: 11 } }) : undefined,
    });
  }
  return { ok: true, dir, files };
}

/** The policy every dashboard response carries: nothing inline, nothing from elsewhere. */
export function contentSecurityPolicy(origins: string[]): string {
  const others = [...new Set(origins.filter(Boolean))].join(' ');
  return [
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
    `connect-src 'self' ${others}`.trim(), `frame-src 'self' ${others}`.trim(),
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "object-src 'none'",
  ].join('; ');
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset, csp: string) {
  reply.header('content-security-policy', csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('etag', a.etag)
    .header('vary', 'accept-encoding')
    .header('cache-control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
    .type(a.type);
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  const enc = String(req.headers['accept-encoding'] ?? '');
  if (a.br && /\bbr\b/.test(enc)) return reply.header('content-encoding', 'br').send(a.br);
  if (a.gzip && /\bgzip\b/.test(enc)) return reply.header('content-encoding', 'gzip').send(a.gzip);
  return reply.send(a.body);
}

export function registerAssetRoutes(scope: FastifyInstance, assets: Assets, o: { csp: string; clientConfig: unknown }): void {
  const configBody = Buffer.from(JSON.stringify(o.clientConfig));
  const config: Asset = { body: configBody, type: 'application/json', etag: `"${createHash('sha1').update(configBody).digest('base64url').slice(0, 20)}"`, immutable: false };
  const notBuilt = (reply: FastifyReply) => reply.code(503).type('text/plain; charset=utf-8').send(assets.ok ? '' : assets.reason);

  scope.get('/', async (req, reply) => {
    // Relative asset URLs need the trailing slash (…/dashboard/, not …/dashboard).
    const path = req.url.split('?')[0];
    if (!path.endsWith('/')) return reply.redirect(`${path}/`, 301);
    if (!assets.ok) return notBuilt(reply);
    return send(req, reply, assets.files.get('index.html')!, o.csp);
  });
  scope.get('/config.json', async (req, reply) => send(req, reply, config, o.csp));
  scope.get('/*', async (req, reply) => {
    if (!assets.ok) return notBuilt(reply);
    const name = (req.params as { '*': string })['*'];
    const a = assets.files.get(name);
    if (!a) return reply.code(404).type('text/plain; charset=utf-8').send(`No such file: ${name}`);
    return send(req, reply, a, o.csp);
  });
}
