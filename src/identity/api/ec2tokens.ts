// Tokens for EC2/S3 key pairs: a service that received a request signed with an EC2 access key
// (AWS signature version 2 or 4) posts the request's parts to /v3/ec2tokens, or an S3 gateway
// posts the string it signed to /v3/s3tokens; Identity checks the signature with the secret it
// keeps and answers with a token scoped to the credential's project. A key pair made within a
// trust or with an application credential only ever yields what that delegation allows.
// Signature versions 0 and 1 (HMAC-SHA1 over parameters without the request line) are refused.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, NotFound, Unauthorized } from '../../common/errors.ts';
import { bool } from '../store/store.ts';
import type { CredentialRow } from '../store/schema.ts';
import { TokenInvalid, type TokenScope } from '../tokens/provider.ts';
import { scopeToTrust } from './auth.ts';
import { ec2CredentialId, openCredential } from './credentials.ts';
import type { IdentityRow, RowModule } from './rows.ts';

/** How long a signed request's timestamp stays acceptable (Keystone's [credential] auth_ttl). */
const AUTH_TTL_MS = 15 * 60_000;

type Obj = Record<string, unknown>;
interface Ec2Request { access: string; signature?: string; host?: string; verb?: string; path?: string; params: Record<string, string>; headers: Record<string, string>; body_hash?: string }

const hmac = (alg: 'sha1' | 'sha256', key: Buffer | string, msg: string | Buffer) => createHmac(alg, key).update(msg).digest();

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** RFC 3986 encoding as AWS canonical query strings use it (Python's quote(v, safe='-_.~')). */
const awsQuote = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(params: Record<string, string>): string {
  return Object.keys(params).sort().map((k) => `${awsQuote(k)}=${awsQuote(String(params[k]))}`).join('&');
}

function signatureV2(secret: string, c: Ec2Request, host: string): string {
  const params = { ...c.params };
  delete params.Signature;
  const alg = params.SignatureMethod === 'HmacSHA1' ? 'sha1' : 'sha256';
  const toSign = `${c.verb}\n${host}\n${c.path}\n${canonicalQuery(params)}`;
  return hmac(alg, secret, toSign).toString('base64');
}

function signatureV4(secret: string, c: Ec2Request, host: string): string {
  const params = { ...c.params };
  delete params['X-Amz-Signature'];
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k.toLowerCase().trim(), String(v).trim()]));
  if (host !== c.host && headers.host) headers.host = host;
  const authParam = (name: string): string | undefined => {
    const auth = c.headers.Authorization ?? headers.authorization;
    if (auth !== undefined) return auth.split(`${name}=`)[1]?.split(',')[0]?.trim();
    return params[`X-Amz-${name}`];
  };
  const signed = authParam('SignedHeaders') ?? '';
  const canonicalHeaders = signed.split(';').filter((h) => h in headers).map((h) => `${h}:${headers[h]}\n`).join('');
  const canonicalRequest = [String(c.verb).toUpperCase(), c.path, canonicalQuery(params), canonicalHeaders, signed, c.body_hash ?? ''].join('\n');
  const credential = (authParam('Credential') ?? '').split('/');
  const date = c.headers['X-Amz-Date'] ?? headers['x-amz-date'] ?? params['X-Amz-Date'] ?? '';
  if (credential.length < 5 || !date.startsWith(credential[1])) throw new Unauthorized('Invalid EC2 signature.');
  const scope = credential.slice(1).join('/');
  const toSign = ['AWS4-HMAC-SHA256', date, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  return hmac('sha256', signingKeyV4(secret, credential.slice(1)), toSign).toString('hex');
}

/** SigV4's signing key: the secret narrowed to one day, region and service ([date, region, service, 'aws4_request']). */
function signingKeyV4(secret: string, scope: string[]): Buffer {
  let key = hmac('sha256', `AWS4${secret}`, scope[0]);
  for (const part of [scope[1], scope[2], 'aws4_request']) key = hmac('sha256', key, part);
  return key;
}

/** The credential scope of a SigV4 request (date/region/service/aws4_request), from its header or query. */
function scopeV4(c: Ec2Request): string[] {
  const auth = c.headers.Authorization ?? c.headers.authorization;
  const cred = auth !== undefined ? auth.split('Credential=')[1]?.split(',')[0]?.trim() : c.params['X-Amz-Credential'];
  return (cred ?? '').split('/').slice(1);
}

function isV4(c: Ec2Request): boolean {
  const auth = c.headers.Authorization ?? c.headers.authorization;
  return (typeof auth === 'string' && auth.startsWith('AWS4-HMAC-SHA256')) || c.params['X-Amz-Algorithm'] === 'AWS4-HMAC-SHA256';
}

function checkEc2Signature(secret: string, c: Ec2Request): void {
  if (!c.signature) throw new Unauthorized('EC2 signature not supplied.');
  if (typeof c.host !== 'string' || typeof c.verb !== 'string' || typeof c.path !== 'string') throw new Unauthorized('Invalid EC2 signature.');
  const version = c.params.SignatureVersion;
  let sign: (host: string) => string;
  if (version === '2') sign = (h) => signatureV2(secret, c, h);
  else if (version === undefined && isV4(c)) sign = (h) => signatureV4(secret, c, h);
  else throw new Unauthorized(`Unsupported EC2 signature version: ${version ?? 'none'}.`);
  if (sameString(c.signature, sign(c.host))) return;
  // Some clients sign without the port.
  const bare = c.host.replace(/:\d+$/, '');
  if (bare !== c.host && sameString(c.signature, sign(bare))) return;
  throw new Unauthorized('Invalid EC2 signature.');
}

function checkS3Signature(secret: string, token: string, signature: string): void {
  const toSign = Buffer.from(token.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  let expected: string;
  if (toSign.subarray(0, 4).toString() !== 'AWS4') {
    expected = hmac('sha1', secret, toSign).toString('base64');
  } else {
    const parts = toSign.toString('utf8').split('\n');
    const scope = parts[2]?.split('/') ?? [];
    if (parts.length !== 4 || parts[0] !== 'AWS4-HMAC-SHA256' || scope.length !== 4 || scope[2] !== 's3' || scope[3] !== 'aws4_request') {
      throw new Unauthorized('Invalid EC2 signature.');
    }
    let key = hmac('sha256', `AWS4${secret}`, scope[0]);
    for (const part of [scope[1], scope[2], 'aws4_request']) key = hmac('sha256', key, part);
    expected = hmac('sha256', key, toSign).toString('hex');
  }
  if (!sameString(signature, expected)) throw new Unauthorized('Credential signature mismatch');
}

/** ISO 8601, extended (2026-11-24T18:00:00Z) or basic (20261124T180000Z) as SigV4 writes it. */
function parseTimestamp(v: string): number {
  const basic = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(v);
  const t = basic ? Date.parse(`${basic[1]}-${basic[2]}-${basic[3]}T${basic[4]}:${basic[5]}:${basic[6]}Z`) : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  if (Number.isNaN(t)) throw new Unauthorized(`Credential timestamp is invalid: ${v}`);
  return t;
}

/**
 * The signing time must be within AUTH_TTL of ours, either way: a request dated in the future
 * would otherwise stay replayable for longer than the window (AWS refuses both). V2's Expires
 * must not have passed.
 */
function checkTimestamp(c: Ec2Request): void {
  const amzDate = Object.entries(c.headers).find(([k]) => k.toLowerCase() === 'x-amz-date')?.[1];
  const ts = c.params.Timestamp ?? amzDate ?? c.params['X-Amz-Date'];
  const now = Date.now();
  if (c.params.Expires !== undefined && now > parseTimestamp(String(c.params.Expires))) throw new Unauthorized('Credential is expired');
  if (!ts) return;
  const t = parseTimestamp(String(ts));
  if (now > t + AUTH_TTL_MS || t > now + AUTH_TTL_MS) throw new Unauthorized('Credential is expired');
}

const stringMap = (v: unknown): Record<string, string> => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, string> : {});

export const ec2TokenRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const { store, tokens } = api;
  const db = () => store.db;

  /** The credential named by the request, whichever of Keystone's body keys carries it. */
  async function credentialOf(req: FastifyRequest): Promise<{ c: Obj; row: CredentialRow; blob: Obj }> {
    const body = req.body as Obj | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body) || !Object.keys(body).length) throw new BadRequest('request must include a request body');
    const c = stringMap(body.credentials ?? body.credential ?? body.ec2Credentials) as Obj;
    if (typeof c.access !== 'string') throw new Unauthorized('EC2 Signature not supplied');
    const stored = await db().selectFrom('credentials').selectAll().where('id', '=', ec2CredentialId(c.access)).executeTakeFirst();
    if (!stored || stored.type !== 'ec2') throw new NotFound('EC2 access key not found.');
    const row = openCredential(api, stored);
    let blob: Obj = {};
    try { blob = JSON.parse(row.blob) as Obj; } catch { /* checked below: no secret, no match */ }
    if (typeof blob.secret !== 'string') throw new Unauthorized('Invalid EC2 signature.');
    return { c, row, blob };
  }

  /** A token for the credential's user on its project, within its trust or application credential. */
  async function issueFor(row: CredentialRow, blob: Obj, c: Ec2Request, catalog = true) {
    const user = await db().selectFrom('users').selectAll().where('id', '=', row.user_id).executeTakeFirst();
    const project = row.project_id ? await db().selectFrom('projects').select(['id', 'enabled', 'domain_id']).where('id', '=', row.project_id).executeTakeFirst() : undefined;
    if (!user || !bool(user.enabled) || !project || !bool(project.enabled)) throw new Unauthorized('The request you have made requires authentication.');
    checkTimestamp(c);
    let userId = user.id;
    let scope: TokenScope = { projectId: project.id };
    let trustId: string | undefined;
    let trusteeId: string | undefined;
    let appCredId: string | undefined;
    let expiresAt: number | undefined;
    if (typeof blob.trust_id === 'string') {
      const t = await db().selectFrom('trusts').select(['trustee_user_id']).where('id', '=', blob.trust_id).executeTakeFirst();
      if (!t) throw new NotFound(`Could not find trust: ${blob.trust_id}.`);
      // The key pair belongs to whoever the trust token acted as; the trustee is who uses the trust.
      const trustee = await db().selectFrom('users').selectAll().where('id', '=', t.trustee_user_id).executeTakeFirst();
      if (!trustee || !bool(trustee.enabled)) throw new Unauthorized('The request you have made requires authentication.');
      const s = await scopeToTrust(store, { id: blob.trust_id }, trustee);
      if (s.scope.projectId !== project.id) throw new Unauthorized('EC2 credential project does not match the trust project.');
      ({ userId, scope, trustId, expiresAt } = s);
      trusteeId = trustee.id;
    } else if (typeof blob.app_cred_id === 'string') {
      const ac = await db().selectFrom('application_credentials').select(['id', 'project_id', 'expires_at']).where('id', '=', blob.app_cred_id).executeTakeFirst();
      if (!ac || (ac.expires_at && Date.parse(ac.expires_at) <= Date.now())) throw new Unauthorized('The request you have made requires authentication.');
      if (ac.project_id !== project.id) throw new Unauthorized('EC2 credential project does not match the application credential project.');
      appCredId = ac.id;
      if (ac.expires_at) expiresAt = Date.parse(ac.expires_at);
    } else if (!(await store.effectiveRoles(user.id, scope)).length) {
      throw new Unauthorized('User not valid for project.');
    }
    const issued = tokens.issue({ userId, methods: ['ec2credential'], scope, trustId, trusteeId, appCredId, expiresAt });
    try {
      return { id: issued.id, body: (await tokens.validate(issued.id, { catalog })).body };
    } catch {
      // e.g. an application credential whose roles the user no longer has
      throw new Unauthorized('User not valid for project.');
    }
  }

  // GET (any method but POST) on these is the kit's 405 with `Allow: POST`, as Keystone answers.

  rows.push({ method: 'POST', path: '/v3/ec2tokens', errors: [], handler: async (req, reply) => {
    const { c, row, blob } = await credentialOf(req);
    const ec2: Ec2Request = {
      access: c.access as string, signature: c.signature as string | undefined, host: c.host as string | undefined,
      verb: c.verb as string | undefined, path: c.path as string | undefined, params: stringMap(c.params),
      headers: stringMap(c.headers), body_hash: c.body_hash as string | undefined,
    };
    try {
      checkEc2Signature(blob.secret as string, ec2);
    } catch (e) {
      if (e instanceof Unauthorized) throw e;
      throw new Unauthorized('Invalid EC2 signature.');
    }
    // ?nocatalog as on GET /v3/auth/tokens: an EC2 endpoint verifying each request needs no catalog.
    const token = await issueFor(row, blob, ec2, !('nocatalog' in (req.query as Obj ?? {})));
    reply.code(200).header('x-subject-token', token.id);
    // A service that verifies EC2 requests itself (Stratus's EC2 API, with its service token)
    // may have the SigV4 signing key of this request's scope: one day, one region, one service.
    // With it, it checks that key pair's later requests of the same scope without a round trip,
    // and the secret itself still never leaves Identity (as AWS hands derived keys to its
    // regional endpoints).
    const svc = req.headers['x-auth-token'];
    const scope = isV4(ec2) ? scopeV4(ec2) : [];
    if (typeof svc === 'string' && scope.length === 4 && scope[3] === 'aws4_request') {
      // An invalid or expired X-Auth-Token only means "not a service": the EC2 token is still
      // issued, without the signing key. Anything else (the database failing) is a real error.
      const caller = await tokens.validate(svc).catch((e) => { if (e instanceof TokenInvalid) return undefined; throw e; });
      if (caller?.body.roles?.some((r: { name: string }) => r.name === 'service')) {
        reply.header('x-ec2-signing-key', signingKeyV4(blob.secret as string, scope).toString('hex')).header('x-ec2-signing-scope', scope.join('/'));
      }
    }
    return { token: token.body };
  } });

  rows.push({ method: 'POST', path: '/v3/s3tokens', errors: [], handler: async (req, reply) => {
    const { c, row, blob } = await credentialOf(req);
    if (typeof c.token !== 'string' || typeof c.signature !== 'string') throw new Unauthorized('Credential signature mismatch');
    checkS3Signature(blob.secret as string, c.token, c.signature);
    const token = await issueFor(row, blob, { access: c.access as string, params: {}, headers: {} });
    reply.code(200);
    return { token: token.body };
  } });
  return rows;
};
