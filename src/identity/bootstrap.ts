// keystone-manage bootstrap: the default domain, the admin/member/reader roles (admin implies
// member implies reader), an admin project and user with the admin role on it and on the system,
// and the identity service with its endpoints. Safe to run any number of times.
import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../common/db/database.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { newId, nowIso } from './store/store.ts';
import type { IdentityDB } from './store/schema.ts';

export interface BootstrapOptions {
  password?: string;
  username?: string;
  projectName?: string;
  roleName?: string;
  serviceName?: string;
  adminUrl?: string;
  internalUrl?: string;
  publicUrl?: string;
  regionId?: string;
  log?: (msg: string) => void;
}

async function insertIgnore<T extends keyof IdentityDB>(db: Kysely<IdentityDB>, table: T, row: IdentityDB[T]): Promise<boolean> {
  try {
    await db.insertInto(table).values(row as never).execute();
    return true;
  } catch (e) {
    if (isUniqueViolation(e)) return false;
    throw e;
  }
}

export async function ensureRole(db: Kysely<IdentityDB>, name: string): Promise<string> {
  const existing = await db.selectFrom('roles').select('id').where('name', '=', name).where('domain_id', '=', '').executeTakeFirst();
  if (existing) return existing.id;
  await insertIgnore(db, 'roles', { id: newId(), name, domain_id: '', description: '', extra: '{}' });
  return (await db.selectFrom('roles').select('id').where('name', '=', name).where('domain_id', '=', '').executeTakeFirstOrThrow()).id;
}

export async function ensureProject(db: Kysely<IdentityDB>, name: string, description = '', domainId = 'default'): Promise<string> {
  const find = () => db.selectFrom('projects').select('id').where('name', '=', name).where('domain_id', '=', domainId).executeTakeFirst();
  const existing = await find();
  if (existing) return existing.id;
  await insertIgnore(db, 'projects', { id: newId(), name, domain_id: domainId, parent_id: null, description, enabled: 1, extra: '{}', created_at: nowIso() });
  return (await find())!.id;
}

/** Creates the user if missing; sets the password when given and different. */
export async function ensureUser(db: Kysely<IdentityDB>, name: string, password: string | undefined, opts: { defaultProjectId?: string; domainId?: string } = {}): Promise<{ id: string; created: boolean }> {
  const domainId = opts.domainId ?? 'default';
  const find = () => db.selectFrom('users').select(['id', 'password_hash']).where('name', '=', name).where('domain_id', '=', domainId).executeTakeFirst();
  const existing = await find();
  if (existing) {
    if (password !== undefined && !(await verifyPassword(password, existing.password_hash))) {
      await db.updateTable('users').set({ password_hash: await hashPassword(password), password_created_at: nowIso() }).where('id', '=', existing.id).execute();
    }
    return { id: existing.id, created: false };
  }
  await insertIgnore(db, 'users', {
    id: newId(), name, domain_id: domainId, enabled: 1, default_project_id: opts.defaultProjectId ?? null,
    password_hash: password !== undefined ? await hashPassword(password) : null, password_created_at: password !== undefined ? nowIso() : null,
    extra: '{}', created_at: nowIso(),
  });
  return { id: (await find())!.id, created: true };
}

export async function grant(db: Kysely<IdentityDB>, type: string, actorId: string, targetId: string, roleId: string): Promise<void> {
  await insertIgnore(db, 'assignments', { type, actor_id: actorId, target_id: targetId, role_id: roleId, inherited: 0 });
}

/** Registers a service (by type and name) and its three endpoints in a region; updates URLs that changed. */
export async function ensureServiceEndpoints(db: Kysely<IdentityDB>, s: { type: string; name: string; description?: string; regionId: string; urls: Partial<Record<'public' | 'internal' | 'admin', string>> }): Promise<string> {
  await insertIgnore(db, 'regions', { id: s.regionId, description: '', parent_region_id: null, extra: '{}' });
  let svc = await db.selectFrom('services').select('id').where('type', '=', s.type).where('name', '=', s.name).executeTakeFirst();
  if (!svc) {
    const id = newId();
    await db.insertInto('services').values({ id, type: s.type, name: s.name, description: s.description ?? '', enabled: 1, extra: '{}' }).execute();
    svc = { id };
  }
  for (const [iface, url] of Object.entries(s.urls)) {
    if (!url) continue;
    const ep = await db.selectFrom('endpoints').select(['id', 'url']).where('service_id', '=', svc.id).where('interface', '=', iface).where('region_id', '=', s.regionId).executeTakeFirst();
    if (!ep) await db.insertInto('endpoints').values({ id: newId(), service_id: svc.id, interface: iface, url, region_id: s.regionId, enabled: 1, extra: '{}' }).execute();
    else if (ep.url !== url) await db.updateTable('endpoints').set({ url }).where('id', '=', ep.id).execute();
  }
  return svc.id;
}

export async function bootstrap(db: Kysely<IdentityDB>, o: BootstrapOptions): Promise<{ userId: string; projectId: string; roleId: string }> {
  const log = o.log ?? (() => undefined);
  if (await insertIgnore(db, 'domains', { id: 'default', name: 'Default', description: 'The default domain', enabled: 1, extra: '{}', created_at: nowIso() })) log('Created domain default');
  const reader = await ensureRole(db, 'reader');
  const member = await ensureRole(db, 'member');
  const admin = await ensureRole(db, 'admin');
  await ensureRole(db, 'service');
  await insertIgnore(db, 'implied_roles', { prior_role_id: admin, implied_role_id: member });
  await insertIgnore(db, 'implied_roles', { prior_role_id: member, implied_role_id: reader });
  const roleId = o.roleName && o.roleName !== 'admin' ? await ensureRole(db, o.roleName) : admin;
  const projectId = await ensureProject(db, o.projectName ?? 'admin', 'Bootstrap project for initializing the cloud.');
  const user = await ensureUser(db, o.username ?? 'admin', o.password, { defaultProjectId: projectId });
  log(user.created ? `Created user ${o.username ?? 'admin'}` : `User ${o.username ?? 'admin'} already exists`);
  await grant(db, 'UserProject', user.id, projectId, roleId);
  await grant(db, 'UserSystem', user.id, 'system', roleId);
  if (o.publicUrl || o.internalUrl || o.adminUrl) {
    await ensureServiceEndpoints(db, {
      type: 'identity', name: o.serviceName ?? 'keystone', regionId: o.regionId ?? 'RegionOne',
      urls: { public: o.publicUrl, internal: o.internalUrl ?? o.publicUrl, admin: o.adminUrl ?? o.publicUrl },
    });
  }
  return { userId: user.id, projectId, roleId };
}
