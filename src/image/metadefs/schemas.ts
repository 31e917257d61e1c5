// JSON schemas of the metadata definitions API (/v2/schemas/metadefs/*), used both to publish
// them and to validate request bodies.
import { collectionSchema, type Schema } from '../api/schemas.ts';

const ts = (d: string) => ({ type: 'string', readOnly: true, description: d, format: 'date-time' });

export const propertySchema: Schema = {
  name: 'property',
  properties: {
    name: { type: 'string', maxLength: 255 },
    title: { type: 'string' },
    description: { type: 'string' },
    operators: { type: 'array', items: { type: 'string' } },
    type: { type: 'string', enum: ['array', 'boolean', 'integer', 'number', 'object', 'string', null] },
    required: { type: 'array', items: { type: 'string' } },
    minimum: { type: 'number' },
    maximum: { type: 'number' },
    maxLength: { type: 'integer', minimum: 0 },
    minLength: { type: 'integer', minimum: 0 },
    pattern: { type: 'string', format: 'regex' },
    enum: { type: 'array' },
    readonly: { type: 'boolean' },
    default: {},
    items: { type: 'object', properties: { type: { type: 'string', enum: ['array', 'boolean', 'integer', 'number', 'object', 'string', null] }, enum: { type: 'array' } } },
    maxItems: { type: 'integer', minimum: 0 },
    minItems: { type: 'integer', minimum: 0 },
    uniqueItems: { type: 'boolean' },
    additionalItems: { type: 'boolean' },
  },
  required: ['name', 'title', 'type'],
  additionalProperties: false,
};

const nested = { ...propertySchema.properties };
delete nested.name;

export const objectSchema: Schema = {
  name: 'object',
  properties: {
    name: { type: 'string', maxLength: 255 },
    description: { type: 'string' },
    required: { type: 'array', items: { type: 'string' } },
    properties: { type: 'object', additionalProperties: { type: 'object', properties: nested, required: ['title', 'type'] } },
    schema: { type: 'string', readOnly: true },
    self: { type: 'string', readOnly: true },
    created_at: ts('Date and time of object creation'),
    updated_at: ts('Date and time of the last object modification'),
  },
  required: ['name'],
  additionalProperties: false,
};

export const rtaSchema: Schema = {
  name: 'resource_type_association',
  properties: {
    name: { type: 'string', maxLength: 80, description: 'Resource type names should be aligned with Heat resource types whenever possible.' },
    prefix: { type: 'string', maxLength: 80, description: 'Specifies the prefix to use for the given resource type.' },
    properties_target: { type: 'string', maxLength: 80, description: 'Some resource types allow more than one key / value pair per instance.' },
    created_at: ts('Date and time of resource type association'),
    updated_at: ts('Date and time of the last resource type association modification'),
  },
  required: ['name'],
  additionalProperties: false,
};

export const tagSchema: Schema = {
  name: 'tag',
  properties: {
    name: { type: 'string', maxLength: 255 },
    created_at: ts('Date and time of tag creation'),
    updated_at: ts('Date and time of the last tag modification'),
  },
  required: ['name'],
  additionalProperties: false,
};

export const namespaceSchema: Schema = {
  name: 'namespace',
  properties: {
    namespace: { type: 'string', description: 'The unique namespace text.', maxLength: 80 },
    display_name: { type: 'string', description: 'The user friendly name for the namespace. Used by UI if available.', maxLength: 80 },
    description: { type: 'string', description: 'Provides a user friendly description of the namespace.', maxLength: 500 },
    visibility: { type: 'string', description: 'Scope of namespace accessibility.', enum: ['public', 'private'] },
    protected: { type: 'boolean', description: 'If true, namespace will not be deletable.' },
    owner: { type: 'string', description: 'Owner of the namespace.', maxLength: 255 },
    created_at: ts('Date and time of namespace creation'),
    updated_at: ts('Date and time of the last namespace modification'),
    schema: { type: 'string', readOnly: true },
    self: { type: 'string', readOnly: true },
    resource_type_associations: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, prefix: { type: 'string' }, properties_target: { type: 'string' } } } },
    properties: { type: 'object', additionalProperties: { type: 'object', properties: nested, required: ['title', 'type'] } },
    objects: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, description: { type: 'string' }, required: { type: 'array', items: { type: 'string' } }, properties: { type: 'object' } } } },
    tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
  },
  required: ['namespace'],
  additionalProperties: false,
};

export function metadefSchemas(): Record<string, unknown> {
  const namespaces = collectionSchema('namespaces', namespaceSchema);
  const properties = { name: 'properties', properties: { properties: { type: 'object', additionalProperties: propertySchema } }, links: [{ rel: 'first', href: '{first}' }, { rel: 'next', href: '{next}' }, { rel: 'describedby', href: '{schema}' }] };
  return {
    'metadefs/namespace': namespaceSchema,
    'metadefs/namespaces': namespaces,
    'metadefs/object': objectSchema,
    'metadefs/objects': collectionSchema('objects', objectSchema),
    'metadefs/property': propertySchema,
    'metadefs/properties': properties,
    'metadefs/resource_type': rtaSchema,
    'metadefs/resource_types': collectionSchema('resource_type_associations', rtaSchema),
    'metadefs/tag': tagSchema,
    'metadefs/tags': collectionSchema('tags', tagSchema),
  };
}
