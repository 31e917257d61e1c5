// The consistency invariants of a compute deployment, checked from the databases and placement
// as they are: the one checker behind the fault tests, `stratus status audit` and the
// conductor's periodic reconciler. Each finding names what is wrong and the operator command
// that puts it right.
//   - every placement allocation's consumer is a live instance on the host whose provider it
//     names (or a move in progress), or a build still being scheduled;
//   - every live instance on a host has exactly its flavor's allocation there;
//   - quota usage (instance mappings not queued for delete, counted as Nova counts) equals the
//     instances the cells hold plus pending build requests;
//   - no instance stays in BUILD, `deleting` or another task state past the timeouts, no build
//     request outlives the build timeout;
//   - no image stays `saving` / `importing` past the timeout;
//   - every live instance has an instance mapping (without one the API cannot find or delete it).
import type { Cells } from '../cells.ts';
import type { PlacementClient } from '../clients.ts';
import type { CellDb } from '../db/tables.ts';
import type { InstanceRow } from '../objects.ts';
import { VM, TASK } from '../objects.ts';
import { flavorResources } from '../flavor-resources.ts';
import { parseJson } from '../util.ts';

export type FindingKind =
  | 'orphan_allocation' | 'allocation_wrong_host' | 'missing_allocation' | 'allocation_mismatch'
  | 'quota_drift' | 'stuck_instance' | 'stuck_build_request' | 'stuck_image' | 'duplicate_instance' | 'unmapped_instance';

export interface Finding {
  kind: FindingKind;
  /** The consumer, instance, project or image concerned. */
  subject: string;
  detail: string;
  /** The operator command that fixes it. */
  fix: string;
  /** For allocations: the provider named. */
  provider?: string;
}

export interface AuditOptions {
  /** A build (instance in BUILD, build request) older than this is stuck (ms). */
  buildTimeoutMs: number;
  /** An instance with a task state (deleting, rebooting…) unchanged this long is stuck (ms). */
  taskTimeoutMs: number;
  /** The same for `deleting` alone, when shorter (the reconciler retries a lost delete sooner). */
  deleteTimeoutMs?: number;
  /** An image `saving`/`importing` unchanged this long is stuck (ms). */
  imageTimeoutMs?: number;
  /** Image rows (the image database), when the caller can read it. */
  images?: () => Promise<{ id: string; status: string; updated_at: string | Date }[]>;
  now?: number;
}

const MOVING = new Set(['pre-migrating', 'migrating', 'post-migrating', 'finished', 'confirming', 'reverting', 'accepted', 'queued', 'preparing', 'running']);
const IMAGE_BUSY = new Set(['saving', 'importing', 'uploading']);

const ms = (t: string | Date | null | undefined) => (t ? (t instanceof Date ? t.getTime() : Date.parse(/Z|[+-]\d\d:?\d\d$/.test(t) ? t : `${t.replace(' ', 'T')}Z`)) : NaN);

interface LiveInstance { row: InstanceRow; db: CellDb; cell: string; nodeUuid?: string }

/** Runs every check; an empty list is a consistent deployment. */
export async function auditDeployment(cells: Cells, placement: PlacementClient, o: AuditOptions): Promise<Finding[]> {
  const now = o.now ?? Date.now();
  const out: Finding[] = [];
  // Build requests first, instances second: a build moves from the first to the second
  // (instance row written before its build request is deleted), so reading in this order
  // never misses one in flight.
  const buildRequests = await cells.db.selectFrom('build_requests').select(['instance_uuid', 'project_id', 'created_at', 'vcpus', 'memory_mb']).execute();
  const pending = new Set(buildRequests.map((b) => b.instance_uuid));
  const instances = new Map<string, LiveInstance>();
  const deleted = new Set<string>();
  const moving = new Map<string, Set<string>>();
  const nodeUuids = new Map<string, string>();
  const providerNames = new Map<string, string>();
  const seen = new Map<string, string>();
  for (const { cell, db } of await cells.all()) {
    for (const n of await db.selectFrom('compute_nodes').select(['uuid', 'host', 'hypervisor_hostname']).execute()) {
      nodeUuids.set(`${n.host}/${n.hypervisor_hostname}`, n.uuid);
      providerNames.set(n.uuid, n.hypervisor_hostname);
    }
    const rows = await db.selectFrom('instances').selectAll().execute() as InstanceRow[];
    for (const r of rows) {
      if (r.deleted) { deleted.add(r.uuid); continue; }
      const other = seen.get(r.uuid);
      if (other) out.push({ kind: 'duplicate_instance', subject: r.uuid, detail: `Instance ${r.uuid} is live in cells ${other} and ${cell.name ?? cell.uuid}.`, fix: `openstack server delete ${r.uuid}` });
      seen.set(r.uuid, cell.name ?? cell.uuid);
      instances.set(r.uuid, { row: r, db, cell: cell.uuid, nodeUuid: r.host && r.node ? nodeUuids.get(`${r.host}/${r.node}`) : undefined });
    }
    for (const m of await db.selectFrom('migrations').select(['uuid', 'instance_uuid', 'status', 'source_compute', 'source_node', 'dest_compute', 'dest_node']).where('deleted', '=', 0).execute()) {
      if (!MOVING.has(m.status)) continue;
      const hosts = new Set<string>();
      for (const [h, n] of [[m.source_compute, m.source_node], [m.dest_compute, m.dest_node]]) { const u = h && n ? nodeUuids.get(`${h}/${n}`) : undefined; if (u) hosts.add(u); }
      moving.set(m.instance_uuid, hosts);
      moving.set(m.uuid, hosts);
    }
  }
  // Compute nodes are read after the instances: fill in node uuids of hosts that registered meanwhile.
  for (const li of instances.values()) if (!li.nodeUuid && li.row.host && li.row.node) li.nodeUuid = nodeUuids.get(`${li.row.host}/${li.row.node}`);

  // --- allocations against every provider ---
  const rps = ((await placement.request('GET', '/resource_providers')).body?.resource_providers ?? []) as { uuid: string; name: string }[];
  const held = new Map<string, Map<string, Record<string, number>>>(); // consumer → provider → resources
  for (const rp of rps) {
    const allocs = await placement.providerAllocations(rp.uuid);
    for (const [consumer, a] of Object.entries(allocs)) {
      let m = held.get(consumer);
      if (!m) held.set(consumer, (m = new Map()));
      m.set(rp.uuid, a.resources);
    }
  }
  // A consumer that appeared after the instance scan (a build just claimed) is judged with a second look.
  const lateLook = async (consumer: string) => (await cells.db.selectFrom('build_requests').select('instance_uuid').where('instance_uuid', '=', consumer).executeTakeFirst())
    ?? (await (await cells.cellOfInstance(consumer))?.db.selectFrom('instances').select('uuid').where('uuid', '=', consumer).where('deleted', '=', 0).executeTakeFirst());
  for (const [consumer, byRp] of held) {
    const li = instances.get(consumer);
    for (const [rp] of byRp) {
      const name = providerNames.get(rp) ?? rps.find((x) => x.uuid === rp)?.name ?? rp;
      if (moving.get(consumer)?.has(rp)) continue;
      if (!li) {
        if (pending.has(consumer)) continue; // claimed by the scheduler, instance row not written yet
        if (!deleted.has(consumer) && (await lateLook(consumer))) continue;
        out.push({ kind: 'orphan_allocation', subject: consumer, provider: rp, detail: `Allocation of consumer ${consumer} on ${name} (${rp}) belongs to no live instance${deleted.has(consumer) ? ' (the instance is deleted)' : ''}.`, fix: 'stratus manage placement audit --delete' });
      } else if (!li.row.host && !li.row.task_state) {
        // No host, nothing in progress (an unshelve claims before it sets the host): a build that
        // ended in cell0 after a select_destinations that timed out while still claiming.
        out.push({ kind: 'orphan_allocation', subject: consumer, provider: rp, detail: `Allocation of consumer ${consumer} on ${name} (${rp}) belongs to an instance on no host.`, fix: 'stratus manage placement audit --delete' });
      } else if (li.nodeUuid && li.nodeUuid !== rp) {
        out.push({ kind: 'allocation_wrong_host', subject: consumer, provider: rp, detail: `Instance ${consumer} is on ${li.row.node} but holds an allocation on ${name} (${rp}).`, fix: 'stratus manage placement audit --delete' });
      }
    }
  }
  for (const [uuid, li] of instances) {
    const r = li.row;
    if (!r.host || !li.nodeUuid || r.vm_state === VM.SHELVED_OFFLOADED) continue;
    if (r.vm_state === VM.BUILDING && r.task_state === TASK.SCHEDULING) continue; // a reschedule claims anew
    const want = expectedResources(r);
    const got = held.get(uuid)?.get(li.nodeUuid);
    if (!got) {
      if (moving.has(uuid)) continue;
      out.push({ kind: 'missing_allocation', subject: uuid, provider: li.nodeUuid, detail: `Instance ${uuid} on ${r.node} has no allocation on its compute node provider.`, fix: `stratus manage placement heal_allocations --instance ${uuid}` });
    } else if (!sameResources(want, got) && !moving.has(uuid)) {
      out.push({ kind: 'allocation_mismatch', subject: uuid, provider: li.nodeUuid, detail: `Instance ${uuid} holds ${fmt(got)} on ${r.node}; its flavor needs ${fmt(want)}.`, fix: `stratus manage placement heal_allocations --instance ${uuid} --force` });
    }
  }

  // --- quota: the mappings Nova counts against what the cells and build requests hold ---
  // Over-counted: a mapping still counted whose instance is gone (looked at twice, as a build
  // may be between its build request and its instance row). Under-counted: a live instance,
  // not being deleted, whose mapping is already queued for delete.
  const mapped = await cells.db.selectFrom('instance_mappings').select(['instance_uuid', 'project_id', 'queued_for_delete']).execute();
  const drift = new Map<string, { over: number; under: number }>();
  const bump = (p: string, k: 'over' | 'under') => { const v = drift.get(p) ?? { over: 0, under: 0 }; v[k]++; drift.set(p, v); };
  for (const m of mapped) {
    const li = instances.get(m.instance_uuid);
    const live = li !== undefined || pending.has(m.instance_uuid);
    if (!m.queued_for_delete && !live && !(await lateLook(m.instance_uuid))) bump(m.project_id, 'over');
    if (m.queued_for_delete && li && li.row.task_state !== TASK.DELETING && li.row.vm_state !== VM.SOFT_DELETED) bump(m.project_id, 'under');
  }
  const hasMapping = new Set(mapped.map((m) => m.instance_uuid));
  for (const [uuid, li] of instances) {
    if (hasMapping.has(uuid)) continue;
    // Looked at again: a conductor that lost a build to the API's cleanup deletes its row at once.
    if (await cells.db.selectFrom('instance_mappings').select('id').where('instance_uuid', '=', uuid).executeTakeFirst()) continue;
    if (!(await li.db.selectFrom('instances').select('uuid').where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst())) continue;
    out.push({ kind: 'unmapped_instance', subject: uuid, detail: `Instance ${uuid} is live in cell ${li.cell} but has no instance mapping: the API cannot show or delete it.`, fix: `stratus manage cell_v2 map_instances --cell_uuid ${li.cell}` });
  }
  for (const [p, v] of drift) {
    out.push({ kind: 'quota_drift', subject: p, detail: `Project ${p}: quota counts ${v.over} deleted instance(s) as live${v.under ? ` and ${v.under} live instance(s) as deleted` : ''}.`, fix: 'stratus manage db online_data_migrations' });
  }

  // --- nothing stuck ---
  for (const b of buildRequests) {
    if (now - ms(b.created_at) > o.buildTimeoutMs && !instances.has(b.instance_uuid)) {
      out.push({ kind: 'stuck_build_request', subject: b.instance_uuid, detail: `Server ${b.instance_uuid} has been waiting to be scheduled since ${new Date(ms(b.created_at)).toISOString()}.`, fix: `openstack server delete ${b.instance_uuid}` });
    }
  }
  for (const [uuid, { row: r }] of instances) {
    const since = ms(r.updated_at ?? r.created_at);
    if (r.vm_state === VM.BUILDING && now - ms(r.created_at) > o.buildTimeoutMs) {
      out.push({ kind: 'stuck_instance', subject: uuid, detail: `Instance ${uuid} has been building (task ${r.task_state ?? 'none'}) on ${r.host ?? 'no host'} since ${r.created_at}.`, fix: `openstack server set --state error ${uuid}` });
    } else if (r.task_state && (r.vm_state !== VM.BUILDING || r.task_state === TASK.DELETING)
      && now - since > (r.task_state === TASK.DELETING ? o.deleteTimeoutMs ?? o.taskTimeoutMs : o.taskTimeoutMs)) {
      const fix = r.task_state === TASK.DELETING ? `openstack server delete --force ${uuid}` : `openstack server set --state ${r.vm_state === VM.ACTIVE ? 'active' : 'error'} ${uuid}`;
      out.push({ kind: 'stuck_instance', subject: uuid, detail: `Instance ${uuid} has been in task state ${r.task_state} since ${new Date(since).toISOString()}.`, fix });
    }
  }
  if (o.images) {
    for (const img of await o.images()) {
      if (IMAGE_BUSY.has(img.status) && now - ms(img.updated_at) > (o.imageTimeoutMs ?? o.buildTimeoutMs)) {
        out.push({ kind: 'stuck_image', subject: img.id, detail: `Image ${img.id} has been ${img.status} since ${new Date(ms(img.updated_at)).toISOString()}.`, fix: `openstack image delete ${img.id}` });
      }
    }
  }
  return out;
}

/** The allocation an instance must hold: its embedded flavor's resources. */
export function expectedResources(r: InstanceRow): Record<string, number> {
  const f = parseJson<Record<string, any>>(r.flavor, {});
  const sys = parseJson<Record<string, string>>(r.system_metadata, {});
  const imageProps: Record<string, string> = {};
  for (const [k, v] of Object.entries(sys)) if (k.startsWith('image_resources:')) imageProps[k.slice('image_'.length)] = v;
  return flavorResources({ vcpus: f.vcpus ?? r.vcpus, memory_mb: f.memory_mb ?? r.memory_mb, root_gb: f.root_gb ?? r.root_gb, ephemeral_gb: f.ephemeral_gb ?? r.ephemeral_gb, swap: f.swap ?? 0, extra_specs: f.extra_specs ?? {} }, imageProps);
}

function sameResources(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if ((a[k] ?? 0) !== (b[k] ?? 0)) return false;
  return true;
}

const fmt = (r: Record<string, number>) => Object.entries(r).sort().map(([k, v]) => `${k}=${v}`).join(',');

/** Counts per kind, every kind present (0 when clean): the figures of the fault table. */
export function summarize(findings: Finding[]): Record<FindingKind, number> {
  const kinds: FindingKind[] = ['orphan_allocation', 'allocation_wrong_host', 'missing_allocation', 'allocation_mismatch', 'quota_drift', 'stuck_instance', 'stuck_build_request', 'stuck_image', 'duplicate_instance', 'unmapped_instance'];
  const out = Object.fromEntries(kinds.map((k) => [k, 0])) as Record<FindingKind, number>;
  for (const f of findings) out[f.kind]++;
  return out;
}
