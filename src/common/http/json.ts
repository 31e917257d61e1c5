// Request-body JSON, parsed once for every service. JSON.parse itself copes with any nesting,
// but everything after it that walks the value (validators, Python-repr error messages,
// JSON.stringify) recurses, and a 10,000-deep body would blow the stack there: so the depth is
// bounded here, before anything else sees the value, and a deeper body is a 400.
import { MalformedBody } from './errors.ts';

/** Deeper than any OpenStack request body (metadefs objects nest about 6 levels). */
export const MAX_JSON_DEPTH = 100;

/** The deepest nesting of arrays/objects in JSON text, stopping once past `limit`. O(n), no recursion. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) { max = depth; if (max > limit) return max; }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Parses a request body: undefined when empty, MalformedBody (400) when invalid or too deep. */
export function parseJsonBody(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (text.trim() === '') return undefined;
  if (jsonDepth(text, maxDepth) > maxDepth) throw new MalformedBody(`JSON nesting is deeper than ${maxDepth} levels`, true);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MalformedBody((e as Error).message);
  }
}

/**
 * JSON text of a value for an error message, at most `max` characters (then "…"), built with an
 * explicit stack: a client's value never decides how deep the server recurses.
 */
export function jsonPreview(value: unknown, max = 200): string {
  let out = '';
  const stack: ({ lit: string } | { val: unknown })[] = [{ val: value }];
  while (stack.length && out.length <= max) {
    const w = stack.pop()!;
    if ('lit' in w) { out += w.lit; continue; }
    const v = w.val;
    if (Array.isArray(v)) {
      stack.push({ lit: ']' });
      for (let i = v.length - 1; i >= 0; i--) { stack.push({ val: v[i] }); if (i > 0) stack.push({ lit: ',' }); }
      out += '[';
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      stack.push({ lit: '}' });
      for (let i = entries.length - 1; i >= 0; i--) {
        stack.push({ val: entries[i][1] }, { lit: `${JSON.stringify(entries[i][0])}:` });
        if (i > 0) stack.push({ lit: ',' });
      }
      out += '{';
    } else out += v === undefined ? 'null' : JSON.stringify(v);
  }
  return out.length > max || stack.length ? `${out.slice(0, max)}…` : out;
}
