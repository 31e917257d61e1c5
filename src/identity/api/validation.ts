// Keystone's request-body validation. The schemas are keystone/<resource>/schema.py's (Zed), as
// row `body` schemas: whether a body is valid is decided by the route kit's one ajv engine; the
// message is the one Keystone sends (keystone/common/validation/validators.py): the first error
// of jsonschema's Draft4Validator.iter_errors — schema keys walked in their written order, so the
// schemas here keep Keystone's key order — printed as str(ValidationError) (jsonschema 4.10, the
// version under Debian 12's Zed), prefixed with the field's path when there is one:
//   Invalid input for field 'name': 5 is not of type 'string'
//
//   Failed validating 'type' in schema['properties']['name']:
//       {'enum': ..., 'type': 'string'}
//
//   On instance['name']:
//       5
import type { FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import { BadRequest } from '../../common/errors.ts';
import { validationEngine, type JsonSchema } from '../../common/http/route-kit.ts';
import { pformat, pyRepr } from '../../common/pyformat.ts';

type Schema = Record<string, any>;
type Path = (string | number)[];

// ---- keystone/common/validation/parameter_types.py ----

/**
 * parameter_types.boolean. Its enum reads [True, False, None] in a running Keystone: nullable()
 * copies a schema shallowly and appends None to the *shared* enum list, and the resource option
 * registries call it on this very dict at import time. Only the printed schema shows it.
 */
const boolean = (): Schema => ({ type: 'boolean', enum: [true, false, null] });
const name = (): Schema => ({ type: 'string', minLength: 1, maxLength: 255, pattern: '[\\S]+' });
const idString = (): Schema => ({ type: 'string', minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9-]+$' });
const externalIdString = (): Schema => ({ type: 'string', minLength: 1, maxLength: 64 });
const description = (): Schema => ({ type: 'string' });
const url = (): Schema => ({ type: 'string', minLength: 0, maxLength: 225, pattern: '^[a-zA-Z0-9+.-]+:.+' });

/** validation.nullable(): the type gains 'null' (and an enum None). */
function nullable(s: Schema): Schema {
  const out: Schema = { ...s, type: [s.type, 'null'] };
  if (out.enum && !out.enum.includes(null)) out.enum = [...out.enum, null];
  return out;
}

/** ResourceOptionRegistry.json_schema: every option nullable, nothing else allowed. */
function options(opts: Record<string, Schema>): Schema {
  return { type: 'object', properties: Object.fromEntries(Object.entries(opts).map(([k, s]) => [k, nullable(s)])), additionalProperties: false };
}
const immutableOptions = () => options({ immutable: boolean() });
const userOptions = () => options({
  ignore_change_password_upon_first_use: boolean(),
  ignore_password_expiry: boolean(),
  ignore_lockout_failure_attempts: boolean(),
  lock_password: boolean(),
  ignore_user_inactivity: boolean(),
  multi_factor_auth_rules: { type: 'array', items: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true }, uniqueItems: true },
  multi_factor_auth_enabled: boolean(),
});
/** [{"id": …}] or [{"name": …}]: the role references of trusts, application credentials, OAuth1. */
const roleRefs = (): Schema => ({
  type: 'array',
  items: { type: 'object', properties: { id: idString(), name: name() }, minProperties: 1, maxProperties: 1, additionalProperties: false },
});

// ---- the resources' schemas (keystone/*/schema.py) ----

const identityName = () => ({ type: 'string', minLength: 1, maxLength: 255, pattern: '[\\S]+' });
const userProperties = () => ({
  default_project_id: nullable(idString()),
  description: nullable(description()),
  domain_id: idString(),
  enabled: boolean(),
  federated: {
    type: 'array',
    items: {
      type: 'object',
      properties: {
        idp_id: { type: 'string' },
        protocols: {
          type: 'array',
          items: { type: 'object', properties: { protocol_id: { type: 'string' }, unique_id: { type: 'string' } }, required: ['protocol_id', 'unique_id'] },
          minItems: 1,
        },
      },
      required: ['idp_id', 'protocols'],
    },
  },
  name: identityName(),
  password: { type: ['string', 'null'] },
  options: userOptions(),
});
const groupProperties = () => ({ description: nullable(description()), domain_id: idString(), name: identityName() });
const projectName = () => ({ type: 'string', minLength: 1, maxLength: 64, pattern: '[\\S]+' });
const tagName = () => ({ type: 'string', minLength: 1, maxLength: 255, pattern: '^[^,/]*$' });
const tagList = () => ({ type: 'array', items: tagName(), required: [], maxItems: 80, uniqueItems: true });
const projectProperties = () => ({
  description: nullable(description()),
  domain_id: nullable(idString()),
  enabled: boolean(),
  is_domain: boolean(),
  parent_id: nullable(idString()),
  name: projectName(),
  tags: tagList(),
  options: immutableOptions(),
});
const domainProperties = () => ({ description: nullable(description()), enabled: boolean(), name: projectName(), tags: tagList() });
const roleProperties = () => ({ name: name(), description: description(), options: immutableOptions() });
const regionProperties = () => ({ description: nullable(description()), id: { type: 'string' }, parent_region_id: { type: ['string', 'null'] } });
const serviceProperties = () => ({ enabled: boolean(), name: name(), type: { type: 'string', minLength: 1, maxLength: 255 } });
const endpointProperties = () => ({
  enabled: boolean(),
  interface: { type: 'string', enum: ['admin', 'internal', 'public'] },
  region_id: { type: 'string' },
  region: { type: 'string' },
  service_id: { type: 'string' },
  url: url(),
});
const endpointGroupProperties = () => ({ description: nullable(description()), filters: { type: 'object' }, name: name() });
const credentialProperties = () => ({ blob: { type: 'string' }, project_id: { type: 'string' }, type: { type: 'string' }, user_id: { type: 'string' } });
const policyProperties = () => ({ blob: { type: 'string' }, type: { type: 'string', maxLength: 255 } });
const consumerProperties = () => ({ description: nullable(description()) });

const create = (properties: Schema, required: string[]): Schema => ({ type: 'object', properties, required, additionalProperties: true });
const update = (properties: Schema): Schema => ({ type: 'object', properties, minProperties: 1, additionalProperties: true });

/** The schemas Keystone validates request entities with, by schema.py name. */
export const KS = {
  user_create: { type: 'object', properties: userProperties(), required: ['name'], options: { type: 'object' }, additionalProperties: true },
  user_update: { type: 'object', properties: userProperties(), minProperties: 1, options: { type: 'object' }, additionalProperties: true },
  password_change: {
    type: 'object',
    properties: { original_password: { type: 'string' }, password: { type: 'string' } },
    required: ['original_password', 'password'],
    additionalProperties: false,
  },
  group_create: create(groupProperties(), ['name']),
  group_update: update(groupProperties()),
  project_create: create(projectProperties(), ['name']),
  project_update: update(projectProperties()),
  project_tag_create: tagName(),
  project_tags_update: tagList(),
  domain_create: create(domainProperties(), ['name']),
  domain_update: update(domainProperties()),
  role_create: create(roleProperties(), ['name']),
  role_update: update(roleProperties()),
  region_create: { type: 'object', properties: regionProperties(), additionalProperties: true },
  region_update: update(regionProperties()),
  service_create: create(serviceProperties(), ['type']),
  service_update: update(serviceProperties()),
  endpoint_create: create(endpointProperties(), ['interface', 'service_id', 'url']),
  endpoint_update: update(endpointProperties()),
  endpoint_group_create: { type: 'object', properties: endpointGroupProperties(), required: ['name', 'filters'] },
  endpoint_group_update: { type: 'object', properties: endpointGroupProperties(), minProperties: 1 },
  credential_create: {
    type: 'object',
    properties: credentialProperties(),
    additionalProperties: true,
    oneOf: [
      { title: 'ec2 credential requires project_id', required: ['blob', 'type', 'user_id', 'project_id'], properties: { type: { enum: ['ec2'] } } },
      { title: 'non-ec2 credential does not require project_id', required: ['blob', 'type', 'user_id'], properties: { type: { not: { enum: ['ec2'] } } } },
    ],
  },
  credential_update: update(credentialProperties()),
  policy_create: create(policyProperties(), ['blob', 'type']),
  policy_update: update(policyProperties()),
  consumer_create: { type: 'object', properties: consumerProperties(), additionalProperties: true },
  consumer_update: { type: 'object', properties: consumerProperties(), not: { required: ['secret'] }, minProperties: 1, additionalProperties: true },
  request_token_authorize: roleRefs(),
  trust_create: create({
    trustor_user_id: externalIdString(),
    trustee_user_id: externalIdString(),
    impersonation: boolean(),
    project_id: nullable(idString()),
    remaining_uses: { type: ['integer', 'null'], minimum: 1 },
    expires_at: { type: ['null', 'string'] },
    allow_redelegation: { type: ['boolean', 'null'] },
    redelegation_count: { type: ['integer', 'null'], minimum: 0 },
    roles: roleRefs(),
  }, ['trustor_user_id', 'trustee_user_id', 'impersonation']),
  application_credential_create: create({
    name: name(),
    description: nullable(description()),
    secret: { type: ['null', 'string'] },
    expires_at: { type: ['null', 'string'] },
    roles: roleRefs(),
    unrestricted: boolean(),
    access_rules: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          path: { type: 'string', minLength: 0, maxLength: 225, pattern: '^\\/.*' },
          method: { type: 'string', pattern: '^(POST|GET|HEAD|PATCH|PUT|DELETE)$' },
          service: idString(),
          id: idString(),
        },
        additionalProperties: false,
      },
    },
  }, ['name']),
  token_issue: (() => {
    const idName = () => ({ type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } });
    return {
      type: 'object',
      properties: {
        identity: {
          type: 'object',
          properties: {
            methods: { type: 'array', items: { type: 'string' } },
            password: {
              type: 'object',
              properties: { user: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, password: { type: 'string' }, domain: idName() } } },
            },
            token: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
          },
          required: ['methods'],
        },
        scope: {
          type: ['object', 'string'],
          properties: {
            project: { type: 'object', properties: { name: { type: 'string' }, id: { type: 'string' }, domain: idName() } },
            domain: idName(),
            'OS-TRUST:trust': { type: 'object', properties: { id: { type: 'string' } } },
            system: { type: 'object', properties: { all: boolean() } },
          },
        },
      },
      required: ['identity'],
    };
  })(),
} satisfies Record<string, Schema>;

// ---- jsonschema's first error, worded as jsonschema 4.10 words it ----

interface SchemaError { message: string; keyword: string; schemaPath: Path; path: Path; schema: Schema; instance: unknown }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const TYPES: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  integer: (v) => typeof v === 'number' && Number.isInteger(v),
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
  null: (v) => v === null,
  object: isObject,
  array: Array.isArray,
};
/** repr() of an instance or a schema in a message: Python dicts keep their insertion order. */
const r = (v: unknown) => pyRepr(v, { sorted: false });
/** Python's ==, which JSON values from a parser satisfy by structure. */
const equal = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function isValid(schema: Schema, v: unknown): boolean {
  return firstError(schema, v) === undefined;
}

/**
 * The first error Draft4Validator.iter_errors yields: the schema's keywords in their order, each
 * descending into subschemas before the next keyword. Recursion follows the schema, not the data
 * (a subschema is entered only where the schema has one), so its depth is the schema's.
 */
function firstError(schema: Schema, v: unknown, path: Path = [], schemaPath: Path = []): SchemaError | undefined {
  const fail = (keyword: string, message: string): SchemaError => ({ message, keyword, schemaPath: [...schemaPath, keyword], path, schema, instance: v });
  for (const [kw, val] of Object.entries(schema)) {
    let e: SchemaError | undefined;
    switch (kw) {
      case 'type': {
        const types: string[] = Array.isArray(val) ? val : [val];
        if (!types.some((t) => TYPES[t]?.(v))) e = fail(kw, `${r(v)} is not of type ${types.map(r).join(', ')}`);
        break;
      }
      case 'enum':
        if (!(val as unknown[]).some((x) => equal(x, v))) e = fail(kw, `${r(v)} is not one of ${r(val)}`);
        break;
      case 'pattern':
        if (typeof v === 'string' && !new RegExp(val, 'u').test(v)) e = fail(kw, `${r(v)} does not match ${r(val)}`);
        break;
      case 'minLength':
        if (typeof v === 'string' && [...v].length < val) e = fail(kw, `${r(v)} is too short`);
        break;
      case 'maxLength':
        if (typeof v === 'string' && [...v].length > val) e = fail(kw, `${r(v)} is too long`);
        break;
      case 'minimum':
        if (typeof v === 'number' && v < val) e = fail(kw, `${r(v)} is less than the minimum of ${r(val)}`);
        break;
      case 'maximum':
        if (typeof v === 'number' && v > val) e = fail(kw, `${r(v)} is greater than the maximum of ${r(val)}`);
        break;
      case 'minItems':
        if (Array.isArray(v) && v.length < val) e = fail(kw, `${r(v)} is too short`);
        break;
      case 'maxItems':
        if (Array.isArray(v) && v.length > val) e = fail(kw, `${r(v)} is too long`);
        break;
      case 'uniqueItems':
        if (val && Array.isArray(v) && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) e = fail(kw, `${r(v)} has non-unique elements`);
        break;
      case 'items':
        if (Array.isArray(v) && isObject(val)) {
          for (let i = 0; i < v.length && !e; i++) e = firstError(val, v[i], [...path, i], [...schemaPath, 'items']);
        }
        break;
      case 'properties':
        if (isObject(v)) {
          for (const [k, sub] of Object.entries(val as Schema)) {
            if (k in v) e = firstError(sub, v[k], [...path, k], [...schemaPath, 'properties', k]);
            if (e) break;
          }
        }
        break;
      case 'additionalProperties':
        if (isObject(v)) {
          const extras = Object.keys(v).filter((k) => !(k in (schema.properties ?? {})));
          if (isObject(val)) {
            for (const k of extras) { e = firstError(val, v[k], [...path, k], [...schemaPath, 'additionalProperties']); if (e) break; }
          } else if (val === false && extras.length) {
            e = fail(kw, `Additional properties are not allowed (${extras.map(r).join(', ')} ${extras.length === 1 ? 'was' : 'were'} unexpected)`);
          }
        }
        break;
      case 'required':
        if (isObject(v)) {
          const missing = (val as string[]).find((k) => !(k in v));
          if (missing !== undefined) e = fail(kw, `${r(missing)} is a required property`);
        }
        break;
      case 'minProperties':
        if (isObject(v) && Object.keys(v).length < val) e = fail(kw, `${r(v)} does not have enough properties`);
        break;
      case 'maxProperties':
        if (isObject(v) && Object.keys(v).length > val) e = fail(kw, `${r(v)} has too many properties`);
        break;
      case 'oneOf': {
        const valid = (val as Schema[]).filter((s) => isValid(s, v));
        if (!valid.length) e = fail(kw, `${r(v)} is not valid under any of the given schemas`);
        // jsonschema lists the later valid ones first, then the first valid one.
        else if (valid.length > 1) e = fail(kw, `${r(v)} is valid under each of ${[...valid.slice(1), valid[0]].map(r).join(', ')}`);
        break;
      }
      case 'not':
        if (isValid(val, v)) e = fail(kw, `${r(v)} should not be valid under ${r(val)}`);
        break;
    }
    if (e) return e;
  }
  return undefined;
}

const index = (container: string, p: Path) => (p.length ? `${container}[${p.map((x) => pyRepr(x)).join('][')}]` : container);
const indented = (s: string) => s.split('\n').join('\n    ');

/** Keystone's message for `data` against `schema`, or undefined when it is valid. */
export function keystoneMessage(schema: Schema, data: unknown): string | undefined {
  const e = firstError(schema, data);
  if (!e) return undefined;
  const verbose = `${e.message}\n\nFailed validating ${pyRepr(e.keyword)} in ${index('schema', e.schemaPath.slice(0, -1))}:\n    ${indented(pformat(e.schema))}\n\n` +
    `On ${index('instance', e.path)}:\n    ${indented(pformat(e.instance))}`;
  return e.path.length ? `Invalid input for field '${e.path.join('/')}': ${verbose}` : verbose;
}

/** validation.lazy_validate: a 400 in Keystone's words unless `data` is valid. */
export function lazyValidate(schema: Schema, data: unknown): void {
  const m = keystoneMessage(schema, data);
  if (m !== undefined) throw new BadRequest(m);
}

// ---- row body schemas ----

/** Keystone's json_body check: a body that is not a JSON object (the message of an unparsable one, common/http/errors.ts). */
export const NOT_A_JSON_OBJECT = 'Expecting to find valid JSON in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.';

interface Entity { key: string; schema: Schema; absent: unknown }
const entities = new WeakMap<JsonSchema, Entity>();
const ajv = validationEngine();

/** `entityBody`'s `absent` for an entity Keystone validates only when present (the token request's `auth`). */
export const UNVALIDATED = Symbol('validated only when present');

/**
 * A row body: a JSON object whose `key` Keystone validates with `schema` (`body.get(key,
 * absent)`, so an absent key is validated as `absent`: `{}` for most resources, None (`null`)
 * where Keystone reads the key without a default; UNVALIDATED: the handler words its absence).
 * The wrapper requires the key only when `absent` would not pass, so ajv and Keystone refuse the
 * same bodies.
 */
export function entityBody(key: string, schema: Schema, absent: unknown = {}): JsonSchema {
  const required = absent !== UNVALIDATED && !ajv.validate(schema, absent);
  const body: JsonSchema = { type: 'object', properties: { [key]: schema }, ...(required ? { required: [key] } : {}) };
  entities.set(body, { key, schema, absent });
  return body;
}

/** The entity a row's body schema validated (the kit ran the schema before the handler). */
export function entityOf<T = Record<string, unknown>>(req: FastifyRequest, key: string): T {
  const b = req.body as Record<string, unknown>;
  return (b[key] ?? {}) as T;
}

/** The identity binding's `schemaError`: Keystone's message for the row's entity. */
export function schemaError(_errors: ErrorObject[], _where: 'body' | 'query', req: FastifyRequest): BadRequest {
  const body = req.body;
  if (!isObject(body)) return new BadRequest(NOT_A_JSON_OBJECT);
  const row = req.routeRow;
  const entity = row?.body ? entities.get(row.body) : undefined;
  if (!entity) return new BadRequest(keystoneMessage(row?.body ?? {}, body) ?? 'Invalid input');
  const value = entity.key in body ? body[entity.key] : entity.absent;
  return new BadRequest(keystoneMessage(entity.schema, value) ?? 'Invalid input');
}
