// Topic `compute.<host>` (Nova's compute rpcapi): the instance lifecycle on one host, cast by
// the API and the conductor; consoles and diagnostics are calls.
//   1.0 the lifecycle casts, get_console_output, get_diagnostics, get_instance_diagnostics
//   1.1 build_and_run_instance and rebuild_instance carry the admin password and injected files
//       (never stored); get_console
//   1.2 snapshot_instance (createImage)
//   1.3 backup_instance (createBackup: a snapshot, then the rotation of that type's backups);
//       shelve_offload_instance (shelveOffload of a shelved server still on its host)
import { call, cast, topicApi } from '../../common/rpc/typed.ts';
import type { ConsoleEndpoint, ConsoleKind, InjectedFile, InstanceDiagnostics } from '../virt/driver.ts';

/** What travels with a build over RPC only, never stored (Nova's admin_password, injected_files). */
export interface BuildSecrets { admin_password?: string | null; injected_files?: InjectedFile[] }

type I = { instance_uuid: string };

export const computeApi = topicApi('compute', '1.3', {
  build_and_run_instance: cast<I & { node: string } & BuildSecrets>('1.1'),
  terminate_instance: cast<I>('1.0'),
  stop_instance: cast<I>('1.0'),
  start_instance: cast<I>('1.0'),
  reboot_instance: cast<I & { reboot_type: 'SOFT' | 'HARD' }>('1.0'),
  pause_instance: cast<I>('1.0'),
  unpause_instance: cast<I>('1.0'),
  suspend_instance: cast<I>('1.0'),
  resume_instance: cast<I>('1.0'),
  set_admin_password: cast<I & { new_pass: string }>('1.0'),
  rebuild_instance: cast<I & { image_ref: string; orig_vm_state: string } & BuildSecrets>('1.1'),
  shelve_instance: cast<I>('1.0'),
  shelve_offload_instance: cast<I>('1.3'),
  unshelve_instance: cast<I>('1.0'),
  rescue_instance: cast<I & { rescue_image_ref: string | null; rescue_password: string | null }>('1.0'),
  unrescue_instance: cast<I>('1.0'),
  snapshot_instance: cast<I & { image_id: string }>('1.2'),
  backup_instance: cast<I & { image_id: string; backup_type: string; rotation: number }>('1.3'),
  get_console_output: call<I, string>('1.0'),
  get_console: call<I & { kind: ConsoleKind }, ConsoleEndpoint>('1.1'),
  get_diagnostics: call<I, Record<string, number>>('1.0'),
  get_instance_diagnostics: call<I, InstanceDiagnostics>('1.0'),
});

export type ComputeMethods = typeof computeApi.methods;
