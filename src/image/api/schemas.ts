// The JSON schemas Glance publishes at /v2/schemas/* (glanceclient builds its commands and
// validates its arguments from them), and a validator for the subset of JSON Schema they use
// that words its errors as Python's jsonschema does, since Glance puts those words in its 400s.
import { BadRequest } from '../../common/errors.ts';
import { pformat, pyRepr } from '../../common/pyformat.ts';

const UUID_PATTERN = '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';
export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export type Schema = Record<string, any>;

export function imageSchema(diskFormats: string[], containerFormats: string[]): Schema {
  return {
    name: 'image',
    properties: {
      id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
      name: { type: ['null', 'string'], description: 'Descriptive name for the image', maxLength: 255 },
      status: {
        type: 'string', readOnly: true, description: 'Status of the image',
        enum: ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'],
      },
      visibility: { type: 'string', description: 'Scope of image accessibility', enum: ['community', 'public', 'private', 'shared'] },
      protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
      os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
      checksum: { type: ['null', 'string'], readOnly: true, description: 'md5 hash of image contents.', maxLength: 32 },
      os_hash_algo: { type: ['null', 'string'], readOnly: true, description: 'Algorithm to calculate the os_hash_value', maxLength: 64 },
      os_hash_value: { type: ['null', 'string'], readOnly: true, description: 'Hexdigest of the image contents using the algorithm specified by the os_hash_algo', maxLength: 128 },
      owner: { type: ['null', 'string'], description: 'Owner of the image', maxLength: 255 },
      size: { type: ['null', 'integer'], readOnly: true, description: 'Size of image file in bytes' },
      virtual_size: { type: ['null', 'integer'], readOnly: true, description: 'Virtual size of image in bytes' },
      container_format: { type: ['null', 'string'], description: 'Format of the container', enum: [null, ...containerFormats] },
      disk_format: { type: ['null', 'string'], description: 'Format of the disk', enum: [null, ...diskFormats] },
      created_at: { type: 'string', readOnly: true, description: 'Date and time of image registration' },
      updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last image modification' },
      tags: { type: 'array', description: 'List of strings related to the image', items: { type: 'string', maxLength: 255 } },
      direct_url: { type: 'string', readOnly: true, description: 'URL to access the image file kept in external store' },
      min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
      min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
      self: { type: 'string', readOnly: true, description: 'An image self url' },
      file: { type: 'string', readOnly: true, description: 'An image file url' },
      stores: { type: 'string', readOnly: true, description: 'Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.' },
      schema: { type: 'string', readOnly: true, description: 'An image schema url' },
      locations: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            url: { type: 'string', maxLength: 255 },
            metadata: { type: 'object' },
            validation_data: {
              description: "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
              type: 'object', writeOnly: true, additionalProperties: false,
              properties: {
                checksum: { type: 'string', minLength: 32, maxLength: 32 },
                os_hash_algo: { type: 'string', maxLength: 64 },
                os_hash_value: { type: 'string', maxLength: 128 },
              },
              required: ['os_hash_algo', 'os_hash_value'],
            },
          },
          required: ['url', 'metadata'],
        },
        description: 'A set of URLs to access the image file kept in external store',
      },
      kernel_id: { type: ['null', 'string'], pattern: UUID_PATTERN, description: 'ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.', is_base: false },
      ramdisk_id: { type: ['null', 'string'], pattern: UUID_PATTERN, description: 'ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.', is_base: false },
      instance_uuid: { type: 'string', description: 'Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)', is_base: false },
      architecture: { description: 'Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html', type: 'string', is_base: false },
      os_distro: { description: 'Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html', type: 'string', is_base: false },
      os_version: { description: 'Operating system version as specified by the distributor.', type: 'string', is_base: false },
      description: { description: 'A human-readable string describing this image.', type: 'string', is_base: false },
      cinder_encryption_key_id: { description: 'Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image', type: 'string', is_base: false },
      cinder_encryption_key_deletion_policy: { description: "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action", type: 'string', enum: ['on_image_deletion', 'do_not_delete'], is_base: false },
    },
    additionalProperties: { type: 'string' },
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'enclosure', href: '{file}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export function collectionSchema(name: string, item: Schema): Schema {
  return {
    name,
    properties: {
      [name]: { type: 'array', items: item },
      schema: { type: 'string' },
      first: { type: 'string' },
      next: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export const memberSchema: Schema = {
  name: 'member',
  properties: {
    member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
    image_id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
    created_at: { type: 'string', description: 'Date and time of image member creation' },
    updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
    status: { type: 'string', description: 'The status of this image member', enum: ['pending', 'accepted', 'rejected'] },
    schema: { readOnly: true, type: 'string' },
  },
};

export const taskSchema: Schema = {
  name: 'task',
  properties: {
    id: { type: 'string', description: 'An identifier for the task', pattern: UUID_PATTERN },
    type: { type: 'string', description: 'The type of task represented by this content', enum: ['import', 'api_image_import'] },
    status: { type: 'string', description: 'The current status of this task', enum: ['pending', 'processing', 'success', 'failure'] },
    input: { type: ['null', 'object'], description: 'The parameters required by task, JSON blob' },
    result: { type: ['null', 'object'], description: 'The result of current task, JSON blob' },
    owner: { type: 'string', description: 'An identifier for the owner of this task' },
    message: { type: 'string', description: 'Human-readable informative message only included when appropriate (usually on failure)' },
    image_id: { type: 'string', description: 'Image associated with the task' },
    request_id: { type: 'string', description: 'Human-readable informative request-id' },
    user_id: { type: 'string', description: 'User associated with the task' },
    expires_at: { type: ['null', 'string'], description: 'Datetime when this resource would be subject to removal' },
    created_at: { type: 'string', description: 'Datetime when this resource was created' },
    updated_at: { type: 'string', description: 'Datetime when this resource was updated' },
    self: { type: 'string' },
    schema: { type: 'string' },
  },
};

// --- validation --------------------------------------------------------------------------------

export interface SchemaError { message: string; validator: string; schemaPath: (string | number)[]; instancePath: (string | number)[]; schema: unknown; instance: unknown }

const typeOk = (t: string, v: unknown): boolean => {
  switch (t) {
    case 'null': return v === null;
    case 'string': return typeof v === 'string';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'number': return typeof v === 'number';
    case 'boolean': return typeof v === 'boolean';
    case 'array': return Array.isArray(v);
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v);
    default: return true;
  }
};

/** The first violation of `schema` by `v`, or undefined. */
export function validate(schema: Schema, v: unknown, sp: (string | number)[] = [], ip: (string | number)[] = []): SchemaError | undefined {
  const err = (validator: string, message: string): SchemaError => ({ message, validator, schemaPath: [...sp, validator], instancePath: ip, schema, instance: v });
  if (schema.type !== undefined) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeOk(t, v))) return err('type', `${pyRepr(v)} is not of type ${types.map((t) => pyRepr(t)).join(', ')}`);
  }
  if (schema.enum !== undefined && !schema.enum.some((e: unknown) => e === v)) {
    return err('enum', `${pyRepr(v)} is not one of ${pyRepr(schema.enum)}`);
  }
  if (typeof v === 'string') {
    const len = [...v].length;
    if (schema.maxLength !== undefined && len > schema.maxLength) return err('maxLength', `${pyRepr(v)} is too long`);
    if (schema.minLength !== undefined && len < schema.minLength) return err('minLength', `${pyRepr(v)} is too short`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(v)) return err('pattern', `${pyRepr(v)} does not match ${pyRepr(schema.pattern)}`);
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) return err('minimum', `${pyRepr(v)} is less than the minimum of ${pyRepr(schema.minimum)}`);
    if (schema.maximum !== undefined && v > schema.maximum) return err('maximum', `${pyRepr(v)} is greater than the maximum of ${pyRepr(schema.maximum)}`);
  }
  if (Array.isArray(v) && schema.items) {
    for (let i = 0; i < v.length; i++) {
      const e = validate(schema.items, v[i], [...sp, 'items'], [...ip, i]);
      if (e) return e;
    }
  }
  if (typeOk('object', v)) {
    const obj = v as Record<string, unknown>;
    for (const r of schema.required ?? []) {
      if (!(r in obj)) return err('required', `${pyRepr(r)} is a required property`);
    }
    const props = schema.properties ?? {};
    for (const [k, sub] of Object.entries(props)) {
      if (k in obj) {
        const e = validate(sub as Schema, obj[k], [...sp, 'properties', k], [...ip, k]);
        if (e) return e;
      }
    }
    const extra = Object.keys(obj).filter((k) => !(k in props));
    if (schema.additionalProperties === false && extra.length) {
      return err('additionalProperties', `Additional properties are not allowed (${extra.map((k) => pyRepr(k)).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
    }
    if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      for (const k of extra) {
        const e = validate(schema.additionalProperties, obj[k], [...sp, 'additionalProperties'], [...ip, k]);
        if (e) return e;
      }
    }
  }
  return undefined;
}

const pathStr = (root: string, p: (string | number)[]) => root + p.map((x) => `[${pyRepr(x)}]`).join('');

/** Throws Glance's 400 when `v` does not match `schema`. */
export function assertValid(schema: Schema, v: unknown): void {
  const e = validate(schema, v);
  if (!e) return;
  const indent = (s: string) => s.split('\n').join('\n    ');
  throw new BadRequest(
    `Provided object does not match schema '${schema.name}': ${e.message}\n\n` +
    `Failed validating ${pyRepr(e.validator)} in ${pathStr('schema', e.schemaPath.slice(0, -1))}:\n    ${indent(pformat(e.schema))}\n\n` +
    `On ${pathStr('instance', e.instancePath)}:\n    ${indent(pformat(e.instance))}`,
  );
}
