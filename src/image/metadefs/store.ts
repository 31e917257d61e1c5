// Metadata definitions in the database, and the seeding of the built-in catalog. Seeding adds
// namespaces that are missing and never touches existing ones, so an operator's edits survive
// restarts (Glance's `glance-manage db load_metadefs` without --merge).
import type { Kysely } from 'kysely';
import type { ImageDB, MetadefNamespaceRow } from '../db/schema.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import { nowIso } from '../model.ts';
import { CATALOG, RESOURCE_TYPES } from './catalog.ts';

export async function seedMetadefs(db: Kysely<ImageDB>): Promise<string[]> {
  const added: string[] = [];
  const ts = nowIso();
  for (const name of RESOURCE_TYPES) {
    try { await db.insertInto('metadef_resource_types').values({ name, protected: 1, created_at: ts, updated_at: ts }).execute(); } catch (e) { if (!isUniqueViolation(e)) throw e; }
  }
  for (const ns of CATALOG) {
    const exists = await db.selectFrom('metadef_namespaces').select('namespace').where('namespace', '=', ns.namespace).executeTakeFirst();
    if (exists) continue;
    try {
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('metadef_namespaces').values({
          namespace: ns.namespace, display_name: ns.display_name, description: ns.description, visibility: 'public',
          protected: 1, owner: null, created_at: ts, updated_at: ts,
        }).execute();
        for (const rt of ns.resource_types) {
          await trx.insertInto('metadef_namespace_resource_types').values({
            namespace: ns.namespace, resource_type: rt.name, prefix: rt.prefix ?? null, properties_target: rt.properties_target ?? null, created_at: ts, updated_at: ts,
          }).execute();
        }
        for (const [name, def] of Object.entries(ns.properties)) {
          await trx.insertInto('metadef_properties').values({ namespace: ns.namespace, name, body: JSON.stringify(def), created_at: ts, updated_at: ts }).execute();
        }
        for (const o of ns.objects ?? []) {
          await trx.insertInto('metadef_objects').values({ namespace: ns.namespace, name: o.name, description: o.description, body: JSON.stringify({ required: o.required ?? [], properties: o.properties }), created_at: ts, updated_at: ts }).execute();
        }
        for (const t of ns.tags ?? []) {
          await trx.insertInto('metadef_tags').values({ namespace: ns.namespace, name: t, created_at: ts, updated_at: ts }).execute();
        }
      });
      added.push(ns.namespace);
    } catch (e) {
      if (!isUniqueViolation(e)) throw e; // another process seeded it first
    }
  }
  return added;
}

export type NamespaceRow = MetadefNamespaceRow;
