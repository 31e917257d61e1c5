// Identity's data access beyond plain CRUD: effective role computation (groups, inheritance,
// implied roles), the catalog, and revocation events. Results that every token validation
// needs are cached in memory and invalidated by a generation counter that every write bumps;
// entries also age out after a few seconds so another identity process's writes are seen.
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../common/db/database.ts';
import type { IdentityDB, RevocationRow, ProjectRow, AssignmentRow } from './schema.ts';

export const newId = () => randomUUID().replace(/-/g, '');
export const nowIso = () => new Date().toISOString();
export const bool = (n: number | boolean | null | undefined) => n === 1 || n === true;
export const parseExtra = (s: string | null | undefined): Record<string, unknown> => {
  if (!s) return {};
  try { return JSON.parse(s) as Record<string, unknown>; } catch { return {}; }
};

const CACHE_TTL_MS = 5000;

export interface RoleRef { id: string; name: string; domain_id: string }
export interface CatalogEntry {
  id: string; type: string; name: string;
  endpoints: { id: string; interface: string; region_id: string | null; url: string; region: string | null }[];
}

export class IdentityStore {
  generation = 0;
  private cache = new Map<string, { gen: number; at: number; value: unknown }>();
  private swept = 0;
  private revocations: RevocationRow[] = [];
  private revByAudit = new Map<string, RevocationRow>();
  private revByUser = new Map<string, RevocationRow[]>();
  private lastRevocationPoll = '';
  private pollTimer?: NodeJS.Timeout;

  constructor(readonly database: Database<IdentityDB>) {}

  get db(): Kysely<IdentityDB> {
    return this.database.db;
  }

  /** Call after every write that can change what a token means (roles, users, projects, catalog). */
  touch(): void {
    this.generation++;
  }

  async cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    const now = Date.now();
    if (hit && hit.gen === this.generation && now - hit.at < CACHE_TTL_MS) return hit.value as T;
    const value = await load();
    // Entries past their TTL are dropped once per TTL: most keys are tokens, each cached once
    // and never asked for again after a few seconds, and kept until the size cap they held tens
    // of MiB (a token body with its catalog is ~5 KiB; the 30-minute soak grew by ~1.5 MiB/min).
    if (now - this.swept >= CACHE_TTL_MS) {
      this.swept = now;
      for (const [k, e] of this.cache) if (now - e.at >= CACHE_TTL_MS || e.gen !== this.generation) this.cache.delete(k);
    }
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(key, { gen: this.generation, at: now, value });
    return value;
  }

  /** The number of cached entries (tests). */
  get cacheSize(): number { return this.cache.size; }

  // ---- roles --------------------------------------------------------------------------------

  async allRoles(): Promise<Map<string, RoleRef>> {
    return this.cached('roles', async () => {
      const rows = await this.db.selectFrom('roles').select(['id', 'name', 'domain_id']).execute();
      return new Map(rows.map((r) => [r.id, r]));
    });
  }

  async impliedMap(): Promise<Map<string, string[]>> {
    return this.cached('implied', async () => {
      const m = new Map<string, string[]>();
      for (const r of await this.db.selectFrom('implied_roles').selectAll().execute()) {
        if (!m.has(r.prior_role_id)) m.set(r.prior_role_id, []);
        m.get(r.prior_role_id)!.push(r.implied_role_id);
      }
      return m;
    });
  }

  /** Role ids plus everything they imply, transitively (admin → member → reader). */
  async expandImplied(roleIds: Iterable<string>): Promise<string[]> {
    const implied = await this.impliedMap();
    const out = new Set<string>();
    const stack = [...roleIds];
    while (stack.length) {
      const r = stack.pop()!;
      if (out.has(r)) continue;
      out.add(r);
      for (const i of implied.get(r) ?? []) stack.push(i);
    }
    return [...out];
  }

  async groupIdsOf(userId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('user_group_membership').select('group_id').where('user_id', '=', userId).execute();
    return rows.map((r) => r.group_id);
  }

  /** The project and its ancestors, nearest first. */
  async projectLineage(projectId: string): Promise<ProjectRow[]> {
    const out: ProjectRow[] = [];
    let id: string | null = projectId;
    while (id && out.length < 100) {
      const p: ProjectRow | undefined = await this.db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
      if (!p) break;
      out.push(p);
      id = p.parent_id;
    }
    return out;
  }

  /**
   * Effective roles of a user on a target: direct and group assignments on the target, plus
   * inherited ones from the project's ancestors and its domain, expanded by implied roles.
   */
  async effectiveRoles(userId: string, target: { projectId?: string; domainId?: string; system?: boolean }): Promise<RoleRef[]> {
    const key = `eff:${userId}:${target.projectId ?? ''}:${target.domainId ?? ''}:${target.system ? 's' : ''}`;
    return this.cached(key, async () => {
      const actors = [userId, ...(await this.groupIdsOf(userId))];
      let direct: AssignmentRow[] = [];
      if (target.system) {
        direct = await this.db.selectFrom('assignments').selectAll()
          .where('type', 'in', ['UserSystem', 'GroupSystem']).where('actor_id', 'in', actors).where('target_id', '=', 'system').execute();
      } else if (target.domainId) {
        direct = await this.db.selectFrom('assignments').selectAll()
          .where('type', 'in', ['UserDomain', 'GroupDomain']).where('actor_id', 'in', actors)
          .where('target_id', '=', target.domainId).where('inherited', '=', 0).execute();
      } else if (target.projectId) {
        const lineage = await this.projectLineage(target.projectId);
        if (!lineage.length) return [];
        const ancestors = lineage.slice(1).map((p) => p.id);
        const domainId = lineage[0].domain_id;
        const rows = await this.db.selectFrom('assignments').selectAll()
          .where('actor_id', 'in', actors)
          .where('target_id', 'in', [target.projectId, domainId, ...ancestors])
          .execute();
        direct = rows.filter((a) =>
          ((a.type === 'UserProject' || a.type === 'GroupProject') && a.target_id === target.projectId && a.inherited === 0) ||
          ((a.type === 'UserProject' || a.type === 'GroupProject') && ancestors.includes(a.target_id) && a.inherited === 1) ||
          ((a.type === 'UserDomain' || a.type === 'GroupDomain') && a.target_id === domainId && a.inherited === 1));
      }
      const roles = await this.allRoles();
      const ids = await this.expandImplied(new Set(direct.map((a) => a.role_id)));
      // Domain-specific roles only ever stand for the global roles they imply; they never
      // appear in a token themselves (Keystone's rule).
      return ids.map((id) => roles.get(id)).filter((r): r is RoleRef => !!r && !r.domain_id).sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  // ---- catalog ------------------------------------------------------------------------------

  async catalog(): Promise<CatalogEntry[]> {
    return this.cached('catalog', async () => {
      const services = await this.db.selectFrom('services').selectAll().where('enabled', '=', 1).execute();
      const endpoints = await this.db.selectFrom('endpoints').selectAll().where('enabled', '=', 1).execute();
      return services.map((s) => ({
        id: s.id, type: s.type, name: s.name,
        endpoints: endpoints.filter((e) => e.service_id === s.id).map((e) => ({
          id: e.id, interface: e.interface, region_id: e.region_id, url: e.url, region: e.region_id,
        })),
      }));
    });
  }

  // ---- revocation ---------------------------------------------------------------------------

  async loadRevocations(): Promise<void> {
    const rows = await this.db.selectFrom('revocation_events').selectAll().orderBy('revoked_at').execute();
    this.revocations = [];
    this.revByAudit.clear();
    this.revByUser.clear();
    for (const r of rows) this.indexRevocation(r);
  }

  /** Picks up revocations written by other identity processes sharing the database. */
  startRevocationPolling(intervalMs = 2000): void {
    this.pollTimer = setInterval(() => {
      this.db.selectFrom('revocation_events').selectAll().where('revoked_at', '>=', this.lastRevocationPoll).execute()
        .then((rows) => { for (const r of rows) if (!this.revocations.some((x) => x.id === r.id)) this.indexRevocation(r); })
        .catch(() => { /* the database may be restarting; the next poll retries */ });
    }, intervalMs);
    this.pollTimer.unref();
  }

  stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
  }

  private indexRevocation(r: RevocationRow) {
    this.revocations.push(r);
    if (r.revoked_at > this.lastRevocationPoll) this.lastRevocationPoll = r.revoked_at;
    if (r.audit_id) this.revByAudit.set(r.audit_id, r);
    if (r.user_id) {
      if (!this.revByUser.has(r.user_id)) this.revByUser.set(r.user_id, []);
      this.revByUser.get(r.user_id)!.push(r);
    }
    this.touch();
  }

  async revoke(ev: { userId?: string; projectId?: string; auditId?: string; domainId?: string; expiresAt?: string }): Promise<void> {
    const row: RevocationRow = {
      id: newId(), user_id: ev.userId ?? null, project_id: ev.projectId ?? null, audit_id: ev.auditId ?? null,
      domain_id: ev.domainId ?? null, issued_before: nowIso(), expires_at: ev.expiresAt ?? null, revoked_at: nowIso(),
    };
    await this.db.insertInto('revocation_events').values(row).execute();
    this.indexRevocation(row);
  }

  /** True when a revocation event covers a token with these attributes. */
  isRevoked(t: { userId: string; projectId?: string; domainId?: string; auditIds: string[]; issuedAt: string }): boolean {
    for (const a of t.auditIds) if (this.revByAudit.has(a)) return true;
    for (const r of this.revByUser.get(t.userId) ?? []) {
      if (r.audit_id) continue;
      if (r.project_id && r.project_id !== t.projectId) continue;
      if (r.domain_id && r.domain_id !== t.domainId) continue;
      if (t.issuedAt <= r.issued_before) return true;
    }
    return false;
  }

  /** Drops events older than any token that could still be valid. */
  async pruneRevocations(maxTokenLifetimeSeconds: number): Promise<void> {
    const cutoff = new Date(Date.now() - (maxTokenLifetimeSeconds + 600) * 1000).toISOString();
    await this.db.deleteFrom('revocation_events').where('revoked_at', '<', cutoff).execute();
    await this.loadRevocations();
  }
}
