// The Image service's options, named as Glance names them so a glance-api.conf translates line
// by line. Registered at import time; `stratus config sample` prints them.
import { registerOpts, registerSectionGroup } from '../common/config.ts';

export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
export const IMPORT_METHODS = ['glance-direct', 'web-download', 'copy-image'];

registerOpts([
  { section: 'image_database', name: 'connection', type: 'url', help: 'Database URL of the Image service (sqlite:///…, mysql+pymysql://…, postgresql://…). Set by `stratus up`.', secret: true },

  { section: 'glance_store', name: 'filesystem_store_datadir', type: 'string', help: 'Directory of the filesystem store when [DEFAULT] enabled_backends is not set (default: <state_path>/images).' },
  { section: 'glance_store', name: 'upload_direct_io', type: 'string', default: 'auto', choices: ['auto', 'always', 'never'], help: 'How uploaded data is written: auto = through the page cache (the downloads that follow are then served from memory), except uploads declaring (Content-Length) more than a quarter of RAM, which are written with O_DIRECT so they do not push everything else out of the cache; always = O_DIRECT; never = always the page cache. Filesystems that refuse O_DIRECT always use the page cache. Every upload is fsynced before it is committed either way.', note: 'Glance has no such option; it always writes through the page cache.' },
  { section: 'glance_store', name: 'download_direct_io', type: 'string', default: 'auto', choices: ['auto', 'always', 'never'], help: 'How image downloads read the stored data: auto = through the page cache, except downloads of more than a quarter of RAM (O_DIRECT); always = O_DIRECT (no page cache); never = always the page cache. Filesystems that refuse O_DIRECT always use the page cache.', note: 'Glance has no such option; it always reads through the page cache.' },
  { section: 'glance_store', name: 'default_backend', type: 'string', help: 'With enabled_backends: the store new image data goes to unless the request names one.' },

  { section: 'DEFAULT', name: 'enabled_backends', type: 'list', default: [], help: 'Multiple stores, as "id:type" pairs (only type "file" is supported), e.g. "fast:file, cheap:file". Each store reads filesystem_store_datadir from a section named after its id (default <state_path>/images/<id>). Empty: one filesystem store from [glance_store].' },
  { section: 'DEFAULT', name: 'node_staging_uri', type: 'string', help: 'file:// URI of the directory holding data staged for interoperable import (default file://<state_path>/images/staging).' },
  { section: 'DEFAULT', name: 'image_size_cap', type: 'int', default: 1099511627776, min: 1, help: 'Largest image in bytes a user may upload (default 1 TiB); larger uploads get 413.' },
  { section: 'DEFAULT', name: 'user_storage_quota', type: 'string', default: '0', help: 'Total image storage a project may use, with an optional unit suffix (B, KB, MB, GB, TB; 0 = unlimited). Over it an upload gets 413 and stores nothing.' },
  { section: 'DEFAULT', name: 'hashing_algorithm', type: 'string', default: 'sha512', help: 'Algorithm of the os_hash_value multihash computed on upload (any name node:crypto knows: sha256, sha384, sha512, sha3-512…).' },
  { section: 'DEFAULT', name: 'enabled_import_methods', type: 'list', default: IMPORT_METHODS, help: 'Interoperable import methods offered (glance-direct, web-download, copy-image).' },
  { section: 'DEFAULT', name: 'limit_param_default', type: 'int', default: 25, min: 1, help: 'Images per page when a list request gives no limit.' },
  { section: 'DEFAULT', name: 'api_limit_max', type: 'int', default: 1000, min: 1, help: 'Largest page a list request may ask for.' },
  { section: 'DEFAULT', name: 'image_member_quota', type: 'int', default: 128, min: -1, help: 'Members an image may have (-1 = unlimited).' },
  { section: 'DEFAULT', name: 'image_property_quota', type: 'int', default: 128, min: -1, help: 'Additional properties an image may have (-1 = unlimited).' },
  { section: 'DEFAULT', name: 'image_tag_quota', type: 'int', default: 128, min: -1, help: 'Tags an image may have (-1 = unlimited).' },
  { section: 'DEFAULT', name: 'show_image_direct_url', type: 'bool', default: false, help: 'Show the direct_url (the store path) of an image in API responses.' },

  { section: 'image_format', name: 'disk_formats', type: 'list', default: DISK_FORMATS, help: 'Disk formats images may declare.' },
  { section: 'image_format', name: 'container_formats', type: 'list', default: CONTAINER_FORMATS, help: 'Container formats images may declare.' },
  { section: 'image_format', name: 'require_image_format_match', type: 'bool', default: true, help: 'Refuse image data whose content does not match the declared disk_format.' },
  { section: 'image_format', name: 'vmdk_allowed_types', type: 'list', default: ['streamOptimized', 'monolithicSparse'], help: 'VMDK create types accepted; others (e.g. monolithicFlat, which points at external extent files) are refused.' },

  { section: 'import_filtering_opts', name: 'allowed_schemes', type: 'list', default: ['http', 'https'], help: 'URI schemes web-download may fetch.' },
  { section: 'import_filtering_opts', name: 'disallowed_schemes', type: 'list', default: [], help: 'URI schemes web-download refuses (used when allowed_schemes is empty).' },
  { section: 'import_filtering_opts', name: 'allowed_hosts', type: 'list', default: [], help: 'Hosts (names or IP addresses) web-download may fetch from; empty = any host not disallowed. A host listed here is allowed even when it is loopback or link-local.' },
  { section: 'import_filtering_opts', name: 'disallowed_hosts', type: 'list', default: [], help: 'Hosts web-download refuses (used when allowed_hosts is empty).' },
  { section: 'import_filtering_opts', name: 'allowed_ports', type: 'list', default: ['80', '443'], help: 'Ports web-download may connect to.' },
  { section: 'import_filtering_opts', name: 'disallowed_ports', type: 'list', default: [], help: 'Ports web-download refuses (used when allowed_ports is empty).' },
  { section: 'import_filtering_opts', name: 'deny_loopback', type: 'bool', default: true, help: 'Refuse web-download URIs whose host resolves to a loopback, link-local (e.g. 169.254.169.254) or unspecified address unless that host is in allowed_hosts.', note: 'Glance has no such check; Stratus refuses these by default to close the server-side request forgery hole.' },

  { section: 'image_import_opts', name: 'image_import_plugins', type: 'list', default: [], help: 'Import plugins to run (only "image_conversion" is supported).' },
  { section: 'image_conversion', name: 'output_format', type: 'string', default: 'raw', choices: ['raw', 'qcow2', 'vmdk'], help: 'Format the image_conversion import plugin converts to (with qemu-img convert).' },

  { section: 'task', name: 'task_time_to_live', type: 'int', default: 48, min: 0, help: 'Hours a finished task (import, tasks API) is kept before it expires.' },
  { section: 'image_limits', name: 'image_count_total', type: 'int', default: -1, min: -1, help: 'Images a project may have (-1 = unlimited). Stands in for Keystone unified limits.' },
  { section: 'image_limits', name: 'image_count_uploading', type: 'int', default: -1, min: -1, help: 'Images a project may have uploading or importing at once (-1 = unlimited).' },
  { section: 'image_limits', name: 'image_stage_total', type: 'int', default: -1, min: -1, help: 'MiB of staged data a project may hold (-1 = unlimited).' },
  { section: 'image_limits', name: 'stale_upload_seconds', type: 'int', default: 300, min: 30, help: 'An image left in `saving` whose uploader stopped reporting for this long goes back to `queued` (the uploading process died).' },
]);

/** Parses Glance's size strings: "0", "1048576", "10GB", "5 MB". */
export function parseSize(s: string): number {
  const m = /^\s*(\d+)\s*(B|KB|MB|GB|TB)?\s*$/i.exec(s);
  if (!m) throw new Error(`Invalid size "${s}" (expected a number with an optional B, KB, MB, GB or TB suffix)`);
  const mult: Record<string, number> = { B: 1, KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 };
  return Number(m[1]) * mult[(m[2] ?? 'B').toUpperCase()];
}

// Each store of [DEFAULT] enabled_backends reads its own section, named after its id.
registerSectionGroup({
  placeholder: '<store id from enabled_backends>',
  sections: (get) => (get('DEFAULT', 'enabled_backends') as string[]).map((spec) => spec.split(':')[0].trim()).filter(Boolean),
  options: [
    { name: 'filesystem_store_datadir', type: 'string', help: 'Directory of this filesystem store (default <state_path>/images/<store id>).' },
    { name: 'store_description', type: 'string', help: 'What GET /v2/info/stores says of this store.' },
  ],
});
