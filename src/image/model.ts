// The image as the service handles it, its status machine, and its API rendering.
import type { ImageRow, LocationRow } from './db/schema.ts';

/** An image row with real booleans, its properties, tags and locations, and no bookkeeping columns. */
export interface Image extends Omit<ImageRow, 'protected' | 'os_hidden' | 'deleted' | 'deleted_at' | 'upload_owner' | 'upload_heartbeat'> {
  protected: boolean;
  os_hidden: boolean;
  properties: Record<string, string>;
  tags: string[];
  locations: LocationRow[];
}

export const IMAGE_STATUSES = ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'] as const;

/** Glance's allowed status transitions (glance/domain). */
const TRANSITIONS: Record<string, string[]> = {
  queued: ['saving', 'uploading', 'importing', 'active', 'deleted'],
  saving: ['active', 'killed', 'deleted', 'queued'],
  uploading: ['importing', 'queued', 'deleted'],
  importing: ['active', 'deleted', 'queued'],
  active: ['pending_delete', 'deleted', 'deactivated', 'importing'],
  killed: ['deleted'],
  pending_delete: ['deleted'],
  deactivated: ['deleted', 'active'],
  deleted: [],
};

export function canTransition(from: string, to: string): boolean {
  return from === to || (TRANSITIONS[from] ?? []).includes(to);
}

export function transitionMessage(from: string, to: string): string {
  return `Image status transition from ${from} to ${to} is not allowed`;
}

/** Base attributes that are columns (everything else a client sends is a property). */
export const BASE_ATTRIBUTES = new Set([
  'id', 'name', 'disk_format', 'container_format', 'size', 'virtual_size', 'status', 'visibility', 'checksum',
  'os_hash_algo', 'os_hash_value', 'min_disk', 'min_ram', 'protected', 'os_hidden', 'owner', 'created_at', 'updated_at', 'tags',
]);
/** Attributes a client may never set (Glance answers 403 "Attribute 'x' is read-only."). */
export const READONLY_ATTRIBUTES = new Set([
  'created_at', 'updated_at', 'status', 'checksum', 'size', 'virtual_size', 'direct_url', 'self', 'file', 'schema', 'id',
  'os_hash_algo', 'os_hash_value', 'stores',
]);
/** Names kept for the service itself (403 "Attribute 'x' is reserved."). */
export const RESERVED_ATTRIBUTES = new Set(['location', 'deleted', 'deleted_at']);
export const RESERVED_NAMESPACE = 'os_glance';

export function rowToImage(r: ImageRow, properties: Record<string, string> = {}, tags: string[] = [], locations: LocationRow[] = []): Image {
  return {
    id: r.id,
    name: r.name,
    disk_format: r.disk_format,
    container_format: r.container_format,
    size: r.size === null ? null : Number(r.size),
    virtual_size: r.virtual_size === null ? null : Number(r.virtual_size),
    status: r.status,
    visibility: r.visibility,
    checksum: r.checksum,
    os_hash_algo: r.os_hash_algo,
    os_hash_value: r.os_hash_value,
    min_disk: Number(r.min_disk),
    min_ram: Number(r.min_ram),
    protected: Number(r.protected) === 1,
    os_hidden: Number(r.os_hidden) === 1,
    owner: r.owner,
    created_at: r.created_at,
    updated_at: r.updated_at,
    properties,
    tags,
    locations,
    revision: Number(r.revision ?? 0),
  };
}

/** Glance's isotime: seconds precision, Z suffix. */
export function isoSeconds(ts: string): string {
  return ts.length > 20 ? `${ts.slice(0, 19)}Z` : ts;
}

export function nowIso(): string {
  return new Date().toISOString();
}

export interface RenderOptions { multiStore: boolean; showDirectUrl?: (img: Image) => string | undefined }

/** The API view of an image, keys in Glance's order (properties first). */
export function renderImage(img: Image, opts: RenderOptions): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(img.properties)) view[k] = v;
  view.name = img.name;
  view.disk_format = img.disk_format;
  view.container_format = img.container_format;
  view.visibility = img.visibility;
  view.size = img.size;
  view.virtual_size = img.virtual_size;
  view.status = img.status;
  view.checksum = img.checksum;
  view.protected = img.protected;
  view.min_ram = img.min_ram;
  view.min_disk = img.min_disk;
  view.owner = img.owner;
  view.os_hidden = img.os_hidden;
  view.os_hash_algo = img.os_hash_algo;
  view.os_hash_value = img.os_hash_value;
  view.id = img.id;
  view.created_at = isoSeconds(img.created_at);
  view.updated_at = isoSeconds(img.updated_at);
  const direct = opts.showDirectUrl?.(img);
  if (direct) view.direct_url = direct;
  view.tags = img.tags;
  view.self = `/v2/images/${img.id}`;
  view.file = `/v2/images/${img.id}/file`;
  view.schema = '/v2/schemas/image';
  if (opts.multiStore && img.locations.length) view.stores = img.locations.map((l) => l.store).join(',');
  return view;
}
