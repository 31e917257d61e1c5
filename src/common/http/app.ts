// The fastify app factory every service runs in. One process may mount several services, each
// as an encapsulated plugin under its own prefix with its own error shape; nothing leaks
// between them (DESIGN.md, style rule 10).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Metrics } from './metrics.ts';
import { NOT_FOUND, errorShape, sendError, writeSocketError, type ErrorShape, type ErrorShapeName } from './errors.ts';
import { parseJsonBody } from './json.ts';
import { BadRequest, HeaderFieldsTooLarge, NotFound, StratusError } from '../errors.ts';
import { inboundGlobalId, withRequestIds } from '../request-ids.ts';

export interface HealthCheck { name: string; check(): Promise<void> }

export interface HttpServerOptions {
  logger: Logger;
  /** Largest request body in bytes for JSON APIs (413 beyond). */
  bodyLimit?: number;
  metrics?: Metrics;
}

declare module 'fastify' {
  interface FastifyRequest {
    serviceName?: string;
    startTime?: bigint;
    /** The caller's X-OpenStack-Request-ID when well formed: the chain's global request id. */
    globalRequestId?: string;
  }
  interface FastifyInstance {
    metrics: Metrics;
    healthChecks: HealthCheck[];
    /** The error shape of each mounted service by path prefix, for errors raised before routing. */
    errorShapes: { prefix: string; shape: ErrorShape }[];
  }
}

export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const shapes: { prefix: string; shape: ErrorShape }[] = [];
  // The service a URL belongs to: the longest mounted prefix ('/' when one service runs alone),
  // else Keystone's shape (the all-in-one root).
  const shapeFor = (url: string | undefined): ErrorShape => {
    const path = (url ?? '/').split('?')[0];
    let best: { prefix: string; shape: ErrorShape } | undefined;
    for (const s of shapes) {
      const inside = s.prefix === '/' || path === s.prefix || path.startsWith(`${s.prefix}/`);
      if (inside && (!best || s.prefix.length > best.prefix.length)) best = s;
    }
    return best?.shape ?? errorShape('keystone');
  };
  const app = Fastify({
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // HEAD is declared explicitly where an API has it (Keystone's token check, Glance…).
    exposeHeadRoutes: false,
    bodyLimit: opts.bodyLimit ?? 114688,
    genReqId: () => `req-${randomUUID()}`,
    // Clients (python-requests behind keystoneauth) reuse connections; keep them longer than
    // their idle pools so a reused socket is never closed under them.
    keepAliveTimeout: 75_000,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1000 },
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // OpenStack APIs refuse wrong types instead of coercing them, and keep attributes they do
    // not know (Keystone's extra attributes): no coercion, no stripping.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    // Errors fastify's router raises before any route or hook runs (a bad percent-escape, an id
    // over maxParamLength): rendered by the service the path belongs to.
    frameworkErrors: (error, req, reply) => { sendError(shapeFor(req.url), error, req, reply); },
    // Errors Node's HTTP parser raises before a request exists (headers over the limit, a
    // malformed request line): answered on the socket, still in the service's shape.
    clientErrorHandler: (error, socket) => {
      const err = error as unknown as Error & { code?: string; rawPacket?: unknown };
      if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) { socket.destroy(); return; }
      const id = `req-${randomUUID()}`;
      // What the parser had read: the request line names the service, the headers seen so far
      // (Accept) choose Glance's body format.
      const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket.subarray(0, 65536).toString('latin1') : '';
      const [first = '', ...lines] = raw.split('\r\n');
      const line = /^[A-Z]+ (\S+)/.exec(first);
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const m = /^([\w-]+):\s*(.*)$/.exec(l);
        if (m && m[2].length < 1024) headers[m[1].toLowerCase()] = m[2];
      }
      const typed = err.code === 'HPE_HEADER_OVERFLOW'
        ? new HeaderFieldsTooLarge('Request Header Fields Too Large: the request headers are larger than the limit.')
        : new BadRequest('The request could not be parsed as HTTP.');
      opts.logger.debug({ request_id: id, code: err.code, status: typed.status }, 'client error');
      writeSocketError(shapeFor(line?.[1]), typed, socket, { id, headers });
    },
  });
  app.decorate('errorShapes', shapes);
  const metrics = opts.metrics ?? new Metrics();
  app.decorate('metrics', metrics);
  app.decorate('healthChecks', [] as HealthCheck[]);

  // Empty JSON bodies are normal (PUT role assignments, actions); malformed ones are 400.
  app.removeContentTypeParser('application/json');
  // Depth is bounded here for every service (see json.ts).
  app.addContentTypeParser(/^application\/([\w.+-]*\+)?json/, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    req.startTime = process.hrtime.bigint();
    req.globalRequestId = inboundGlobalId(req.headers);
    reply.header('x-openstack-request-id', req.id);
  });
  // Hooks and the handler run inside the request's ids (callback style: the handler is called from
  // done(), so its whole async chain inherits them): what it logs and the HTTP calls and RPC
  // messages it sends carry them (request-ids.ts).
  // Entered twice: in onRequest for the hooks that run there (authentication), and again once
  // the body is read (the body's stream events run outside the first scope).
  const enter = (req: FastifyRequest, _reply: FastifyReply, done: () => void) => withRequestIds({ requestId: req.id, globalRequestId: req.globalRequestId }, done);
  app.addHook('onRequest', enter);
  app.addHook('preHandler', enter);
  app.addHook('onResponse', async (req, reply) => {
    const seconds = Number(process.hrtime.bigint() - (req.startTime ?? 0n)) / 1e9;
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.observe(req.serviceName ?? 'root', req.method, route, reply.statusCode, seconds);
    req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(seconds * 1e4) / 10, service: req.serviceName, ...(req.globalRequestId ? { global_request_id: req.globalRequestId } : {}) }, 'access');
  });

  app.get('/healthcheck', async (_req, reply) => {
    const failures: string[] = [];
    await Promise.all(app.healthChecks.map(async (h) => {
      try { await h.check(); } catch (e) { failures.push(`${h.name}: ${(e as Error).message}`); }
    }));
    reply.type('text/plain');
    if (failures.length) return reply.code(503).send(failures.join('\n'));
    return 'OK';
  });
  app.get('/metrics', async (_req, reply) => {
    reply.type('text/plain; version=0.0.4');
    return metrics.render();
  });
  app.setNotFoundHandler((req, reply) => sendError(shapeFor(req.url), new NotFound(NOT_FOUND), req, reply));
  app.setErrorHandler((error, req, reply) => sendError(shapeFor(req.url), error, req, reply));
  return app;
}

export interface ServiceMount {
  name: string;
  prefix: string;
  errorShape: ErrorShapeName | ErrorShape;
  /** Headers added to every response of this service (e.g. x-compute-request-id). */
  extraHeaders?: (req: FastifyRequest) => Record<string, string>;
  register(scope: FastifyInstance): Promise<void>;
}

/** Mounts one service under its prefix with its own error rendering. */
export async function mountService(app: FastifyInstance, svc: ServiceMount): Promise<void> {
  const shape = errorShape(svc.errorShape);
  app.errorShapes.push({ prefix: svc.prefix, shape });
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      req.serviceName = svc.name;
      if (svc.extraHeaders) for (const [k, v] of Object.entries(svc.extraHeaders(req))) reply.header(k, v);
    });
    scope.setErrorHandler((error, req, reply) => sendError(shape, error, req, reply));
    // Fastify allows one not-found handler per prefix: a service mounted at '/' (standalone)
    // keeps the app's own, which renders in the shape of the service the path belongs to.
    if (svc.prefix !== '/') {
      scope.setNotFoundHandler((req, reply) => sendError(shape, new NotFound(NOT_FOUND), req, reply));
    }
    await svc.register(scope);
  }, { prefix: svc.prefix === '/' ? '' : svc.prefix });
}

export { StratusError, sendError };
