// The three console proxies as services: `stratus serve novncproxy` (6080), `spicehtml5proxy`
// (6082), `serialproxy` (6083), and in the all-in-one under /novnc, /spice and /serial of its
// one port. Each serves its client pages and takes websocket upgrades (proxy.ts): the noVNC
// client from npm @novnc/novnc around a page of ours at vnc_auto.html / vnc_lite.html, the
// spice-html5 client from Debian's spice-html5 package when installed, a terminal page for serial.
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { RunningService, ServiceDefinition } from '../../common/service.ts';
import { NotFound } from '../../common/errors.ts';
import { ifMissing } from '../../common/files.ts';
import { Cells } from '../cells.ts';
import { ConsoleProxy, attachUpgrades } from './proxy.ts';
import type { ConsoleType } from './tokens.ts';
import '../config.ts';
import './config.ts';

/**
 * src/compute/console/pages of this installation, found from this module wherever it runs: from
 * the sources (beside this file) or from the dist/ bundle (which has no pages beside it).
 */
function pagesDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'pages', 'novnc.html'))) return join(here, 'pages');
  let d = here;
  for (let i = 0; i < 6; i++) {
    const p = join(d, 'src', 'compute', 'console', 'pages');
    if (existsSync(join(p, 'novnc.html'))) return p;
    d = dirname(d);
  }
  return join(here, 'pages');
}
const PAGES = pagesDir();
/** Our own pages, read once: they are part of the installation and never change while it runs. */
const pageCache = new Map<string, Promise<Buffer>>();
const ownPage = (name: string): Promise<Buffer> => {
  let p = pageCache.get(name);
  if (!p) { p = readFile(join(PAGES, name)); pageCache.set(name, p); p.catch(() => pageCache.delete(name)); }
  return p;
};
const SPICE_HTML5_DIR = '/usr/share/spice-html5';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.png': 'image/png', '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.json': 'application/json', '.woff': 'font/woff', '.woff2': 'font/woff2',
};

function novncRoot(): string | undefined {
  // The package exports only its entry point (core/rfb.js): the package root is two levels up.
  try { return dirname(dirname(createRequire(import.meta.url).resolve('@novnc/novnc'))); } catch { return undefined; }
}

/** A file under root (never above it: `..` and symlinks out are refused by the resolved prefix). */
async function sendFile(reply: FastifyReply, root: string, rel: string): Promise<FastifyReply> {
  const file = resolve(root, `.${sep}${rel}`);
  if (file !== root && !file.startsWith(root + sep)) throw new NotFound('The resource could not be found.');
  const st = await stat(file).catch(ifMissing);
  if (!st?.isFile()) throw new NotFound('The resource could not be found.');
  return reply.type(TYPES[extname(file)] ?? 'application/octet-stream').header('content-length', st.size).header('cache-control', 'no-cache').send(createReadStream(file));
}

interface ProxyKind {
  name: string; defaultPort: number; prefix: string; types: ConsoleType[];
  routes(scope: FastifyInstance): void;
}

function proxyService(k: ProxyKind): ServiceDefinition {
  return {
    name: k.name, type: k.name, defaultPort: k.defaultPort, prefix: k.prefix, databases: [],
    async start(ctx): Promise<RunningService> {
      const { config, logger } = ctx;
      const apiUrl = config.get<string | undefined>('api_database', 'connection');
      if (!apiUrl) throw new Error(`[api_database] connection is not set: ${k.name} redeems console tokens in the cells it maps`);
      const cells = await Cells.open(apiUrl, { apiPoolSize: config.get<number>('api_database', 'max_pool_size'), cellPoolSize: config.get<number>('database', 'max_pool_size') });
      const proxy = new ConsoleProxy(config, logger, cells);
      return {
        mount: {
          name: k.name, prefix: k.prefix, errorShape: 'nova',
          register: async (scope) => {
            // Mounted at '/' when alone, under the prefix in the all-in-one (the mount's own prefix is the scope's).
            attachUpgrades(scope.server, { prefix: scope.prefix === '/' ? '' : scope.prefix.replace(/\/+$/, ''), proxy, types: k.types });
            k.routes(scope);
          },
        },
        stop: async () => { await proxy.close(); await cells.close(); },
      };
    },
  };
}

export const novncProxyService = proxyService({
  name: 'novncproxy', defaultPort: 6080, prefix: '/novnc', types: ['novnc'],
  routes(s) {
    const root = novncRoot();
    const page = async (_r: unknown, reply: FastifyReply) => {
      if (!root) throw new NotFound('The noVNC client (npm @novnc/novnc) is not installed.');
      return reply.type(TYPES['.html']!).header('cache-control', 'no-cache').send(await ownPage('novnc.html'));
    };
    s.get('/vnc_auto.html', page);
    s.get('/vnc_lite.html', page);
    s.get('/vnc.html', page);
    s.get('/core/*', (req, reply) => { if (!root) throw new NotFound('The noVNC client is not installed.'); return sendFile(reply, join(root, 'core'), (req.params as { '*': string })['*']); });
    s.get('/vendor/*', (req, reply) => { if (!root) throw new NotFound('The noVNC client is not installed.'); return sendFile(reply, join(root, 'vendor'), (req.params as { '*': string })['*']); });
  },
});

export const spiceProxyService = proxyService({
  name: 'spicehtml5proxy', defaultPort: 6082, prefix: '/spice', types: ['spice-html5'],
  routes(s) {
    s.get('/*', (req, reply) => sendFile(reply, SPICE_HTML5_DIR, (req.params as { '*': string })['*'] || 'spice_auto.html').catch((e) => {
      if (e instanceof NotFound && !(req.params as { '*': string })['*'].includes('/')) throw new NotFound('The spice-html5 client is not installed on this host (Debian package spice-html5).');
      throw e;
    }));
  },
});

export const serialProxyService = proxyService({
  name: 'serialproxy', defaultPort: 6083, prefix: '/serial', types: ['serial'],
  routes(s) {
    const page = async (_r: unknown, reply: FastifyReply) => reply.type(TYPES['.html']!).send(await ownPage('serial.html'));
    s.get('/', page);
    s.get('/serial.html', page);
  },
});

export const consoleProxyServices = [novncProxyService, spiceProxyService, serialProxyService];
