// EC2's XML responses, written as strings: a list of 1,000 instances must cost less than the
// compute call behind it, so no DOM and no generic serializer — escaping and concatenation only.
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function esc(v: unknown): string {
  const s = String(v);
  return /[&<>"']/.test(s) ? s.replace(/[&<>"']/g, (c) => ESC[c]) : s;
}

/** <name>value</name>, or nothing when the value is absent (EC2 omits unset members). */
export function el(name: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${esc(value)}</${name}>`;
}

/** <name>…already-rendered children…</name> */
export function node(name: string, inner: string): string {
  return `<${name}>${inner}</${name}>`;
}

/** <name><item>…</item>…</name>, EC2's list shape. */
export function set<T>(name: string, items: readonly T[], render: (x: T) => string): string {
  let s = `<${name}>`;
  for (const x of items) s += `<item>${render(x)}</item>`;
  return `${s}</${name}>`;
}

export const DEFAULT_VERSION = '2016-11-15';

/** The response document of an action, in the namespace of the API version the client asked for. */
export function envelope(action: string, version: string | undefined, requestId: string, body: string): string {
  const v = /^\d{4}-\d\d-\d\d$/.test(version ?? '') ? version : DEFAULT_VERSION;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/${v}/"><requestId>${requestId}</requestId>${body}</${action}Response>`;
}

export function errorDocument(code: string, message: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
}
