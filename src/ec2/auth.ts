// Who signed this request: the AWS signature (version 4 in the Authorization header or the
// query string, or version 2 in the parameters) is checked by Identity's /v3/ec2tokens — the
// secret never leaves Identity — which answers with a token scoped to the key's project. Here:
// the request's clock-skew window, the cache of verified requests, and the SigV4 signing keys
// Identity hands this service (scoped to a day, a region and a service: never the secret),
// with which later requests of the same key pair are checked without a round trip. Replays are limited as
// AWS limits them: a signed request is only good within the skew window of its signing time
// (the same request repeated inside it is accepted, as AWS does; ClientToken makes launches
// idempotent).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Ec2Error, authFailure } from './errors.ts';
import type { Params } from './params.ts';
import { httpRequest } from '../common/http-client.ts';
import type { Logger } from '../common/logging.ts';

export interface Caller {
  token: string;
  accessKey: string;
  projectId: string;
  userId: string;
  roles: string[];
  /** ms since the epoch; the cache never outlives the token. */
  tokenExpires: number;
}

/** What a request carries that a signature covers. */
export interface SignedParts {
  method: string;
  host: string;
  /** Path as the client signed it (the part of the URL before '?'). */
  path: string;
  query: Params;
  /** Query and body parameters together. */
  params: Params;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

interface Extracted {
  access: string;
  signature: string;
  /** ms since the epoch the client says it signed at. */
  signedAt?: number;
  /** V2's Expires / V4-query's X-Amz-Expires: not valid after (ms). */
  expires?: number;
  payload: Record<string, unknown>;
  /** SigV4 only: what the signing key of `scope` must sign for this request to be genuine. */
  v4?: { scope: string; stringToSign: string };
}

const V4_AUTH = /^AWS4-HMAC-SHA256\s+(.*)$/;

function header(h: SignedParts['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** 20261201T101500Z (SigV4's basic form) or any ISO 8601 date (V2's Timestamp). */
export function parseAmzDate(v: string): number {
  const b = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(v);
  const t = b ? Date.parse(`${b[1]}-${b[2]}-${b[3]}T${b[4]}:${b[5]}:${b[6]}Z`) : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  if (Number.isNaN(t)) throw authFailure(`Invalid date in the request: ${v}`);
  return t;
}

/** The signature, its access key and what Identity needs to recompute it. */
export function extractSignature(r: SignedParts): Extracted {
  const auth = header(r.headers, 'authorization');
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  if (auth !== undefined) {
    const m = V4_AUTH.exec(auth);
    if (!m) throw authFailure('Unsupported Authorization header: only AWS4-HMAC-SHA256 is accepted');
    const fields = Object.fromEntries(m[1].split(',').map((f) => f.trim().split('=', 2) as [string, string]));
    const cred = (fields.Credential ?? '').split('/');
    if (cred.length !== 5 || !fields.Signature || !fields.SignedHeaders) throw authFailure('Malformed Authorization header');
    const date = header(r.headers, 'x-amz-date');
    if (!date) throw authFailure('The request has no X-Amz-Date header');
    const signed = fields.SignedHeaders.split(';');
    if (!signed.includes('host')) throw authFailure('The host header must be signed');
    const headers: Record<string, string> = { Authorization: auth, 'X-Amz-Date': date };
    for (const h of signed) { const v = header(r.headers, h); if (v !== undefined) headers[h] = v; }
    const bodyHash = sha(r.body);
    return {
      access: cred[0], signature: fields.Signature, signedAt: parseAmzDate(date),
      payload: { access: cred[0], signature: fields.Signature, host: r.host, verb: r.method, path: r.path, params: r.query, headers, body_hash: bodyHash },
      v4: v4Check(r, r.query, signed, date, cred.slice(1), bodyHash),
    };
  }
  const p = r.params;
  if (p['X-Amz-Algorithm'] !== undefined) {
    if (p['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') throw authFailure(`Unsupported X-Amz-Algorithm: ${p['X-Amz-Algorithm']}`);
    const cred = (p['X-Amz-Credential'] ?? '').split('/');
    const date = p['X-Amz-Date'];
    if (cred.length !== 5 || !p['X-Amz-Signature'] || !date || !p['X-Amz-SignedHeaders']) throw authFailure('Incomplete pre-signed request');
    const signedAt = parseAmzDate(date);
    const ttl = p['X-Amz-Expires'] !== undefined ? Number(p['X-Amz-Expires']) : undefined;
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1 && ttl <= 604800)) throw authFailure('X-Amz-Expires must be between 1 and 604800 seconds');
    const headers: Record<string, string> = {};
    const signed = p['X-Amz-SignedHeaders'].split(';');
    for (const h of signed) { const v = header(r.headers, h); if (v !== undefined) headers[h] = v; }
    const bodyHash = sha(r.body);
    const query = { ...r.query };
    delete query['X-Amz-Signature'];
    return {
      access: cred[0], signature: p['X-Amz-Signature'], signedAt, expires: ttl !== undefined ? signedAt + ttl * 1000 : undefined,
      payload: { access: cred[0], signature: p['X-Amz-Signature'], host: r.host, verb: r.method, path: r.path, params: r.query, headers, body_hash: bodyHash },
      v4: v4Check(r, query, signed, date, cred.slice(1), bodyHash),
    };
  }
  if (p.Signature !== undefined || p.AWSAccessKeyId !== undefined) {
    if (p.SignatureVersion !== '2') throw authFailure(`Unsupported SignatureVersion: ${p.SignatureVersion ?? 'none'} (2 and 4 are accepted)`);
    if (p.SignatureMethod !== 'HmacSHA256' && p.SignatureMethod !== 'HmacSHA1') throw authFailure(`Unsupported SignatureMethod: ${p.SignatureMethod ?? 'none'}`);
    if (!p.AWSAccessKeyId || !p.Signature) throw authFailure('The request is missing AWSAccessKeyId or Signature');
    if ((p.Timestamp === undefined) === (p.Expires === undefined)) throw authFailure('A signature version 2 request carries exactly one of Timestamp and Expires');
    return {
      access: p.AWSAccessKeyId, signature: p.Signature,
      signedAt: p.Timestamp !== undefined ? parseAmzDate(p.Timestamp) : undefined,
      expires: p.Expires !== undefined ? parseAmzDate(p.Expires) : undefined,
      payload: { access: p.AWSAccessKeyId, signature: p.Signature, host: r.host, verb: r.method, path: r.path, params: p, headers: {} },
    };
  }
  throw new Ec2Error('AuthFailure', 'The request is not signed (no Authorization header, X-Amz-Signature or Signature)', 401);
}

/** RFC 3986 as SigV4's canonical query string wants it. */
const awsQuote = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** SigV4's string to sign for this request, canonicalized exactly as Identity does it. */
function v4Check(r: SignedParts, query: Params, signed: string[], date: string, scope: string[], bodyHash: string): Extracted['v4'] {
  if (scope.length !== 4 || !date.startsWith(scope[0])) return undefined;
  const cq = Object.keys(query).sort().map((k) => `${awsQuote(k)}=${awsQuote(query[k])}`).join('&');
  let ch = '';
  for (const h of signed) {
    const v = header(r.headers, h);
    if (v !== undefined) ch += `${h}:${v.trim()}\n`;
  }
  const canonical = [r.method.toUpperCase(), r.path, cq, ch, signed.join(';'), bodyHash].join('\n');
  return { scope: scope.join('/'), stringToSign: ['AWS4-HMAC-SHA256', date, scope.join('/'), createHash('sha256').update(canonical).digest('hex')].join('\n') };
}

interface CacheEntry { caller: Caller; until: number }
interface KeyEntry extends CacheEntry { key: Buffer }

export interface VerifierOptions {
  /** Identity's v3 URL. */
  identityUrl(): Promise<string>;
  /** How far a request's signing time may be from ours, either way (AWS EC2: 15 minutes). */
  maxSkewMs: number;
  /** This service's own token: with it Identity hands out SigV4 signing keys (one day, region, service). */
  serviceToken?: () => Promise<string>;
  /** How long a signing key is used before Identity is asked again (keystonemiddleware's token_cache_time). */
  keyCacheMs?: number;
  now?: () => number;
  /** Where a missing service token is reported (the request is then checked without one: no signing key). */
  logger?: Pick<Logger, 'warn'>;
}

export class SignatureVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  /** SigV4 signing keys per access key and credential scope: later requests are checked here. */
  private readonly keys = new Map<string, KeyEntry>();
  private static readonly MAX_ENTRIES = 50_000;
  private readonly now: () => number;

  constructor(private readonly o: VerifierOptions) { this.now = o.now ?? Date.now; }

  /** The caller of a signed request, or AuthFailure / RequestExpired. */
  async verify(r: SignedParts): Promise<Caller> {
    const x = extractSignature(r);
    const now = this.now();
    if (x.expires !== undefined && now > x.expires) throw new Ec2Error('RequestExpired', 'Request has expired.');
    if (x.signedAt !== undefined && Math.abs(now - x.signedAt) > this.o.maxSkewMs) {
      throw new Ec2Error('RequestExpired', `Request has expired: signed at ${new Date(x.signedAt).toISOString()}, more than ${this.o.maxSkewMs / 60000} minutes from the server's time ${new Date(now).toISOString()}.`);
    }
    const until = Math.min(x.expires ?? Infinity, (x.signedAt ?? now) + this.o.maxSkewMs);
    // The cache key is everything Identity checks the signature against, not the signature
    // alone: a hit must be the very request that was verified, or a seen signature could be
    // replayed with other parameters.
    const key = createHash('sha256').update(JSON.stringify(x.payload)).digest('base64');
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.caller;
    const scopeKey = x.v4 ? `${x.access}\n${x.v4.scope}` : undefined;
    const k = scopeKey ? this.keys.get(scopeKey) : undefined;
    if (k && k.until > now) {
      const mine = createHmac('sha256', k.key).update(x.v4!.stringToSign).digest();
      const theirs = Buffer.from(x.signature, 'hex');
      if (theirs.length === mine.length && timingSafeEqual(mine, theirs)) {
        this.remember(key, { caller: k.caller, until: Math.min(until, k.until) });
        return k.caller;
      }
      // Not ours to refuse: Identity has the last word (it also accepts a host without its port).
    }
    const { caller, signingKey, scope } = await this.askIdentity(x);
    this.remember(key, { caller, until: Math.min(until, caller.tokenExpires - 30_000) });
    if (signingKey && scopeKey && scope === x.v4!.scope) {
      if (this.keys.size >= SignatureVerifier.MAX_ENTRIES) this.keys.clear();
      this.keys.set(scopeKey, { caller, key: signingKey, until: Math.min(now + (this.o.keyCacheMs ?? 300_000), caller.tokenExpires - 30_000) });
    }
    return caller;
  }

  /** Forgets every verified request and signing key (Identity announced a revocation). */
  flush(): void { this.cache.clear(); this.keys.clear(); }

  private remember(key: string, v: CacheEntry): void {
    const m = this.cache;
    if (m.size >= SignatureVerifier.MAX_ENTRIES) {
      // Oldest first: a Map keeps insertion order, and entries are inserted as they are verified.
      const now = this.now();
      for (const [k, e] of m) {
        if (e.until <= now || m.size >= SignatureVerifier.MAX_ENTRIES) m.delete(k); else break;
      }
    }
    m.set(key, v);
  }

  private async askIdentity(x: Extracted): Promise<{ caller: Caller; signingKey?: Buffer; scope?: string }> {
    let res: Response;
    const svc = x.v4 && this.o.serviceToken
      ? await this.o.serviceToken().catch((err) => { this.o.logger?.warn({ err }, 'no service token: SigV4 signing keys cannot be cached'); return undefined; })
      : undefined;
    try {
      res = await httpRequest(`${await this.o.identityUrl()}/ec2tokens?nocatalog`, {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', ...(svc ? { 'x-auth-token': svc } : {}) },
        body: JSON.stringify({ credentials: x.payload }),
      });
    } catch (e) {
      throw new Ec2Error('Unavailable', `The identity service is not responding (${(e as Error).message})`, 503);
    }
    const text = await res.text();
    if (res.status === 401 || res.status === 404 || res.status === 403) throw authFailure();
    if (res.status === 400) throw authFailure(`The signature could not be checked: ${text.slice(0, 200)}`);
    if (res.status !== 200) throw new Ec2Error('Unavailable', `The identity service answered ${res.status}`, 503);
    const token = res.headers.get('x-subject-token');
    const body = JSON.parse(text) as { token: { user: { id: string }; project?: { id: string }; roles?: { name: string }[]; expires_at: string } };
    if (!token || !body.token.project) throw authFailure('The credential is not scoped to a project');
    const caller = {
      token, accessKey: x.access, projectId: body.token.project.id, userId: body.token.user.id,
      roles: (body.token.roles ?? []).map((r) => r.name), tokenExpires: Date.parse(body.token.expires_at),
    };
    const key = res.headers.get('x-ec2-signing-key');
    return { caller, signingKey: key && /^[0-9a-f]{64}$/.test(key) ? Buffer.from(key, 'hex') : undefined, scope: res.headers.get('x-ec2-signing-scope') ?? undefined };
  }
}
