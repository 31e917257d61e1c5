// Response schemas of Placement's routes, for the route kit's rows: checked in tests against the
// captured responses of a real Zed (test/fixtures/reference/) and against Stratus's own at the
// same microversions. One schema covers a route's whole version history: fields added later are
// optional, nothing unknown is allowed.
import type { JsonSchema } from '../../common/http/route-kit.ts';

const uuid = { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' };
const links = { type: 'array', items: { type: 'object', required: ['rel', 'href'], properties: { rel: { type: 'string' }, href: { type: 'string' } }, additionalProperties: false } };
const strict = (properties: Record<string, unknown>, required: string[]): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });

export const versionDocumentResponse = strict({
  versions: { type: 'array', items: strict({ id: { type: 'string' }, max_version: { type: 'string' }, min_version: { type: 'string' }, status: { type: 'string' }, links }, ['id', 'max_version', 'min_version', 'status', 'links']) },
}, ['versions']);

export const providerResponse = strict({
  uuid, name: { type: 'string' }, generation: { type: 'integer', minimum: 0 }, links,
  parent_provider_uuid: { anyOf: [uuid, { type: 'null' }] }, root_provider_uuid: uuid,
}, ['uuid', 'name', 'generation', 'links']);

export const providerListResponse = strict({ resource_providers: { type: 'array', items: providerResponse } }, ['resource_providers']);

const amounts = { type: 'object', additionalProperties: { type: 'integer', minimum: 1 } };
/** 1.10–1.11: a list of {resource_provider, resources}; from 1.12: keyed by provider. */
const allocations = {
  anyOf: [
    { type: 'array', items: strict({ resource_provider: strict({ uuid }, ['uuid']), resources: amounts }, ['resource_provider', 'resources']) },
    { type: 'object', additionalProperties: strict({ resources: amounts }, ['resources']) },
  ],
};

export const candidatesResponse = strict({
  allocation_requests: { type: 'array', items: strict({ allocations, mappings: { type: 'object', additionalProperties: { type: 'array', items: uuid } } }, ['allocations']) },
  provider_summaries: {
    type: 'object',
    additionalProperties: strict({
      resources: { type: 'object', additionalProperties: strict({ capacity: { type: 'integer' }, used: { type: 'integer' } }, ['capacity', 'used']) },
      traits: { type: 'array', items: { type: 'string' } },
      parent_provider_uuid: { anyOf: [uuid, { type: 'null' }] }, root_provider_uuid: uuid,
    }, ['resources']),
  },
}, ['allocation_requests', 'provider_summaries']);
