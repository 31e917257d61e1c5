// The one error renderer. Every response Stratus sends that is not a success — a typed error
// from a handler, a schema violation, a body the parser refused, fastify's own errors (bad
// percent-escapes, over-long ids, not-found routes) and the socket-level ones raised before any
// routing (oversized headers) — goes through here and comes out in the service's OpenStack error
// shape with the request id. Handlers only throw typed errors.
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Version } from './microversion.ts';
import {
  StratusError, BadRequest, PayloadTooLarge, UnsupportedMediaType, NotFound, MethodNotAllowed, InternalError,
  Unauthorized, UriTooLong, HeaderFieldsTooLarge, ServiceUnavailable, isConnectionError,
} from '../errors.ts';

export type ErrorShapeName = 'keystone' | 'nova' | 'placement' | 'glance';

/** What a shape may look at: a fastify request, or the little known about a socket-level error. */
export interface ErrorRequest { id: string; headers: IncomingHttpHeaders }

export interface RenderedError { type: string; body: string; headers: Record<string, string> }

export interface ErrorShape {
  readonly name: ErrorShapeName;
  /** Service-specific wording of framework errors (e.g. Placement's media-type message). */
  translate?(raw: unknown, req: ErrorRequest): StratusError | undefined;
  render(err: StratusError, req: ErrorRequest): RenderedError;
}

/** A JSON body that could not be parsed (or nests too deep); `detail` is why. */
export class MalformedBody extends BadRequest {
  constructor(readonly detail: string, readonly tooDeep = false) { super(`Malformed request body: ${detail}`); }
}

/** Turns anything thrown (ours, fastify's, a bug) into a typed error. */
export function toStratusError(err: unknown): StratusError {
  if (err instanceof StratusError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  const status = e?.statusCode;
  const msg = e?.message ?? 'Unknown error';
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY': case 'FST_ERR_CTP_EMPTY_JSON_BODY': return new MalformedBody(msg);
    case 'FST_ERR_BAD_URL': return new BadRequest('The request path is not valid: it holds a malformed percent-escape.');
    case 'FST_ERR_MAX_PARAM_LENGTH': return new UriTooLong('The request URI is too long: a path segment is longer than the limit.');
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new PayloadTooLarge('Request Entity Too Large: the request body is larger than the limit.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new UnsupportedMediaType('Unsupported Content-Type');
  }
  if (e instanceof SyntaxError) return new MalformedBody(msg);
  if (e?.validation) {
    const v = (e.validation as { instancePath?: string; message?: string; params?: Record<string, unknown> }[])[0];
    const field = v?.params?.missingProperty ?? v?.params?.additionalProperty ?? (v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    return new BadRequest(`Invalid input for field '${field || 'body'}': ${v?.message ?? msg}`);
  }
  if (status === 413) return new PayloadTooLarge('Request Entity Too Large: the request body is larger than the limit.');
  if (status === 415) return new UnsupportedMediaType(msg);
  if (status === 404) return new NotFound(msg);
  if (status === 405) return new MethodNotAllowed(msg);
  if (status === 401) return new Unauthorized(msg);
  if (status === 414) return new UriTooLong(msg);
  if (status === 431) return new HeaderFieldsTooLarge(msg);
  if (status && status >= 400 && status < 500) return new BadRequest(msg);
  // A database restart is a retriable 503, not a server bug.
  if (isConnectionError(err)) return new ServiceUnavailable('The service is temporarily unavailable: its database connection failed. Try again.', { cause: err });
  return new InternalError('An unexpected error prevented the server from fulfilling your request.', { cause: err });
}

/** The generic message of a path no route serves. */
export const NOT_FOUND = 'The resource could not be found.';

const title = (status: number) => STATUS_CODES[status] ?? 'Error';
const json = (body: unknown, headers: Record<string, string> = {}): RenderedError => ({ type: 'application/json', body: JSON.stringify(body), headers });

/** Unauthenticated requests never reach a service: keystonemiddleware answers in Keystone's shape. */
const keystoneBody = (err: StratusError) => ({ error: { code: err.status, title: title(err.status), message: err.message } });

export const keystoneShape: ErrorShape = {
  name: 'keystone',
  // keystone/server/flask/request_processing/json_body.py: any unparsable body is the same
  // ValidationError. (A too deep one is our own limit: Python's parser would raise RecursionError.)
  translate: (raw) => {
    const e = toStratusError(raw);
    if (e instanceof MalformedBody && !e.tooDeep) {
      return new BadRequest('Expecting to find valid JSON in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
    }
    return e;
  },
  render: (err) => json(keystoneBody(err)),
};

// nova/api/openstack/wsgi.py Fault's names; any other status is a computeFault.
const NOVA_KEYS: Record<number, string> = {
  400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod',
  409: 'conflictingRequest', 413: 'overLimit', 415: 'badMediaType', 429: 'overLimit', 501: 'notImplemented', 503: 'serviceUnavailable',
};

export const novaShape: ErrorShape = {
  name: 'nova',
  render: (err, req) => {
    const headers = { 'x-compute-request-id': req.id };
    if (err.status === 401) return json(keystoneBody(err), headers);
    return json({ [NOVA_KEYS[err.status] ?? 'computeFault']: { code: err.status, message: err.message } }, headers);
  },
};

// Placement's webob errors start the detail with the generic explanation of the status.
const PLACEMENT_LEAD: Record<number, string> = {
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.\n\n ',
  404: 'The resource could not be found.\n\n ',
  409: 'There was a conflict when trying to complete your request.\n\n ',
  406: 'The resource could not be generated that was acceptable to your browser (content of type ) ',
};

export interface PlacementShapeOptions {
  /** The negotiated microversion, when negotiation got that far. */
  version(req: ErrorRequest): Version | undefined;
  min: string;
  max: string;
}

/** Placement's `{"errors": [...]}`: `code` only from 1.23, the version headers on every error. */
export function placementShape(opts?: PlacementShapeOptions): ErrorShape {
  return {
    name: 'placement',
    translate: (raw, req) => {
      const code = (raw as { code?: string })?.code;
      if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        const ct = String(req.headers['content-type'] ?? '').split(';')[0].trim();
        return new UnsupportedMediaType(`The media type ${ct || 'None'} is not supported, use application/json`);
      }
      const e = raw instanceof StratusError ? raw : toStratusError(raw);
      if (e instanceof MalformedBody) return new BadRequest(`Malformed JSON: ${e.detail}`);
      // The detail already opens with webob's "The resource could not be found."
      if (e instanceof NotFound && e.message === NOT_FOUND) return new NotFound('', { code: e.code });
      return e;
    },
    render: (err, req) => {
      const v = opts?.version(req);
      const headers: Record<string, string> = v ? { 'openstack-api-version': `placement ${v}`, vary: 'openstack-api-version' } : {};
      if (err.status === 401) return json(keystoneBody(err), headers);
      const e: Record<string, unknown> = {
        status: err.status, title: title(err.status),
        detail: `${PLACEMENT_LEAD[err.status] ?? ''}${err.message}  `,
        code: err.code ?? 'placement.undefined_code', request_id: req.id,
      };
      if (!v || !v.atLeast('1.23')) delete e.code;
      if (err.status === 406 && !v && opts) { e.max_version = opts.max; e.min_version = opts.min; }
      return json({ errors: [e] }, headers);
    },
  };
}

// Glance's errors come from webob, whose titles are the older RFC 2616 reason phrases.
const WEBOB_TITLES: Record<number, string> = {
  413: 'Request Entity Too Large', 414: 'Request-URI Too Long', 416: 'Requested Range Not Satisfiable',
};

/** webob's choice of error body: the best of text/html and application/json by q-value, html on ties. */
export function webobFormat(accept: string | undefined): 'html' | 'json' | 'plain' {
  if (!accept || !accept.trim()) return 'html';
  let best: { f: 'html' | 'json'; q: number } | undefined;
  for (const [f, type] of [['html', 'text/html'], ['json', 'application/json']] as const) {
    let q = -1;
    for (const part of accept.split(',')) {
      const [range, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
      const qp = params.find((p) => p.startsWith('q='));
      const qv = qp ? Number(qp.slice(2)) : 1;
      const [t, st] = range.split('/');
      const [wt, wst] = type.split('/');
      void wst;
      const specificity = range === type ? 3 : t === wt && st === '*' ? 2 : range === '*/*' ? 1 : 0;
      if (specificity && Number.isFinite(qv)) q = Math.max(q, qv + specificity / 1000);
    }
    if (q > 0.0005 && (!best || q > best.q)) best = { f, q };
  }
  return best?.f ?? 'plain';
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Glance's: webob picks the body from the Accept header — HTML for browsers and clients that
 * accept anything (python-glanceclient sends no Accept and parses the HTML), JSON for
 * `Accept: application/json` (openstacksdk), plain text otherwise.
 */
export const glanceShape: ErrorShape = {
  name: 'glance',
  render: (err, req) => {
    if (err.status === 401) return json(keystoneBody(err));
    const t = WEBOB_TITLES[err.status] ?? title(err.status);
    const status = `${err.status} ${t}`;
    switch (webobFormat(req.headers.accept)) {
      case 'json':
        return json({ message: `${err.message}<br /><br />\n\n\n`, code: status, title: t });
      case 'html':
        return {
          type: 'text/html; charset=UTF-8', headers: {},
          body: `<html>\n <head>\n  <title>${status}</title>\n </head>\n <body>\n  <h1>${status}</h1>\n  ${escapeHtml(err.message)}<br /><br />\n\n\n\n </body>\n</html>`,
        };
      default:
        return { type: 'text/plain; charset=UTF-8', body: `${status}\n\n${err.message}\n\n   `, headers: {} };
    }
  },
};

const BY_NAME: Record<ErrorShapeName, ErrorShape> = { keystone: keystoneShape, nova: novaShape, placement: placementShape(), glance: glanceShape };

export function errorShape(shape: ErrorShapeName | ErrorShape): ErrorShape {
  return typeof shape === 'string' ? BY_NAME[shape] : shape;
}

function typed(shape: ErrorShape, error: unknown, req: ErrorRequest): StratusError {
  return shape.translate?.(error, req) ?? toStratusError(error);
}

/** Sends any error in the shape, with the request id. */
export function sendError(shapeOrName: ErrorShapeName | ErrorShape, error: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const shape = errorShape(shapeOrName);
  const err = typed(shape, error, req);
  if (err.status >= 500) req.log.error({ err: (err.cause ?? error) as Error }, 'request failed');
  else req.log.debug({ err: err.message, status: err.status }, 'request refused');
  const out = shape.render(err, req);
  reply.header('x-openstack-request-id', req.id);
  for (const [k, v] of Object.entries({ ...out.headers, ...(err.headers ?? {}) })) reply.header(k, v);
  return reply.code(err.status).type(out.type).send(out.body);
}

/**
 * Answers an error on a raw socket, for what Node's HTTP parser refuses before any request
 * exists (oversized headers, a malformed request line). The connection is closed after it.
 */
export function writeSocketError(shapeOrName: ErrorShapeName | ErrorShape, error: StratusError, socket: Socket, req: ErrorRequest): void {
  const shape = errorShape(shapeOrName);
  const id = req.id;
  const out = shape.render(error, req);
  const headers: Record<string, string | number> = {
    'content-type': out.type, 'content-length': Buffer.byteLength(out.body), 'x-openstack-request-id': id, connection: 'close', ...out.headers,
  };
  const head = [`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.end(`${head.join('\r\n')}\r\n\r\n${out.body}`);
}
