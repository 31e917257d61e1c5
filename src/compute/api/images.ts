// The image proxy of the compute API (deprecated since 2.36, still used by clients and Tempest):
// list/show/delete images and their metadata, read through the image service with the caller's token.
import { BadRequest, NotFound, Forbidden, Conflict } from '../../common/errors.ts';
import { isoZ } from '../util.ts';
import { validate, P } from './validation.ts';
import { q1, type Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';

const CORE = new Set(['id', 'name', 'status', 'size', 'virtual_size', 'min_ram', 'min_disk', 'disk_format', 'container_format', 'owner', 'visibility', 'created_at', 'updated_at', 'protected', 'checksum', 'os_hash_algo', 'os_hash_value', 'file', 'schema', 'self', 'tags', 'direct_url', 'locations', 'os_hidden', 'stores', 'os_glance_failed_import', 'os_glance_importing_to_stores']);

function imageStatus(s: string): string {
  return ({ active: 'ACTIVE', queued: 'SAVING', saving: 'SAVING', importing: 'SAVING', uploading: 'SAVING', deleted: 'DELETED', pending_delete: 'DELETED', killed: 'ERROR', deactivated: 'ERROR' } as Record<string, string>)[s] ?? 'UNKNOWN';
}

function metadataOf(img: Record<string, unknown>): Record<string, string> {
  const md: Record<string, string> = {};
  for (const [k, v] of Object.entries(img)) if (!CORE.has(k) && v !== null && typeof v !== 'object') md[k] = String(v);
  return md;
}

function view(c: Ctx, img: any, detail: boolean) {
  const links = [
    { rel: 'self', href: `${c.api.publicUrl}/v2.1/images/${img.id}` },
    { rel: 'bookmark', href: `${c.api.publicUrl}/images/${img.id}` },
    { rel: 'alternate', type: 'application/vnd.openstack.image', href: `${c.api.publicUrl.replace(/\/compute$/, '/image')}/images/${img.id}` },
  ];
  if (!detail) return { id: img.id, name: img.name, links };
  const o: Record<string, unknown> = {
    id: img.id, name: img.name, minRam: img.min_ram ?? 0, minDisk: img.min_disk ?? 0, metadata: metadataOf(img),
    created: isoZ(img.created_at), updated: isoZ(img.updated_at), status: imageStatus(img.status), progress: img.status === 'active' ? 100 : 25,
    links, 'OS-EXT-IMG-SIZE:size': img.size ?? 0,
  };
  if (img.instance_uuid) o.server = { id: img.instance_uuid, links: c.link(`/servers/${img.instance_uuid}`) };
  return o;
}

async function getImage(c: Ctx, id: string) {
  const img = await c.api.images.get(c.auth.token, id, c.req.id);
  if (!img) throw new NotFound('Image not found.');
  return img;
}

async function list(c: Ctx, detail: boolean) {
  if (c.v.atLeast('2.36')) throw new NotFound('The resource could not be found.');
  const params = new URLSearchParams();
  const map: Record<string, string> = { name: 'name', status: 'status', 'changes-since': 'changes-since', server: 'property-instance_uuid', type: 'property-image_type', minRam: 'min_ram', minDisk: 'min_disk', limit: 'limit', marker: 'marker' };
  for (const [k, gk] of Object.entries(map)) {
    const v = q1(c.query, k);
    if (v === undefined) continue;
    if (k === 'status') params.set('status', v.toLowerCase());
    else if (k === 'server') params.set('instance_uuid', v.replace(/^.*\/servers\//, ''));
    else if (k === 'type') params.set('image_type', v);
    else if (k === 'minRam') params.set('min_ram', v);
    else if (k === 'minDisk') params.set('min_disk', v);
    else if (k === 'changes-since') params.set('updated_at', `gte:${new Date(v).toISOString().slice(0, 19)}Z`);
    else params.set(gk, v);
  }
  if (params.get('limit') && !/^\d+$/.test(params.get('limit')!)) throw new BadRequest('limit param must be an integer');
  const r = await c.api.images.request(c.auth.token, 'GET', `/v2/images?${params.toString()}`);
  if (r.status === 400) throw new BadRequest(r.body?.message ?? 'Invalid image filter');
  if (r.status !== 200) throw new BadRequest(`Image service answered ${r.status}`);
  let images = r.body.images as any[];
  const minRam = q1(c.query, 'minRam'); const minDisk = q1(c.query, 'minDisk');
  if (minRam) images = images.filter((i) => (i.min_ram ?? 0) >= Number(minRam));
  if (minDisk) images = images.filter((i) => (i.min_disk ?? 0) >= Number(minDisk));
  const body: Record<string, unknown> = { images: images.map((i) => view(c, i, detail)) };
  if (r.body.next && images.length) body.images_links = [{ rel: 'next', href: `${c.api.publicUrl}/v2.1/images${detail ? '/detail' : ''}?limit=${q1(c.query, 'limit') ?? images.length}&marker=${images[images.length - 1].id}` }];
  return body;
}

async function patchProps(c: Ctx, id: string, set: Record<string, string>, remove: string[]) {
  const ops = [
    ...Object.entries(set).map(([k, v]) => ({ op: 'add', path: `/${k}`, value: v })),
    ...remove.map((k) => ({ op: 'remove', path: `/${k}` })),
  ];
  const r = await c.api.images.request(c.auth.token, 'PATCH', `/v2/images/${id}`, ops, 'application/openstack-images-v2.1-json-patch');
  if (r.status === 403) throw new Forbidden(r.body?.message ?? 'You are not authorized to change this image.');
  if (r.status === 404) throw new NotFound('Image not found.');
  if (r.status === 409) throw new Conflict('Image is being modified.');
  if (r.status !== 200) throw new BadRequest(`Image service answered ${r.status}`);
  return r.body;
}

const mdSchema = { type: 'object', properties: { metadata: P.metadata }, required: ['metadata'], additionalProperties: false };
const guard = (c: Ctx) => { if (c.v.atLeast('2.36')) throw new NotFound('The resource could not be found.'); };

export const imageRoutes: ComputeRow[] = [
  { method: 'GET', path: '/images', errors: [], until: '2.35', handler: (c) => list(c, false) },
  { method: 'GET', path: '/images/detail', errors: [], until: '2.35', handler: (c) => list(c, true) },
  { method: 'GET', path: '/images/:id', errors: [], until: '2.35', handler: async (c) => ({ image: view(c, await getImage(c, c.params.id), true) }) },
  { method: 'DELETE', path: '/images/:id', errors: [409], until: '2.35', handler: async (c) => {
    guard(c);
    const r = await c.api.images.request(c.auth.token, 'DELETE', `/v2/images/${c.params.id}`);
    if (r.status === 404) throw new NotFound('Image not found.');
    if (r.status === 403) throw new Forbidden('You are not allowed to delete the image.');
    if (r.status === 409) throw new Conflict('Image is protected');
    return { status: 204 };
  } },
  { method: 'GET', path: '/images/:id/metadata', errors: [], until: '2.35', handler: async (c) => ({ metadata: metadataOf(await getImage(c, c.params.id)) }) },
  { method: 'POST', path: '/images/:id/metadata', errors: [], until: '2.35', handler: async (c) => {
    const md = validate(mdSchema, c.body).metadata;
    await getImage(c, c.params.id);
    return { metadata: metadataOf(await patchProps(c, c.params.id, md, [])) };
  } },
  { method: 'PUT', path: '/images/:id/metadata', errors: [], until: '2.35', handler: async (c) => {
    const md = validate(mdSchema, c.body).metadata;
    const img = await getImage(c, c.params.id);
    const remove = Object.keys(metadataOf(img)).filter((k) => !(k in md));
    return { metadata: metadataOf(await patchProps(c, c.params.id, md, remove)) };
  } },
  { method: 'GET', path: '/images/:id/metadata/:key', errors: [], until: '2.35', handler: async (c) => {
    const md = metadataOf(await getImage(c, c.params.id));
    if (!(c.params.key in md)) throw new NotFound('Image metadata not found.');
    return { meta: { [c.params.key]: md[c.params.key] } };
  } },
  { method: 'PUT', path: '/images/:id/metadata/:key', errors: [], until: '2.35', handler: async (c) => {
    const meta = validate({ type: 'object', properties: { meta: { ...P.metadata, minProperties: 1, maxProperties: 1 } }, required: ['meta'], additionalProperties: false }, c.body).meta;
    if (!(c.params.key in meta)) throw new BadRequest('Request body and URI mismatch');
    await getImage(c, c.params.id);
    await patchProps(c, c.params.id, meta, []);
    return { meta };
  } },
  { method: 'DELETE', path: '/images/:id/metadata/:key', errors: [], until: '2.35', handler: async (c) => {
    const md = metadataOf(await getImage(c, c.params.id));
    if (!(c.params.key in md)) throw new NotFound('Image metadata not found.');
    await patchProps(c, c.params.id, {}, [c.params.key]);
    return { status: 204 };
  } },
];
