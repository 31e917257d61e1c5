// OAuth 1.0a request signatures (RFC 5849) as Keystone checks them through oauthlib: the
// Authorization header's oauth_* parameters plus the query, normalised and signed with HMAC-SHA1
// (or -SHA256) keyed by the consumer secret and the token secret. The checks oauthlib makes
// before the signature (mandatory parameters, version, a timestamp within 600 s, Keystone's
// nonce and key formats) answer with the reason; a wrong signature only says so.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The reason a request is malformed (Keystone: 400 "Validation failed with errors: …"). */
export class OAuthRequestInvalid extends Error {}

export interface OAuthRequest {
  method: string;
  /** The URL the client signed: scheme://host[:port]/path?query */
  url: string;
  params: Record<string, string>;
}

/** oauthlib's parse_authorization_header: `OAuth k="v", …`, keys and values percent-decoded; realm dropped. */
export function parseAuthorizationHeader(header: string | undefined): Record<string, string> | undefined {
  if (!header) return undefined;
  const m = /^\s*OAuth\s+(.*)$/is.exec(header);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const part of m[1].split(',')) {
    const kv = /^\s*([^=\s]+)\s*=\s*"?([^"]*)"?\s*$/.exec(part);
    if (!kv) continue;
    let k: string, v: string;
    try { k = decodeURIComponent(kv[1]); v = decodeURIComponent(kv[2]); } catch { throw new OAuthRequestInvalid('Malformed authorization header.'); }
    if (k !== 'realm') out[k] = v;
  }
  return out;
}

/** RFC 5849 §3.6: everything but ALPHA / DIGIT / - . _ ~ is %XX (upper case). */
export function percentEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** §3.4.1.2: scheme and host in lower case, the default port left out, no query or fragment. */
function baseStringUri(url: URL): string {
  const scheme = url.protocol.toLowerCase();
  const defaultPort = (scheme === 'http:' && url.port === '80') || (scheme === 'https:' && url.port === '443');
  const host = url.hostname.toLowerCase() + (url.port && !defaultPort ? `:${url.port}` : '');
  return `${scheme}//${host}${url.pathname || '/'}`;
}

/** §3.4.1: METHOD & uri & normalised parameters (the query and the oauth_* ones but the signature). */
export function signatureBaseString(req: OAuthRequest): string {
  const url = new URL(req.url);
  const pairs: [string, string][] = [];
  for (const [k, v] of url.searchParams) pairs.push([k, v]);
  for (const [k, v] of Object.entries(req.params)) if (k !== 'oauth_signature') pairs.push([k, v]);
  const norm = pairs.map(([k, v]) => [percentEncode(k), percentEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  return [req.method.toUpperCase(), percentEncode(baseStringUri(url)), percentEncode(norm)].join('&');
}

const HMACS: Record<string, string> = { 'HMAC-SHA1': 'sha1', 'HMAC-SHA256': 'sha256' };

export function sign(req: OAuthRequest, consumerSecret: string, tokenSecret = ''): string {
  const algo = HMACS[req.params.oauth_signature_method];
  if (!algo) throw new OAuthRequestInvalid('Invalid signature, oauth_signature_method is not supported.');
  return createHmac(algo, `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret)}`).update(signatureBaseString(req)).digest('base64');
}

export function signatureMatches(req: OAuthRequest, consumerSecret: string, tokenSecret = ''): boolean {
  const given = Buffer.from(req.params.oauth_signature ?? '', 'utf8');
  const want = Buffer.from(sign(req, consumerSecret, tokenSecret), 'utf8');
  return given.length === want.length && timingSafeEqual(given, want);
}

const HEX = /^[0-9a-f]+$/;
const KEY = /^[0-9a-f]{32}$/;
export const VERIFIER_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * oauthlib's checks before any secret is looked up, with Keystone's formats: keys and tokens are
 * 32 hex digits, a nonce is hex, a verifier 8 letters or digits. `needs` names the parameters
 * the endpoint requires beyond the always-mandatory ones.
 */
export function checkRequest(params: Record<string, string>, needs: ('oauth_callback' | 'oauth_token' | 'oauth_verifier')[], now = Date.now()): void {
  for (const p of ['oauth_signature', 'oauth_consumer_key', 'oauth_nonce', 'oauth_timestamp', 'oauth_signature_method', ...needs]) {
    if (!params[p]) throw new OAuthRequestInvalid(`Missing mandatory OAuth parameters: ${p}.`);
  }
  if (!HMACS[params.oauth_signature_method]) throw new OAuthRequestInvalid('Invalid signature, oauth_signature_method is not supported.');
  if (params.oauth_version !== undefined && params.oauth_version !== '1.0') throw new OAuthRequestInvalid('Invalid OAuth version.');
  if (!/^\d{10}$/.test(params.oauth_timestamp)) throw new OAuthRequestInvalid('Invalid timestamp size');
  if (Math.abs(now / 1000 - Number(params.oauth_timestamp)) > 600) throw new OAuthRequestInvalid('Timestamp given is invalid, differ from allowed by over 600 seconds.');
  if (!HEX.test(params.oauth_nonce)) throw new OAuthRequestInvalid('Invalid nonce format.');
  if (!KEY.test(params.oauth_consumer_key)) throw new OAuthRequestInvalid('Invalid client key format.');
  if (needs.includes('oauth_token') && !KEY.test(params.oauth_token)) throw new OAuthRequestInvalid('Invalid resource owner key format.');
  if (needs.includes('oauth_verifier') && !(params.oauth_verifier.length === 8 && [...params.oauth_verifier].every((c) => VERIFIER_CHARS.includes(c)))) {
    throw new OAuthRequestInvalid('Invalid verifier format.');
  }
}

/**
 * Nonces seen in the timestamp window, per consumer: a captured request cannot be replayed
 * against this process (Keystone checks none; one identity process remembers, others do not).
 */
export class NonceGuard {
  private seen = new Map<string, number>();
  /** False when this nonce+timestamp was already used by the consumer. */
  use(consumer: string, nonce: string, timestamp: string, now = Date.now()): boolean {
    if (this.seen.size > 100_000) for (const [k, exp] of this.seen) if (exp < now) this.seen.delete(k);
    const key = `${consumer}:${timestamp}:${nonce}`;
    const exp = this.seen.get(key);
    if (exp !== undefined && exp >= now) return false;
    this.seen.set(key, now + 1_200_000);
    return true;
  }
}
