// Resource classes: the standard ones (synced at start, immutable) and CUSTOM_* ones.
import { PlacementStore, now, isUniqueViolation } from './store.ts';
import { badRequest, conflict, notFound, CODES } from '../errors.ts';
import { CUSTOM_PREFIX } from '../standard/resource-classes.ts';

export interface ResourceClass { name: string; created_at: string; updated_at: string | null }

export async function listResourceClasses(store: PlacementStore): Promise<ResourceClass[]> {
  return store.db.selectFrom('resource_classes').select(['name', 'created_at', 'updated_at']).orderBy('id').execute();
}

export async function findResourceClass(store: PlacementStore, name: string): Promise<ResourceClass | undefined> {
  return store.db.selectFrom('resource_classes').select(['name', 'created_at', 'updated_at']).where('name', '=', name).executeTakeFirst();
}

export async function getResourceClass(store: PlacementStore, name: string): Promise<ResourceClass> {
  const rc = await findResourceClass(store, name);
  if (!rc) throw notFound(`No such resource class ${name}.`);
  return rc;
}

export async function createResourceClass(store: PlacementStore, name: string): Promise<ResourceClass> {
  try {
    await store.db.insertInto('resource_classes').values({ name, created_at: now(), updated_at: null }).execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw conflict(`Conflicting resource class already exists: ${name}`, CODES.DUPLICATE_NAME);
    throw e;
  }
  await store.rc.reload();
  return getResourceClass(store, name);
}

/** PUT before 1.7: renames a custom class. */
export async function renameResourceClass(store: PlacementStore, name: string, newName: string): Promise<ResourceClass> {
  if (!name.startsWith(CUSTOM_PREFIX)) {
    await getResourceClass(store, name);
    throw badRequest(`Cannot update standard resource class ${name}`);
  }
  try {
    const r = await store.db.updateTable('resource_classes').set({ name: newName, updated_at: now() }).where('name', '=', name).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFound(`No such resource class ${name}.`);
  } catch (e) {
    if (isUniqueViolation(e)) throw conflict(`Resource class already exists: ${newName}`, CODES.DUPLICATE_NAME);
    throw e;
  }
  store.rc.forget(name);
  await store.rc.reload();
  return getResourceClass(store, newName);
}

/** PUT from 1.7: create-or-verify; true when created. */
export async function ensureResourceClass(store: PlacementStore, name: string): Promise<{ created: boolean; rc: ResourceClass }> {
  const existing = await findResourceClass(store, name);
  if (existing) return { created: false, rc: existing };
  try {
    await store.db.insertInto('resource_classes').values({ name, created_at: now(), updated_at: null }).execute();
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    return { created: false, rc: await getResourceClass(store, name) };
  }
  await store.rc.reload();
  return { created: true, rc: await getResourceClass(store, name) };
}

export async function deleteResourceClass(store: PlacementStore, name: string): Promise<void> {
  await store.tx(async (trx) => {
    const row = await trx.selectFrom('resource_classes').select('id').where('name', '=', name).executeTakeFirst();
    if (!row) throw notFound(`No such resource class ${name}.`);
    if (!name.startsWith(CUSTOM_PREFIX)) throw badRequest(`Cannot delete standard resource class ${name}.`);
    const used = await trx.selectFrom('inventories').select('id').where('resource_class_id', '=', Number(row.id)).limit(1).executeTakeFirst();
    if (used) throw conflict(`Unable to delete resource class ${name}: Cannot delete resource class ${name}. Class is in use in inventory.`);
    await trx.deleteFrom('resource_classes').where('id', '=', Number(row.id)).execute();
  });
  store.rc.forget(name);
}
