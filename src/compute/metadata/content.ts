// What a guest learns about itself (Nova's InstanceMetadata): one computation from the
// instance's GuestSpec that serves both the metadata service (lookup of a path) and the config
// drive (every file of the `config-2` volume), so the two can never disagree.
//
// Trees and formats follow nova/api/metadata/base.py: the EC2 tree rendered as text listings
// (`0=keyname` for public keys, `dir/` for sub-trees), the OpenStack tree per dated version,
// JSON with Python's separators and ASCII escapes (what jsonutils writes).
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Config } from '../../common/config.ts';
import { NotFound } from '../../common/errors.ts';
import { ec2IdFor } from '../../common/ec2-ids.ts';
import type { GuestSpec, VifSpec } from '../virt/driver.ts';
import '../config.ts';
import './config.ts';

/** EC2 metadata versions, oldest first (the `/` listing). */
export const EC2_VERSIONS = ['1.0', '2007-01-19', '2007-03-01', '2007-08-29', '2007-10-10', '2007-12-15', '2008-02-01', '2008-09-01', '2009-04-04'] as const;

const FOLSOM = '2012-08-10';
const GRIZZLY = '2013-04-04';
const HAVANA = '2013-10-17';
const LIBERTY = '2015-10-15';
const NEWTON_ONE = '2016-06-30';
const NEWTON_TWO = '2016-10-06';
const OCATA = '2017-02-22';
const ROCKY = '2018-08-27';
const VICTORIA = '2020-10-14';
const EPOXY = '2025-04-04';
/** OpenStack metadata versions, oldest first; `latest` is the last one. */
export const OPENSTACK_VERSIONS = [FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA, EPOXY] as const;

export const TEXT = 'text/plain; charset=UTF-8';
export const JSON_TYPE = 'application/json';

/** A path the metadata does not have (the service's 404). */
export class MetadataNotFound extends NotFound {
  constructor(path: string) { super(`The resource could not be found: ${path}`); }
}

export type LookupResult =
  | { kind: 'data'; body: Buffer; contentType: string }
  /** `openstack/<v>/password`: GET and POST are the service's (it owns the stored password). */
  | { kind: 'password' };

export interface InstanceMetadataOptions {
  config: Config;
  /** Vendor data from [api] vendordata_jsonfile_path (see loadVendorData). */
  vendorData?: unknown;
  /** What the guest posted to openstack/<v>/password (metadata service), or null. */
  password?: string | null;
  /** Where the request came from, the EC2 local-ipv4 of an instance without a NIC address. */
  address?: string | null;
  /** Building a config drive: Nova's extra_md (admin_pass) and the injected files are included. */
  configDrive?: boolean;
  now?: () => Date;
}

type Ec2Node = string | number | null | Buffer | string[] | Ec2Tree;
interface Ec2Tree { [key: string]: Ec2Node }

/** The metadata of one instance; build one per request burst (it draws a random seed). */
export class InstanceMetadata {
  private readonly files: { path: string; contentPath: string }[] = [];
  private readonly content = new Map<string, Buffer>();
  private readonly userData: Buffer | null;

  constructor(private readonly spec: GuestSpec, private readonly o: InstanceMetadataOptions) {
    this.userData = spec.userData != null ? Buffer.from(spec.userData, 'base64') : null;
    // Injected files (personality) reach the guest only through the config drive, as in Nova:
    // they are not stored, so the metadata service never has them.
    if (o.configDrive) {
      for (const f of spec.injectedFiles ?? []) {
        const key = String(this.content.size).padStart(4, '0');
        this.files.push({ path: f.path, contentPath: `/content/${key}` });
        this.content.set(key, Buffer.from(f.contents, 'base64'));
      }
    }
  }

  /** The answer for a request path, or MetadataNotFound. */
  lookup(rawPath: string): LookupResult {
    let path = posix.normalize(`/${rawPath}`);
    if (path.length > 1) path = path.replace(/\/+$/, '');
    let tokens = path.split('/').slice(1);
    // Anything outside /ec2 and /openstack is the EC2 tree (/latest/meta-data, /2009-04-04/…).
    if (tokens[0] !== 'ec2' && tokens[0] !== 'openstack') tokens = tokens[0] === '' ? ['ec2'] : ['ec2', ...tokens];
    if (tokens.length === 1) {
      if (tokens[0] === 'ec2') return text(listing([...EC2_VERSIONS, 'latest']));
      // Versions dated in the future are hidden from the listing (still served when asked for).
      const today = (this.o.now?.() ?? new Date()).toISOString().slice(0, 10);
      return text(listing([...OPENSTACK_VERSIONS.filter((v) => v <= today), 'latest']));
    }
    if (tokens[0] === 'ec2') {
      const data = this.ec2(tokens[1], path);
      return text(render(findPath(data, tokens.slice(2), path)));
    }
    return this.openstack(tokens.slice(1), path);
  }

  /** Every file of the config drive, as Nova's metadata_for_config_drive yields them. */
  configDriveFiles(): { path: string; data: Buffer }[] {
    const out: { path: string; data: Buffer }[] = [];
    const skip = new Set(this.o.config.get<string>('api', 'config_drive_skip_versions').split(' ').filter(Boolean));
    for (const v of [...EC2_VERSIONS, 'latest']) {
      if (skip.has(v)) continue;
      const data = this.ec2(v, v);
      const md = data['meta-data'] as Ec2Tree;
      if (data['user-data'] !== undefined) out.push({ path: `ec2/${v}/user-data`, data: data['user-data'] as Buffer });
      const keys = md['public-keys'] as Ec2Tree | undefined;
      if (keys) delete (keys['0'] as Ec2Tree)._name;
      out.push({ path: `ec2/${v}/meta-data.json`, data: Buffer.from(pyJson(md)) });
    }
    const all = [...OPENSTACK_VERSIONS, 'latest'];
    const since = (required: string, v: string) => all.indexOf(v) >= all.indexOf(required);
    for (const v of all) {
      const add = (name: string) => {
        const r = this.lookup(`openstack/${v}/${name}`);
        if (r.kind === 'data') out.push({ path: `openstack/${v}/${name}`, data: r.body });
      };
      add('meta_data.json');
      if (this.userData) add('user_data');
      if (since(HAVANA, v)) add('vendor_data.json');
      if (since(LIBERTY, v)) add('network_data.json');
      if (since(NEWTON_TWO, v)) add('vendor_data2.json');
    }
    for (const [key, data] of this.content) out.push({ path: `openstack/content/${key}`, data });
    return out;
  }

  // ---- OpenStack tree

  private openstack(tokens: string[], path: string): LookupResult {
    if (tokens[0] === 'content') {
      const c = tokens.length === 2 ? this.content.get(tokens[1]) : undefined;
      if (!c) throw new MetadataNotFound(path);
      return { kind: 'data', body: c, contentType: TEXT };
    }
    const version = tokens[0] === 'latest' ? OPENSTACK_VERSIONS[OPENSTACK_VERSIONS.length - 1] : tokens[0];
    if (!(OPENSTACK_VERSIONS as readonly string[]).includes(version)) throw new MetadataNotFound(path);
    const since = (required: string) => OPENSTACK_VERSIONS.indexOf(version as never) >= OPENSTACK_VERSIONS.indexOf(required as never);
    const item = tokens.slice(1).join('/');
    const providers = this.o.config.get<string[]>('api', 'vendordata_providers');
    switch (item) {
      case '': {
        const names = ['meta_data.json'];
        if (this.userData) names.push('user_data');
        if (since(GRIZZLY)) names.push('password');
        if (since(HAVANA)) names.push('vendor_data.json');
        if (since(LIBERTY)) names.push('network_data.json');
        if (since(NEWTON_TWO)) names.push('vendor_data2.json');
        return text(listing(names));
      }
      case 'meta_data.json':
        return { kind: 'data', body: Buffer.from(pyJson(this.metaData(since))), contentType: JSON_TYPE };
      case 'user_data':
        if (!this.userData) throw new MetadataNotFound(path);
        return { kind: 'data', body: this.userData, contentType: TEXT };
      case 'password':
        if (!since(GRIZZLY)) throw new MetadataNotFound(path);
        return { kind: 'password' };
      case 'vendor_data.json':
        if (!since(HAVANA) || !providers.includes('StaticJSON')) throw new MetadataNotFound(path);
        return { kind: 'data', body: Buffer.from(pyJson(this.o.vendorData ?? {})), contentType: JSON_TYPE };
      case 'vendor_data2.json':
        if (!since(NEWTON_TWO)) throw new MetadataNotFound(path);
        return { kind: 'data', body: Buffer.from(pyJson(providers.includes('StaticJSON') ? { static: this.o.vendorData ?? {} } : {})), contentType: JSON_TYPE };
      case 'network_data.json':
        // Nova leaves network_data.json as text/plain.
        return { kind: 'data', body: Buffer.from(pyJson(this.networkData())), contentType: TEXT };
      default:
        throw new MetadataNotFound(path);
    }
  }

  private metaData(since: (v: string) => boolean): Record<string, unknown> {
    const s = this.spec;
    const md: Record<string, unknown> = { uuid: s.uuid };
    if (s.metadata && Object.keys(s.metadata).length) md.meta = s.metadata;
    if (this.files.length) md.files = this.files.map((f) => ({ path: f.path, content_path: f.contentPath }));
    // Nova's extra_md: the admin password goes to the config drive only, never over HTTP.
    if (this.o.configDrive && s.adminPassword) md.admin_pass = s.adminPassword;
    if (s.keyName && s.keyData) {
      md.public_keys = { [s.keyName]: s.keyData };
      md.keys = [{ name: s.keyName, type: keyType(s.keyData), data: s.keyData }];
    }
    md.hostname = this.hostname();
    md.name = s.displayName ?? s.hostname ?? s.name;
    md.launch_index = s.launchIndex ?? 0;
    md.availability_zone = this.availabilityZone();
    if (since(GRIZZLY)) md.random_seed = randomBytes(512).toString('base64');
    if (since(LIBERTY)) md.project_id = s.projectId ?? null;
    // No device is tagged (block device mappings and NIC tags are not built): Nova's empty list.
    if (since(NEWTON_ONE)) md.devices = [];
    if (since(VICTORIA)) md.dedicated_cpus = [];
    return md;
  }

  /** Nova's netutils.get_network_metadata for user-mode NICs: a physical link and DHCP on it. */
  private networkData(): Record<string, unknown> {
    const vifs = this.vifs();
    if (!vifs.length) return {};
    const links: Record<string, unknown>[] = [];
    const networks: Record<string, unknown>[] = [];
    vifs.forEach((vif, i) => {
      const link = `tap${vif.id.slice(0, 11)}`;
      // mtu null: the DHCP server hands it out (Nova leaves it out when a DHCP server serves the subnet).
      links.push({ id: link, vif_id: vif.id, type: 'phy', mtu: null, ethernet_mac_address: vif.mac });
      networks.push({ id: `network${i}`, type: 'ipv4_dhcp', link, network_id: networkId(vif.networkName) });
    });
    return { links, networks, services: [] };
  }

  // ---- EC2 tree

  private ec2(requested: string, path: string): Ec2Tree {
    const version = requested === 'latest' ? EC2_VERSIONS[EC2_VERSIONS.length - 1] : requested;
    const idx = (EC2_VERSIONS as readonly string[]).indexOf(version);
    if (idx < 0) throw new MetadataNotFound(path);
    const since = (v: string) => idx >= (EC2_VERSIONS as readonly string[]).indexOf(v);
    const s = this.spec;
    const hostname = this.hostname();
    const fixedIp = this.vifs().map((v) => v.address).find((a): a is string => !!a && a.includes('.')) ?? '';
    const props = s.image?.properties ?? s.imageProps ?? {};
    const md: Ec2Tree = {
      'ami-id': s.imageId ? ec2IdFor('ami', s.imageId) : '',
      'ami-launch-index': s.launchIndex ?? 0,
      'ami-manifest-path': 'FIXME',
      // The ids the EC2 API shows for this instance and its images (src/common/ec2-ids.ts).
      'instance-id': ec2IdFor('i', s.uuid),
      hostname,
      'local-ipv4': fixedIp || (this.o.address ?? null),
      'reservation-id': s.reservationId ?? '',
      // Security groups come from the instance's ports: none without a NIC.
      'security-groups': this.vifs().length ? ['default'] : [],
    };
    if (s.keyName && s.keyData) md['public-keys'] = { 0: { _name: `0=${s.keyName}`, 'openssh-key': s.keyData } };
    if (since('2007-01-19')) {
      md['local-hostname'] = hostname;
      md['public-hostname'] = hostname;
      md['public-ipv4'] = '';
    }
    if (since('2007-08-29')) md['instance-type'] = s.flavor?.name ?? '';
    if (since('2007-12-15')) {
      md['block-device-mapping'] = this.blockDeviceMapping(props);
      if (props.kernel_id) md['kernel-id'] = ec2IdFor('aki', props.kernel_id);
      if (props.ramdisk_id) md['ramdisk-id'] = ec2IdFor('ari', props.ramdisk_id);
    }
    if (since('2008-02-01')) md.placement = { 'availability-zone': this.availabilityZone() };
    if (since('2008-09-01')) md['instance-action'] = 'none';
    const data: Ec2Tree = { 'meta-data': md };
    if (this.userData) data['user-data'] = this.userData;
    return data;
  }

  /** Nova's instance_block_mapping for a guest booted from its image (root, ephemeral, swap). */
  private blockDeviceMapping(props: Record<string, string>): Ec2Tree {
    const prefix = ({ virtio: 'vd', scsi: 'sd', sata: 'sd', usb: 'sd', ide: 'hd', xen: 'xvd' } as Record<string, string>)[props.hw_disk_bus ?? 'virtio'] ?? 'vd';
    let letter = 'a'.charCodeAt(0);
    const next = () => `${prefix}${String.fromCharCode(letter++)}`;
    const root = next();
    const m: Ec2Tree = { ami: root, root: `/dev/${root}` };
    if ((this.spec.flavor?.ephemeralGb ?? 0) > 0) m.ephemeral0 = `/dev/${next()}`;
    if ((this.spec.flavor?.swapMb ?? 0) > 0) m.swap = `/dev/${next()}`;
    return m;
  }

  private vifs(): VifSpec[] {
    return this.spec.network?.mode === 'auto' ? this.spec.network.vifs : [];
  }

  private hostname(): string {
    const h = this.spec.hostname ?? this.spec.displayName ?? this.spec.name;
    const domain = this.o.config.get<string>('api', 'dhcp_domain');
    return domain ? `${h}.${domain}` : h;
  }

  private availabilityZone(): string {
    return this.spec.availabilityZone ?? this.o.config.get<string>('DEFAULT', 'default_availability_zone');
  }
}

/** [api] vendordata_jsonfile_path's content (Nova's StaticJSON provider), {} when none is set. */
export async function loadVendorData(config: Config): Promise<unknown> {
  const file = config.get<string | undefined>('api', 'vendordata_jsonfile_path');
  if (!file) return {};
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw new Error(`[api] vendordata_jsonfile_path ${file} cannot be read: ${(e as Error).message}`);
  }
  try { return JSON.parse(text); } catch (e) {
    throw new Error(`[api] vendordata_jsonfile_path ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

// ---- rendering

function text(s: string | Buffer): LookupResult {
  return { kind: 'data', body: Buffer.isBuffer(s) ? s : Buffer.from(s), contentType: TEXT };
}

function listing(items: string[]): string {
  return items.join('\n');
}

/** Nova's ec2_md_print: a tree as a listing (sub-trees end in `/`, `_name` replaces a key), lists one per line. */
function render(node: Ec2Node): string | Buffer {
  if (Buffer.isBuffer(node)) return node;
  if (Array.isArray(node)) return node.join('\n');
  if (node !== null && typeof node === 'object') {
    return Object.keys(node).filter((k) => k !== '_name').sort().map((k) => {
      const v = node[k];
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)) return '_name' in v ? String(v._name) : `${k}/`;
      return k;
    }).join('\n');
  }
  return node === null ? 'None' : String(node);
}

function findPath(data: Ec2Tree, tokens: string[], path: string): Ec2Node {
  let cur: Ec2Node = data;
  for (const t of tokens) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || Buffer.isBuffer(cur) || !Object.hasOwn(cur, t) || t === '_name') throw new MetadataNotFound(path);
    cur = cur[t];
  }
  return cur;
}

/** json.dumps as Nova's jsonutils writes it: `, ` and `: ` separators, non-ASCII escaped. */
export function pyJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyJson(k)}: ${pyJson(x)}`).join(', ')}}`;
}

// ---- identifiers

/** A stable uuid for a network that has no network service record (user-mode networking). */
function networkId(name: string): string {
  const h = createHash('sha1').update(`stratus-network:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function keyType(key: string): string {
  return key.startsWith('-----BEGIN CERTIFICATE-----') ? 'x509' : 'ssh';
}
