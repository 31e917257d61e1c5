// Parsers for Placement's query-string mini languages, with upstream's error messages:
//   resources=VCPU:2,MEMORY_MB:1024
//   required=T1,!T2  (forbidden from 1.22)   required=in:T1,T2 (any-of, from 1.39, repeatable)
//   member_of=<agg> | in:<a>,<b> | !<agg> | !in:<a>,<b> (forbidden from 1.32, repeatable from 1.24)
//   in_tree=<uuid>
import type { Version } from '../../common/http/microversion.ts';
import { badRequest, CODES } from '../errors.ts';
import { MV } from '../microversions.ts';
import { isUuidLike, normalizeUuid, type Query } from './router.ts';

export function parseResources(qs: string): Record<string, number> {
  const form = 'Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024.';
  if (qs.trim() === '') throw badRequest(`Badly formed resources parameter. ${form} Got: empty string.`);
  const out: Record<string, number> = {};
  for (const part of qs.split(',')) {
    const bits = part.split(':');
    if (bits.length !== 2) throw badRequest(`Badly formed resources parameter. ${form} Got: ${part}.`);
    const [rc, amountText] = bits;
    if (!/^\s*[+-]?\d+\s*$/.test(amountText)) {
      throw badRequest(`Requested resource ${rc} expected positive integer amount. Got: ${amountText}.`);
    }
    const amount = Number(amountText);
    if (amount < 1) throw badRequest(`Requested resource ${rc} requires amount >= 1. Got: ${amount}.`);
    if (!Number.isSafeInteger(amount)) throw badRequest(`Requested resource ${rc} expected positive integer amount. Got: ${amountText}.`);
    out[rc] = amount;
  }
  return out;
}

export interface TraitQuery { required: string[][]; forbidden: string[] }

function parseTraitValue(val: string, allowForbidden: boolean, allowAny: boolean): TraitQuery {
  if (val.startsWith('in:')) {
    if (!allowAny) throw badRequest(`Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: ${val}`);
    const any = [...new Set(val.slice(3).split(',').map((s) => s.trim()))];
    if (any.some((t) => !t)) throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: ${val}`);
    if (any.some((t) => t.startsWith('!'))) throw badRequest(`Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden traits. Got: ${val}`);
    return { required: [any], forbidden: [] };
  }
  const all = val.split(',').map((s) => s.trim());
  const forbidden = all.filter((t) => t.startsWith('!')).map((t) => t.replace(/^!+/, ''));
  const form = allowForbidden ? 'HW_CPU_X86_VMX,!CUSTOM_MAGIC' : 'HW_CPU_X86_VMX,CUSTOM_MAGIC';
  if ([...all, ...forbidden].some((t) => !t)) {
    throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: ${form}. Got an empty trait in: ${val}`);
  }
  if (forbidden.length && !allowForbidden) {
    throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: ${val}`);
  }
  return { required: [...new Set(all.filter((t) => !t.startsWith('!')))].map((t) => [t]), forbidden: [...new Set(forbidden)] };
}

/** required<suffix>: repeatable (AND) from 1.39; before, only the last value counts. */
export function parseRequired(q: Query, key: string, v: Version): TraitQuery {
  const allowForbidden = v.atLeast(MV.forbiddenTraits);
  const allowAny = v.atLeast(MV.anyTraits);
  let values = q.all(key);
  if (!allowAny) values = values.slice(-1);
  const out: TraitQuery = { required: [], forbidden: [] };
  for (const val of values) {
    const t = parseTraitValue(val, allowForbidden, allowAny);
    out.required.push(...t.required);
    for (const f of t.forbidden) if (!out.forbidden.includes(f)) out.forbidden.push(f);
  }
  return out;
}

/** root_required: a flat list, '!' allowed, no 'in:'. */
export function parseRootRequired(q: Query): { required: string[]; forbidden: string[] } {
  const values = q.all('root_required');
  if (values.length > 1) throw badRequest(`Query parameter 'root_required' may be specified only once.`, CODES.ILLEGAL_DUPLICATE_QUERYPARAM);
  const t = parseTraitValue(values[0], true, false);
  const required = t.required.map((s) => s[0]);
  const conflicts = required.filter((r) => t.forbidden.includes(r));
  if (conflicts.length) {
    throw badRequest(`Conflicting required and forbidden traits found in root_required: ${conflicts.join(', ')}`, CODES.QUERYPARAM_BAD_VALUE);
  }
  return { required, forbidden: t.forbidden };
}

export interface MemberOfQuery { required: string[][]; forbidden: string[] }

function parseMemberOfValue(value: string): { required: string[]; forbidden: string[] } {
  if (value.includes(',') && !(value.startsWith('in:') || value.startsWith('!in:'))) {
    throw badRequest(`Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using the valid microversion. Got: ${value}`);
  }
  let required: string[] = [];
  let forbidden: string[] = [];
  if (value.startsWith('!in:')) forbidden = value.slice(4).split(',');
  else if (value.startsWith('!')) forbidden = [value.slice(1)];
  else if (value.startsWith('in:')) required = value.slice(3).split(',');
  else required = [value];
  for (const u of [...required, ...forbidden]) {
    if (!isUuidLike(u)) throw badRequest(`Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: ${u}`);
  }
  const norm = (l: string[]) => [...new Set(l.map(normalizeUuid))];
  return { required: norm(required), forbidden: norm(forbidden) };
}

export function parseMemberOf(q: Query, key: string, v: Version): MemberOfQuery {
  const values = q.all(key);
  const suffix = key.slice('member_of'.length);
  if (!v.atLeast(MV.multiMemberOf) && values.length > 1) throw badRequest(`Multiple member_of${suffix} parameters are not supported`);
  const out: MemberOfQuery = { required: [], forbidden: [] };
  for (const value of values) {
    const m = parseMemberOfValue(value);
    if (m.required.length) out.required.push(m.required);
    if (m.forbidden.length) {
      if (!v.atLeast(MV.forbiddenAggregates)) throw badRequest(`Forbidden member_of${suffix} parameters are not supported in the specified microversion`);
      for (const f of m.forbidden) if (!out.forbidden.includes(f)) out.forbidden.push(f);
    }
  }
  return out;
}

export function parseInTree(value: string, key = 'in_tree'): string {
  const v = value.trim();
  if (!isUuidLike(v)) throw badRequest(`Invalid query string parameters: Expected '${key}' parameter to be a format of uuid. Got: ${value}`);
  return normalizeUuid(v);
}
