// Small helpers shared across compute: times in Nova's formats, ids, Python-style reprs for
// Nova's validation messages.
import { randomBytes } from 'node:crypto';

/** Timestamps are stored as ISO-8601 UTC with milliseconds. */
export const now = (): string => new Date().toISOString();

/** Nova's `created`/`updated` format: 2026-11-24T15:33:28Z */
export function isoZ(s: string | null | undefined): string | null {
  return s ? `${s.slice(0, 19)}Z` : null;
}

/** Nova's oslo format for most other times: 2026-11-24T15:33:28.000000 */
export function isoMicro(s: string | null | undefined): string | null {
  if (!s) return null;
  const ms = /\.(\d{3})/.exec(s)?.[1] ?? '000';
  return `${s.slice(0, 19)}.${ms}000`;
}

export function isUuid(v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(v);
}

/** oslo's is_uuid_like: dashes and case do not matter. */
export function normUuid(v: string): string {
  const h = v.toLowerCase().replace(/-/g, '');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const pwChars = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
export function generatePassword(len = 12): string {
  const b = randomBytes(len);
  return Array.from(b, (x) => pwChars[x % pwChars.length]).join('');
}

export function reservationId(): string {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return 'r-' + Array.from(randomBytes(8), (x) => chars[x % chars.length]).join('');
}

/** Text already rendered, on pyRepr's work stack (strings there are values still to render). */
class Rendered { constructor(readonly text: string) {} }

function pyScalar(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyFloat(v);
  if (typeof v === 'string') {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    const body = v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
    return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
  }
  return String(v);
}

/**
 * Python's repr(), as jsonschema error messages in Nova show values. Iterative (an explicit work
 * stack, not recursion): a deeply nested value must not overflow the call stack (issue 9 item 8).
 */
export function pyRepr(v: unknown): string {
  const out: string[] = [];
  const work: unknown[] = [v];
  while (work.length) {
    const x = work.pop();
    if (x instanceof Rendered) { out.push(x.text); continue; }
    if (Array.isArray(x)) {
      // Pushed in reverse: popped as "[", a, ", ", b, "]".
      work.push(new Rendered(']'));
      for (let i = x.length - 1; i >= 0; i--) { work.push(x[i]); if (i > 0) work.push(new Rendered(', ')); }
      work.push(new Rendered('['));
    } else if (x !== null && typeof x === 'object') {
      const entries = Object.entries(x);
      work.push(new Rendered('}'));
      for (let i = entries.length - 1; i >= 0; i--) {
        work.push(entries[i][1], new Rendered(`${pyScalar(entries[i][0])}: `));
        if (i > 0) work.push(new Rendered(', '));
      }
      work.push(new Rendered('{'));
    } else {
      out.push(pyScalar(x));
    }
  }
  return out.join('');
}

function pyFloat(n: number): string {
  const s = String(n);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** Python's str(): strings bare, everything else as repr. */
export function pyStr(v: unknown): string {
  return typeof v === 'string' ? v : pyRepr(v);
}

export function parseJson<T>(s: string | null | undefined, dflt: T): T {
  if (!s) return dflt;
  try { return JSON.parse(s) as T; } catch { return dflt; }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An IPv6 address in its canonical (RFC 5952) text, as netaddr prints it; input returned as is when unparsable. */
export function canonicalIpv6(a: string): string {
  let s = a.trim();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const n = v4.slice(1).map(Number);
    s = s.slice(0, v4.index) + `${((n[0] << 8) | n[1]).toString(16)}:${((n[2] << 8) | n[3]).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return a;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array(Math.max(0, fill)).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return a;
  const g = groups.map((x) => parseInt(x, 16).toString(16));
  let best = -1; let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== '0') { i++; continue; }
    let j = i; while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}
