// Response schemas of the Image API's main routes, for the route kit's rows: checked in tests
// against the captured responses of a real Zed (test/fixtures/reference/) and against Stratus's
// own. Images carry free-form properties (strings), so only the core attributes are typed.
import type { JsonSchema } from '../../common/http/route-kit.ts';

const nullable = (t: string) => ({ type: ['null', t] });
export const imageResponse: JsonSchema = {
  type: 'object',
  required: ['id', 'name', 'status', 'visibility', 'protected', 'os_hidden', 'checksum', 'owner', 'size', 'virtual_size', 'min_ram', 'min_disk',
    'disk_format', 'container_format', 'created_at', 'updated_at', 'tags', 'self', 'file', 'schema', 'os_hash_algo', 'os_hash_value'],
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' },
    name: nullable('string'), status: { enum: ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'] },
    visibility: { enum: ['public', 'private', 'shared', 'community'] }, protected: { type: 'boolean' }, os_hidden: { type: 'boolean' },
    checksum: nullable('string'), owner: nullable('string'), size: nullable('integer'), virtual_size: nullable('integer'),
    min_ram: { type: 'integer' }, min_disk: { type: 'integer' }, disk_format: nullable('string'), container_format: nullable('string'),
    created_at: { type: 'string', pattern: 'Z$' }, updated_at: { type: 'string', pattern: 'Z$' }, tags: { type: 'array', items: { type: 'string' } },
    self: { type: 'string' }, file: { type: 'string' }, schema: { const: '/v2/schemas/image' },
    os_hash_algo: nullable('string'), os_hash_value: nullable('string'), direct_url: { type: 'string' }, stores: { type: 'string' },
  },
  // Other keys are the image's properties: strings (Glance's schema says so too).
  additionalProperties: { type: 'string' },
};

export const imageListResponse: JsonSchema = {
  type: 'object', required: ['images', 'first', 'schema'], additionalProperties: false,
  properties: { images: { type: 'array', items: imageResponse }, first: { type: 'string' }, next: { type: 'string' }, schema: { const: '/v2/schemas/images' } },
};
