// Topic `compute.<host>` (Nova's compute rpcapi): the instance lifecycle on one host, cast by
// the API and the conductor; consoles and diagnostics are calls.
//   1.0 the lifecycle casts, get_console_output, get_diagnostics, get_instance_diagnostics
//   1.1 build_and_run_instance and rebuild_instance carry the admin password and injected files
//       (never stored); get_console
//   1.2 snapshot_instance (createImage)
//   1.3 backup_instance (createBackup: a snapshot, then the rotation of that type's backups);
//       shelve_offload_instance (shelveOffload of a shelved server still on its host)
//   1.4 moves: prep_resize, resize_instance, finish_resize, confirm_resize, revert_resize,
//       finish_revert_resize; check_can_live_migrate_destination, pre_live_migration,
//       live_migration, post_live_migration_at_destination, rollback_live_migration_at_destination,
//       live_migration_force_complete, live_migration_abort; rebuild_instance for an evacuation
//   1.5 check_can_live_migrate_source; pre_live_migration carries its answer (migrate_data: the
//       files the destination takes from the source, e.g. the config drive)
//   1.6 rollback_live_migration_at_source: a live migration that failed or was cancelled before
//       (or without) the source's live_migration revokes the source's offer (its disk channel token);
//       post_live_migration_at_destination carries the console lines printed during the move
import { call, cast, topicApi } from '../../common/rpc/typed.ts';
import type { ConsoleEndpoint, ConsoleKind, InjectedFile, InstanceDiagnostics, LiveMigrationSource, LiveMigrationTarget, MigratedDisks } from '../virt/driver.ts';
import type { EmbeddedFlavor } from '../objects.ts';

/** What travels with a build over RPC only, never stored (Nova's admin_password, injected_files). */
export interface BuildSecrets { admin_password?: string | null; injected_files?: InjectedFile[] }

type I = { instance_uuid: string };
/** A move: the instance and its migration record (by uuid). */
type M = I & { migration_uuid: string };

export const computeApi = topicApi('compute', '1.6', {
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
  /** evacuate (1.4): rebuilt here from the image after its host died; the migration records it. */
  rebuild_instance: cast<I & { image_ref: string; orig_vm_state: string; evacuate?: { migration_uuid: string; source_host: string } } & BuildSecrets>('1.1'),
  shelve_instance: cast<I>('1.0'),
  shelve_offload_instance: cast<I>('1.3'),
  unshelve_instance: cast<I>('1.0'),
  rescue_instance: cast<I & { rescue_image_ref: string | null; rescue_password: string | null }>('1.0'),
  unrescue_instance: cast<I>('1.0'),
  snapshot_instance: cast<I & { image_id: string }>('1.2'),
  backup_instance: cast<I & { image_id: string; backup_type: string; rotation: number }>('1.3'),
  // --- cold moves (resize, migrate): destination prep → source disks off → destination finish
  prep_resize: cast<M & { new_flavor: EmbeddedFlavor }>('1.4'),
  resize_instance: cast<M & { dest_address: string }>('1.4'),
  finish_resize: cast<M & { disks: MigratedDisks }>('1.4'),
  confirm_resize: cast<M>('1.4'),
  revert_resize: cast<M>('1.4'),
  finish_revert_resize: cast<M & { failed?: string }>('1.4'),
  // --- live migration: destination checks and prepares, the source moves, the destination adopts
  check_can_live_migrate_destination: call<M & { block_migration: boolean | null }, { block_migration: boolean; address: string }>('1.4'),
  check_can_live_migrate_source: call<M & { dest: string; dest_address: string }, LiveMigrationSource>('1.5'),
  pre_live_migration: call<M & { block_migration: boolean; source_address: string; migrate_data?: LiveMigrationSource }, LiveMigrationTarget>('1.5'),
  live_migration: cast<M & { dest: string; dest_address: string; target: LiveMigrationTarget; block_migration: boolean }>('1.4'),
  post_live_migration_at_destination: call<M & { source: string; /** base64 */ console_tail?: string }, void>('1.6'),
  rollback_live_migration_at_destination: cast<M>('1.4'),
  rollback_live_migration_at_source: cast<M & { migrate_data?: LiveMigrationSource }>('1.6'),
  live_migration_force_complete: cast<M>('1.4'),
  live_migration_abort: cast<M>('1.4'),
  get_console_output: call<I, string>('1.0'),
  get_console: call<I & { kind: ConsoleKind }, ConsoleEndpoint>('1.1'),
  get_diagnostics: call<I, Record<string, number>>('1.0'),
  get_instance_diagnostics: call<I, InstanceDiagnostics>('1.0'),
});

export type ComputeMethods = typeof computeApi.methods;
