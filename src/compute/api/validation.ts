// Request validation with Nova's error messages. Whether a body is valid is decided by the route
// kit's one ajv engine (`computeAjv`: the kit's options plus the formats Nova registers), for row
// schemas and for the version-dependent schemas handlers build alike. The wording is Nova's: this
// walks the JSON Schema subset Nova's schemas use and reports the error jsonschema's best_match
// would (ajv stops at its first error, which is not always the one Python's jsonschema names):
//   Invalid input for field/attribute <last path element>. Value: <str(value)>. <message>
import type { ErrorObject, ValidateFunction } from 'ajv';
import { BadRequest } from '../../common/errors.ts';
import { validationEngine } from '../../common/http/route-kit.ts';
import { pyRepr, pyStr, isUuid } from '../util.ts';

type Schema = Record<string, any>;
interface Err { path: (string | number)[]; value: unknown; message: string; nameReason?: string }

const typeOk: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  integer: (v) => typeof v === 'number' && Number.isInteger(v),
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
  null: (v) => v === null,
  object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  array: (v) => Array.isArray(v),
};

const NAME_REASON = 'printable characters. Can not start or end with whitespace.';
const NAME_SPACES_REASON = 'printable characters with at least one non space character';
const printable = (s: string) => !/[\u0000-\u001f\u007f-\u009f]/.test(s);

/** Formats Nova registers with its FormatChecker; a string result is an InvalidName reason. */
const formats: Record<string, (v: string) => boolean | string> = {
  uuid: (v) => isUuid(v),
  name: (v) => (printable(v) && v.trim() === v && v.length > 0) || NAME_REASON,
  name_with_leading_trailing_spaces: (v) => (printable(v) && v.trim().length > 0) || NAME_SPACES_REASON,
  'date-time': (v) => !Number.isNaN(Date.parse(v)),
  ipv4: (v) => /^(\d{1,3})(\.\d{1,3}){3}$/.test(v) && v.split('.').every((x) => Number(x) <= 255),
  ipv6: (v) => /^[0-9a-f:.]+$/i.test(v) && v.includes(':'),
  uri: (v) => /^[a-z][a-z0-9+.-]*:/i.test(v),
};

function check(schema: Schema, v: unknown, path: (string | number)[], errs: Err[]): void {
  const err = (message: string, nameReason?: string) => errs.push({ path, value: v, message, nameReason });
  if (schema.anyOf || schema.oneOf) {
    const alts: Schema[] = schema.anyOf ?? schema.oneOf;
    const passing = alts.filter((a) => { const e: Err[] = []; check(a, v, path, e); return e.length === 0; }).length;
    if (schema.anyOf ? passing === 0 : passing !== 1) {
      if (passing === 0) err(`${pyRepr(v)} is not valid under any of the given schemas`);
      else err(`${pyRepr(v)} is valid under each of ${alts.map((a) => pyRepr(JSON.parse(JSON.stringify(a)))).join(', ')}`);
      return;
    }
  }
  if (schema.type !== undefined) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeOk[t]?.(v))) {
      err(`${pyRepr(v)} is not of type ${types.map((t) => pyRepr(t)).join(', ')}`);
      return;
    }
  }
  if (schema.enum && !schema.enum.some((e: unknown) => e === v)) err(`${pyRepr(v)} is not one of ${pyRepr(schema.enum)}`);
  if (typeof v === 'string') {
    const len = [...v].length;
    if (schema.minLength !== undefined && len < schema.minLength) err(`${pyRepr(v)} is too short`);
    if (schema.maxLength !== undefined && len > schema.maxLength) err(`${pyRepr(v)} is too long`);
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(v)) err(`${pyRepr(v)} does not match ${pyRepr(schema.pattern)}`);
    if (schema.format && formats[schema.format]) {
      const r = formats[schema.format](v);
      if (r !== true) err(`${pyRepr(v)} is not a ${pyRepr(schema.format)}`, typeof r === 'string' ? r : undefined);
    }
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) err(`${pyRepr(v)} is less than the minimum of ${schema.minimum}`);
    if (schema.maximum !== undefined && v > schema.maximum) err(`${pyRepr(v)} is greater than the maximum of ${schema.maximum}`);
  }
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) err(`${pyRepr(v)} is too short`);
    if (schema.maxItems !== undefined && v.length > schema.maxItems) err(`${pyRepr(v)} is too long`);
    if (schema.uniqueItems && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) err(`${pyRepr(v)} has non-unique elements`);
    if (schema.items) v.forEach((x, i) => check(schema.items, x, [...path, i], errs));
  }
  if (typeOk.object(v)) {
    const o = v as Record<string, unknown>;
    const props: Schema = schema.properties ?? {};
    for (const [k, s] of Object.entries(props)) if (k in o) check(s, o[k], [...path, k], errs);
    const pp: Schema = schema.patternProperties ?? {};
    for (const k of Object.keys(o)) {
      for (const [p, s] of Object.entries(pp)) if (new RegExp(p, 'u').test(k)) check(s, o[k], [...path, k], errs);
    }
    for (const r of schema.required ?? []) if (!(r in o)) err(`${pyRepr(r)} is a required property`);
    const keys = Object.keys(o);
    if (schema.minProperties !== undefined && keys.length < schema.minProperties) err(`${pyRepr(o)} does not have enough properties`);
    if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) err(`${pyRepr(o)} has too many properties`);
    const extra = keys.filter((k) => !(k in props) && !Object.keys(pp).some((p) => new RegExp(p, 'u').test(k)));
    if (schema.additionalProperties === false && extra.length) {
      if (Object.keys(pp).length && !Object.keys(props).length) {
        err(`${extra.map((k) => pyRepr(k)).join(', ')} ${extra.length === 1 ? 'does' : 'do'} not match any of the regexes: ${Object.keys(pp).sort().map((p) => pyRepr(p)).join(', ')}`);
      } else {
        err(`Additional properties are not allowed (${extra.map((k) => pyRepr(k)).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
      }
    } else if (typeof schema.additionalProperties === 'object') {
      for (const k of extra) check(schema.additionalProperties, o[k], [...path, k], errs);
    }
  }
}

/** The message Nova would give for `data` against `schema`, or undefined when it is valid. */
export function validationMessage(schema: Schema, data: unknown): string | undefined {
  const errs: Err[] = [];
  check(schema, data, [], errs);
  if (!errs.length) return undefined;
  // jsonschema's best_match: the shallowest error wins; the first found among equals.
  let best = errs[0];
  for (const e of errs) if (e.path.length < best.path.length) best = e;
  if (best.nameReason) return `An invalid 'name' value was provided. The name must be: ${best.nameReason}`;
  if (best.path.length === 0) return best.message;
  return `Invalid input for field/attribute ${best.path[best.path.length - 1]}. Value: ${pyStr(best.value)}. ${best.message}`;
}

/** The route kit's engine with Nova's formats: compute's rows and `validate` both use it. */
export const computeAjv = validationEngine();
for (const [name, f] of Object.entries(formats)) computeAjv.addFormat(name, (v: string) => f(v) === true);
// Checked by the handler with Nova's own message (servers create: user_data, personality).
computeAjv.addFormat('base64', () => true);

// Handlers build schemas per microversion: compiled once per distinct schema.
const byObject = new WeakMap<Schema, ValidateFunction>();
const byText = new Map<string, ValidateFunction>();
function compiled(schema: Schema): ValidateFunction {
  let f = byObject.get(schema);
  if (f) return f;
  const key = JSON.stringify(schema);
  f = byText.get(key);
  if (!f) { f = computeAjv.compile(schema); byText.set(key, f); }
  byObject.set(schema, f);
  return f;
}

/** Nova's message for a body ajv refused: the walker's best_match, else ajv's first error in Nova's form. */
export function novaSchemaMessage(schema: Schema | undefined, data: unknown, errors: ErrorObject[]): string {
  const m = schema ? validationMessage(schema, data) : undefined;
  if (m) return m;
  const e = errors[0];
  if (!e) return 'Invalid input';
  const path = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (!path.length) return `${pyRepr(data)} ${e.message ?? 'is invalid'}`;
  let value: unknown = data;
  for (const p of path) value = (value as Record<string, unknown> | undefined)?.[p];
  return `Invalid input for field/attribute ${path[path.length - 1]}. Value: ${pyStr(value)}. ${pyRepr(value)} ${e.message ?? 'is invalid'}`;
}

export function validate<T = any>(schema: Schema, data: unknown): T {
  const check = compiled(schema);
  if (!check(data)) throw new BadRequest(novaSchemaMessage(schema, data, check.errors ?? []));
  return data as T;
}

// Nova's parameter types, as plain JSON Schema.
export const P = {
  name: { type: 'string', minLength: 1, maxLength: 255, format: 'name' },
  nameWithSpaces: { type: 'string', minLength: 1, maxLength: 255, format: 'name_with_leading_trailing_spaces' },
  description: { type: ['string', 'null'], minLength: 0, maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$' },
  nonNegInt: { type: ['integer', 'string'], pattern: '^[0-9]*$', minimum: 0, minLength: 1 },
  positiveInt: { type: ['integer', 'string'], pattern: '^[0-9]*$', minimum: 1, minLength: 1 },
  metadata: {
    type: 'object',
    patternProperties: { '^[a-zA-Z0-9-_:. ]{1,255}$': { type: 'string', maxLength: 255 } },
    additionalProperties: false,
  },
  bool: { type: ['boolean', 'string'], enum: [true, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', false, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f'] },
} as const;

/** oslo's strutils.bool_from_string for Nova's boolean parameters. */
export function toBool(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  return ['true', '1', 'on', 'yes', 'y', 't'].includes(String(v).toLowerCase());
}
