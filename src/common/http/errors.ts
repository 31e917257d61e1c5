// Every service's OpenStack error body, rendered in one place. Handlers only throw typed errors.
import { STATUS_CODES } from 'node:http';
import { StratusError, BadRequest, PayloadTooLarge, UnsupportedMediaType, NotFound, MethodNotAllowed, InternalError, Unauthorized } from '../errors.ts';

export type ErrorShape = 'keystone' | 'nova' | 'placement' | 'glance';

const title = (status: number) => STATUS_CODES[status] ?? 'Error';

/** Turns anything thrown (ours, fastify's, a bug) into a typed error. */
export function toStratusError(err: unknown): StratusError {
  if (err instanceof StratusError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  const status = e?.statusCode;
  const msg = e?.message ?? 'Unknown error';
  if (e?.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || (e instanceof SyntaxError)) {
    return new BadRequest(`Malformed request body: ${msg}`);
  }
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
  if (status && status >= 400 && status < 500) return new BadRequest(msg);
  return new InternalError('An unexpected error prevented the server from fulfilling your request.', { cause: err });
}

const novaKeys: Record<number, string> = {
  400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod',
  409: 'conflictingRequest', 413: 'overLimit', 415: 'badMediaType', 429: 'overLimit', 501: 'notImplemented', 503: 'serviceUnavailable',
};

export function renderError(shape: ErrorShape, err: StratusError, requestId: string): unknown {
  const status = err.status;
  // Unauthenticated requests never reach the service: keystonemiddleware answers them in
  // Keystone's shape whatever the service.
  if (status === 401) shape = 'keystone';
  switch (shape) {
    case 'keystone':
      return { error: { code: status, title: title(status), message: err.message } };
    case 'nova': {
      // Unauthenticated requests never reach Nova: keystonemiddleware answers in Keystone's shape.
      if (status === 401) return { error: { code: 401, title: 'Unauthorized', message: err.message } };
      return { [novaKeys[status] ?? 'computeFault']: { code: status, message: err.message } };
    }
    case 'placement':
      return {
        errors: [{
          status, title: title(status),
          detail: `${placementLead[status] ?? ''}${err.message}  `,
          code: err.code ?? 'placement.undefined_code', request_id: requestId,
        }],
      };
    case 'glance': {
      // Glance's errors come from webob, whose titles are the older RFC 2616 reason phrases.
      const t = webobTitles[status] ?? title(status);
      return { message: `${err.message}<br /><br />\n\n\n`, code: `${status} ${t}`, title: t };
    }
  }
}

const webobTitles: Record<number, string> = {
  413: 'Request Entity Too Large', 414: 'Request-URI Too Long', 416: 'Requested Range Not Satisfiable',
};

// Placement's webob errors start the detail with the generic explanation of the status.
const placementLead: Record<number, string> = {
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.\n\n ',
  404: 'The resource could not be found.\n\n ',
  409: 'There was a conflict when trying to complete your request.\n\n ',
  406: 'The resource could not be generated that was acceptable to your browser (content of type ) ',
};
