// GET /servers/{id}/diagnostics (Nova's server_diagnostics.py): admin-only by default policy.
// The API asks the instance's compute agent (an RPC call), which asks its driver — and only
// about a running guest, as Nova's manager checks (409 otherwise). Below 2.48 the answer is the
// driver's free-form dictionary; from 2.48 Nova's standard Diagnostics object.
import { Conflict } from '../../common/errors.ts';
import { computeRpc } from '../rpc.ts';
import type { InstanceDiagnostics } from '../virt/driver.ts';
import type { Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';
import { getServer } from './servers.ts';

async function diagnostics(c: Ctx, standard: boolean) {
  const ref = await getServer(c, c.params.id);
  const row = ref.located?.row ?? ref.build?.row;
  c.enforce('os_compute_api:os-server-diagnostics', { project_id: row?.project_id });
  const l = ref.located;
  // Nova's check_instance_host: no host yet (building) or any more (shelved offloaded).
  if (!l || !l.row.host) throw new Conflict(`Instance ${row?.uuid ?? c.params.id} is not ready`);
  const rpc = await computeRpc(c.api.cellTransports, l.cell, l.row.host);
  if (!standard) return rpc.call(c.rpcContext(), 'get_diagnostics', { instance_uuid: l.row.uuid }, { timeoutMs: 30_000 });
  // Nova's view: every field of the object, null when the driver did not set it.
  const d: Partial<InstanceDiagnostics> = await rpc.call(c.rpcContext(), 'get_instance_diagnostics', { instance_uuid: l.row.uuid }, { timeoutMs: 30_000 });
  return {
    state: d.state ?? null, driver: d.driver ?? null, hypervisor: d.hypervisor ?? null, hypervisor_os: d.hypervisor_os ?? null,
    uptime: d.uptime ?? null, config_drive: d.config_drive ?? false,
    num_cpus: d.num_cpus ?? d.cpu_details?.length ?? 0, num_nics: d.num_nics ?? d.nic_details?.length ?? 0, num_disks: d.num_disks ?? d.disk_details?.length ?? 0,
    cpu_details: d.cpu_details ?? [], nic_details: d.nic_details ?? [], disk_details: d.disk_details ?? [],
    memory_details: { maximum: d.memory_details?.maximum ?? null, used: d.memory_details?.used ?? null },
  };
}

export const diagnosticsRoutes: ComputeRow[] = [
  { method: 'GET', path: '/servers/:id/diagnostics', policy: 'os_compute_api:os-server-diagnostics', errors: [409, 503, 504], handler: (c) => diagnostics(c, false), until: '2.47' },
  { method: 'GET', path: '/servers/:id/diagnostics', policy: 'os_compute_api:os-server-diagnostics', errors: [409, 503, 504], handler: (c) => diagnostics(c, true), since: '2.48' },
];
