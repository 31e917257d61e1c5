// The options of the metadata service, the config drive and the guests' relay, under the
// section and option names nova.conf (and neutron's metadata agent) use for the same meaning.
import { registerOpts } from '../../common/config.ts';

/** Nova's [api] config_drive_skip_versions default: the EC2 versions left off a config drive. */
export const DEFAULT_SKIP_VERSIONS = '1.0 2007-01-19 2007-03-01 2007-08-29 2007-10-10 2007-12-15 2008-02-01 2008-09-01';

registerOpts([
  { section: 'neutron', name: 'metadata_proxy_shared_secret', type: 'string', secret: true, default: '', help: 'Shared secret the metadata service checks X-Instance-ID-Signature against (HMAC-SHA256 of X-Instance-ID). The guests\' relays on every compute host sign with it; `stratus up` generates one. With none set, the metadata service refuses every instance request.' },
  { section: 'DEFAULT', name: 'metadata_listen', type: 'string', default: '0.0.0.0', help: 'Address `stratus serve metadata` listens on (--bind overrides).' },
  { section: 'DEFAULT', name: 'metadata_listen_port', type: 'int', default: 8775, min: 0, max: 65535, help: 'Port `stratus serve metadata` listens on (--port overrides).' },
  { section: 'DEFAULT', name: 'metadata_url', type: 'url', default: 'http://127.0.0.1:8775', help: 'Where the guests\' metadata relays on this compute host forward to: the metadata service\'s URL (neutron metadata agent\'s nova_metadata_host/port as one URL). The all-in-one uses its own /metadata path unless this is set.' },
  { section: 'DEFAULT', name: 'force_config_drive', type: 'bool', default: false, help: 'Give every new instance a config drive, whatever it asked for (an instance already launched keeps what it had).' },
  { section: 'DEFAULT', name: 'config_drive_format', type: 'string', default: 'iso9660', choices: ['iso9660'], help: 'Format of config drives: iso9660 (the `config-2` volume). Nova\'s vfat format is not built.' },
  { section: 'DEFAULT', name: 'mkisofs_cmd', type: 'string', help: 'Program that builds ISO 9660 config drives (genisoimage or mkisofs, Nova\'s flags) instead of the built-in writer (unset, the default: Stratus writes the ISO 9660 + Rock Ridge + Joliet image itself, with no process started).', note: 'Nova\'s default is genisoimage; Stratus writes the same volume in-process.' },
  { section: 'api', name: 'dhcp_domain', type: 'string', default: 'novalocal', help: 'Domain appended to the instance hostname in the metadata (hostname, local-hostname); empty for none.' },
  { section: 'api', name: 'vendordata_providers', type: 'list', default: ['StaticJSON'], help: 'Vendor data providers: StaticJSON (the file in vendordata_jsonfile_path). DynamicJSON is not built.' },
  { section: 'api', name: 'vendordata_jsonfile_path', type: 'string', help: 'JSON file served as vendor_data.json (and as "static" in vendor_data2.json).' },
  { section: 'api', name: 'metadata_cache_expiration', type: 'int', default: 15, min: 0, help: 'Seconds the metadata service reuses what it read about an instance (0: read every time).' },
  { section: 'api', name: 'config_drive_skip_versions', type: 'string', default: DEFAULT_SKIP_VERSIONS, help: 'EC2 metadata versions (space separated) not written to config drives.' },
]);
