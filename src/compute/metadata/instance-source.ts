// The metadata service's view of an instance: read from the API database (which cell) and the
// cell database (the instance, its metadata, its password), and turned into the GuestSpec the
// compute manager gives the driver (the same guestSpecOf), so the service and the config drive
// describe the guest alike. The admin password is not stored, so it is never served.
import type { Kysely } from 'kysely';
import type { Config } from '../../common/config.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import type { Cells } from '../cells.ts';
import { findInstance, metadataOf } from '../store.ts';
import { guestSpecOf } from '../agent/guest-spec.ts';
import type { GuestSpec } from '../virt/driver.ts';

export interface MetadataInstance { spec: GuestSpec; db: Kysely<any> }

/** The live instance with this uuid, wherever its cell is; undefined when there is none. */
export async function loadInstance(cells: Cells, uuid: string, config: Config): Promise<MetadataInstance | undefined> {
  const found = await findInstance(cells, uuid);
  if (!found) return undefined;
  const md = (await metadataOf(found.db, [uuid])).get(uuid) ?? {};
  return { spec: guestSpecOf(found.row, { nameTemplate: config.get<string>('DEFAULT', 'instance_name_template'), metadata: md }), db: found.db };
}

/** The password the guest posted (Nova's password_0..3 system metadata; os-server-password shows it). */
export async function readPassword(db: Kysely<any>, uuid: string): Promise<string | null> {
  const r = await db.selectFrom('instance_passwords').select('password').where('instance_uuid', '=', uuid).executeTakeFirst();
  return r?.password ? String(r.password) : null;
}

/**
 * Stores the guest's password once (Nova: 409 when one is set). An empty stored value (what a
 * boot or `server-password clear` leaves) counts as none. Returns false when one was set.
 */
export async function storePassword(db: Kysely<any>, uuid: string, password: string): Promise<boolean> {
  const upd = await db.updateTable('instance_passwords').set({ password }).where('instance_uuid', '=', uuid).where('password', '=', '').executeTakeFirst();
  if (Number(upd.numUpdatedRows) > 0) return true;
  try {
    await db.insertInto('instance_passwords').values({ instance_uuid: uuid, password }).execute();
    return true;
  } catch (e) {
    if (isUniqueViolation(e)) return false;
    throw e;
  }
}
