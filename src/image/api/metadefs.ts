// /v2/metadefs: namespaces, their properties, objects, tags and resource type associations.
// Everyone reads public namespaces; admins write (Glance's default policy).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRow } from './rows.ts';
import type { Kysely } from 'kysely';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import type { ImageService } from '../service.ts';
import type { RequestCtx } from '../policy.ts';
import type { ImageDB, MetadefNamespaceRow } from '../db/schema.ts';
import { isoSeconds, nowIso } from '../model.ts';
import { assertValid } from './schemas.ts';
import { namespaceSchema, objectSchema, propertySchema, rtaSchema, tagSchema } from '../metadefs/schemas.ts';
import { ctxOf, jsonBody, requireObject } from './common.ts';

type DB = Kysely<ImageDB>;
const BASE = '/v2/metadefs/namespaces';

export function metadefRows(svc: ImageService, bodyLimit: number): ImageRow[] {
  const rows: ImageRow[] = [];
  const db = svc.database.db as DB;
  const body = async (req: Parameters<typeof jsonBody>[0]) => requireObject(await jsonBody(req, bodyLimit));

  const target = (ctx: RequestCtx, ns?: MetadefNamespaceRow) => ({ project_id: ns ? ns.owner : ctx.projectId, visibility: ns?.visibility });
  /** A namespace the caller may see, or 404 (Glance hides private namespaces of others). */
  const load = async (ctx: RequestCtx, name: string, rule = 'get_metadef_namespace') => {
    const ns = await db.selectFrom('metadef_namespaces').selectAll().where('namespace', '=', name).executeTakeFirst();
    const missing = new NotFound(`Metadata definition namespace=${name} was not found.`);
    if (!ns) throw missing;
    if (!ctx.check('get_metadef_namespace', target(ctx, ns))) throw missing;
    if (rule !== 'get_metadef_namespace') ctx.enforce(rule, target(ctx, ns));
    return ns;
  };
  const touch = (ns: string) => db.updateTable('metadef_namespaces').set({ updated_at: nowIso() }).where('namespace', '=', ns).execute();
  const conflictOn = async <T>(msg: string, fn: () => Promise<T>): Promise<T> => {
    try { return await fn(); } catch (e) { if (isUniqueViolation(e)) throw new Conflict(msg); throw e; }
  };

  // --- namespaces ------------------------------------------------------------------------------
  rows.push({ method: 'GET', path: '/metadefs/namespaces', policy: 'get_metadef_namespaces', errors: [], handler: async (req: FastifyRequest) => {
    const ctx = ctxOf(svc, req);
    const q = req.query as Record<string, string | undefined>;
    const limit = Math.min(Number(q.limit ?? 1000) || 1000, 1000);
    let rows = await db.selectFrom('metadef_namespaces').selectAll().orderBy('created_at').orderBy('namespace').execute();
    rows = rows.filter((ns) => ctx.check('get_metadef_namespace', target(ctx, ns)));
    if (q.visibility) rows = rows.filter((ns) => ns.visibility === q.visibility);
    if (q.resource_types) {
      const wanted = q.resource_types.split(',');
      const assoc = await db.selectFrom('metadef_namespace_resource_types').select(['namespace']).where('resource_type', 'in', wanted).execute();
      const names = new Set(assoc.map((a) => a.namespace));
      rows = rows.filter((ns) => names.has(ns.namespace));
    }
    if (q.marker) {
      const i = rows.findIndex((ns) => ns.namespace === q.marker);
      if (i < 0) throw new BadRequest(`Marker ${q.marker} could not be found.`);
      rows = rows.slice(i + 1);
    }
    const page = rows.slice(0, limit);
    const out: Record<string, unknown> = {
      namespaces: await Promise.all(page.map(async (ns) => ({ ...renderNamespace(ns), resource_type_associations: await associations(db, ns.namespace) }))),
      first: '/v2/metadefs/namespaces', schema: '/v2/schemas/metadefs/namespaces',
    };
    if (rows.length > limit) out.next = `/v2/metadefs/namespaces?marker=${encodeURIComponent(page[page.length - 1].namespace)}&limit=${limit}`;
    return out;
  } });

  rows.push({ method: 'POST', path: '/metadefs/namespaces', errors: [409], handler: async (req: FastifyRequest, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const b = await body(req);
    assertValid(namespaceSchema, b);
    ctx.enforce('add_metadef_namespace', { project_id: ctx.projectId });
    const ts = nowIso();
    const row: MetadefNamespaceRow = {
      namespace: b.namespace as string, display_name: (b.display_name as string) ?? null, description: (b.description as string) ?? null,
      visibility: (b.visibility as string) ?? 'private', protected: b.protected ? 1 : 0, owner: (b.owner as string) ?? ctx.projectId ?? null,
      created_at: ts, updated_at: ts,
    };
    await conflictOn(`Metadata definition namespace=${row.namespace} already exists.`, () => db.transaction().execute(async (trx) => {
      await trx.insertInto('metadef_namespaces').values(row).execute();
      for (const [name, def] of Object.entries((b.properties as Record<string, unknown>) ?? {})) {
        await trx.insertInto('metadef_properties').values({ namespace: row.namespace, name, body: JSON.stringify(def), created_at: ts, updated_at: ts }).execute();
      }
      for (const o of (b.objects as Record<string, unknown>[]) ?? []) {
        await trx.insertInto('metadef_objects').values({ namespace: row.namespace, name: String(o.name), description: (o.description as string) ?? null, body: JSON.stringify({ required: o.required ?? [], properties: o.properties ?? {} }), created_at: ts, updated_at: ts }).execute();
      }
      for (const t of (b.tags as { name: string }[]) ?? []) {
        await trx.insertInto('metadef_tags').values({ namespace: row.namespace, name: t.name, created_at: ts, updated_at: ts }).execute();
      }
      for (const a of (b.resource_type_associations as Record<string, string>[]) ?? []) {
        await trx.insertInto('metadef_namespace_resource_types').values({ namespace: row.namespace, resource_type: a.name, prefix: a.prefix ?? null, properties_target: a.properties_target ?? null, created_at: ts, updated_at: ts }).execute();
      }
    }));
    reply.code(201);
    return fullNamespace(db, row);
  } });

  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string } }>) => {
    const ctx = ctxOf(svc, req);
    return fullNamespace(db, await load(ctx, req.params.ns));
  } });

  rows.push({ method: 'PUT', path: '/metadefs/namespaces/:ns', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'modify_metadef_namespace');
    const b = await body(req);
    assertValid(namespaceSchema, b);
    const set = {
      namespace: b.namespace as string, display_name: (b.display_name as string) ?? ns.display_name, description: (b.description as string) ?? ns.description,
      visibility: (b.visibility as string) ?? ns.visibility, protected: b.protected === undefined ? ns.protected : b.protected ? 1 : 0,
      owner: (b.owner as string) ?? ns.owner, updated_at: nowIso(),
    };
    await conflictOn(`Metadata definition namespace=${set.namespace} already exists.`, () => db.transaction().execute(async (trx) => {
      await trx.updateTable('metadef_namespaces').set(set).where('namespace', '=', ns.namespace).execute();
      if (set.namespace !== ns.namespace) {
        for (const t of ['metadef_properties', 'metadef_objects', 'metadef_tags', 'metadef_namespace_resource_types'] as const) {
          await trx.updateTable(t).set({ namespace: set.namespace }).where('namespace', '=', ns.namespace).execute();
        }
      }
    }));
    return renderNamespace({ ...ns, ...set });
  } });

  rows.push({ method: 'DELETE', path: '/metadefs/namespaces/:ns', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'delete_metadef_namespace');
    if (ns.protected) throw new Forbidden(`Namespace ${ns.namespace} is protected and cannot be deleted.`);
    await db.transaction().execute(async (trx) => {
      for (const t of ['metadef_properties', 'metadef_objects', 'metadef_tags', 'metadef_namespace_resource_types', 'metadef_namespaces'] as const) {
        await trx.deleteFrom(t).where('namespace', '=', ns.namespace).execute();
      }
    });
    return reply.code(204).send();
  } });

  // --- properties ------------------------------------------------------------------------------
  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns/properties', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'get_metadef_properties');
    return { properties: await propertiesOf(db, ns.namespace) };
  } });
  rows.push({ method: 'POST', path: '/metadefs/namespaces/:ns/properties', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'add_metadef_property');
    const b = await body(req);
    assertValid(propertySchema, b);
    const { name, ...def } = b;
    const ts = nowIso();
    await conflictOn(`A metadata definition property with name=${name} already exists in namespace=${ns.namespace}.`, () =>
      db.insertInto('metadef_properties').values({ namespace: ns.namespace, name: name as string, body: JSON.stringify(def), created_at: ts, updated_at: ts }).execute());
    await touch(ns.namespace);
    reply.code(201);
    return { name, ...def };
  } });
  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns/properties/:name', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'get_metadef_property');
    const p = await db.selectFrom('metadef_properties').selectAll().where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst();
    if (!p) throw new NotFound(`Metadata definition property=${req.params.name} not found in namespace=${ns.namespace}.`);
    return { name: p.name, ...JSON.parse(p.body) };
  } });
  rows.push({ method: 'PUT', path: '/metadefs/namespaces/:ns/properties/:name', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'modify_metadef_property');
    const b = await body(req);
    assertValid(propertySchema, b);
    const { name, ...def } = b;
    const r = await conflictOn(`A metadata definition property with name=${name} already exists in namespace=${ns.namespace}.`, () =>
      db.updateTable('metadef_properties').set({ name: name as string, body: JSON.stringify(def), updated_at: nowIso() }).where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst());
    if (Number(r.numUpdatedRows) === 0) throw new NotFound(`Metadata definition property=${req.params.name} not found in namespace=${ns.namespace}.`);
    return { name, ...def };
  } });
  rows.push({ method: 'DELETE', path: '/metadefs/namespaces/:ns/properties/:name', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'remove_metadef_property');
    if (ns.protected) throw new Forbidden(`Namespace ${ns.namespace} is protected: its properties cannot be deleted.`);
    const r = await db.deleteFrom('metadef_properties').where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`Metadata definition property=${req.params.name} not found in namespace=${ns.namespace}.`);
    return reply.code(204).send();
  } });

  // --- objects ---------------------------------------------------------------------------------
  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns/objects', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'get_metadef_objects');
    const rows = await db.selectFrom('metadef_objects').selectAll().where('namespace', '=', ns.namespace).orderBy('name').execute();
    return { objects: rows.map((o) => renderObject(ns.namespace, o)), first: `${BASE}/${ns.namespace}/objects`, schema: '/v2/schemas/metadefs/objects' };
  } });
  rows.push({ method: 'POST', path: '/metadefs/namespaces/:ns/objects', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'add_metadef_object');
    const b = await body(req);
    assertValid(objectSchema, b);
    const ts = nowIso();
    const row = { namespace: ns.namespace, name: b.name as string, description: (b.description as string) ?? null, body: JSON.stringify({ required: b.required ?? [], properties: b.properties ?? {} }), created_at: ts, updated_at: ts };
    await conflictOn(`A metadata definition object with name=${row.name} already exists in namespace=${ns.namespace}.`, () => db.insertInto('metadef_objects').values(row).execute());
    reply.code(201);
    return renderObject(ns.namespace, row);
  } });
  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns/objects/:name', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'get_metadef_object');
    const o = await db.selectFrom('metadef_objects').selectAll().where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst();
    if (!o) throw new NotFound(`Metadata definition object=${req.params.name} not found in namespace=${ns.namespace}.`);
    return renderObject(ns.namespace, o);
  } });
  rows.push({ method: 'PUT', path: '/metadefs/namespaces/:ns/objects/:name', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'modify_metadef_object');
    const b = await body(req);
    assertValid(objectSchema, b);
    const set = { name: b.name as string, description: (b.description as string) ?? null, body: JSON.stringify({ required: b.required ?? [], properties: b.properties ?? {} }), updated_at: nowIso() };
    const r = await conflictOn(`A metadata definition object with name=${set.name} already exists in namespace=${ns.namespace}.`, () =>
      db.updateTable('metadef_objects').set(set).where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst());
    if (Number(r.numUpdatedRows) === 0) throw new NotFound(`Metadata definition object=${req.params.name} not found in namespace=${ns.namespace}.`);
    const o = await db.selectFrom('metadef_objects').selectAll().where('namespace', '=', ns.namespace).where('name', '=', set.name).executeTakeFirstOrThrow();
    return renderObject(ns.namespace, o);
  } });
  rows.push({ method: 'DELETE', path: '/metadefs/namespaces/:ns/objects/:name', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'delete_metadef_object');
    if (ns.protected) throw new Forbidden(`Namespace ${ns.namespace} is protected: its objects cannot be deleted.`);
    const r = await db.deleteFrom('metadef_objects').where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`Metadata definition object=${req.params.name} not found in namespace=${ns.namespace}.`);
    return reply.code(204).send();
  } });

  // --- tags ------------------------------------------------------------------------------------
  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns/tags', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'get_metadef_tags');
    const rows = await db.selectFrom('metadef_tags').selectAll().where('namespace', '=', ns.namespace).orderBy('name').execute();
    return { tags: rows.map(renderTag) };
  } });
  rows.push({ method: 'POST', path: '/metadefs/namespaces/:ns/tags', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'add_metadef_tags');
    const b = await body(req);
    const tags = b.tags;
    if (!Array.isArray(tags) || tags.some((t) => !t || typeof t !== 'object' || typeof (t as { name?: unknown }).name !== 'string')) throw new BadRequest('tags must be a list of objects with a name');
    const ts = nowIso();
    const append = req.headers['x-openstack-append'] === 'True' || req.headers['x-openstack-append'] === 'true';
    const rows = [...new Map((tags as { name: string }[]).map((t) => [t.name, { namespace: ns.namespace, name: t.name, created_at: ts, updated_at: ts }])).values()];
    await conflictOn('A metadata tag with the same name already exists in this namespace.', () => db.transaction().execute(async (trx) => {
      if (!append) await trx.deleteFrom('metadef_tags').where('namespace', '=', ns.namespace).execute();
      for (const r of rows) await trx.insertInto('metadef_tags').values(r).execute();
    }));
    reply.code(201);
    return { tags: rows.map(renderTag) };
  } });
  rows.push({ method: 'DELETE', path: '/metadefs/namespaces/:ns/tags', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'delete_metadef_tags');
    if (ns.protected) throw new Forbidden(`Namespace ${ns.namespace} is protected: its tags cannot be deleted.`);
    await db.deleteFrom('metadef_tags').where('namespace', '=', ns.namespace).execute();
    return reply.code(204).send();
  } });
  rows.push({ method: 'POST', path: '/metadefs/namespaces/:ns/tags/:name', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'add_metadef_tag');
    assertValid(tagSchema, { name: req.params.name });
    const ts = nowIso();
    const row = { namespace: ns.namespace, name: req.params.name, created_at: ts, updated_at: ts };
    await conflictOn(`A metadata tag with name=${row.name} already exists in namespace=${ns.namespace}.`, () => db.insertInto('metadef_tags').values(row).execute());
    reply.code(201);
    return renderTag(row);
  } });
  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns/tags/:name', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'get_metadef_tag');
    const t = await db.selectFrom('metadef_tags').selectAll().where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst();
    if (!t) throw new NotFound(`Metadata tag not found for id ${req.params.name}`);
    return renderTag(t);
  } });
  rows.push({ method: 'PUT', path: '/metadefs/namespaces/:ns/tags/:name', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'modify_metadef_tag');
    const b = await body(req);
    assertValid(tagSchema, b);
    const ts = nowIso();
    const r = await conflictOn(`A metadata tag with name=${String(b.name)} already exists in namespace=${ns.namespace}.`, () =>
      db.updateTable('metadef_tags').set({ name: b.name as string, updated_at: ts }).where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst());
    if (Number(r.numUpdatedRows) === 0) throw new NotFound(`Metadata tag not found for id ${req.params.name}`);
    const t = await db.selectFrom('metadef_tags').selectAll().where('namespace', '=', ns.namespace).where('name', '=', b.name as string).executeTakeFirstOrThrow();
    return renderTag(t);
  } });
  rows.push({ method: 'DELETE', path: '/metadefs/namespaces/:ns/tags/:name', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string; name: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'delete_metadef_tag');
    const r = await db.deleteFrom('metadef_tags').where('namespace', '=', ns.namespace).where('name', '=', req.params.name).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`Metadata tag not found for id ${req.params.name}`);
    return reply.code(204).send();
  } });

  // --- resource types --------------------------------------------------------------------------
  rows.push({ method: 'GET', path: '/metadefs/resource_types', policy: 'list_metadef_resource_types', errors: [], handler: async (req: FastifyRequest) => {
    const ctx = ctxOf(svc, req);
    const rows = await db.selectFrom('metadef_resource_types').selectAll().orderBy('name').execute();
    return { resource_types: rows.map((r) => ({ name: r.name, created_at: isoSeconds(r.created_at), updated_at: isoSeconds(r.updated_at) })) };
  } });
  rows.push({ method: 'GET', path: '/metadefs/namespaces/:ns/resource_types', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string } }>) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'get_metadef_resource_type');
    return { resource_type_associations: await associations(db, ns.namespace) };
  } });
  rows.push({ method: 'POST', path: '/metadefs/namespaces/:ns/resource_types', errors: [409], handler: async (req: FastifyRequest<{ Params: { ns: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'add_metadef_resource_type_association');
    const b = await body(req);
    assertValid(rtaSchema, b);
    const ts = nowIso();
    const name = b.name as string;
    await conflictOn(`The metadata definition resource-type with name=${name} already exists.`, () => db.transaction().execute(async (trx) => {
      const rt = await trx.selectFrom('metadef_resource_types').select('name').where('name', '=', name).executeTakeFirst();
      if (!rt) await trx.insertInto('metadef_resource_types').values({ name, protected: 0, created_at: ts, updated_at: ts }).execute();
      await trx.insertInto('metadef_namespace_resource_types').values({ namespace: ns.namespace, resource_type: name, prefix: (b.prefix as string) ?? null, properties_target: (b.properties_target as string) ?? null, created_at: ts, updated_at: ts }).execute();
    }));
    reply.code(201);
    return renderAssoc({ resource_type: name, prefix: (b.prefix as string) ?? null, properties_target: (b.properties_target as string) ?? null, created_at: ts, updated_at: ts });
  } });
  rows.push({ method: 'DELETE', path: '/metadefs/namespaces/:ns/resource_types/:rt', errors: [], handler: async (req: FastifyRequest<{ Params: { ns: string; rt: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const ns = await load(ctx, req.params.ns, 'remove_metadef_resource_type_association');
    if (ns.protected) throw new Forbidden(`Namespace ${ns.namespace} is protected: its resource type associations cannot be deleted.`);
    const r = await db.deleteFrom('metadef_namespace_resource_types').where('namespace', '=', ns.namespace).where('resource_type', '=', req.params.rt).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new NotFound(`The metadata definition resource-type association of resource-type=${req.params.rt} to namespace=${ns.namespace}, was not found.`);
    return reply.code(204).send();
  } });
  return rows;
}

function renderNamespace(ns: MetadefNamespaceRow): Record<string, unknown> {
  const v: Record<string, unknown> = { namespace: ns.namespace };
  if (ns.display_name !== null) v.display_name = ns.display_name;
  if (ns.description !== null) v.description = ns.description;
  v.visibility = ns.visibility;
  v.protected = Number(ns.protected) === 1;
  if (ns.owner !== null) v.owner = ns.owner;
  v.created_at = isoSeconds(ns.created_at);
  v.updated_at = isoSeconds(ns.updated_at);
  v.schema = '/v2/schemas/metadefs/namespace';
  v.self = `${BASE}/${ns.namespace}`;
  return v;
}

async function propertiesOf(db: DB, ns: string): Promise<Record<string, unknown>> {
  const rows = await db.selectFrom('metadef_properties').selectAll().where('namespace', '=', ns).orderBy('name').execute();
  return Object.fromEntries(rows.map((p) => [p.name, JSON.parse(p.body)]));
}

async function associations(db: DB, ns: string) {
  const rows = await db.selectFrom('metadef_namespace_resource_types').selectAll().where('namespace', '=', ns).orderBy('resource_type').execute();
  return rows.map(renderAssoc);
}

function renderAssoc(a: { resource_type: string; prefix: string | null; properties_target: string | null; created_at: string; updated_at: string }) {
  const v: Record<string, unknown> = { name: a.resource_type };
  if (a.prefix) v.prefix = a.prefix;
  if (a.properties_target) v.properties_target = a.properties_target;
  v.created_at = isoSeconds(a.created_at);
  v.updated_at = isoSeconds(a.updated_at);
  return v;
}

function renderObject(ns: string, o: { name: string; description: string | null; body: string; created_at: string; updated_at: string }) {
  const b = JSON.parse(o.body) as { required: string[]; properties: Record<string, unknown> };
  const v: Record<string, unknown> = { name: o.name };
  if (o.description !== null) v.description = o.description;
  v.required = b.required;
  v.properties = b.properties;
  v.schema = '/v2/schemas/metadefs/object';
  v.self = `${BASE}/${ns}/objects/${o.name}`;
  v.created_at = isoSeconds(o.created_at);
  v.updated_at = isoSeconds(o.updated_at);
  return v;
}

function renderTag(t: { name: string; created_at: string; updated_at: string }) {
  return { name: t.name, created_at: isoSeconds(t.created_at), updated_at: isoSeconds(t.updated_at) };
}

async function fullNamespace(db: DB, ns: MetadefNamespaceRow): Promise<Record<string, unknown>> {
  const v = renderNamespace(ns);
  const assoc = await associations(db, ns.namespace);
  if (assoc.length) v.resource_type_associations = assoc;
  const props = await propertiesOf(db, ns.namespace);
  if (Object.keys(props).length) v.properties = props;
  const objects = await db.selectFrom('metadef_objects').selectAll().where('namespace', '=', ns.namespace).orderBy('name').execute();
  if (objects.length) v.objects = objects.map((o) => { const { schema: _s, self: _f, ...rest } = renderObject(ns.namespace, o); return rest; });
  const tags = await db.selectFrom('metadef_tags').selectAll().where('namespace', '=', ns.namespace).orderBy('name').execute();
  if (tags.length) v.tags = tags.map((t) => ({ name: t.name }));
  return v;
}
