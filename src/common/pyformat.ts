// Python's repr() and pprint.pformat() for JSON values. Glance's and Keystone's 400 messages
// quote the failing value and schema the way Python's jsonschema prints them; clients show these
// messages to users, so Stratus prints them the same way (see reference capture 23).

// Both formatters walk the value with an explicit stack, never by recursion: the value is a
// client's, and its depth (bounded at parse time, see common/http/json.ts) must not be what
// decides whether the server can answer.

type Work = { lit: string } | { val: unknown };

/**
 * repr() of a JSON value. Dict keys are sorted, as pprint's repr of nested values sorts them;
 * `{ sorted: false }` keeps insertion order, as a plain repr() (jsonschema's "%r" of an instance) does.
 */
export function pyRepr(v: unknown, opts: { sorted?: boolean } = {}): string {
  const sortKeys = opts.sorted ?? true;
  const out: string[] = [];
  const stack: Work[] = [{ val: v }];
  while (stack.length) {
    const w = stack.pop()!;
    if ('lit' in w) { out.push(w.lit); continue; }
    const x = w.val;
    if (Array.isArray(x)) {
      stack.push({ lit: ']' });
      for (let i = x.length - 1; i >= 0; i--) {
        stack.push({ val: x[i] });
        if (i > 0) stack.push({ lit: ', ' });
      }
      out.push('[');
    } else if (x !== null && typeof x === 'object') {
      const obj = x as Record<string, unknown>;
      const keys = sortKeys ? Object.keys(obj).sort() : Object.keys(obj);
      stack.push({ lit: '}' });
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ val: obj[keys[i]] }, { lit: `${pyStr(keys[i])}: ` });
        if (i > 0) stack.push({ lit: ', ' });
      }
      out.push('{');
    } else out.push(scalarRepr(x));
  }
  return out.join('');
}

function scalarRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'string') return pyStr(v);
  return String(v);
}

function pyNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n);
  const s = String(n);
  return s.replace(/e\+?(-?)(\d)$/, (_m, sign, d) => `e${sign || '+'}0${d}`).replace(/e\+?(-?)(\d\d+)$/, (_m, sign, d) => `e${sign || '+'}${d}`);
}

export function pyStr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** pprint.pformat(v, width) with Python's defaults (indent 1, sorted dict keys, not compact). */
export function pformat(v: unknown, width = 72): string {
  const out: string[] = [];
  // One entry per pending piece of output, in reverse: pprint's _format calls, unrolled.
  type Task = { lit: string } | { v: unknown; indent: number; allowance: number; level: number };
  const stack: Task[] = [{ v, indent: 0, allowance: 0, level: 0 }];
  while (stack.length) {
    const t = stack.pop()!;
    if ('lit' in t) { out.push(t.lit); continue; }
    const { indent, allowance, level } = t;
    const rep = pyRepr(t.v);
    if (rep.length <= width - indent - allowance) { out.push(rep); continue; }
    const x = t.v;
    if (Array.isArray(x) && x.length) {
      // pprint's _format_items: one item per line, indented one past the bracket.
      const inner = indent + 1;
      const tasks: Task[] = [{ lit: '[' }];
      x.forEach((ent, i) => {
        const last = i === x.length - 1;
        if (i > 0) tasks.push({ lit: ',\n' + ' '.repeat(inner) });
        tasks.push({ v: ent, indent: inner, allowance: last ? allowance + 1 : 1, level: level + 1 });
      });
      tasks.push({ lit: ']' });
      for (let i = tasks.length - 1; i >= 0; i--) stack.push(tasks[i]);
    } else if (x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length) {
      const obj = x as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const inner = indent + 1;
      const tasks: Task[] = [{ lit: '{' }];
      keys.forEach((k, i) => {
        const last = i === keys.length - 1;
        const krep = pyStr(k);
        tasks.push({ lit: `${krep}: ` });
        tasks.push({ v: obj[k], indent: inner + krep.length + 2, allowance: last ? allowance + 1 : 1, level: level + 1 });
        if (!last) tasks.push({ lit: ',\n' + ' '.repeat(inner) });
      });
      tasks.push({ lit: '}' });
      for (let i = tasks.length - 1; i >= 0; i--) stack.push(tasks[i]);
    } else if (typeof x === 'string' && x.length) {
      formatStr(x, out, indent, allowance, level + 1, width);
    } else out.push(rep);
  }
  return out.join('');
}

function formatStr(s: string, out: string[], indent: number, allowance: number, level: number, width: number): void {
  const chunks: string[] = [];
  const lines = s.match(/[^\n]*\n|[^\n]+$/g) ?? [s];
  if (level === 1) { indent += 1; allowance += 1; }
  let maxWidth1 = width - indent;
  const maxWidth = width - indent;
  let rep = '';
  lines.forEach((line, i) => {
    rep = pyStr(line);
    if (i === lines.length - 1) maxWidth1 -= allowance;
    if (rep.length <= maxWidth1) { chunks.push(rep); return; }
    const parts = line.match(/\S*\s*/g)!.filter((p) => p !== '');
    let maxWidth2 = maxWidth;
    let current = '';
    parts.forEach((part, j) => {
      const candidate = current + part;
      if (j === parts.length - 1 && i === lines.length - 1) maxWidth2 -= allowance;
      if (pyStr(candidate).length > maxWidth2) {
        if (current) chunks.push(pyStr(current));
        current = part;
      } else current = candidate;
    });
    if (current) chunks.push(pyStr(current));
  });
  if (chunks.length === 1) { out.push(rep); return; }
  if (level === 1) out.push('(');
  chunks.forEach((c, i) => { if (i > 0) out.push('\n' + ' '.repeat(indent)); out.push(c); });
  if (level === 1) out.push(')');
}
