// Glance's error responses come from webob, which picks the body format from the Accept header:
// HTML for browsers and for clients that accept anything (python-glanceclient sends no Accept, and
// parses the HTML), JSON for `Accept: application/json` (openstacksdk), plain text otherwise.
// 401s come from keystonemiddleware, in Keystone's JSON shape.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { toStratusError, renderError } from '../../common/http/errors.ts';

const WEBOB_TITLES: Record<number, string> = { 413: 'Request Entity Too Large', 414: 'Request-URI Too Long', 416: 'Requested Range Not Satisfiable' };

type Format = 'html' | 'json' | 'plain';

/** webob's choice: the best of text/html and application/json by q-value, html on ties. */
export function negotiate(accept: string | undefined): Format {
  if (!accept || !accept.trim()) return 'html';
  let best: { f: Format; q: number } | undefined;
  for (const [f, type] of [['html', 'text/html'], ['json', 'application/json']] as const) {
    let q = -1;
    for (const part of accept.split(',')) {
      const [range, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
      const qp = params.find((p) => p.startsWith('q='));
      const qv = qp ? Number(qp.slice(2)) : 1;
      const [t, st] = range.split('/');
      const [wt, wst] = type.split('/');
      const specificity = range === type ? 3 : t === wt && st === '*' ? 2 : range === '*/*' ? 1 : 0;
      if (specificity && Number.isFinite(qv)) q = Math.max(q, qv + specificity / 1000);
    }
    if (q > 0.0005 && (!best || q > best.q)) best = { f, q };
  }
  return best?.f ?? 'plain';
}

export function sendGlanceError(error: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = toStratusError(error);
  if (err.status >= 500) req.log.error({ err: (err.cause ?? error) as Error }, 'request failed');
  else req.log.debug({ err: err.message, status: err.status }, 'request refused');
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  reply.code(err.status);
  if (err.status === 401) {
    return reply.type('application/json').send({ error: { code: 401, title: 'Unauthorized', message: err.message } });
  }
  const title = WEBOB_TITLES[err.status] ?? STATUS_CODES[err.status] ?? 'Error';
  const status = `${err.status} ${title}`;
  switch (negotiate(req.headers.accept)) {
    case 'json':
      return reply.type('application/json').send(renderError('glance', err, req.id));
    case 'html':
      return reply.type('text/html; charset=UTF-8').send(
        `<html>\n <head>\n  <title>${status}</title>\n </head>\n <body>\n  <h1>${status}</h1>\n  ${escapeHtml(err.message)}<br /><br />\n\n\n\n </body>\n</html>`);
    default:
      return reply.type('text/plain; charset=UTF-8').send(`${status}\n\n${err.message}\n\n   `);
  }
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
