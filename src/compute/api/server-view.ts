// How a server looks in the API, per microversion (Nova's views/servers.py).
import type { Ctx } from './context.ts';
import { hostId, statusOf, instanceName, type InstanceRow, type EmbeddedFlavor } from '../objects.ts';
import { isoMicro, isoZ, parseJson } from '../util.ts';
import type { FaultRow } from '../store.ts';
import { addressesOf, vifsOf } from '../network-info.ts';

export interface ViewExtras {
  metadata?: Record<string, string>;
  tags?: string[];
  fault?: FaultRow;
  /** UP / DOWN / MAINTENANCE / UNKNOWN / '' */
  hostStatus?: string;
  serverGroups?: string[];
}

/** Most servers have no NIC: skip parsing their system_metadata in lists (1,000 rows a page). */
function addressesFromSystemMetadata(sm: string): ReturnType<typeof addressesOf> {
  if (!sm.includes('"network_info":"[{')) return {};
  return addressesOf(vifsOf(parseJson<Record<string, unknown>>(sm, {})), { extended: true });
}

const PROGRESS_STATUSES = new Set(['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING']);

export function summaryView(c: Ctx, inst: Pick<InstanceRow, 'uuid' | 'display_name'>) {
  return { id: inst.uuid, name: inst.display_name ?? '', links: c.link(`/servers/${inst.uuid}`) };
}

export function detailView(c: Ctx, inst: InstanceRow, x: ViewExtras, template = 'instance-%08x'): Record<string, unknown> {
  const status = statusOf(inst.vm_state, inst.task_state);
  const flavor = parseJson<EmbeddedFlavor>(inst.flavor, {} as EmbeddedFlavor);
  const admin = c.api.policy.check('os_compute_api:os-extended-server-attributes', c.creds, { project_id: inst.project_id });
  const o: Record<string, unknown> = {
    id: inst.uuid, name: inst.display_name ?? '', status, tenant_id: inst.project_id, user_id: inst.user_id,
    metadata: x.metadata ?? {}, hostId: hostId(inst.project_id, inst.host),
    image: inst.image_ref ? { id: inst.image_ref, links: [{ rel: 'bookmark', href: c.bookmark(`/images/${inst.image_ref}`) }] } : '',
    flavor: c.v.atLeast('2.47')
      ? { vcpus: flavor.vcpus, ram: flavor.memory_mb, disk: flavor.root_gb, ephemeral: flavor.ephemeral_gb, swap: flavor.swap, original_name: flavor.name,
        ...(c.api.policy.check('os_compute_api:os-flavor-extra-specs:index', c.creds, { project_id: inst.project_id }) ? { extra_specs: flavor.extra_specs ?? {} } : {}) }
      : { id: flavor.flavorid, links: [{ rel: 'bookmark', href: c.bookmark(`/flavors/${flavor.flavorid}`) }] },
    created: isoZ(inst.created_at), updated: isoZ(inst.updated_at ?? inst.created_at),
    addresses: addressesFromSystemMetadata(inst.system_metadata), accessIPv4: inst.access_ip_v4 ?? '', accessIPv6: inst.access_ip_v6 ?? '',
    links: c.link(`/servers/${inst.uuid}`),
    'OS-DCF:diskConfig': inst.auto_disk_config ? 'AUTO' : 'MANUAL',
  };
  if (PROGRESS_STATUSES.has(status)) o.progress = inst.progress ?? 0;
  o['OS-EXT-AZ:availability_zone'] = inst.availability_zone ?? '';
  o.config_drive = inst.config_drive ?? '';
  o.key_name = inst.key_name;
  o['OS-SRV-USG:launched_at'] = isoMicro(inst.launched_at);
  o['OS-SRV-USG:terminated_at'] = isoMicro(inst.terminated_at);
  if (admin) {
    o['OS-EXT-SRV-ATTR:host'] = inst.host;
    o['OS-EXT-SRV-ATTR:instance_name'] = inst.id ? instanceName(inst.id, template) : '';
    o['OS-EXT-SRV-ATTR:hypervisor_hostname'] = inst.node;
    if (c.v.atLeast('2.3')) {
      o['OS-EXT-SRV-ATTR:reservation_id'] = inst.reservation_id;
      o['OS-EXT-SRV-ATTR:launch_index'] = inst.launch_index;
      o['OS-EXT-SRV-ATTR:hostname'] = inst.hostname;
      o['OS-EXT-SRV-ATTR:kernel_id'] = inst.kernel_id ?? '';
      o['OS-EXT-SRV-ATTR:ramdisk_id'] = inst.ramdisk_id ?? '';
      o['OS-EXT-SRV-ATTR:root_device_name'] = inst.root_device_name;
      o['OS-EXT-SRV-ATTR:user_data'] = inst.user_data;
    }
  } else if (c.v.atLeast('2.90')) {
    o['OS-EXT-SRV-ATTR:hostname'] = inst.hostname;
  }
  o['OS-EXT-STS:task_state'] = inst.task_state;
  o['OS-EXT-STS:vm_state'] = inst.vm_state;
  o['OS-EXT-STS:power_state'] = inst.power_state;
  o['os-extended-volumes:volumes_attached'] = [];
  if (inst.vm_state === 'error' || inst.vm_state === 'deleted') {
    if (x.fault) {
      const f: Record<string, unknown> = { code: x.fault.code, created: isoZ(x.fault.created_at), message: x.fault.message };
      if (x.fault.details && (c.isAdmin || x.fault.code !== 500)) f.details = x.fault.details;
      o.fault = f;
    }
  }
  if (c.v.atLeast('2.16') && x.hostStatus !== undefined && c.api.policy.check('os_compute_api:servers:show:host_status', c.creds, { project_id: inst.project_id })) {
    o.host_status = x.hostStatus;
  }
  if (c.v.atLeast('2.9')) o.locked = !!inst.locked_by;
  if (c.v.atLeast('2.73')) o.locked_reason = inst.locked_reason;
  if (c.v.atLeast('2.19')) o.description = inst.display_description;
  if (c.v.atLeast('2.26')) o.tags = x.tags ?? [];
  if (c.v.atLeast('2.63')) o.trusted_image_certificates = null;
  if (c.v.atLeast('2.71') && x.serverGroups !== undefined) o.server_groups = x.serverGroups;
  return o;
}
