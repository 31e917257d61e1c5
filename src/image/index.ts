// The Image service (Glance v2): what the launcher mounts under /image (all-in-one) or at / on
// port 9292 (`stratus serve image`).
import type { FastifyInstance } from 'fastify';
import './config.ts';
import type { ServiceDefinition, ServiceContext, RunningService } from '../common/service.ts';
import { openDatabase } from '../common/db/database.ts';
import { requireAuth } from '../common/http/auth.ts';
import { glanceShape, sendError } from '../common/http/errors.ts';
import { parseJsonBody } from '../common/http/json.ts';
import { refuseNul } from './api/common.ts';
import { NotFound } from '../common/errors.ts';
import { imageMigrations } from './db/schema.ts';
import type { ImageDB } from './db/schema.ts';
import { ImageService } from './service.ts';
import { registerVersionRoutes, discoveryRows } from './api/discovery.ts';
import { registerImageRows } from './api/rows.ts';
import { imageRows } from './api/images.ts';
import { dataRows } from './api/data.ts';
import { memberRows } from './api/members.ts';
import { importRows } from './api/import.ts';
import { taskRows } from './api/tasks.ts';
import { ImportRunner } from './import/runner.ts';
import { metadefRows } from './api/metadefs.ts';

export const imageService: ServiceDefinition = {
  name: 'image',
  type: 'image',
  defaultPort: 9292,
  prefix: '/image',
  databases: [{ set: imageMigrations, option: ['image_database', 'connection'] }],

  async start(ctx: ServiceContext): Promise<RunningService> {
    const url = ctx.config.get<string | undefined>('image_database', 'connection');
    if (!url) throw new Error('Required option [image_database] connection is not set (the Image service database URL)');
    const database = await openDatabase<ImageDB>(url);
    const policy = await ImageService.policyFrom(ctx.config);
    const logger = ctx.logger.child({ service: 'image' });
    const svc = new ImageService(ctx.config, database, policy, logger, ctx.publicUrl.replace(/\/$/, ''));
    await svc.start();
    const runner = new ImportRunner(svc);
    const bodyLimit = ctx.config.get<number>('DEFAULT', 'max_request_body_size');
    return {
      mount: {
        name: 'image',
        prefix: '/image',
        errorShape: glanceShape,
        register: async (scope: FastifyInstance) => registerRoutes(scope, svc, runner, ctx, bodyLimit),
      },
      healthChecks: [{ name: 'image-database', check: async () => { await database.db.selectFrom('images').select('id').limit(1).execute(); } }],
      async stop() {
        await runner.stop();
        await svc.stop();
        await database.close();
      },
    };
  },
};

async function registerRoutes(scope: FastifyInstance, svc: ImageService, runner: ImportRunner, ctx: ServiceContext, bodyLimit: number): Promise<void> {
  registerVersionRoutes(scope, svc);
  await scope.register(async (api) => {
    // The server ignores trailing slashes, but Glance does not: `/v2/images/` names an image
    // with an empty id (Tempest's null-id checks), which does not exist.
    api.addHook('onRequest', async (req) => {
      if (req.url.split('?')[0].endsWith('/v2/images/')) throw new NotFound('No image found with ID ');
    });
    api.addHook('onRequest', requireAuth(ctx.tokenValidator, { type: 'image', mountPrefix: scope.prefix }));
    api.addHook('preHandler', refuseNul);
    // Image data is streamed, never buffered: the raw request stream is the body.
    api.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    api.addContentTypeParser(/^application\/openstack-images-v2\.[01]-json-patch/, { parseAs: 'string', bodyLimit }, (_req, body, done) => {
      try { done(null, parseJsonBody(body as string)); } catch (e) { done(e as Error, undefined); }
    });
    // Glance reads JSON bodies whatever their declared type; other types reach the handlers as
    // streams (see jsonBody()).
    api.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    api.setErrorHandler((error, req, reply) => sendError(glanceShape, error, req, reply));
    api.setNotFoundHandler((req, reply) => sendError(glanceShape, new NotFound('The resource could not be found.'), req, reply));
    // One table; the kit answers other methods on a known path with 405 and Allow, as Glance's router does.
    registerImageRows(api, svc, [
      ...discoveryRows(svc), ...imageRows(svc, bodyLimit), ...dataRows(svc), ...memberRows(svc, bodyLimit),
      ...importRows(svc, runner, bodyLimit), ...taskRows(svc, runner, bodyLimit), ...metadefRows(svc, bodyLimit),
    ]);
  }, { prefix: '/v2' });
}

export { ImageService };
