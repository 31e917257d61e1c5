// The metadata service (nova-api-metadata): `stratus serve metadata` on 8775, or /metadata in
// the all-in-one. Guests reach it through their relay (relay.ts), which says which instance is
// asking with X-Instance-ID and proves it with X-Instance-ID-Signature, as Nova trusts
// neutron's metadata proxy. Answers are Nova's: text listings and documents from the content
// module, webob's HTML error pages, the password a guest may post once.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import type { RunningService, ServiceDefinition } from '../../common/service.ts';
import { BadRequest, Conflict, Forbidden, NotFound, StratusError } from '../../common/errors.ts';
import { toStratusError } from '../../common/http/errors.ts';
import { Cells } from '../cells.ts';
import { isUuid } from '../util.ts';
import { EC2_VERSIONS, InstanceMetadata, loadVendorData, MetadataNotFound, TEXT } from './content.ts';
import { loadInstance, readPassword, storePassword, type MetadataInstance } from './instance-source.ts';
import '../config.ts';
import './config.ts';

/** Nova's password limit: four system metadata chunks of 255 characters. */
const MAX_PASSWORD = 4 * 255;
const CACHE_MAX = 10_000;

export const metadataService: ServiceDefinition = {
  name: 'metadata',
  type: 'metadata',
  defaultPort: 8775,
  prefix: '/metadata',
  // The compute API's databases: this service reads them and owns none.
  databases: [],
  async start(ctx): Promise<RunningService> {
    const { config, logger } = ctx;
    const apiUrl = config.get<string | undefined>('api_database', 'connection');
    if (!apiUrl) throw new Error('[api_database] connection is not set: the metadata service reads instances through it');
    if (!config.get<string>('neutron', 'metadata_proxy_shared_secret')) {
      logger.error('[neutron] metadata_proxy_shared_secret is not set: every instance request will be refused (403)');
    }
    for (const p of config.get<string[]>('api', 'vendordata_providers')) {
      if (p !== 'StaticJSON') logger.warn(`[api] vendordata_providers: ${p} is not built and is ignored`);
    }
    const vendorData = await loadVendorData(config);
    const cells = await Cells.open(apiUrl, { apiPoolSize: config.get<number>('api_database', 'max_pool_size'), cellPoolSize: config.get<number>('database', 'max_pool_size') });
    const svc = new MetadataHandler(config, logger, cells, vendorData);
    return {
      mount: {
        name: 'metadata',
        prefix: '/metadata',
        errorShape: 'nova',
        register: (scope) => svc.register(scope),
      },
      healthChecks: [{ name: 'metadata: compute API database', check: async () => { await cells.db.selectFrom('cell_mappings').select('id').limit(1).execute(); } }],
      stop: () => cells.close(),
    };
  },
};

class MetadataHandler {
  private cache = new Map<string, { at: number; instance: MetadataInstance }>();

  constructor(private readonly config: Config, private readonly logger: Logger, private readonly cells: Cells, private readonly vendorData: unknown) {}

  async register(scope: FastifyInstance): Promise<void> {
    // Its own context: webob's error pages instead of the mount's JSON, and request bodies
    // taken as bytes whatever their content type (a guest posts its password as it likes).
    await scope.register(async (s) => {
      s.setErrorHandler((error, req, reply) => this.sendError(error, req, reply));
      s.removeAllContentTypeParsers();
      s.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
      const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
      s.route({ method: [...methods], url: '/', handler: (req, reply) => this.handle(req, reply, '') });
      s.route({ method: [...methods], url: '/*', handler: (req, reply) => this.handle(req, reply, (req.params as { '*': string })['*']) });
    });
  }

  private async handle(req: FastifyRequest, reply: FastifyReply, path: string): Promise<unknown> {
    // The version listing needs no instance (Nova answers it before looking at headers).
    if (path.replace(/\/+/g, '') === '') return this.send(reply, [...EC2_VERSIONS, 'latest'].join('\n'), TEXT);
    const instance = await this.instanceFor(req);
    const md = new InstanceMetadata(instance.spec, { config: this.config, vendorData: this.vendorData, address: null });
    let r;
    try { r = md.lookup(path); } catch (e) {
      if (e instanceof MetadataNotFound) throw new NotFound('The resource could not be found.');
      throw e;
    }
    if (r.kind === 'data') return this.send(reply, r.body, r.contentType);
    return this.password(req, reply, instance);
  }

  /** GET returns what the guest posted (empty when nothing); POST stores it once. */
  private async password(req: FastifyRequest, reply: FastifyReply, instance: MetadataInstance): Promise<unknown> {
    const uuid = instance.spec.uuid;
    if (req.method === 'GET' || req.method === 'HEAD') return this.send(reply, (await readPassword(instance.db, uuid)) ?? '', 'text/html; charset=UTF-8');
    if (req.method !== 'POST') throw new BadRequest('GET and POST only are supported.');
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (await readPassword(instance.db, uuid)) throw new Conflict('There was a conflict when trying to complete your request.');
    if (body.length > MAX_PASSWORD) throw new BadRequest('Request is too large.');
    if (!(await storePassword(instance.db, uuid, body.toString('utf8')))) throw new Conflict('There was a conflict when trying to complete your request.');
    this.logger.info({ instance: uuid }, 'guest posted its password');
    return this.send(reply, '', 'text/html; charset=UTF-8');
  }

  /** The instance the (signed) request is for; 400/403/404 as Nova's handler answers. */
  private async instanceFor(req: FastifyRequest): Promise<MetadataInstance> {
    const ids = req.raw.headersDistinct['x-instance-id'];
    const sigs = req.raw.headersDistinct['x-instance-id-signature'];
    const tenants = req.raw.headersDistinct['x-tenant-id'];
    if (!ids) throw new BadRequest('X-Instance-ID header is missing from request.');
    if (ids.length > 1) throw new BadRequest('Multiple X-Instance-ID headers found within request.');
    if (tenants && tenants.length > 1) throw new BadRequest('Multiple X-Tenant-ID headers found within request.');
    const id = ids[0];
    const secret = this.config.get<string>('neutron', 'metadata_proxy_shared_secret');
    const expected = Buffer.from(createHmac('sha256', secret).update(id).digest('hex'));
    const given = Buffer.from(sigs?.length === 1 ? sigs[0] : '');
    if (!secret || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      this.logger.warn({ instance: id.slice(0, 64), from: req.headers['x-forwarded-for'] ?? req.ip, signed: !!sigs }, 'X-Instance-ID-Signature does not match the expected signature');
      throw new Forbidden('Invalid proxy request signature.');
    }
    const instance = isUuid(id) ? await this.lookup(id.toLowerCase()) : undefined;
    // A tenant named by the proxy must be the instance's (Nova answers 404 otherwise).
    if (!instance || (tenants && tenants[0] !== instance.spec.projectId)) {
      this.logger.error({ instance: id }, 'Failed to get metadata for instance id');
      throw new NotFound('The resource could not be found.');
    }
    return instance;
  }

  /** Instances are re-read after [api] metadata_cache_expiration seconds (Nova's cache). */
  private async lookup(uuid: string): Promise<MetadataInstance | undefined> {
    const ttl = this.config.get<number>('api', 'metadata_cache_expiration') * 1000;
    const hit = this.cache.get(uuid);
    if (hit && Date.now() - hit.at < ttl) return hit.instance;
    const instance = await loadInstance(this.cells, uuid, this.config);
    if (!instance || ttl === 0) { this.cache.delete(uuid); return instance; }
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.delete(uuid);
    this.cache.set(uuid, { at: Date.now(), instance });
    return instance;
  }

  private send(reply: FastifyReply, body: string | Buffer, type: string): FastifyReply {
    return reply.code(200).type(type).send(body);
  }

  /** webob's HTML error page, what nova-api-metadata answers. */
  private sendError(error: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const err: StratusError = toStratusError(error);
    if (err.status >= 500) req.log.error({ err: (err.cause ?? error) as Error }, 'metadata request failed');
    const reason = REASONS[err.status] ?? 'Error';
    const explanation = err.status >= 500 ? 'An unknown error has occurred. Please try your request again.' : escapeHtml(err.message);
    const page = `<html>\n <head>\n  <title>${err.status} ${reason}</title>\n </head>\n <body>\n  <h1>${err.status} ${reason}</h1>\n  ${explanation}<br /><br />\n\n\n\n </body>\n</html>`;
    return reply.code(err.status).type('text/html; charset=UTF-8').send(page);
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Request Entity Too Large',
  415: 'Unsupported Media Type', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
