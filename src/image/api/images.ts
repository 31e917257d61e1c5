// /v2/images: create, list, show, update (JSON patch), delete, tags, deactivate/reactivate.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRow } from './rows.ts';
import { imageListResponse, imageResponse } from './responses.ts';
import { randomUUID } from 'node:crypto';
import { BadRequest, Conflict, Forbidden, NotFound, UnsupportedMediaType } from '../../common/errors.ts';
import type { ImageService } from '../service.ts';
import { QuotaExceeded } from '../service.ts';
import type { RequestCtx } from '../policy.ts';
import {
  BASE_ATTRIBUTES, READONLY_ATTRIBUTES, RESERVED_ATTRIBUTES, RESERVED_NAMESPACE, nowIso, renderImage, type Image,
} from '../model.ts';
import { assertValid, imageSchema, type Schema } from './schemas.ts';
import { ctxOf, imageTarget, isUuid, jsonBody, loadImage, mediaType, requireObject } from './common.ts';
import type { Cmp, ListFilters, ListKey, Op } from '../db/repo.ts';

const PATCH_TYPES: Record<string, 4 | 10> = {
  'application/openstack-images-v2.0-json-patch': 4,
  'application/openstack-images-v2.1-json-patch': 10,
};
const SORT_KEYS = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'];
const MAX_INT = 2 ** 31 - 1;

export function imageRows(svc: ImageService, bodyLimit: number): ImageRow[] {
  const rows: ImageRow[] = [];
  const schema = imageSchema(svc.diskFormats, svc.containerFormats);
  const cache = new RenderCache();
  const render = (img: Image) => renderImage(img, { multiStore: svc.multiStore, showDirectUrl: svc.config.get<boolean>('DEFAULT', 'show_image_direct_url') ? (i) => directUrl(svc, i) : undefined });

  rows.push({ method: 'POST', path: '/images', response: { 201: imageResponse }, errors: [409, 413], handler: async (req: FastifyRequest, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const body = requireObject(await jsonBody(req, bodyLimit));
    const img = await createImage(svc, ctx, schema, body);
    reply.code(201).header('location', `${svc.publicUrl}/v2/images/${img.id}`);
    if (svc.importMethods.length) reply.header('openstack-image-import-methods', svc.importMethods.join(','));
    if (svc.multiStore) reply.header('openstack-image-store-ids', [...svc.stores.keys()].join(','));
    return render(img);
  } });

  rows.push({ method: 'GET', path: '/images', response: { 200: imageListResponse }, policy: 'get_images', errors: [], handler: async (req: FastifyRequest, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const q = parseListQuery(svc, req);
    if (q.markerId !== undefined) {
      const marker = isUuid(q.markerId) ? await svc.repo.get(q.markerId, { projectId: ctx.projectId, isAdmin: ctx.isAdmin }) : undefined;
      if (!marker) throw new BadRequest(`Marker ${q.markerId} could not be found.`);
      q.params.marker = marker;
    }
    const keys = await svc.repo.listKeys({ projectId: ctx.projectId, isAdmin: ctx.isAdmin }, q.params);
    const visible = keys.filter((k) => ctx.check('get_image', listTarget(ctx, k)));
    const params = new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
    params.delete('marker');
    const query = params.toString();
    // Rendered images are reused while their revision is unchanged; only changed ones are loaded.
    const parts = await cache.render(visible, async (ids) => (await svc.repo.getMany(ids)).map((img) => [img.id, JSON.stringify(render(img))] as const));
    let out = `{"images":[${parts.join(',')}],"first":${JSON.stringify(query ? `/v2/images?${query}` : '/v2/images')},"schema":"/v2/schemas/images"`;
    if (keys.length && keys.length === q.params.limit) {
      params.set('marker', keys[keys.length - 1].id);
      out += `,"next":${JSON.stringify(`/v2/images?${params.toString()}`)}`;
    }
    return reply.type('application/json').send(`${out}}`);
  } });

  rows.push({ method: 'GET', path: '/images/:id', response: { 200: imageResponse }, errors: [], handler: async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const ctx = ctxOf(svc, req);
    const img = await loadImage(svc, ctx, req.params.id);
    ctx.enforceOnImage('get_image', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
    return render(img);
  } });

  rows.push({ method: 'PATCH', path: '/images/:id', errors: [409, 413], handler: async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const ctx = ctxOf(svc, req);
    const version = PATCH_TYPES[mediaType(req) ?? ''];
    if (!version) {
      throw new UnsupportedMediaType(`Invalid content type ${mediaType(req) ?? 'None'}`, { headers: { 'accept-patch': Object.keys(PATCH_TYPES).sort().join(', ') } });
    }
    const body = await jsonBody(req, bodyLimit);
    if (body === undefined) throw new BadRequest('Body expected in request.');
    const changes = parsePatch(schema, body, version);
    // Optimistic: apply the patch to what was read; if the image changed meanwhile, start over.
    for (let attempt = 0; ; attempt++) {
      const img = await loadImage(svc, ctx, req.params.id);
      const target = await imageTarget(svc, ctx, img);
      const updated = await applyPatch(svc, ctx, img, target, changes);
      if (!changes.length) return render(updated);
      updated.updated_at = nowIso();
      if (await svc.repo.save(img, updated)) return render({ ...updated, revision: img.revision + 1 });
      await contended(img.id, attempt);
    }
  } });

  rows.push({ method: 'DELETE', path: '/images/:id', errors: [], handler: async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const notFound = `Failed to find image ${req.params.id} to delete`;
    const img = await loadImage(svc, ctx, req.params.id, notFound);
    ctx.enforceOnImage('delete_image', await imageTarget(svc, ctx, img), notFound);
    if (img.protected) throw new Forbidden(`Image ${img.id} is protected and cannot be deleted.`);
    await deleteImage(svc, img.id);
    return reply.code(204).send();
  } });

  rows.push({ method: 'PUT', path: '/images/:id/tags/:tag', errors: [413], handler: async (req: FastifyRequest<{ Params: { id: string; tag: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const img = await loadImage(svc, ctx, req.params.id);
    ctx.enforceOnImage('modify_image', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
    const tag = req.params.tag;
    assertValid(schema, { tags: [tag] });
    for (let cur = img, attempt = 0; !cur.tags.includes(tag); attempt++) {
      if (cur.tags.length + 1 > svc.limits.tags) throw tagLimit(cur.tags.length + 1, svc.limits.tags);
      if (await svc.repo.save(cur, { ...cur, tags: [...cur.tags, tag], updated_at: nowIso() })) break;
      await contended(img.id, attempt);
      cur = await loadImage(svc, ctx, img.id);
    }
    return reply.code(204).send();
  } });

  rows.push({ method: 'DELETE', path: '/images/:id/tags/:tag', errors: [], handler: async (req: FastifyRequest<{ Params: { id: string; tag: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const img = await loadImage(svc, ctx, req.params.id);
    ctx.enforceOnImage('modify_image', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
    for (let cur = img, attempt = 0; ; attempt++) {
      if (!cur.tags.includes(req.params.tag)) throw new NotFound(`Tag ${req.params.tag} not found`);
      if (await svc.repo.save(cur, { ...cur, tags: cur.tags.filter((t) => t !== req.params.tag), updated_at: nowIso() })) break;
      await contended(img.id, attempt);
      cur = await loadImage(svc, ctx, img.id);
    }
    return reply.code(204).send();
  } });

  rows.push({ method: 'POST', path: '/images/:id/actions/deactivate', errors: [409], handler: async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const img = await loadImage(svc, ctx, req.params.id);
    ctx.enforceOnImage('deactivate', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
    if (img.status === 'deactivated') return reply.code(204).send();
    if (img.status !== 'active') throw new Forbidden(`Not allowed to deactivate image in status '${img.status}'`);
    if (!(await svc.repo.transition(img.id, 'active', 'deactivated'))) throw new Conflict(`Image ${img.id} changed status meanwhile; retry.`);
    return reply.code(204).send();
  } });

  rows.push({ method: 'POST', path: '/images/:id/actions/reactivate', errors: [409], handler: async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const img = await loadImage(svc, ctx, req.params.id);
    ctx.enforceOnImage('reactivate', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
    if (img.status === 'active') return reply.code(204).send();
    if (img.status !== 'deactivated') throw new Forbidden(`Not allowed to reactivate image in status '${img.status}'`);
    if (!(await svc.repo.transition(img.id, 'deactivated', 'active'))) throw new Conflict(`Image ${img.id} changed status meanwhile; retry.`);
    return reply.code(204).send();
  } });
  return rows;
}

/** Another request changed the image first: wait a little (jittered) and retry, up to a point. */
async function contended(id: string, attempt: number): Promise<void> {
  if (attempt >= 30) throw new Conflict(`Image ${id} is being changed by other requests; retry.`);
  await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 3)));
}

function directUrl(svc: ImageService, img: Image): string | undefined {
  const loc = img.locations[0];
  const store = loc && svc.stores.get(loc.store);
  return store ? `file://${store.absolute(loc.path)}` : undefined;
}

/** The list's per-image policy target: no member lookup (the query already applied sharing). */
function listTarget(ctx: RequestCtx, k: ListKey): Record<string, unknown> {
  return { id: k.id, visibility: k.visibility, owner: k.owner, project_id: k.owner, member_id: k.visibility === 'shared' && k.owner !== ctx.projectId ? ctx.projectId : undefined };
}

/** Rendered images (JSON text) by id, valid while the image's revision is unchanged. */
export class RenderCache {
  private readonly entries = new Map<string, { revision: number; json: string }>();
  constructor(private readonly max = 20_000) {}

  async render(keys: ListKey[], load: (ids: string[]) => Promise<(readonly [string, string])[]>): Promise<string[]> {
    const misses = keys.filter((k) => this.entries.get(k.id)?.revision !== k.revision);
    if (misses.length) {
      const rendered = new Map(await load(misses.map((k) => k.id)));
      for (const k of misses) {
        const json = rendered.get(k.id);
        this.entries.delete(k.id);
        if (json === undefined) continue; // deleted meanwhile
        this.entries.set(k.id, { revision: k.revision, json });
        if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
      }
    }
    const out: string[] = [];
    for (const k of keys) {
      const e = this.entries.get(k.id);
      // An image changed between the two queries renders at its newer revision: still correct.
      if (e) out.push(e.json);
    }
    return out;
  }
}

// --- create ---------------------------------------------------------------------------------------

export async function createImage(svc: ImageService, ctx: RequestCtx, schema: Schema, body: Record<string, unknown>): Promise<Image> {
  for (const k of ['direct_url', 'self', 'file', 'schema', 'stores']) {
    if (k in body) throw new Forbidden(`Attribute '${k}' is read-only.`);
  }
  assertValid(schema, body);
  for (const k of ['created_at', 'updated_at', 'status', 'checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size']) {
    if (k in body) throw new Forbidden(`Attribute '${k}' is read-only.`);
  }
  if ('locations' in body) throw new Forbidden(`Attribute 'locations' is reserved.`);
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) {
    if (BASE_ATTRIBUTES.has(k) || k === 'locations') continue;
    if (k.length > 255) throw new BadRequest('Custom property should not be greater than 255 characters.');
    if (RESERVED_ATTRIBUTES.has(k) || k.startsWith(RESERVED_NAMESPACE)) throw new Forbidden(`Attribute '${k}' is reserved.`);
    properties[k] = v as string;
  }
  const owner = (body.owner as string | null | undefined) ?? ctx.projectId ?? null;
  const visibility = (body.visibility as string | undefined) ?? 'shared';
  const target = { project_id: owner, owner, visibility };
  if (!ctx.check('add_image', target)) {
    if (owner !== ctx.projectId) throw new Forbidden(`You are not permitted to create images owned by '${owner}'.`);
    ctx.enforce('add_image', target);
  }
  enforceVisibility(ctx, visibility, target);
  const tags = [...new Set((body.tags as string[] | undefined) ?? [])];
  if (tags.length > svc.limits.tags) throw tagLimit(tags.length, svc.limits.tags);
  if (Object.keys(properties).length > svc.limits.properties) throw propertyLimit(Object.keys(properties).length, svc.limits.properties);
  const ts = nowIso();
  const img: Image = {
    id: (body.id as string | undefined) ?? randomUUID(),
    name: (body.name as string | null | undefined) ?? null,
    disk_format: (body.disk_format as string | null | undefined) ?? null,
    container_format: (body.container_format as string | null | undefined) ?? null,
    size: null, virtual_size: null, status: 'queued', visibility,
    checksum: null, os_hash_algo: null, os_hash_value: null,
    min_disk: intAttr('min_disk', body.min_disk), min_ram: intAttr('min_ram', body.min_ram),
    protected: (body.protected as boolean | undefined) ?? false,
    os_hidden: (body.os_hidden as boolean | undefined) ?? false,
    owner, created_at: ts, updated_at: ts, properties, tags, locations: [], revision: 0,
  };
  await svc.checkImageCount(owner);
  await svc.repo.create(img);
  return img;
}

function enforceVisibility(ctx: RequestCtx, visibility: string, target: Record<string, unknown>): void {
  if (visibility === 'public') ctx.enforce('publicize_image', target);
  if (visibility === 'community') ctx.enforce('communitize_image', target);
}

function intAttr(name: string, v: unknown): number {
  if (v === undefined || v === null) return 0;
  const n = v as number;
  if (n < 0) throw new BadRequest(`Cannot set ${name} to a negative value.`);
  if (n > MAX_INT) throw new BadRequest(`${name} must be at most ${MAX_INT}.`);
  return n;
}

const tagLimit = (attempted: number, max: number) =>
  new QuotaExceeded(`The limit has been exceeded on the number of allowed image tags. Attempted: ${attempted}, Maximum: ${max}`);
const propertyLimit = (attempted: number, max: number) =>
  new QuotaExceeded(`The limit has been exceeded on the number of allowed image properties. Attempted: ${attempted}, Maximum: ${max}`);

// --- list -----------------------------------------------------------------------------------------

interface ParsedList { params: { filters: ListFilters; sortKeys: string[]; sortDirs: ('asc' | 'desc')[]; limit: number; marker?: Image }; markerId?: string }

/** All values of a query parameter (fastify keeps repeated ones as arrays). */
function all(q: Record<string, unknown>, k: string): string[] {
  const v = q[k];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function one(q: Record<string, unknown>, k: string): string | undefined {
  const a = all(q, k);
  return a.length ? a[a.length - 1] : undefined;
}

/** `in:a,"b,c"` → ['a', 'b,c']; a plain value → [value]. */
function inList(v: string): string[] {
  if (!v.startsWith('in:')) return [v];
  const out: string[] = [];
  const s = v.slice(3);
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '"') { quoted = !quoted; continue; }
    if (ch === ',' && !quoted) { out.push(cur); cur = ''; continue; }
    cur += ch;
  }
  if (quoted) throw new BadRequest(`Invalid in: value ${v}: unbalanced quotes.`);
  out.push(cur);
  return out;
}

/** `gt:2024-01-01T00:00:00Z` and friends; the time is kept at second precision (as shown). */
function timeFilter(key: string, values: string[]): Cmp[] {
  return values.map((raw) => {
    const m = /^([a-z]+):(.+)$/.exec(raw);
    if (m && !['eq', 'neq', 'gt', 'gte', 'lt', 'lte'].includes(m[1])) throw new BadRequest(`Unable to filter by unknown operator '${m[1]}'.`);
    const op = (m ? m[1] : 'eq') as Op;
    const value = m ? m[2] : raw;
    const d = new Date(value);
    if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) throw new BadRequest(`Unable to filter on ${key}: '${value}' is not an ISO 8601 time.`);
    return { op, value: d.toISOString().slice(0, 19) };
  });
}

function parseListQuery(svc: ImageService, req: FastifyRequest): ParsedList {
  const q = req.query as Record<string, unknown>;
  const limitRaw = one(q, 'limit');
  let limit = svc.config.get<number>('DEFAULT', 'limit_param_default');
  if (limitRaw !== undefined) {
    if (!/^-?\d+$/.test(limitRaw)) throw new BadRequest('limit param must be an integer');
    const n = Number(limitRaw);
    if (n < 0) throw new BadRequest('limit param must be positive');
    limit = n;
  }
  limit = Math.min(limit, svc.config.get<number>('DEFAULT', 'api_limit_max'));
  const memberStatus = one(q, 'member_status') ?? 'accepted';
  if (!['pending', 'accepted', 'rejected', 'all'].includes(memberStatus)) throw new BadRequest(`Invalid status: ${memberStatus}`);
  const visibility = one(q, 'visibility');
  if (visibility && !['community', 'public', 'private', 'shared', 'all'].includes(visibility)) throw new BadRequest(`Invalid visibility value: ${visibility}`);
  if (one(q, 'changes-since') !== undefined) throw new BadRequest('The "changes-since" filter is no longer available on v2.');
  const osHidden = (one(q, 'os_hidden') ?? 'false').toLowerCase();
  if (!['true', 'false'].includes(osHidden)) throw new BadRequest(`Invalid value '${osHidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'.`);
  const prot = one(q, 'protected');
  if (prot !== undefined && !['true', 'false'].includes(prot)) throw new BadRequest(`Invalid value '${prot}' for 'protected' filter. Valid values are 'true' or 'false'.`);
  const size = (k: string) => {
    const v = one(q, k);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new BadRequest('Unable to filter on a range with a non-numeric value.');
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new BadRequest(`Unable to filter on ${k}: ${v} is out of range.`);
    return n;
  };

  // Sorting: classic sort_key/sort_dir (repeatable) or sort=k:dir,k2:dir2, never both.
  const sortKeys: string[] = [];
  const sortDirs: ('asc' | 'desc')[] = [];
  const validKey = (k: string) => {
    if (!SORT_KEYS.includes(k)) throw new BadRequest(`Invalid sort key: ${k}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
    return k;
  };
  const validDir = (d: string) => {
    if (d !== 'asc' && d !== 'desc') throw new BadRequest(`Invalid sort direction: ${d}`);
    return d;
  };
  if (q.sort !== undefined) {
    if (q.sort_key !== undefined || q.sort_dir !== undefined) throw new BadRequest('Old and new sorting syntax cannot be combined');
    for (const part of (one(q, 'sort') ?? '').trim().split(',')) {
      const [k, d] = part.split(':');
      sortKeys.push(validKey(k.trim()));
      sortDirs.push(validDir((d ?? 'desc').trim() || 'desc'));
    }
  } else {
    for (const k of all(q, 'sort_key')) sortKeys.push(validKey(k.trim()));
    for (const d of all(q, 'sort_dir')) sortDirs.push(validDir(d.trim()));
    if (sortDirs.length > 1 && sortDirs.length !== sortKeys.length) throw new BadRequest('Number of sort dirs does not match the number of sort keys');
  }
  if (!sortKeys.length) sortKeys.push('created_at');
  if (!sortDirs.length) sortDirs.push('desc');
  while (sortDirs.length < sortKeys.length) sortDirs.push(sortDirs[0]);

  const reserved = new Set(['limit', 'marker', 'member_status', 'visibility', 'os_hidden', 'protected', 'sort', 'sort_key', 'sort_dir',
    'size', 'size_min', 'size_max', 'tag', 'name', 'id', 'status', 'disk_format', 'container_format', 'owner', 'created_at', 'updated_at', 'changes-since']);
  const properties: Record<string, string[]> = {};
  for (const k of Object.keys(q)) if (!reserved.has(k)) properties[k] = inList(one(q, k)!);
  const list = (k: string) => { const v = one(q, k); return v === undefined ? undefined : inList(v); };

  const filters: ListFilters = {
    visibility: visibility as ListFilters['visibility'],
    memberStatus: memberStatus as ListFilters['memberStatus'],
    name: list('name'), id: list('id'), status: list('status'), disk_format: list('disk_format'),
    container_format: list('container_format'), owner: list('owner'),
    // `size=N` is an exact match on the core column, as in Glance (not a property filter).
    size_min: size('size') ?? size('size_min'), size_max: size('size') ?? size('size_max'),
    protected: prot === undefined ? undefined : prot === 'true',
    os_hidden: osHidden === 'true',
    tags: all(q, 'tag').map((t) => t.trim()),
    created_at: timeFilter('created_at', all(q, 'created_at')),
    updated_at: timeFilter('updated_at', all(q, 'updated_at')),
    properties,
  };
  return { params: { filters, sortKeys, sortDirs, limit }, markerId: one(q, 'marker') };
}

// --- patch ----------------------------------------------------------------------------------------

interface Change { op: 'add' | 'remove' | 'replace'; path: string[]; value?: unknown }

function parsePatch(schema: Schema, body: unknown, version: 4 | 10): Change[] {
  if (!Array.isArray(body)) throw new BadRequest('Request body must be a JSON array of operation objects.');
  const ops = ['add', 'remove', 'replace'] as const;
  return body.map((raw) => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new BadRequest('Operations must be JSON objects.');
    const r = raw as Record<string, unknown>;
    let op: Change['op'];
    let pointer: unknown;
    if (version === 10) {
      if (r.op === undefined) throw new BadRequest(`Unable to find \`op\` in JSON Schema change. It must be one of the following: ${ops.join(', ')}.`);
      if (!ops.includes(r.op as never)) throw new BadRequest(`Invalid operation: \`${String(r.op)}\`. It must be one of the following: ${ops.join(', ')}.`);
      op = r.op as Change['op'];
      if (r.path === undefined) throw new BadRequest("Unable to find 'path' in JSON Schema change");
      pointer = r.path;
    } else {
      const present = ops.filter((o) => o in r);
      if (present.length > 1) throw new BadRequest('Operation objects must contain only one member named "add", "remove", or "replace".');
      if (!present.length) throw new BadRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".');
      op = present[0];
      pointer = r[op];
    }
    if (typeof pointer !== 'string') throw new BadRequest(`Pointer \`${String(pointer)}\` does not start with "/".`);
    const path = decodePointer(pointer);
    const depth = path[0] === 'locations' ? ({ add: 2, remove: 2, replace: 1 } as const)[op] : 1;
    if (path.length !== depth) throw new BadRequest(`Invalid JSON pointer for this resource: '/${path.join('/')}'`);
    const change: Change = { op, path };
    if (op !== 'remove') {
      if (!('value' in r)) throw new BadRequest(`Operation "${op}" requires a member named "value".`);
      change.value = r.value;
    }
    const root = path[0];
    if (READONLY_ATTRIBUTES.has(root)) throw new Forbidden(`Attribute '${root}' is read-only.`);
    if (RESERVED_ATTRIBUTES.has(root) || root.startsWith(RESERVED_NAMESPACE)) throw new Forbidden(`Attribute '${root}' is reserved.`);
    if (op !== 'remove' && root !== 'locations') assertValid(schema, { [root]: change.value });
    if (root.length > 255) throw new BadRequest('Custom property should not be greater than 255 characters.');
    return change;
  });
}

function decodePointer(p: string): string[] {
  if (!p.startsWith('/')) throw new BadRequest(`Pointer \`${p}\` does not start with "/".`);
  if (/\/\s*?\//.test(p.slice(1))) throw new BadRequest(`Pointer \`${p}\` contains adjacent "/".`);
  if (p.length > 1 && p.endsWith('/')) throw new BadRequest(`Pointer \`${p}\` end with "/".`);
  if (p.slice(1).trim() === '/' || p === '/') throw new BadRequest(`Pointer \`${p}\` does not contains valid token.`);
  if (/~[^01]/.test(p) || p.endsWith('~')) throw new BadRequest(`Pointer \`${p}\` contains "~" not part of a recognized escape sequence.`);
  return p.replace(/^\//, '').split('/').map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~').trim());
}

async function applyPatch(svc: ImageService, ctx: RequestCtx, img: Image, target: Record<string, unknown>, changes: Change[]): Promise<Image> {
  const next: Image = { ...img, properties: { ...img.properties }, tags: [...img.tags] };
  const notFound = `No image found with ID ${img.id}`;
  for (const c of changes) {
    const root = c.path[0];
    if (root === 'locations') {
      ctx.enforceOnImage(c.op === 'remove' ? 'delete_image_location' : 'set_image_location', target, notFound);
      throw new Forbidden(`It's not allowed to ${c.op === 'add' ? 'add' : c.op === 'remove' ? 'remove' : 'update'} locations if locations are invisible.`);
    }
    if (root === 'visibility' && c.op !== 'remove') enforceVisibility(ctx, c.value as string, target);
    if (root === 'owner' && c.op === 'replace' && !ctx.isAdmin) throw new Forbidden("Owner can't be updated by non admin.");
    ctx.enforceOnImage('modify_image', target, notFound);
    const isBase = BASE_ATTRIBUTES.has(root);
    if (c.op === 'remove') {
      if (isBase) throw new Forbidden(`Property ${root} may not be removed.`);
      if (!(root in next.properties)) throw new Conflict(`Property ${root} does not exist.`);
      delete next.properties[root];
      continue;
    }
    if (!isBase && c.op === 'replace' && !(root in next.properties)) throw new Conflict(`Property ${root} does not exist.`);
    if (!isBase) { next.properties[root] = c.value as string; continue; }
    setBase(next, img, root, c.value);
  }
  const nProps = Object.keys(next.properties).length;
  if (nProps > svc.limits.properties && nProps > Object.keys(img.properties).length) throw propertyLimit(nProps, svc.limits.properties);
  if (next.tags.length > svc.limits.tags && next.tags.length > img.tags.length) throw tagLimit(next.tags.length, svc.limits.tags);
  return next;
}

function setBase(next: Image, orig: Image, key: string, value: unknown): void {
  switch (key) {
    case 'disk_format':
    case 'container_format':
      if (orig.status !== 'queued' && value !== orig[key]) throw new Forbidden(`Attribute ${key} can be only replaced for a queued image.`);
      next[key] = value as string | null;
      return;
    case 'name': next.name = value as string | null; return;
    case 'visibility': next.visibility = value as string; return;
    case 'protected': next.protected = value as boolean; return;
    case 'os_hidden': next.os_hidden = value as boolean; return;
    case 'min_disk': next.min_disk = intAttr('min_disk', value); return;
    case 'min_ram': next.min_ram = intAttr('min_ram', value); return;
    case 'owner': next.owner = value as string | null; return;
    case 'tags': next.tags = [...new Set(value as string[])]; return;
    default: throw new Forbidden(`Attribute '${key}' is read-only.`);
  }
}

// --- delete ---------------------------------------------------------------------------------------

export async function deleteImage(svc: ImageService, id: string): Promise<void> {
  const locs = await svc.repo.markDeleted(id);
  if (!locs) throw new NotFound(`Failed to find image ${id} to delete`);
  for (const loc of locs) {
    const store = svc.stores.get(loc.store);
    if (store) await store.delete(loc.path).catch((e) => svc.logger.error({ err: e, image: id }, 'could not delete image data'));
  }
  const staged = await svc.database.db.selectFrom('image_staging').selectAll().where('image_id', '=', id).executeTakeFirst();
  if (staged) {
    await svc.staging.delete(staged.path).catch((e) => svc.logger.error({ err: e, image: id }, 'could not delete staged image data'));
    await svc.database.db.deleteFrom('image_staging').where('image_id', '=', id).execute();
  }
}

export type { FastifyReply };
