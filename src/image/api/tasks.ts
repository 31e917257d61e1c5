// The tasks API (admin-only by default, as Glance's tasks_api_access): POST /v2/tasks creates a
// legacy `import` task (data fetched from `import_from` into a new image made from
// `image_properties`), GET /v2/tasks lists tasks with Glance's filters, sort and paging,
// GET /v2/tasks/{id} shows one. Tasks end in success (result {image_id}) or failure (message) and
// expire [task] task_time_to_live hours later. Import tasks run on the import runner.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRow } from './rows.ts';
import { randomUUID } from 'node:crypto';
import { BadRequest, MethodNotAllowed, NotFound } from '../../common/errors.ts';
import type { ImageService } from '../service.ts';
import type { ImportRunner } from '../import/runner.ts';
import { staticCheck, uriFilterFrom } from '../import/filter.ts';
import type { TaskRow } from '../db/schema.ts';
import type { TaskQuery } from '../db/repo.ts';
import { isoSeconds, nowIso } from '../model.ts';
import { assertValid, imageSchema, taskSchema } from './schemas.ts';
import { createImage } from './images.ts';
import { ctxOf, isUuid, jsonBody, requireObject } from './common.ts';
import type { RequestCtx } from '../policy.ts';

const STATUSES = ['pending', 'processing', 'success', 'failure'];
const SORT_KEYS = ['id', 'type', 'status', 'owner', 'created_at', 'updated_at', 'expires_at'];

/** A task as GET /v2/tasks/{id} shows it (Glance's _format_task: absent ids are left out). */
export function renderTask(t: TaskRow): Record<string, unknown> {
  const v: Record<string, unknown> = {
    id: t.id, input: JSON.parse(t.input), type: t.type, status: t.status, owner: t.owner, message: t.message,
    result: t.result ? JSON.parse(t.result) : null,
    created_at: isoSeconds(t.created_at), updated_at: isoSeconds(t.updated_at),
    self: `/v2/tasks/${t.id}`, schema: '/v2/schemas/task',
  };
  if (t.image_id) v.image_id = t.image_id;
  if (t.request_id) v.request_id = t.request_id;
  if (t.user_id) v.user_id = t.user_id;
  if (t.expires_at) v.expires_at = isoSeconds(t.expires_at);
  return v;
}

/** A task in a list (Glance's _format_task_stub: no input, result or message). */
function renderStub(t: TaskRow): Record<string, unknown> {
  const v: Record<string, unknown> = {
    id: t.id, type: t.type, status: t.status, owner: t.owner,
    created_at: isoSeconds(t.created_at), updated_at: isoSeconds(t.updated_at), self: `/v2/tasks/${t.id}`, schema: '/v2/schemas/task',
  };
  if (t.expires_at) v.expires_at = isoSeconds(t.expires_at);
  return v;
}

/** Glance's validate_location_uri + the import filter, checked when the task is created. */
function checkImportFrom(svc: ImageService, uri: unknown): string {
  if (!uri) throw new BadRequest(`Invalid location: ${uri === undefined || uri === null ? 'None' : String(uri)}`);
  const s = String(uri);
  if (s.startsWith('file:///') || s.startsWith('filesystem:///')) {
    throw new BadRequest('File based imports are not allowed. Please use a non-local source of image data.');
  }
  if (!s.startsWith('http://') && !s.startsWith('https://')) {
    throw new BadRequest("The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']");
  }
  if (staticCheck(uriFilterFrom(svc.config), s)) throw new BadRequest(`URI for legacy import task does not pass filtering: ${s}`);
  return s;
}

function one(req: FastifyRequest, key: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[key];
  return Array.isArray(v) ? String(v[v.length - 1]) : v === undefined ? undefined : String(v);
}

export function taskRows(svc: ImageService, runner: ImportRunner, bodyLimit: number): ImageRow[] {
  const rows: ImageRow[] = [];
  const createSchema = { ...taskSchema, additionalProperties: false };
  const images = imageSchema(svc.diskFormats, svc.containerFormats);

  // Policies before the body is even parsed, as Glance's deserializer: a reader's malformed body is a 403.
  rows.push({ method: 'POST', path: '/tasks', policy: ['tasks_api_access', 'add_task'], errors: [413], handler: async (req: FastifyRequest, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const body = await jsonBody(req, bodyLimit);
    if (body === undefined) throw new BadRequest('Body expected in request.');
    const b = requireObject(body);
    for (const k of ['type', 'input']) if (!(k in b)) throw new BadRequest(`Task '${k}' is required`);
    assertValid(createSchema, b);
    if (b.type !== 'import') {
      throw new BadRequest(`Task type '${String(b.type)}' cannot be created with the tasks API; use POST /v2/images/{image_id}/import`);
    }
    const input = (b.input ?? {}) as Record<string, unknown>;
    checkImportFrom(svc, input.import_from);
    const ts = nowIso();
    const task: TaskRow = {
      id: randomUUID(), type: 'import', status: 'pending', owner: ctx.projectId ?? null,
      image_id: typeof input.image_id === 'string' ? input.image_id : null, user_id: ctx.userId, request_id: req.id,
      input: JSON.stringify(b.input ?? null), result: null, message: '', created_at: ts, updated_at: ts, expires_at: null,
    };
    await svc.repo.createTask(task);
    runner.runLegacyImport(task, (properties) => createImage(svc, ctx, images, properties), ctx.userId, req.id);
    reply.code(201).header('location', `/v2/tasks/${task.id}`);
    return renderTask(task);
  } });

  rows.push({ method: 'GET', path: '/tasks', policy: ['tasks_api_access', 'get_tasks'], errors: [], handler: async (req: FastifyRequest) => {
    const ctx = ctxOf(svc, req);
    const sortDir = one(req, 'sort_dir') ?? 'desc';
    if (sortDir !== 'asc' && sortDir !== 'desc') throw new BadRequest(`Invalid sort direction: ${sortDir}`);
    const sortKey = one(req, 'sort_key') ?? 'created_at';
    if (!SORT_KEYS.includes(sortKey)) throw new BadRequest('Sort key supplied is invalid: ' + sortKey);
    const status = one(req, 'status');
    if (status && !STATUSES.includes(status)) throw new BadRequest(`Invalid status value: ${status}`);
    const type = one(req, 'type');
    if (type && type !== 'import') throw new BadRequest(`Invalid type value: ${type}`);
    let limit = svc.config.get<number>('DEFAULT', 'limit_param_default');
    const rawLimit = one(req, 'limit');
    if (rawLimit !== undefined) {
      if (!/^-?\d+$/.test(rawLimit.trim())) throw new BadRequest('limit param must be an integer');
      limit = Number(rawLimit);
      if (limit < 0) throw new BadRequest('limit param must be positive');
    }
    limit = Math.min(limit, svc.config.get<number>('DEFAULT', 'api_limit_max'));
    const markerId = one(req, 'marker');
    let marker: TaskRow | undefined;
    if (markerId !== undefined) {
      if (!isUuid(markerId)) throw new BadRequest('Invalid marker format');
      marker = await svc.repo.task(markerId);
      if (!marker || (!ctx.isAdmin && marker.owner !== ctx.projectId)) throw new BadRequest(`Task with the given id ${markerId} not found`);
    }
    await svc.repo.purgeExpiredTasks();
    const q: TaskQuery = { sortKey: sortKey as TaskQuery['sortKey'], sortDir, limit, marker, status, type };
    // Admins see every project's tasks, others their project's (Glance's task repo).
    if (!ctx.isAdmin) q.owner = ctx.projectId ?? '';
    const rows = limit === 0 ? [] : await svc.repo.listTasks(q);
    const params = new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
    params.delete('marker');
    const query = params.toString();
    const out: Record<string, unknown> = { tasks: rows.map(renderStub), first: query ? `/v2/tasks?${query}` : '/v2/tasks', schema: '/v2/schemas/tasks' };
    if (rows.length && rows.length === limit) {
      params.set('marker', rows[rows.length - 1].id);
      out.next = `/v2/tasks?${params.toString()}`;
    }
    return out;
  } });

  rows.push({ method: 'GET', path: '/tasks/:id', policy: ['tasks_api_access', 'get_task'], errors: [], handler: async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const ctx = ctxOf(svc, req);
    const t = isUuid(req.params.id) ? await svc.repo.task(req.params.id) : undefined;
    if (!t || (!ctx.isAdmin && t.owner !== ctx.projectId)) throw new NotFound(`Task with the given id ${req.params.id} not found`);
    return renderTask(t);
  } });

  // Glance: tasks are never deleted by hand; they expire.
  rows.push({ method: 'DELETE', path: '/tasks/:id', policy: ['tasks_api_access', 'get_task'], errors: [], handler: async () => {
    throw new MethodNotAllowed('This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property.', { headers: { allow: 'GET' } });
  } });
  return rows;
}
