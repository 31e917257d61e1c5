// Scheduler filters (nova/scheduler/filters): small named units selected by
// [filter_scheduler] enabled_filters. Each answers for one host and says why it rejected it, so
// a NoValidHost fault can name the filter and the reason. A filter must be a pure function of
// (host state, spec view): ranking.ts re-runs it only for hosts whose state changed.
import type { HostState } from './host-state.ts';

export interface SpecView {
  flavor: { vcpus: number; memory_mb: number; root_gb: number; ephemeral_gb: number; swap: number; extra_specs: Record<string, string> };
  imageProps: Record<string, string>;
  availabilityZone: string | null;
  group?: { uuid: string; policy: string; rules?: Record<string, number>; hosts: string[] };
}

/** undefined when the host passes; otherwise the reason. */
export type Filter = (h: HostState, s: SpecView) => string | undefined;

const computeFilter: Filter = (h) => {
  if (h.serviceDisabled) return `service disabled${h.disabledReason ? ` (${h.disabledReason})` : ''}`;
  if (!h.serviceUp) return 'service down';
  return undefined;
};

const availabilityZoneFilter: Filter = (h, s) => (s.availabilityZone && h.az !== s.availabilityZone ? `not in availability zone ${s.availabilityZone}` : undefined);

const imagePropertiesFilter: Filter = (h, s) => {
  const arch = s.imageProps.hw_architecture;
  const hv = s.imageProps.img_hv_type;
  const mode = s.imageProps.hw_vm_mode;
  if (!arch && !hv && !mode) return undefined;
  const ok = h.supportedInstances.some(([a, t, m]) => (!arch || a === arch) && (!hv || t === hv || (hv === 'qemu' && t === 'kvm') || (hv === 'kvm' && t === 'qemu')) && (!mode || m === mode));
  if (ok) return undefined;
  return [arch && `architecture=${arch}`, hv && `hypervisor_type=${hv}`, mode && `vm_mode=${mode}`].filter(Boolean).join(', ') + ' not supported';
};

/** Nova's extra_specs_ops: '= 4' (>=), '<in>', '<or>', 's==', '<=', '>=', '==', '!=' … */
export function specMatches(value: unknown, req: string): boolean {
  const words = req.trim().split(/\s+/);
  if (value === undefined || value === null) return false;
  const v = String(value);
  const op = words[0];
  const num = (x: string) => Number(x);
  switch (op) {
    case '=': return num(v) >= num(words[1]);
    case '==': return num(v) === num(words[1]);
    case '!=': return num(v) !== num(words[1]);
    case '>=': return num(v) >= num(words[1]);
    case '<=': return num(v) <= num(words[1]);
    case 's==': return v === words[1];
    case 's!=': return v !== words[1];
    case 's<': return v < words[1];
    case 's<=': return v <= words[1];
    case 's>': return v > words[1];
    case 's>=': return v >= words[1];
    case '<in>': return v.includes(words.slice(1).join(' '));
    case '<all-in>': return words.slice(1).every((w) => v.includes(w));
    case '<or>': return words.filter((w) => w !== '<or>').includes(v);
    default: return v === req.trim();
  }
}

const computeCapabilitiesFilter: Filter = (h, s) => {
  for (const [key, want] of Object.entries(s.flavor.extra_specs ?? {})) {
    let k = key;
    if (k.includes(':')) {
      if (!k.startsWith('capabilities:')) continue;
      k = k.slice('capabilities:'.length);
    }
    const caps: Record<string, unknown> = {
      hypervisor_type: h.hypervisorType, hypervisor_version: h.hypervisorVersion, hypervisor_hostname: h.nodename,
      cpu_info: h.cpuInfo, vcpus: h.capacity.VCPU, memory_mb: h.capacity.MEMORY_MB, free_ram_mb: h.free.MEMORY_MB, free_disk_mb: (h.free.DISK_GB ?? 0) * 1024,
      num_instances: h.numInstances, host: h.host,
    };
    let val: unknown = caps;
    for (const part of k.split(':')) val = val && typeof val === 'object' ? (val as Record<string, unknown>)[part] : undefined;
    if (!specMatches(val, want)) return `capability ${key}=${want} not met (host has ${val === undefined ? 'none' : JSON.stringify(val)})`;
  }
  return undefined;
};

const affinityFilter: Filter = (h, s) => {
  const g = s.group;
  if (!g || g.policy !== 'affinity' || !g.hosts.length) return undefined;
  return g.hosts.includes(h.host) ? undefined : `server group ${g.uuid} (affinity) is on ${g.hosts.join(', ')}`;
};

const antiAffinityFilter: Filter = (h, s) => {
  const g = s.group;
  if (!g || g.policy !== 'anti-affinity') return undefined;
  const max = g.rules?.max_server_per_host ?? 1;
  const n = g.hosts.filter((x) => x === h.host).length;
  return n >= max ? `server group ${g.uuid} (anti-affinity) already has ${n} member(s) here` : undefined;
};

const aggregateInstanceExtraSpecsFilter: Filter = (h, s) => {
  for (const [key, want] of Object.entries(s.flavor.extra_specs ?? {})) {
    if (!key.startsWith('aggregate_instance_extra_specs:')) continue;
    const k = key.slice('aggregate_instance_extra_specs:'.length);
    const vals = h.aggregates.map((a) => a.metadata[k]).filter((v) => v !== undefined);
    if (!vals.some((v) => specMatches(v, want))) return `no aggregate with ${k}=${want}`;
  }
  return undefined;
};

export const FILTERS: Record<string, Filter> = {
  ComputeFilter: computeFilter,
  AvailabilityZoneFilter: availabilityZoneFilter,
  ImagePropertiesFilter: imagePropertiesFilter,
  ComputeCapabilitiesFilter: computeCapabilitiesFilter,
  ServerGroupAffinityFilter: affinityFilter,
  ServerGroupAntiAffinityFilter: antiAffinityFilter,
  AggregateInstanceExtraSpecsFilter: aggregateInstanceExtraSpecsFilter,
};

// --- weighers ---
export type Weigher = (h: HostState) => number;
export const WEIGHERS: Record<string, { option: string; weigh: Weigher }> = {
  RAMWeigher: { option: 'ram_weight_multiplier', weigh: (h) => h.free.MEMORY_MB ?? 0 },
  CPUWeigher: { option: 'cpu_weight_multiplier', weigh: (h) => h.free.VCPU ?? 0 },
  DiskWeigher: { option: 'disk_weight_multiplier', weigh: (h) => h.free.DISK_GB ?? 0 },
};
