// Issues and validates tokens. Tokens are stateless Fernet blobs carrying who, how, which scope
// and until when; validation decrypts, checks expiry and revocation, then rebuilds the token
// body from current data (so a disabled user or a removed role takes effect at once).
import { randomBytes } from 'node:crypto';
import { Forbidden, NotFound, Unauthorized } from '../../common/errors.ts';
import type { AccessRule, TokenBody } from '../../common/http/auth.ts';
import type { Fernet } from './fernet.ts';
import type { IdentityStore, CatalogEntry, RoleRef } from '../store/store.ts';
import type { TrustRow } from '../store/schema.ts';
import { bool } from '../store/store.ts';

export interface TokenScope { projectId?: string; domainId?: string; system?: boolean }

interface Payload {
  v: 1;
  u: string;          // user id
  m: string[];        // methods
  p?: string;         // project id
  d?: string;         // domain id
  s?: 1;              // system scope
  e: number;          // expires, ms since epoch
  i: number;          // issued, ms since epoch
  a: string[];        // audit ids: own, then the parent's when rescoped
  ac?: string;        // application credential id
  t?: string;         // trust id (the token acts within that trust)
  tu?: string;        // the trustee who authenticated, when the trust impersonates the trustor (u)
  o?: string;         // OAuth1 access token id (the token acts for a consumer)
}

export interface TrustTokenInfo { id: string; impersonation: boolean; trustor_user: { id: string }; trustee_user: { id: string } }

export interface ValidatedToken {
  body: TokenBody & { is_domain?: boolean; catalog?: CatalogEntry[]; application_credential?: { id: string; name: string; restricted: boolean; access_rules?: AccessRule[] }; 'OS-TRUST:trust'?: TrustTokenInfo; 'OS-OAUTH1'?: { access_token_id: string; consumer_id: string } };
  payload: Payload;
}

export class TokenInvalid extends NotFound {}

/** A trust that can still be used: present, not expired, its trustor and trustee still there. */
export async function findUsableTrust(store: IdentityStore, id: string, opts: { requireUses?: boolean } = {}): Promise<TrustRow | undefined> {
  const t = await store.db.selectFrom('trusts').selectAll().where('id', '=', id).executeTakeFirst();
  if (!t) return undefined;
  if (t.expires_at && Date.parse(t.expires_at) <= Date.now()) return undefined;
  if (opts.requireUses && t.remaining_uses !== null && t.remaining_uses <= 0) return undefined;
  const users = await store.db.selectFrom('users').select('id').where('id', 'in', [t.trustor_user_id, t.trustee_user_id]).execute();
  if (users.length < new Set([t.trustor_user_id, t.trustee_user_id]).size) return undefined;
  return t;
}

/**
 * The roles a trust conveys now: its roles plus what they imply, each of which the trustor must
 * still hold on the project (Keystone's rule: a trustor who lost a delegated role voids the
 * trust). Domain-specific roles only count through the global roles they imply.
 */
export async function delegatedRoles(store: IdentityStore, trust: TrustRow): Promise<RoleRef[]> {
  if (!trust.project_id) return [];
  const ids = (await store.db.selectFrom('trust_roles').select('role_id').where('trust_id', '=', trust.id).execute()).map((r) => r.role_id);
  const expanded = await store.expandImplied(ids);
  const trustor = new Map((await store.effectiveRoles(trust.trustor_user_id, { projectId: trust.project_id })).map((r) => [r.id, r]));
  const all = await store.allRoles();
  const out: RoleRef[] = [];
  for (const id of expanded) {
    const role = all.get(id);
    if (!role || role.domain_id) continue;
    if (!trustor.has(id)) throw new Forbidden('Trustee has no delegated roles.');
    out.push(role);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Keystone prints times with microseconds: 2026-11-24T16:33:28.000000Z */
export function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const auditId = () => randomBytes(16).toString('base64url').slice(0, 22);

export class TokenProvider {
  constructor(
    private readonly store: IdentityStore,
    private fernet: Fernet,
    readonly expirationSeconds: number,
  ) {}

  setKeys(f: Fernet): void {
    this.fernet = f;
  }

  issue(args: { userId: string; methods: string[]; scope: TokenScope; parentAuditIds?: string[]; expiresAt?: number; appCredId?: string; trustId?: string; trusteeId?: string; accessTokenId?: string }): { id: string; payload: Payload } {
    const now = Date.now();
    let e = now + this.expirationSeconds * 1000;
    if (args.expiresAt !== undefined && args.expiresAt < e) e = args.expiresAt; // rescoping never extends
    const payload: Payload = {
      v: 1, u: args.userId, m: args.methods, e, i: now,
      a: [auditId(), ...(args.parentAuditIds ? args.parentAuditIds.slice(0, 1) : [])],
    };
    if (args.scope.projectId) payload.p = args.scope.projectId;
    if (args.scope.domainId) payload.d = args.scope.domainId;
    if (args.scope.system) payload.s = 1;
    if (args.appCredId) payload.ac = args.appCredId;
    if (args.trustId) payload.t = args.trustId;
    if (args.trustId && args.trusteeId && args.trusteeId !== args.userId) payload.tu = args.trusteeId;
    if (args.accessTokenId) payload.o = args.accessTokenId;
    return { id: this.fernet.encrypt(Buffer.from(JSON.stringify(payload))), payload };
  }

  /** Decrypts and checks expiry and revocation. Throws TokenInvalid (404 "Could not find token"). */
  unpack(token: string): Payload {
    const plain = token.length < 4096 ? this.fernet.decrypt(token) : undefined;
    if (!plain) throw new TokenInvalid(`Could not find token: ${token.slice(0, 16)}…`);
    let p: Payload;
    try { p = JSON.parse(plain.toString('utf8')) as Payload; } catch { throw new TokenInvalid('Could not find token.'); }
    if (p.v !== 1 || p.e <= Date.now()) throw new TokenInvalid(`Could not find token: ${token.slice(0, 16)}… (expired)`);
    const issuedAt = new Date(p.i).toISOString();
    // An impersonating trust token is also the trustee's: revoking the trustee's tokens ends it.
    if (this.store.isRevoked({ userId: p.u, projectId: p.p, domainId: p.d, auditIds: p.a, issuedAt }) ||
        (p.tu && this.store.isRevoked({ userId: p.tu, projectId: p.p, domainId: p.d, auditIds: p.a, issuedAt }))) {
      throw new TokenInvalid(`Could not find token: ${token.slice(0, 16)}… (revoked)`);
    }
    return p;
  }

  /** Full validation: the token body as Keystone returns it. Throws TokenInvalid. */
  async validate(token: string, opts: { catalog?: boolean } = {}): Promise<ValidatedToken> {
    const p = this.unpack(token);
    const key = `tok:${token}:${opts.catalog ? 1 : 0}`;
    const body = await this.store.cached(key, () => this.buildBody(p, opts.catalog ?? false));
    return { body, payload: p };
  }

  private async buildBody(p: Payload, withCatalog: boolean): Promise<ValidatedToken['body']> {
    const db = this.store.db;
    const user = await db.selectFrom('users').selectAll().where('id', '=', p.u).executeTakeFirst();
    if (!user || !bool(user.enabled)) throw new TokenInvalid('Could not find token (user not found or disabled).');
    const udom = await db.selectFrom('domains').select(['id', 'name', 'enabled']).where('id', '=', user.domain_id).executeTakeFirst();
    if (!udom || !bool(udom.enabled)) throw new TokenInvalid('Could not find token (user domain disabled).');
    const body: ValidatedToken['body'] = {
      methods: p.m,
      user: { id: user.id, name: user.name, domain: { id: udom.id, name: udom.name }, password_expires_at: null } as TokenBody['user'],
      audit_ids: p.a,
      expires_at: keystoneTime(p.e),
      issued_at: keystoneTime(p.i),
    };
    let roles: RoleRef[] | undefined;
    if (p.p) {
      const proj = await db.selectFrom('projects').selectAll().where('id', '=', p.p).executeTakeFirst();
      if (!proj || !bool(proj.enabled)) throw new TokenInvalid('Could not find token (project not found or disabled).');
      const pdom = await db.selectFrom('domains').select(['id', 'name', 'enabled']).where('id', '=', proj.domain_id).executeTakeFirst();
      if (!pdom || !bool(pdom.enabled)) throw new TokenInvalid('Could not find token (project domain disabled).');
      body.project = { id: proj.id, name: proj.name, domain: { id: pdom.id, name: pdom.name } };
      body.is_domain = false;
      roles = p.t ? await this.trustRoles(p) : await this.store.effectiveRoles(user.id, { projectId: proj.id });
      if (p.o) roles = await this.oauthRoles(p, roles, body);
    } else if (p.d) {
      const dom = await db.selectFrom('domains').select(['id', 'name', 'enabled']).where('id', '=', p.d).executeTakeFirst();
      if (!dom || !bool(dom.enabled)) throw new TokenInvalid('Could not find token (domain not found or disabled).');
      body.domain = { id: dom.id, name: dom.name };
      roles = await this.store.effectiveRoles(user.id, { domainId: dom.id });
    } else if (p.s) {
      body.system = { all: true };
      roles = await this.store.effectiveRoles(user.id, { system: true });
    }
    if (roles) {
      if (p.ac) roles = await this.restrictToAppCred(p.ac, roles);
      if (!roles.length) throw new TokenInvalid('Could not find token (no roles on the scope any more).');
      body.roles = roles.map((r) => ({ id: r.id, name: r.name }));
    }
    if (p.ac) {
      const ac = await db.selectFrom('application_credentials').select(['id', 'name', 'unrestricted', 'access_rules']).where('id', '=', p.ac).executeTakeFirst();
      if (!ac) throw new TokenInvalid('Could not find token (application credential deleted).');
      body.application_credential = { id: ac.id, name: ac.name, restricted: !bool(ac.unrestricted) };
      // The rules travel in the token so that every service's middleware can enforce them;
      // a credential without rules is not restricted by path (Keystone omits the key then).
      const ruleIds = JSON.parse(ac.access_rules) as string[];
      if (ruleIds.length) {
        const rules = await db.selectFrom('access_rules').selectAll().where('id', 'in', ruleIds).execute();
        body.application_credential.access_rules = ruleIds.map((id) => rules.find((r) => r.id === id))
          .filter((r) => r !== undefined).map((r) => ({ id: r.id, service: r.service, path: r.path, method: r.method }));
        // A rule that vanished must not widen what the credential may do.
        if (body.application_credential.access_rules.length !== ruleIds.length) throw new TokenInvalid('Could not find token (an access rule of its application credential is gone).');
      }
    }
    if (p.t) {
      const t = await findUsableTrust(this.store, p.t);
      if (!t) throw new TokenInvalid('Could not find token (trust gone or expired).');
      body['OS-TRUST:trust'] = { id: t.id, impersonation: bool(t.impersonation), trustor_user: { id: t.trustor_user_id }, trustee_user: { id: t.trustee_user_id } };
    }
    if (withCatalog && (p.p || p.d || p.s)) body.catalog = await this.store.catalog();
    return body;
  }

  /**
   * An OAuth1 token's roles: those its access token was authorized with (and what they imply)
   * that the user still holds on the project. The token dies with its access token.
   */
  private async oauthRoles(p: Payload, userRoles: RoleRef[], body: ValidatedToken['body']): Promise<RoleRef[]> {
    const at = await this.store.db.selectFrom('oauth1_access_tokens').selectAll().where('id', '=', p.o!).executeTakeFirst();
    if (!at || at.project_id !== p.p || at.authorizing_user_id !== p.u || (at.expires_at && Date.parse(at.expires_at) <= Date.now())) {
      throw new TokenInvalid('Could not find token (OAuth access token revoked or expired).');
    }
    body['OS-OAUTH1'] = { access_token_id: at.id, consumer_id: at.consumer_id };
    const allowed = new Set(await this.store.expandImplied(JSON.parse(at.role_ids) as string[]));
    return userRoles.filter((r) => allowed.has(r.id));
  }

  /** A trust token's roles; the token dies with its trust, its trustee, or a delegated role. */
  private async trustRoles(p: Payload): Promise<RoleRef[]> {
    const t = await findUsableTrust(this.store, p.t!);
    if (!t || t.project_id !== p.p) throw new TokenInvalid('Could not find token (trust gone or expired).');
    const trustee = await this.store.db.selectFrom('users').select(['enabled', 'domain_id']).where('id', '=', t.trustee_user_id).executeTakeFirst();
    if (!trustee || !bool(trustee.enabled)) throw new TokenInvalid('Could not find token (trustee disabled).');
    try {
      return await delegatedRoles(this.store, t);
    } catch (e) {
      if (e instanceof Forbidden) throw new TokenInvalid('Could not find token (the trustor no longer has the delegated roles).');
      throw e;
    }
  }

  private async restrictToAppCred(acId: string, roles: RoleRef[]): Promise<RoleRef[]> {
    const ac = await this.store.db.selectFrom('application_credentials').select('roles').where('id', '=', acId).executeTakeFirst();
    if (!ac) throw new Unauthorized('The request you have made requires authentication.');
    const allowed = await this.store.expandImplied((JSON.parse(ac.roles) as { id: string }[]).map((r) => r.id));
    return roles.filter((r) => allowed.includes(r.id));
  }
}
