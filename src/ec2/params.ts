// The EC2 Query protocol's parameters: flat `Name=value` pairs from the query string and the
// form-encoded body, with lists as `Name.1`, `Name.2`… and structures as `Name.1.Member`.
import { invalidParameter, missingParameter } from './errors.ts';

export type Params = Record<string, string>;

export function parseForm(s: string, into: Params = {}): Params {
  if (!s) return into;
  for (const [k, v] of new URLSearchParams(s)) into[k] = v;
  return into;
}

/** Values of `prefix.1`, `prefix.2`, … in index order (AWS numbers from 1, gaps allowed). */
export function list(p: Params, prefix: string): string[] {
  return indexed(p, prefix).map((n) => p[`${prefix}.${n}`]).filter((v) => v !== undefined);
}

/** The indexes N present as `prefix.N` or `prefix.N.anything`, sorted. */
export function indexed(p: Params, prefix: string): number[] {
  const seen = new Set<number>();
  const lead = `${prefix}.`;
  for (const k of Object.keys(p)) {
    if (!k.startsWith(lead)) continue;
    const n = k.slice(lead.length).split('.')[0];
    if (!/^\d+$/.test(n) || Number(n) < 1) throw invalidParameter(`Invalid parameter index in ${k}`);
    seen.add(Number(n));
  }
  return [...seen].sort((a, b) => a - b);
}

export interface Filter { name: string; values: string[] }

export function filters(p: Params): Filter[] {
  return indexed(p, 'Filter').map((n) => {
    const name = p[`Filter.${n}.Name`];
    if (!name) throw invalidParameter(`The filter Filter.${n} has no Name`);
    return { name, values: list(p, `Filter.${n}.Value`) };
  });
}

export interface Tag { key: string; value: string }

export function tags(p: Params, prefix = 'Tag'): Tag[] {
  return indexed(p, prefix).map((n) => {
    const key = p[`${prefix}.${n}.Key`];
    if (key === undefined) throw missingParameter(`${prefix}.${n}.Key`);
    return { key, value: p[`${prefix}.${n}.Value`] ?? '' };
  });
}

export function required(p: Params, name: string): string {
  const v = p[name];
  if (v === undefined || v === '') throw missingParameter(name);
  return v;
}

export function int(p: Params, name: string, o: { min?: number; max?: number } = {}): number | undefined {
  const v = p[name];
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw invalidParameter(`Invalid value '${v}' for ${name}: not an integer`);
  const n = Number(v);
  if ((o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    throw invalidParameter(`Value (${v}) for parameter ${name} is invalid: must be ${o.min ?? '-∞'} to ${o.max ?? '∞'}`);
  }
  return n;
}

export function bool(p: Params, name: string): boolean | undefined {
  const v = p[name];
  if (v === undefined) return undefined;
  if (v === 'true' || v === 'false') return v === 'true';
  throw invalidParameter(`Invalid value '${v}' for ${name}: must be true or false`);
}
