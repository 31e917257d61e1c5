// The OpenStack APIs EC2 actions are built from, called over HTTP with the caller's own token
// (from /v3/ec2tokens), so compute and image apply their policies and project isolation as for
// any other client. Compute is always called at one microversion, COMPUTE_MICROVERSION.
import { Ec2Error } from './errors.ts';
import { httpRequest } from '../common/http-client.ts';

/**
 * 2.90: server tags (2.26), createImage answering the image id (2.45), flavor embedded in the
 * server (2.47), user filters on key_name / availability_zone / vm_state (2.83) and the hostname
 * visible to its owner (2.90); below 2.92, which stops Nova generating key pairs (CreateKeyPair).
 */
export const COMPUTE_MICROVERSION = '2.90';

export interface Reply { status: number; body: any }

export class Downstream {
  constructor(private readonly name: string, private readonly base: () => Promise<string>, private readonly headers: Record<string, string> = {}) {}

  async call(token: string, method: string, path: string, body?: unknown): Promise<Reply> {
    let res: Response;
    try {
      // Timeouts, retries of idempotent calls and the request id: the shared client.
      res = await httpRequest(`${await this.base()}${path}`, {
        method,
        headers: {
          'x-auth-token': token, accept: 'application/json', ...this.headers,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Ec2Error('Unavailable', `The ${this.name} service is not responding (${(e as Error).message})`, 503);
    }
    const text = await res.text();
    let parsed: any;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
    return { status: res.status, body: parsed };
  }

  /** Like call(), but anything outside `ok` becomes the EC2 error `onError` picks (or a generic one). */
  async ok(token: string, method: string, path: string, body?: unknown, o: { ok?: number[]; onError?: (r: Reply) => Ec2Error | undefined } = {}): Promise<any> {
    const r = await this.call(token, method, path, body);
    if ((o.ok ?? [200, 201, 202, 204]).includes(r.status)) return r.body;
    throw o.onError?.(r) ?? genericError(this.name, r);
  }
}

/** The message inside any OpenStack error body (Nova, Glance, Keystone shapes). */
export function messageOf(r: Reply): string {
  const b = r.body;
  if (b && typeof b === 'object') {
    const first = Object.values(b)[0] as any;
    if (typeof first?.message === 'string') return first.message;
    if (typeof b.message === 'string') return b.message.replace(/<br \/>[\s\S]*$/, '').trim();
  }
  return typeof b === 'string' && b ? b.slice(0, 300) : `HTTP ${r.status}`;
}

export function genericError(service: string, r: Reply): Ec2Error {
  const m = messageOf(r);
  if (r.status === 401) return new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
  if (r.status === 403 && /quota/i.test(m)) return new Ec2Error('InstanceLimitExceeded', m);
  if (r.status === 403) return new Ec2Error('UnauthorizedOperation', `You are not authorized to perform this operation. (${m})`, 403);
  if (r.status === 413 || r.status === 429) return new Ec2Error('RequestLimitExceeded', m, 503);
  if (r.status === 400) return new Ec2Error('InvalidParameterValue', m);
  if (r.status === 409) return new Ec2Error('IncorrectState', m);
  if (r.status === 501) return new Ec2Error('UnsupportedOperation', m);
  if (r.status === 503) return new Ec2Error('Unavailable', `The ${service} service is unavailable: ${m}`, 503);
  return new Ec2Error('InternalError', `An internal error has occurred (${service} answered ${r.status}: ${m})`, 500);
}
