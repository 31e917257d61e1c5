// Image data: PUT …/file (upload), GET …/file (download, with Range), PUT …/stage (interoperable
// import, step one). Uploads stream through ingest(): whatever happens, the request never leaves
// the image in `saving`, and nothing but a complete, accepted file is ever committed.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRow } from './rows.ts';
import { Readable } from 'node:stream';
import { BadRequest, Conflict, Forbidden, Gone, RangeNotSatisfiable, StratusError, UnsupportedMediaType } from '../../common/errors.ts';
import type { ImageService } from '../service.ts';
import { QuotaExceeded } from '../service.ts';
import type { RequestCtx } from '../policy.ts';
import { ImageInspection } from '../../common/format/index.ts';
import { ingest, drain, ClientDisconnected, type IngestResult } from '../store/ingest.ts';
import { transitionMessage, nowIso, type Image } from '../model.ts';
import { ctxOf, imageTarget, loadImage, mediaType } from './common.ts';
import { rm } from 'node:fs/promises';

/** Refuses anything but application/octet-stream before the body is read. */
async function octetStreamOnly(req: FastifyRequest): Promise<void> {
  const t = mediaType(req);
  if (t !== 'application/octet-stream') throw new UnsupportedMediaType(`Invalid content type ${t ?? 'None'}`);
}

export function dataRows(svc: ImageService): ImageRow[] {
  const rows: ImageRow[] = [];
  rows.push({ method: 'PUT', path: '/images/:id/file', errors: [409, 410, 413], beforeBody: octetStreamOnly, handler: async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const img = await loadImage(svc, ctx, req.params.id);
    const target = await imageTarget(svc, ctx, img);
    ctx.enforceOnImage('upload_image', target, `No image found with ID ${img.id}`);
    await upload(svc, ctx, img, req, 'file');
    return reply.code(204).send();
  } });

  rows.push({ method: 'PUT', path: '/images/:id/stage', errors: [409, 410, 413], beforeBody: octetStreamOnly, handler: async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    if (!svc.importMethods.includes('glance-direct')) throw new StratusError404('The resource could not be found.');
    const img = await loadImage(svc, ctx, req.params.id);
    ctx.enforceOnImage('modify_image', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
    await upload(svc, ctx, img, req, 'stage');
    return reply.code(204).send();
  } });

  rows.push({ method: 'GET', path: '/images/:id/file', errors: [416], handler: async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => download(svc, req, reply) });
  return rows;
}

class StratusError404 extends StratusError { override readonly status = 404; }

function contentLength(req: FastifyRequest): number | undefined {
  const h = req.headers['content-length'];
  if (h === undefined || req.headers['transfer-encoding']) return undefined;
  return /^\d+$/.test(h) ? Number(h) : undefined;
}

/**
 * The upload state machine. `file`: queued → saving → active (or back to queued). `stage`:
 * queued → uploading, the data kept in the staging area for a later glance-direct import.
 */
async function upload(svc: ImageService, ctx: RequestCtx, img: Image, req: FastifyRequest, kind: 'file' | 'stage'): Promise<void> {
  const source = req.body as Readable;
  const refuse = (e: unknown): never => { drain(source); throw e; };
  if (!(source instanceof Readable)) throw new BadRequest('Image data expected in the request body.');
  const working = kind === 'file' ? 'saving' : 'uploading';
  if (img.status !== 'queued') refuse(new Conflict(transitionMessage(img.status, working)));
  if (!img.disk_format || !img.container_format) {
    refuse(new BadRequest('Properties disk_format, container_format must be set prior to saving data.'));
  }
  const declared = contentLength(req);
  try {
    await svc.checkUploading(img.owner);
  } catch (e) { refuse(e); }
  const cap = svc.limits.sizeCap;
  const remaining = kind === 'file'
    ? await svc.remainingStorage(img.owner)
    : Math.max(0, svc.limits.stageTotalBytes - (img.owner ? await svc.repo.stagedBytes(img.owner) : 0));
  const overLimit = (n: number): StratusError => (n > cap
    ? new QuotaExceeded(`The incoming image is too large: ${n} bytes exceed the image size cap of ${cap} bytes`)
    : new QuotaExceeded(`Image exceeds the storage quota: The size of the data ${n} will exceed the limit. ${remaining} bytes remaining.`));
  if (declared !== undefined && declared > Math.min(cap, remaining)) refuse(overLimit(declared));

  let store = kind === 'file' ? svc.defaultStore : svc.staging;
  const wanted = req.headers['x-image-meta-store'];
  if (kind === 'file' && svc.multiStore && typeof wanted === 'string') {
    const s = svc.stores.get(wanted);
    if (!s) refuse(new BadRequest(`Store for identifier ${wanted} not found`));
    store = s!;
  }

  if (!(await svc.repo.transition(img.id, 'queued', working, svc.uploadMarks()))) {
    const now = await svc.repo.getRow(img.id);
    refuse(new Conflict(transitionMessage(now?.status ?? 'deleted', working)));
  }
  const stopHeartbeat = svc.heartbeat(img.id);
  let result: IngestResult | undefined;
  try {
    result = await ingest(source, {
      store, imageId: img.id, maxBytes: Math.min(cap, remaining), overLimit, hashAlgo: svc.hashAlgo, expectedSize: declared,
      inspection: kind === 'file' ? inspectionFor(svc, img) : undefined,
    });
    if (result.verdict?.errors.length) throw new BadRequest(result.verdict.errors.join('; '));
    const rel = await store.commit(result.tmpPath, img.id);
    result.tmpPath = '';
    const done = kind === 'file'
      ? await svc.repo.activate(img.id, 'saving', {
          size: result.size, virtual_size: result.verdict?.virtualSize ?? result.size, checksum: result.checksum,
          os_hash_algo: svc.config.get<string>('DEFAULT', 'hashing_algorithm'), os_hash_value: result.hashValue,
        }, { image_id: img.id, store: store.id, path: rel, created_at: nowIso() })
      : await svc.repo.staged(img.id, { image_id: img.id, owner: img.owner, path: rel, size: result.size, created_at: nowIso() });
    if (!done) {
      await store.delete(rel);
      throw new Gone(`Image ${img.id} could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded.`);
    }
    if (result.verdict) req.log.info({ image: img.id, format: result.verdict.detected, size: result.size, details: result.verdict.details }, 'image data accepted');
  } catch (e) {
    if (result?.tmpPath) await rm(result.tmpPath, { force: true }).catch((err) => req.log.warn({ err, image: img.id, path: result?.tmpPath }, 'could not remove the temporary file of a failed upload'));
    await svc.repo.transition(img.id, working, 'queued', { upload_owner: null, upload_heartbeat: null });
    if (e instanceof ClientDisconnected) req.log.info({ image: img.id, err: e.message }, 'upload interrupted; image back to queued');
    else drain(source);
    throw e;
  } finally {
    stopHeartbeat();
  }
}

export function inspectionFor(svc: ImageService, img: Image): ImageInspection {
  return new ImageInspection({
    declared: img.disk_format, containerFormat: img.container_format,
    requireMatch: svc.config.get<boolean>('image_format', 'require_image_format_match'),
    vmdkAllowedTypes: svc.config.get<string[]>('image_format', 'vmdk_allowed_types'),
  });
}

// --- download -------------------------------------------------------------------------------------

async function download(svc: ImageService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
  const ctx = ctxOf(svc, req);
  const img = await loadImage(svc, ctx, req.params.id);
  ctx.enforceOnImage('download_image', await imageTarget(svc, ctx, img), `No image found with ID ${img.id}`);
  if (img.status === 'deactivated' && !ctx.isAdmin) throw new Forbidden('The requested image has been deactivated. Image data download is forbidden.');
  const loc = img.locations.find((l) => l.store === svc.defaultStore.id) ?? img.locations[0];
  if (!loc || img.size === null) return reply.code(204).send();
  const store = svc.stores.get(loc.store);
  const actual = store ? await store.size(loc.path) : undefined;
  if (!store || actual === undefined) {
    req.log.error({ image: img.id, store: loc.store, path: loc.path }, 'image data missing from its store');
    return reply.code(204).send();
  }
  const size = img.size;
  const range = parseRange(req, size);
  reply.header('content-type', 'application/octet-stream');
  if (range) {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', range.end - range.start + 1);
  } else {
    if (img.checksum) reply.header('content-md5', img.checksum);
    reply.header('content-length', size);
    if (size === 0) return reply.send('');
  }
  // The store writes to the socket itself (it reuses its buffers once the socket has taken
  // them, which a stream handed to reply.send cannot know); onResponse hooks still run.
  reply.hijack();
  reply.raw.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | number | string[]>);
  const { start, end } = range ?? { start: 0, end: size - 1 };
  try {
    const mode = await store.send(loc.path, reply.raw, start, end);
    reply.raw.end();
    req.log.debug({ image: img.id, bytes: end - start + 1, read: mode }, 'image data sent');
  } catch (e) {
    // The status line is gone: all that is left is to cut the connection short of Content-Length.
    if (!reply.raw.destroyed) req.log.error({ image: img.id, err: (e as Error).message }, 'image download failed');
    else req.log.info({ image: img.id }, 'download interrupted by the client');
    reply.raw.destroy();
  }
}

/**
 * One `Range: bytes=a-b` (or the `Content-Range: bytes a-b/*` form Glance also reads). Multiple
 * or unparseable ranges are ignored (the whole image is sent); unsatisfiable ones get 416.
 */
export function parseRange(req: FastifyRequest, size: number): { start: number; end: number } | undefined {
  const unsatisfiable = () => new RangeNotSatisfiable(`Requested range not satisfiable: the image is ${size} bytes.`, { headers: { 'content-range': `bytes */${size}` } });
  const r = req.headers.range;
  let start: number;
  let end: number;
  if (typeof r === 'string') {
    const m = /^bytes=(\d*)-(\d*)$/.exec(r.trim());
    if (!m || (m[1] === '' && m[2] === '')) return undefined;
    if (m[1] === '') {
      const n = Number(m[2]);
      if (n === 0) throw unsatisfiable();
      start = Math.max(0, size - n);
      end = size - 1;
    } else {
      start = Number(m[1]);
      end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
      if (m[2] !== '' && Number(m[2]) < start) return undefined;
    }
  } else {
    const cr = req.headers['content-range'];
    const m = typeof cr === 'string' ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim()) : null;
    if (!m) return undefined;
    start = Number(m[1]);
    end = Math.min(Number(m[2]), size - 1);
    if (Number(m[2]) < start) return undefined;
  }
  if (start >= size) throw unsatisfiable();
  return { start, end };
}
