// POST /v2/images/{id}/import, the image's tasks, and DELETE /v2/stores/{store}/{id}. The tasks API is in tasks.ts.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRow } from './rows.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import type { ImageService } from '../service.ts';
import type { ImportRunner, ImportMethod } from '../import/runner.ts';
import { LOCK } from '../import/runner.ts';
import { staticCheck, uriFilterFrom } from '../import/filter.ts';
import type { TaskRow } from '../db/schema.ts';
import { isoSeconds } from '../model.ts';
import { ctxOf, imageTarget, isUuid, jsonBody, loadImage, requireObject } from './common.ts';

export function renderTask(t: TaskRow): Record<string, unknown> {
  return {
    id: t.id, type: t.type, status: t.status, input: JSON.parse(t.input), result: t.result ? JSON.parse(t.result) : null,
    owner: t.owner, message: t.message, image_id: t.image_id, request_id: t.request_id, user_id: t.user_id,
    expires_at: t.expires_at ? isoSeconds(t.expires_at) : null, created_at: isoSeconds(t.created_at), updated_at: isoSeconds(t.updated_at),
    self: `/v2/tasks/${t.id}`, schema: '/v2/schemas/task',
  };
}

export function importRows(svc: ImageService, runner: ImportRunner, bodyLimit: number): ImageRow[] {
  const rows: ImageRow[] = [];
  rows.push({ method: 'POST', path: '/images/:id/import', errors: [409], handler: async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const body = requireObject(await jsonBody(req, bodyLimit));
    const method = body.method as Record<string, unknown> | undefined;
    if (!method || typeof method !== 'object') throw new BadRequest("Import request requires a 'method' field.");
    const name = method.name;
    if (name === undefined) throw new BadRequest("Import request requires a 'name' field.");
    if (typeof name !== 'string' || !svc.importMethods.includes(name)) throw new BadRequest(`Unknown import method name '${String(name)}'.`);
    const mustSucceed = body.all_stores_must_succeed ?? true;
    if (typeof mustSucceed !== 'boolean') throw new BadRequest("'all_stores_must_succeed' must be boolean value only");
    const allStores = body.all_stores ?? false;
    if (typeof allStores !== 'boolean') throw new BadRequest("'all_stores' must be boolean value only");
    const img = await loadImage(svc, ctx, req.params.id);
    const target = await imageTarget(svc, ctx, img);
    const m = name as ImportMethod;
    if (img.status === 'active' && m !== 'copy-image') throw new Conflict('Image with status active cannot be target for import');
    if (img.status !== 'active' && m === 'copy-image') throw new Conflict('Only images with status active can be targeted for copying');
    if (img.status !== 'queued' && m === 'web-download') throw new Conflict(`Image needs to be in 'queued' state to use '${m}' method`);
    if (img.status !== 'uploading' && m === 'glance-direct') throw new Conflict("Image needs to be staged before 'glance-direct' method can be used");
    if (!img.container_format) throw new Conflict("'container_format' needs to be set before import");
    if (!img.disk_format) throw new Conflict("'disk_format' needs to be set before import");
    if (m === 'copy-image') ctx.enforceOnImage('copy_image', target, `No image found with ID ${img.id}`);
    else ctx.enforceOnImage('modify_image', target, `No image found with ID ${img.id}`);

    if (img.properties[LOCK]) await bustStaleLock(svc, runner, img.id, img.properties[LOCK]);

    let stores: string[];
    if (!svc.multiStore) {
      if (!mustSucceed) throw new BadRequest('All_stores_must_succeed can only be set with enabled_backends');
      stores = [svc.defaultStore.id];
    } else if (allStores) {
      stores = [...svc.stores.keys()];
    } else {
      const header = req.headers['x-image-meta-store'];
      const requested = (body.stores as unknown) ?? (typeof header === 'string' ? [header] : undefined);
      if (requested !== undefined && (!Array.isArray(requested) || requested.some((s) => typeof s !== 'string'))) throw new BadRequest("'stores' must be a list of store ids");
      stores = (requested as string[] | undefined) ?? [svc.defaultStore.id];
      for (const s of stores) if (!svc.stores.has(s)) throw new Conflict(`Unknown scheme '${s}' found in URI`);
    }
    stores = [...new Set(stores)];
    if (m === 'copy-image') {
      const have = new Set(img.locations.map((l) => l.store));
      if (allStores) stores = stores.filter((s) => !have.has(s));
      else for (const s of stores) if (have.has(s)) throw new BadRequest(`Image is already present at store '${s}'`);
      if (!stores.length) return reply.code(202).send();
    }
    if (m === 'web-download') {
      const uri = method.uri;
      if (typeof uri !== 'string' || !uri) throw new BadRequest('URI for web-download is required');
      const why = staticCheck(uriFilterFrom(svc.config), uri);
      if (why) throw new BadRequest(`URI for web-download does not pass filtering: ${uri}`);
    }
    const taskId = await runner.start({
      image: img, method: m, uri: method.uri as string | undefined, stores, allStoresMustSucceed: mustSucceed,
      owner: img.owner, userId: ctx.userId, requestId: req.id,
    });
    if (!taskId) throw new Conflict(`New operation on image '${img.id}' is not permitted as prior operation is still in progress`);
    return reply.code(202).send();
  } });

  rows.push({ method: 'GET', path: '/images/:id/tasks', errors: [], handler: async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const ctx = ctxOf(svc, req);
    const img = await loadImage(svc, ctx, req.params.id);
    ctx.enforceOnImage('get_image', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
    return { tasks: (await svc.repo.tasksOf(img.id)).map(renderTask) };
  } });

  rows.push({ method: 'DELETE', path: '/stores/:store/:id', errors: [409], handler: async (req: FastifyRequest<{ Params: { store: string; id: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    if (!svc.multiStore) throw new NotFound('The resource could not be found.');
    if (!svc.stores.has(req.params.store)) throw new Conflict(`The selected store ${req.params.store} is not available on this node.`);
    const img = await loadImage(svc, ctx, req.params.id, `Failed to find image ${req.params.id}`);
    const target = await imageTarget(svc, ctx, img);
    ctx.enforceOnImage('get_image_location', target, `Failed to find image ${img.id}`);
    ctx.enforceOnImage('delete_image_location', target, `Failed to find image ${img.id}`);
    if (img.status !== 'active') throw new Conflict("It's not allowed to remove image data from store if image status is not 'active'");
    const loc = img.locations.find((l) => l.store === req.params.store);
    if (img.locations.length === 1 && loc) throw new Forbidden('Cannot delete image data from the only store containing it. Consider deleting the image instead.');
    if (!loc) throw new NotFound(`Image ${img.id} is not stored in store ${req.params.store}.`);
    await svc.repo.removeLocation(img.id, loc.store);
    await svc.stores.get(loc.store)!.delete(loc.path);
    return reply.code(204).send();
  } });
  return rows;
}

/**
 * An import lock left by a task that is over (or died: no progress report for
 * stale_upload_seconds) is removed; a live one makes the new import a 409, as Glance does.
 */
async function bustStaleLock(svc: ImageService, runner: ImportRunner, imageId: string, taskId: string): Promise<void> {
  const task = isUuid(taskId) ? await svc.repo.task(taskId) : undefined;
  const staleMs = svc.config.get<number>('image_limits', 'stale_upload_seconds') * 1000;
  const live = task && (task.status === 'pending' || task.status === 'processing')
    && (runner.isRunning(task.id) || Date.now() - Date.parse(task.updated_at) < staleMs);
  if (live) throw new Conflict('Image has active task');
  if (task && (task.status === 'pending' || task.status === 'processing')) {
    await svc.repo.updateTask(task.id, { status: 'failure', message: 'Expired lock preempted' });
  }
  if (!(await svc.repo.deleteProperty(imageId, LOCK, taskId))) throw new Conflict('Image has active task');
}
