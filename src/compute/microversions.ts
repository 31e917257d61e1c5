// The compute API microversions Stratus serves: 2.1 up to MAX. Handlers state their range
// (`since`/`until` in the route table, `v.atLeast()` in the few places where one field changes);
// this list says, once, what each version changed.
export const MIN_VERSION = '2.1';
export const MAX_VERSION = '2.93';

export const HISTORY: Record<string, string> = {
  '2.2': 'keypair type (ssh/x509)',
  '2.3': 'extended server attributes: reservation_id, launch_index, hostname, kernel/ramdisk, root_device_name, user_data',
  '2.9': 'servers: locked',
  '2.10': 'keypairs: admins act for another user_id',
  '2.16': 'servers: host_status',
  '2.19': 'servers: description',
  '2.26': 'servers: tags',
  '2.28': 'hypervisors: cpu_info as an object',
  '2.33': 'hypervisors: limit/marker',
  '2.35': 'keypairs: limit/marker',
  '2.36': 'proxy APIs (images, networks…) deprecated; quota sets lose network quotas',
  '2.37': 'servers: networks required, "auto"/"none"',
  '2.38': 'os-services: 400 on invalid status filters',
  '2.42': 'device tags',
  '2.47': 'servers: embedded flavor instead of a link',
  '2.51': 'instance action events: host and hostId for admins',
  '2.53': 'os-services and os-hypervisors by UUID',
  '2.55': 'flavors: description',
  '2.57': 'personality and injected files quotas removed',
  '2.58': 'instance actions: updated_at, changes-since/changes-before, limit/marker',
  '2.61': 'flavors: extra_specs in list/show',
  '2.62': 'instance action events: host and hostId',
  '2.63': 'servers: trusted_image_certificates',
  '2.64': 'server groups: policy and rules',
  '2.66': 'changes-before filter',
  '2.69': 'down cells: partial results',
  '2.71': 'servers: server_groups',
  '2.73': 'servers: locked_reason',
  '2.75': 'servers: consistent shapes across actions and show',
  '2.79': 'servers: delete_on_termination of volumes',
  '2.84': 'instance action events: details',
  '2.88': 'hypervisors: no resource counters; no statistics/search',
  '2.89': 'volumes attached: attachment_id, bdm_uuid',
  '2.90': 'servers: hostname settable',
  '2.92': 'keypairs: import only (no generated keys)',
  '2.93': 'rebuild of volume-backed servers',
};
