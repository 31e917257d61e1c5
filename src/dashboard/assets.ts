// The built dashboard files, served with validators and caching suited to content-hashed names.
// Nothing is read at start: a file is read on its first request and then held in memory with its
// gzip and brotli forms (the whole app is a few hundred KB). `npm run build` writes those forms
// beside each file (name.gz, name.br), so serving costs no compression; a static_dir without
// them gets them computed once, on that first request.
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
/** The files by name (relative to the build directory), each read on first use. */
export type Assets = { ok: true; dir: string; files: Map<string, () => Promise<Asset>> } | { ok: false; reason: string };

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.map': 'application/json',
};

/** Whether a file of this type and size is worth compressing. */
function compressible(name: string, size: number): boolean {
  return /^(text\/|application\/json|image\/svg)/.test(TYPES[extname(name)] ?? '') && size > 512;
}

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

/** The compressed form written by the build, else computed now. */
async function compressed(path: string, body: Buffer, compress: (b: Buffer) => Promise<Buffer>): Promise<Buffer> {
  try { return await readFile(path); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return compress(body);
  }
}

async function readAsset(path: string, name: string): Promise<Asset> {
  const body = await readFile(path);
  const zip = compressible(name, body.length);
  return {
    body, type: TYPES[extname(name)] ?? 'application/octet-stream',
    etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`,
    // esbuild names bundles name-HASH.ext; those never change, index.html always revalidates.
    immutable: /-[A-Z0-9]{8,}\.(js|css)$/.test(name),
    gzip: zip ? await compressed(`${path}.gz`, body, (b) => gzipAsync(b, { level: 9 })) : undefined,
    br: zip ? await compressed(`${path}.br`, body, (b) => brotliAsync(b, { params: { [zc.BROTLI_PARAM_QUALITY]: 11 } })) : undefined,
  };
}

export async function loadAssets(dir = defaultDir()): Promise<Assets> {
  if (!existsSync(join(dir, 'index.html'))) return { ok: false, reason: `The dashboard is not built (no ${join(dir, 'index.html')}): run \`npm run build\`.` };
  const paths = new Set(await walk(dir));
  const files = new Map<string, () => Promise<Asset>>();
  for (const path of paths) {
    // name.gz / name.br are the build's compressed forms of name, not files of their own.
    if (/\.(gz|br)$/.test(path) && paths.has(path.replace(/\.(gz|br)$/, ''))) continue;
    const name = relative(dir, path).split(sep).join('/');
    let asset: Promise<Asset> | undefined;
    files.set(name, () => (asset ??= readAsset(path, name).catch((e) => { asset = undefined; throw e; })));
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
    return send(req, reply, await assets.files.get('index.html')!(), o.csp);
  });
  scope.get('/config.json', async (req, reply) => send(req, reply, config, o.csp));
  scope.get('/*', async (req, reply) => {
    if (!assets.ok) return notBuilt(reply);
    const name = (req.params as { '*': string })['*'];
    const a = assets.files.get(name);
    const asset = a && await a().catch((e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // removed since start (a rebuild)
      throw e;
    });
    if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send(`No such file: ${name}`);
    return send(req, reply, asset, o.csp);
  });
}
