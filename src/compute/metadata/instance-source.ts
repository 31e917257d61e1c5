// The metadata service's view of an instance: read from the API database (which cell) and the
// cell database (the instance, its metadata, its password), and turned into the GuestSpec the
// compute manager gives the driver, so the service and the config drive describe the guest alike.
// System metadata keys (written at boot): image_<prop> for each image property plus
// image_base_image_ref / image_disk_format / image_container_format / image_min_disk /
// image_min_ram, and network_info (a JSON array of VifSpec).
import type { Kysely } from 'kysely';
import type { Config } from '../../common/config.ts';
import { isUniqueViolation } from '../../common/db/database.ts';
import type { Cells } from '../cells.ts';
import { findInstance, metadataOf } from '../store.ts';
import { instanceName, type EmbeddedFlavor, type InstanceRow } from '../objects.ts';
import { parseJson } from '../util.ts';
import type { FlavorSpec, GuestSpec, ImageSpec, VifSpec } from '../virt/driver.ts';

const IMAGE_BASE_KEYS = new Set(['image_base_image_ref', 'image_disk_format', 'image_container_format', 'image_min_disk', 'image_min_ram']);

/** The GuestSpec of an instance row, as the compute manager builds it (no admin password: that is not served). */
export function guestSpecOf(row: InstanceRow, metadata: Record<string, string>, config: Config): GuestSpec {
  const sm = parseJson<Record<string, unknown>>(row.system_metadata, {});
  const props: Record<string, string> = {};
  for (const [k, v] of Object.entries(sm)) {
    if (k.startsWith('image_') && !IMAGE_BASE_KEYS.has(k) && v != null) props[k.slice('image_'.length)] = String(v);
  }
  const f = parseJson<Partial<EmbeddedFlavor>>(row.flavor, {});
  const flavor: FlavorSpec = {
    id: String(f.flavorid ?? row.instance_type_id ?? ''), name: f.name ?? '', vcpus: f.vcpus ?? row.vcpus, memoryMb: f.memory_mb ?? row.memory_mb,
    rootGb: f.root_gb ?? row.root_gb, ephemeralGb: f.ephemeral_gb ?? row.ephemeral_gb, swapMb: f.swap ?? 0, extraSpecs: f.extra_specs ?? {},
  };
  const imageId = row.image_ref ?? (sm.image_base_image_ref as string | undefined) ?? null;
  const num = (v: unknown) => (v == null || v === '' ? 0 : Number(v) || 0);
  const image: ImageSpec | null = imageId ? {
    id: imageId, name: null, diskFormat: (sm.image_disk_format as string) ?? null, containerFormat: (sm.image_container_format as string) ?? null,
    checksum: null, osHashAlgo: null, osHashValue: null, size: null, virtualSize: null,
    minDisk: num(sm.image_min_disk), minRam: num(sm.image_min_ram), properties: props,
  } : null;
  const vifs = parseJson<VifSpec[]>(typeof sm.network_info === 'string' ? sm.network_info : JSON.stringify(sm.network_info ?? []), []);
  return {
    uuid: row.uuid, name: instanceName(row.id, config.get<string>('DEFAULT', 'instance_name_template')),
    vcpus: row.vcpus, memoryMb: row.memory_mb, rootGb: row.root_gb, imageId, imageProps: props,
    userData: row.user_data, keyData: row.key_data, keyName: row.key_name, hostname: row.hostname,
    configDrive: !!row.config_drive && row.config_drive !== '0' && row.config_drive !== 'False',
    displayName: row.display_name, projectId: row.project_id, userId: row.user_id, flavor, image, metadata,
    availabilityZone: row.availability_zone, launchIndex: row.launch_index, reservationId: row.reservation_id,
    network: Array.isArray(vifs) && vifs.length ? { mode: 'auto', vifs } : { mode: 'none', vifs: [] },
    createdAt: row.created_at,
  };
}

export interface MetadataInstance { spec: GuestSpec; db: Kysely<any> }

/** The live instance with this uuid, wherever its cell is; undefined when there is none. */
export async function loadInstance(cells: Cells, uuid: string, config: Config): Promise<MetadataInstance | undefined> {
  const found = await findInstance(cells, uuid);
  if (!found) return undefined;
  const md = (await metadataOf(found.db, [uuid])).get(uuid) ?? {};
  return { spec: guestSpecOf(found.row, md, config), db: found.db };
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
