// The GuestSpec of an instance (driver contract v2): everything a driver needs, from the
// instance row, its embedded flavor, its system_metadata (the image as it was at boot, the
// network_info) and its metadata; the admin password and injected files only when the RPC
// message that asked for the operation carried them (they are never stored).
import { instanceName, type EmbeddedFlavor, type InstanceRow } from '../objects.ts';
import type { FlavorSpec, GuestSpec, InjectedFile } from '../virt/driver.ts';
import { imageSpecFromSystemMetadata } from '../image-props.ts';
import { vifsOf } from '../network-info.ts';
import { parseJson } from '../util.ts';

export interface SpecInputs {
  nameTemplate: string;
  /** Instance metadata (the conductor's instance_get with metadata). */
  metadata?: Record<string, string>;
  adminPassword?: string | null;
  injectedFiles?: InjectedFile[];
}

function flavorSpec(row: InstanceRow): FlavorSpec {
  const f = parseJson<Partial<EmbeddedFlavor>>(row.flavor, {});
  return {
    id: f.flavorid ?? row.instance_type_id ?? '', name: f.name ?? '',
    vcpus: f.vcpus ?? row.vcpus, memoryMb: f.memory_mb ?? row.memory_mb, rootGb: f.root_gb ?? row.root_gb,
    ephemeralGb: f.ephemeral_gb ?? row.ephemeral_gb, swapMb: f.swap ?? 0, extraSpecs: { ...(f.extra_specs ?? {}) },
  };
}

export function configDriveRequested(v: string | null | undefined): boolean {
  return !!v && v !== '0' && v.toLowerCase() !== 'false';
}

export function guestSpecOf(row: InstanceRow, o: SpecInputs): GuestSpec {
  const sm = parseJson<Record<string, unknown>>(row.system_metadata, {});
  const image = imageSpecFromSystemMetadata(sm, row.image_ref);
  const vifs = vifsOf(sm);
  return {
    uuid: row.uuid, name: instanceName(row.id, o.nameTemplate), displayName: row.display_name,
    projectId: row.project_id, userId: row.user_id,
    vcpus: row.vcpus, memoryMb: row.memory_mb, rootGb: row.root_gb,
    flavor: flavorSpec(row),
    imageId: image?.id ?? null, image, imageProps: { ...(image?.properties ?? {}) },
    userData: row.user_data, keyName: row.key_name, keyData: row.key_data, hostname: row.hostname,
    configDrive: configDriveRequested(row.config_drive),
    metadata: { ...(o.metadata ?? {}) },
    adminPassword: o.adminPassword ?? null, injectedFiles: o.injectedFiles ?? [],
    availabilityZone: row.availability_zone, launchIndex: row.launch_index, reservationId: row.reservation_id,
    network: { mode: vifs.length ? 'auto' : 'none', vifs },
    createdAt: row.created_at,
  };
}
