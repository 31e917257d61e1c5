// Version document, JSON schemas, and /v2/info/* (import methods, stores, usage).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRow } from './rows.ts';
import { NotFound } from '../../common/errors.ts';
import type { ImageService } from '../service.ts';
import { collectionSchema, imageSchema, memberSchema, taskSchema } from './schemas.ts';
import { metadefSchemas } from '../metadefs/schemas.ts';
import { ctxOf } from './common.ts';

/** Image API minor versions: 2.8 and 2.10–2.14 only exist with multiple stores (as Glance). */
export function versionIds(multiStore: boolean): string[] {
  const head = multiStore ? ['2.15', '2.14', '2.13', '2.12', '2.11', '2.10', '2.9', '2.8'] : ['2.15', '2.9'];
  return [...head, '2.7', '2.6', '2.5', '2.4', '2.3', '2.2', '2.1', '2.0'];
}

export function versionsDocument(baseUrl: string, multiStore: boolean) {
  return {
    versions: versionIds(multiStore).map((v, i) => ({
      id: `v${v}`, status: i === 0 ? 'CURRENT' : 'SUPPORTED', links: [{ rel: 'self', href: `${baseUrl}/v2/` }],
    })),
  };
}

export function registerVersionRoutes(scope: FastifyInstance, svc: ImageService): void {
  const doc = () => versionsDocument(svc.publicUrl, svc.multiStore);
  scope.get('/', async (_req, reply: FastifyReply) => reply.code(300).send(doc()));
  scope.get('/versions', async () => doc());
}

export function discoveryRows(svc: ImageService): ImageRow[] {
  const rows: ImageRow[] = [];
  const image = imageSchema(svc.diskFormats, svc.containerFormats);
  const schemas: Record<string, unknown> = {
    image,
    images: collectionSchema('images', image),
    member: memberSchema,
    members: collectionSchema('members', memberSchema),
    task: taskSchema,
    tasks: collectionSchema('tasks', taskSchema),
    ...metadefSchemas(),
  };
  rows.push({ method: 'GET', path: '/schemas/*', errors: [], handler: async (req: FastifyRequest<{ Params: { '*': string } }>) => {
    ctxOf(svc, req);
    const s = schemas[req.params['*'].replace(/\/$/, '')];
    if (!s) throw new NotFound('The resource could not be found.');
    return s;
  } });

  rows.push({ method: 'GET', path: '/info/import', errors: [], handler: async (req: FastifyRequest) => {
    ctxOf(svc, req);
    return { 'import-methods': { description: 'Import methods available.', type: 'array', value: svc.importMethods } };
  } });

  rows.push({ method: 'GET', path: '/info/stores', errors: [], handler: async (req: FastifyRequest) => {
    ctxOf(svc, req);
    if (!svc.multiStore) throw new NotFound('Multi backend is not supported at this site.');
    return { stores: [...svc.stores.values()].map(storeView) };
  } });

  rows.push({ method: 'GET', path: '/info/stores/detail', policy: 'stores_info_detail', errors: [], handler: async (req: FastifyRequest) => {
    ctxOf(svc, req);
    if (!svc.multiStore) throw new NotFound('Multi backend is not supported at this site.');
    return {
      stores: [...svc.stores.values()].map((s) => ({
        ...storeView(s), type: 'file', weight: 0,
        properties: { data_dir: s.dir, chunk_size: 65536, thin_provisioning: false },
      })),
    };
  } });

  rows.push({ method: 'GET', path: '/info/usage', errors: [], handler: async (req: FastifyRequest) => {
    const ctx = ctxOf(svc, req);
    return { usage: await svc.usage(ctx.projectId ?? '') };
  } });
  return rows;
}

function storeView(s: { id: string; description?: string; isDefault: boolean }) {
  const v: Record<string, unknown> = { id: s.id };
  if (s.description) v.description = s.description;
  if (s.isDefault) v.default = 'true';
  return v;
}
