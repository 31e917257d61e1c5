// The account and its places: regions, availability zones, account attributes (quota), and
// instance types (flavors).
import { invalidParameter } from '../errors.ts';
import { filters, list } from '../params.ts';
import { el, node, set } from '../xml.ts';
import { type ActionContext, type ActionDef, matchAny } from './context.ts';

async function describeRegions(c: ActionContext): Promise<string> {
  const names = list(c.p, 'RegionName');
  const fs = filters(c.p);
  const region = { name: c.settings.region, endpoint: new URL(c.settings.publicUrl).host };
  for (const n of names) if (n !== region.name) throw invalidParameter(`Invalid region: ${n}`);
  for (const f of fs) if (!['region-name', 'endpoint', 'opt-in-status'].includes(f.name)) throw invalidParameter(`The filter '${f.name}' is invalid`);
  const ok = fs.every((f) => matchAny(f.values, f.name === 'region-name' ? region.name : f.name === 'endpoint' ? region.endpoint : 'opt-in-not-required'));
  return set('regionInfo', ok ? [region] : [], (r) => el('regionName', r.name) + el('regionEndpoint', r.endpoint) + '<optInStatus>opt-in-not-required</optInStatus>');
}

async function describeAvailabilityZones(c: ActionContext): Promise<string> {
  const names = list(c.p, 'ZoneName');
  const fs = filters(c.p);
  const body = await c.compute.ok(c.caller.token, 'GET', '/os-availability-zone');
  const zones = (body.availabilityZoneInfo as { zoneName: string; zoneState: { available: boolean } }[]).map((z) => ({
    name: z.zoneName, state: z.zoneState.available ? 'available' : 'unavailable',
  }));
  for (const n of names) if (!zones.some((z) => z.name === n)) throw invalidParameter(`The zone '${n}' does not exist.`);
  const get: Record<string, (z: { name: string; state: string }) => string> = {
    'zone-name': (z) => z.name, state: (z) => z.state, 'region-name': () => c.settings.region, 'zone-type': () => 'availability-zone', 'zone-id': (z) => z.name,
  };
  for (const f of fs) if (!get[f.name]) throw invalidParameter(`The filter '${f.name}' is invalid`);
  const keep = zones.filter((z) => (!names.length || names.includes(z.name)) && fs.every((f) => matchAny(f.values, get[f.name](z))));
  return set('availabilityZoneInfo', keep, (z) => el('zoneName', z.name) + el('zoneState', z.state) + el('regionName', c.settings.region)
    + '<messageSet/>' + el('zoneId', z.name) + '<zoneType>availability-zone</zoneType><optInStatus>opt-in-not-required</optInStatus>');
}

async function describeAccountAttributes(c: ActionContext): Promise<string> {
  const names = list(c.p, 'AttributeName');
  const known = ['supported-platforms', 'default-vpc', 'max-instances', 'vpc-max-security-groups-per-interface', 'max-elastic-ips', 'vpc-max-elastic-ips'];
  for (const n of names) if (!known.includes(n)) throw invalidParameter(`Value (${n}) for parameter attributeName is invalid.`);
  const want = names.length ? names : known;
  const values: Record<string, () => Promise<string[]>> = {
    'supported-platforms': async () => ['EC2'],
    'default-vpc': async () => ['none'],
    'max-instances': async () => {
      const q = await c.compute.ok(c.caller.token, 'GET', `/os-quota-sets/${c.caller.projectId}`);
      return [String(q.quota_set.instances)];
    },
    'vpc-max-security-groups-per-interface': async () => ['0'],
    'max-elastic-ips': async () => ['0'],
    'vpc-max-elastic-ips': async () => ['0'],
  };
  const rows = await Promise.all(want.map(async (n) => ({ n, v: await values[n]() })));
  return set('accountAttributeSet', rows, (r) => el('attributeName', r.n) + set('attributeValueSet', r.v, (v) => el('attributeValue', v)));
}

async function describeInstanceTypes(c: ActionContext): Promise<string> {
  const names = list(c.p, 'InstanceType');
  const fs = filters(c.p);
  const body = await c.compute.ok(c.caller.token, 'GET', '/flavors/detail');
  const flavors = body.flavors as any[];
  for (const n of names) if (!flavors.some((f) => f.name === n)) throw invalidParameter(`The following supplied instance types do not exist: [${n}]`);
  const get: Record<string, (f: any) => string> = {
    'instance-type': (f) => f.name, 'vcpu-info.default-vcpus': (f) => String(f.vcpus), 'memory-info.size-in-mib': (f) => String(f.ram),
    'instance-storage-info.total-size-in-gb': (f) => String(f.disk + (f['OS-FLV-EXT-DATA:ephemeral'] ?? 0)), 'current-generation': () => 'true',
    'processor-info.supported-architecture': () => 'x86_64', 'supported-root-device-type': () => 'instance-store', 'instance-storage-supported': (f) => String(f.disk > 0),
  };
  for (const f of fs) if (!get[f.name]) throw invalidParameter(`The filter '${f.name}' is invalid`);
  const keep = flavors.filter((f) => (!names.length || names.includes(f.name)) && fs.every((x) => matchAny(x.values, get[x.name](f))));
  return set('instanceTypeSet', keep, (f) => {
    const disk = f.disk + (f['OS-FLV-EXT-DATA:ephemeral'] ?? 0);
    return el('instanceType', f.name) + '<currentGeneration>true</currentGeneration><freeTierEligible>false</freeTierEligible>'
      + '<supportedUsageClasses><item>on-demand</item></supportedUsageClasses><supportedRootDeviceTypes><item>instance-store</item></supportedRootDeviceTypes>'
      + '<supportedVirtualizationTypes><item>hvm</item></supportedVirtualizationTypes><bareMetal>false</bareMetal><hypervisor>xen</hypervisor>'
      + node('processorInfo', '<supportedArchitectures><item>x86_64</item></supportedArchitectures>')
      + node('vCpuInfo', el('defaultVCpus', f.vcpus)) + node('memoryInfo', el('sizeInMiB', f.ram))
      + el('instanceStorageSupported', String(disk > 0))
      + (disk > 0 ? node('instanceStorageInfo', el('totalSizeInGB', disk) + set('disks', [disk], (d) => el('sizeInGB', d) + '<count>1</count><type>ssd</type>')) : '')
      + '<ebsInfo><ebsOptimizedSupport>unsupported</ebsOptimizedSupport><encryptionSupport>unsupported</encryptionSupport></ebsInfo>'
      + '<networkInfo><networkPerformance>Low</networkPerformance><maximumNetworkInterfaces>1</maximumNetworkInterfaces><ipv4AddressesPerInterface>1</ipv4AddressesPerInterface><ipv6Supported>false</ipv6Supported></networkInfo>'
      + '<placementGroupInfo><supportedStrategies/></placementGroupInfo><hibernationSupported>false</hibernationSupported><burstablePerformanceSupported>false</burstablePerformanceSupported><dedicatedHostsSupported>false</dedicatedHostsSupported><autoRecoverySupported>false</autoRecoverySupported>';
  });
}

export const accountActions: Record<string, ActionDef> = {
  DescribeRegions: { handler: describeRegions },
  DescribeAvailabilityZones: { handler: describeAvailabilityZones },
  DescribeAccountAttributes: { handler: describeAccountAttributes },
  DescribeInstanceTypes: { handler: describeInstanceTypes },
};
