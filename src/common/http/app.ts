// The fastify app factory every service runs in. One process may mount several services, each
// as an encapsulated plugin under its own prefix with its own error shape; nothing leaks
// between them (DESIGN.md, style rule 10).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Metrics } from './metrics.ts';
import { renderError, toStratusError, type ErrorShape } from './errors.ts';
import { NotFound, StratusError } from '../errors.ts';

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
  }
  interface FastifyInstance {
    metrics: Metrics;
    healthChecks: HealthCheck[];
  }
}

export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
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
  });
  const metrics = opts.metrics ?? new Metrics();
  app.decorate('metrics', metrics);
  app.decorate('healthChecks', [] as HealthCheck[]);

  // Empty JSON bodies are normal (PUT role assignments, actions); malformed ones are 400.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(/^application\/([\w.+-]*\+)?json/, { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      const err = e as Error & { statusCode?: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    req.startTime = process.hrtime.bigint();
    reply.header('x-openstack-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const seconds = Number(process.hrtime.bigint() - (req.startTime ?? 0n)) / 1e9;
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.observe(req.serviceName ?? 'root', req.method, route, reply.statusCode, seconds);
    req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(seconds * 1e4) / 10, service: req.serviceName }, 'access');
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
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: { code: 404, title: 'Not Found', message: `The resource could not be found: ${req.method} ${req.url.split('?')[0]}` } });
  });
  return app;
}

export interface ServiceMount {
  name: string;
  prefix: string;
  errorShape: ErrorShape;
  /** Headers added to every response of this service (e.g. x-compute-request-id). */
  extraHeaders?: (req: FastifyRequest) => Record<string, string>;
  register(scope: FastifyInstance): Promise<void>;
}

/** Mounts one service under its prefix with its own error rendering. */
export async function mountService(app: FastifyInstance, svc: ServiceMount): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      req.serviceName = svc.name;
      if (svc.extraHeaders) for (const [k, v] of Object.entries(svc.extraHeaders(req))) reply.header(k, v);
    });
    scope.setErrorHandler((error, req, reply) => sendError(svc.errorShape, error, req, reply));
    // Fastify allows one not-found handler per prefix: a service mounted at '/' (standalone)
    // keeps the app's own; services that care route unmatched paths themselves.
    if (svc.prefix !== '/') {
      scope.setNotFoundHandler((req, reply) =>
        sendError(svc.errorShape, new NotFound(`The resource could not be found.`), req, reply));
    }
    await svc.register(scope);
  }, { prefix: svc.prefix === '/' ? '' : svc.prefix });
}

export function sendError(shape: ErrorShape, error: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = toStratusError(error);
  if (err.status >= 500) req.log.error({ err: (err.cause ?? error) as Error }, 'request failed');
  else req.log.debug({ err: err.message, status: err.status }, 'request refused');
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.code(err.status).type('application/json').send(renderError(shape, err, req.id));
}

export { StratusError };
