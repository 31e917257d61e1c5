// Helpers every Image API module uses: the caller's context, ids, bodies, image targets.
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { BadRequest, NotFound, PayloadTooLarge, Unauthorized } from '../../common/errors.ts';
import { RequestCtx } from '../policy.ts';
import type { ImageService } from '../service.ts';
import type { Image } from '../model.ts';
import { UUID_RE } from './schemas.ts';
import { parseJsonBody } from '../../common/http/json.ts';

export function ctxOf(svc: ImageService, req: FastifyRequest): RequestCtx {
  if (!req.auth) throw new Unauthorized('The request you have made requires authentication.');
  return new RequestCtx(req.auth, svc.policy, req.id);
}

export function isUuid(id: string): boolean {
  return UUID_RE.test(id);
}

/** Loads an image the caller may see, or answers 404 with Glance's message. */
export async function loadImage(svc: ImageService, ctx: RequestCtx, id: string, message = `No image found with ID ${id}`): Promise<Image> {
  if (!isUuid(id)) throw new NotFound(message);
  const img = await svc.repo.get(id, { projectId: ctx.projectId, isAdmin: ctx.isAdmin });
  if (!img) throw new NotFound(message);
  return img;
}

/**
 * The policy target of an image, as Glance's ImageTarget builds it: user properties are visible
 * to rules, but only under names that are not the image's own attributes — the core attributes
 * are written last, so a property named `project_id`, `owner` or `member_id` can never stand in
 * for them (a property `project_id = <B>` would otherwise let project B patch and delete).
 */
export async function imageTarget(svc: ImageService, ctx: RequestCtx, img: Image): Promise<Record<string, unknown>> {
  let memberId: string | undefined;
  if (ctx.projectId && img.owner !== ctx.projectId && img.visibility === 'shared') {
    const m = await svc.repo.member(img.id, ctx.projectId);
    if (m) memberId = m.member;
  }
  return {
    ...img.properties,
    id: img.id, image_id: img.id, name: img.name, status: img.status, visibility: img.visibility, protected: img.protected,
    os_hidden: img.os_hidden, disk_format: img.disk_format, container_format: img.container_format, size: img.size,
    virtual_size: img.virtual_size, checksum: img.checksum, os_hash_algo: img.os_hash_algo, os_hash_value: img.os_hash_value,
    min_disk: img.min_disk, min_ram: img.min_ram, created_at: img.created_at, updated_at: img.updated_at, tags: img.tags,
    owner: img.owner, project_id: img.owner, member_id: memberId, member: memberId,
  };
}

/**
 * The JSON body of a request. Glance does not insist on a JSON content type, so a body that
 * came in under another type (kept as a raw stream by the catch-all parser) is read and parsed
 * here, with the same size limit.
 */
export async function jsonBody(req: FastifyRequest, limit: number): Promise<unknown> {
  const body = req.body;
  if (typeof body === 'string') {
    const parsed = parseJsonBody(body);
    if (hasNul(parsed)) throw new BadRequest('Invalid input: strings may not contain NUL characters.');
    return parsed;
  }
  if (!(body instanceof Readable)) return body;
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) throw new PayloadTooLarge('Request Entity Too Large: the request body is larger than the limit.');
    chunks.push(c as Buffer);
  }
  const parsed = parseJsonBody(Buffer.concat(chunks).toString('utf8'));
  if (hasNul(parsed)) throw new BadRequest('Invalid input: strings may not contain NUL characters.');
  return parsed;
}

export function requireObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) throw new BadRequest('Body expected in request.');
  if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('Request body must be a JSON object.');
  return body as Record<string, unknown>;
}

/** The media type of a request, without parameters, lower-cased. */
export function mediaType(req: FastifyRequest): string | undefined {
  const ct = req.headers['content-type'];
  return ct ? ct.split(';')[0].trim().toLowerCase() : undefined;
}

/** True when a JSON value holds a NUL character in a string or key (PostgreSQL cannot store it). */
export function hasNul(v: unknown): boolean {
  // An explicit stack: the value is a client's, at any depth the parser let through.
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x === 'string') { if (x.includes('\u0000')) return true; }
    else if (Array.isArray(x)) { for (const y of x) stack.push(y); }
    else if (x && typeof x === 'object' && !(x instanceof Readable)) {
      for (const [k, y] of Object.entries(x as Record<string, unknown>)) {
        if (k.includes('\u0000')) return true;
        stack.push(y);
      }
    }
  }
  return false;
}

/** A preHandler: NUL characters in ids, query strings or JSON bodies are a 400, never a 500. */
export async function refuseNul(req: FastifyRequest): Promise<void> {
  if (hasNul(req.params) || hasNul(req.query) || hasNul(req.body)) {
    throw new BadRequest('Invalid input: strings may not contain NUL characters.');
  }
}
