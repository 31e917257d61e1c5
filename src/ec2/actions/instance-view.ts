// A Nova server as an EC2 instance: its state, its reservation, its tags, rendered as
// DescribeInstances' <item>. Everything here is per-server string work; the lookups it needs
// (EC2 ids, reservations, images) are batched by the caller.
import { createHash } from 'node:crypto';
import { el, esc, node } from '../xml.ts';
import { isoTime } from './context.ts';

export interface Ec2State { code: number; name: string }

export const STATES = {
  pending: { code: 0, name: 'pending' }, running: { code: 16, name: 'running' }, shuttingDown: { code: 32, name: 'shutting-down' },
  terminated: { code: 48, name: 'terminated' }, stopping: { code: 64, name: 'stopping' }, stopped: { code: 80, name: 'stopped' },
} satisfies Record<string, Ec2State>;

/** EC2's state from Nova's vm_state and task_state (as Nova's EC2 layer mapped them). */
export function ec2State(s: any): Ec2State {
  const vm = s['OS-EXT-STS:vm_state'];
  const task = s['OS-EXT-STS:task_state'];
  if (task === 'deleting') return STATES.shuttingDown;
  if (vm === 'deleted' || vm === 'soft-delete') return STATES.terminated;
  // A server that never built is what AWS calls a launch failure: terminated, with the reason.
  if (vm === 'error') return STATES.terminated;
  if (vm === 'building') return STATES.pending;
  if (task === 'powering-off' || task === 'shelving' || task === 'suspending' || task === 'pausing') return STATES.stopping;
  if (task === 'powering-on' || task === 'resuming' || task === 'unpausing' || task === 'unshelving') return STATES.pending;
  if (vm === 'stopped' || vm === 'suspended' || vm === 'paused' || vm === 'shelved' || vm === 'shelved_offloaded') return STATES.stopped;
  return STATES.running;
}

export const stateXml = (tag: string, s: Ec2State) => `<${tag}><code>${s.code}</code><name>${s.name}</name></${tag}>`;

/** A server that RunInstances did not create (made through the Nova API) is its own reservation. */
export function soleReservationId(uuid: string): string {
  return `r-${createHash('sha256').update(`reservation:${uuid}`).digest('hex').slice(0, 17)}`;
}

/** EC2 tags of a server: its metadata (key=value) and its Nova tags (value ''). */
export function tagsOf(s: any): { key: string; value: string }[] {
  const out = Object.entries((s.metadata ?? {}) as Record<string, string>).map(([key, value]) => ({ key, value: String(value) }));
  for (const t of (s.tags ?? []) as string[]) if (!(t in (s.metadata ?? {}))) out.push({ key: t, value: '' });
  return out;
}

export const tagSetXml = (tags: { key: string; value: string }[]) => {
  if (!tags.length) return '';
  let x = '<tagSet>';
  for (const t of tags) x += `<item><key>${esc(t.key)}</key><value>${esc(t.value)}</value></item>`;
  return `${x}</tagSet>`;
};

/** First fixed and floating IPv4 address in Nova's addresses. */
export function addressesOf(s: any): { private?: string; public?: string } {
  const out: { private?: string; public?: string } = {};
  for (const list of Object.values((s.addresses ?? {}) as Record<string, { addr: string; version: number; 'OS-EXT-IPS:type'?: string }[]>)) {
    for (const a of list) {
      if (a.version !== 4) continue;
      if (a['OS-EXT-IPS:type'] === 'floating') out.public ??= a.addr;
      else out.private ??= a.addr;
    }
  }
  return out;
}

export interface InstanceRefs {
  instanceId: string;
  imageId?: string;
  kernelId?: string;
  ramdiskId?: string;
  launchIndex: number;
  architecture?: string;
  clientToken?: string;
}

export function instanceXml(s: any, r: InstanceRefs): string {
  const state = ec2State(s);
  const addr = addressesOf(s);
  const hostname = s['OS-EXT-SRV-ATTR:hostname'] ?? s.name;
  const fault = s['OS-EXT-STS:vm_state'] === 'error' ? (s.fault?.message ?? 'The instance failed to launch') : undefined;
  return el('instanceId', r.instanceId) + el('imageId', r.imageId) + stateXml('instanceState', state)
    + el('privateDnsName', hostname) + el('dnsName', addr.public ?? '') + el('reason', fault ? `Server.InternalError: ${fault}` : '')
    + el('keyName', s.key_name) + el('amiLaunchIndex', r.launchIndex) + '<productCodes/>'
    + el('instanceType', s.flavor?.original_name) + el('launchTime', isoTime(s['OS-SRV-USG:launched_at']) ?? isoTime(s.created))
    + node('placement', el('availabilityZone', s['OS-EXT-AZ:availability_zone'] ?? '') + '<groupName/><tenancy>default</tenancy>')
    + el('kernelId', r.kernelId) + el('ramdiskId', r.ramdiskId) + '<monitoring><state>disabled</state></monitoring>'
    + el('privateIpAddress', addr.private) + el('ipAddress', addr.public) + '<groupSet/>'
    + (fault ? node('stateReason', `<code>Server.InternalError</code>${el('message', `Server.InternalError: ${fault}`)}`) : '')
    + el('architecture', r.architecture) + '<rootDeviceType>instance-store</rootDeviceType><rootDeviceName>/dev/vda</rootDeviceName><blockDeviceMapping/>'
    + '<virtualizationType>hvm</virtualizationType>' + el('clientToken', r.clientToken ?? '') + tagSetXml(tagsOf(s))
    + '<hypervisor>xen</hypervisor><sourceDestCheck>true</sourceDestCheck>';
}
