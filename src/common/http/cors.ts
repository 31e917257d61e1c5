// Cross-origin requests, as oslo.middleware's CORS filter: a browser app on another origin (the
// dashboard served by `stratus serve dashboard`) may call this API when its origin is listed in
// `[cors] allowed_origin`. Nothing is allowed cross-origin by default.
import type { FastifyInstance } from 'fastify';
import { registerOpts, type Config } from '../config.ts';

registerOpts([
  { section: 'cors', name: 'allowed_origin', type: 'list', default: [], help: 'Origins (scheme://host[:port]) whose browser apps may call this API, e.g. the dashboard\'s; "*" for any.' },
  { section: 'cors', name: 'expose_headers', type: 'list', default: ['X-Auth-Token', 'X-Subject-Token', 'X-Service-Token', 'X-OpenStack-Request-Id', 'OpenStack-API-Version', 'X-OpenStack-Nova-API-Version', 'X-Compute-Request-Id', 'Location'], help: 'Response headers a cross-origin app may read.' },
  { section: 'cors', name: 'allow_headers', type: 'list', default: ['X-Auth-Token', 'X-Subject-Token', 'X-Service-Token', 'Content-Type', 'Accept', 'OpenStack-API-Version', 'X-OpenStack-Nova-API-Version', 'X-Image-Meta-Checksum', 'X-OpenStack-Request-Id'], help: 'Request headers a cross-origin app may send.' },
  { section: 'cors', name: 'allow_methods', type: 'list', default: ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD'], help: 'Methods a cross-origin app may use.' },
  { section: 'cors', name: 'max_age', type: 'int', default: 3600, min: 0, help: 'Seconds a browser may cache a preflight answer.' },
]);

export interface CorsOptions { allowedOrigins: string[]; exposeHeaders: string[]; allowHeaders: string[]; allowMethods: string[]; maxAge: number }

export function corsOptions(config: Config): CorsOptions {
  return {
    allowedOrigins: config.get<string[]>('cors', 'allowed_origin').map((o) => o.replace(/\/+$/, '')),
    exposeHeaders: config.get<string[]>('cors', 'expose_headers'),
    allowHeaders: config.get<string[]>('cors', 'allow_headers'),
    allowMethods: config.get<string[]>('cors', 'allow_methods'),
    maxAge: config.get<number>('cors', 'max_age'),
  };
}

export function registerCors(app: FastifyInstance, o: CorsOptions): void {
  if (!o.allowedOrigins.length) return;
  const any = o.allowedOrigins.includes('*');
  const allowed = new Set(o.allowedOrigins);
  const allowHeaders = new Set(o.allowHeaders.map((h) => h.toLowerCase()));
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (!origin || (!any && !allowed.has(origin))) return;
    reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
    const method = req.headers['access-control-request-method'];
    if (req.method === 'OPTIONS' && typeof method === 'string') {
      // A preflight: answer it here, whatever the route; refused parts simply get no grant.
      const asked = String(req.headers['access-control-request-headers'] ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
      if (!o.allowMethods.includes(method.toUpperCase()) || asked.some((h) => !allowHeaders.has(h))) {
        reply.removeHeader('access-control-allow-origin');
        return reply.code(200).send();
      }
      return reply.code(200)
        .header('access-control-allow-methods', o.allowMethods.join(', '))
        .header('access-control-allow-headers', o.allowHeaders.join(', '))
        .header('access-control-max-age', String(o.maxAge))
        .send();
    }
    reply.header('access-control-expose-headers', o.exposeHeaders.join(', '));
  });
}
