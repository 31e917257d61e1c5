// Python's repr() and pprint.pformat() for JSON values. Glance's 400 messages quote the failing
// value and schema the way Python's jsonschema prints them; clients show these messages to
// users, so Stratus prints them the same way (see reference capture 23).

export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'string') return pyStr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `{${keys.map((k) => `${pyStr(k)}: ${pyRepr((v as Record<string, unknown>)[k])}`).join(', ')}}`;
  }
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
  format(v, out, 0, 0, 0, width);
  return out.join('');
}

function format(v: unknown, out: string[], indent: number, allowance: number, level: number, width: number): void {
  const rep = pyRepr(v);
  const maxWidth = width - indent - allowance;
  if (rep.length > maxWidth) {
    if (Array.isArray(v) && v.length) {
      out.push('[');
      formatItems(v, out, indent, allowance + 1, level + 1, width);
      out.push(']');
      return;
    }
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) {
      out.push('{');
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const inner = indent + 1;
      keys.forEach((k, i) => {
        const last = i === keys.length - 1;
        const krep = pyStr(k);
        out.push(krep, ': ');
        format(obj[k], out, inner + krep.length + 2, last ? allowance + 1 : 1, level + 1, width);
        if (!last) out.push(',\n' + ' '.repeat(inner));
      });
      out.push('}');
      return;
    }
    if (typeof v === 'string' && v.length) {
      formatStr(v, out, indent, allowance, level + 1, width);
      return;
    }
  }
  out.push(rep);
}

function formatItems(items: unknown[], out: string[], indent: number, allowance: number, level: number, width: number): void {
  indent += 1;
  items.forEach((ent, i) => {
    const last = i === items.length - 1;
    if (i > 0) out.push(',\n' + ' '.repeat(indent));
    format(ent, out, indent, last ? allowance : 1, level, width);
  });
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
