// The hypervisor boundary (Nova's virt/driver.py), narrowed to what Stratus uses.
//
// Driver contract v2 (what every driver may assume and must guarantee):
// - Every method receives what it needs: a GuestSpec carries the whole instance (flavor, image
//   metadata, user data, keys, admin password, network, config drive inputs), so a driver keeps
//   no memory it cannot rebuild from a spec (a stopped QEMU guest is startable from it alone).
// - Errors are the typed ones of virt/errors.ts: InstanceNotFound (destroy of a missing guest
//   succeeds instead), NotSupported (Nova's 501 at the API), InvalidState; spawn cleans up
//   after itself when it fails. The compute manager turns a spawn failure into a reschedule and
//   other failures into an instance fault plus ERROR (or the previous state for power actions).
// - Methods that may have to (re)start a guest from nothing (powerOn, hard reboot, resume,
//   unrescue, rebuild, rescue) take the GuestSpec; methods on a guest the driver runs take its uuid.
// - info() of a guest the driver does not have throws InstanceNotFound; so do all the methods
//   taking a uuid (except destroy). hostResources() and info() are async (a real driver asks
//   the host / QMP).
// - capabilities() names os-traits (COMPUTE_*) the driver truly supports; the agent adds them to
//   its compute node's resource provider and removes the capability traits it does not claim.
// - onLifecycleEvent: the driver calls back when a guest changes state on its own (the guest
//   shut itself down, QEMU died); the agent syncs the instance (an ACTIVE guest that stopped
//   becomes SHUTOFF).
// The optional (?) members are the ones a driver may lack: the agent answers NotSupported (Nova's
// 501) for them.

/** The flavor as a hypervisor needs it (Nova's instance.flavor). */
export interface FlavorSpec {
  id: string; name: string; vcpus: number; memoryMb: number; rootGb: number; ephemeralGb: number;
  /** Swap in MiB (Nova's flavor.swap). */
  swapMb: number;
  extraSpecs: Record<string, string>;
}

/** The image as the image service describes it (Nova's ImageMeta), enough to fetch, verify and boot it. */
export interface ImageSpec {
  id: string; name: string | null; diskFormat: string | null; containerFormat: string | null;
  /** md5 hex, Glance's `checksum`. */
  checksum: string | null; osHashAlgo: string | null; osHashValue: string | null;
  size: number | null; virtualSize: number | null; minDisk: number; minRam: number;
  /** Glance's extra properties (hw_*, img_*, os_*, kernel_id, ramdisk_id, architecture …), as strings. */
  properties: Record<string, string>;
}

/** One virtual NIC (Nova's network_info VIF, reduced to what has no network service behind it). */
export interface VifSpec {
  id: string; mac: string;
  /** The address the guest is given (user-mode networking's DHCP lease), or null. */
  address: string | null;
  networkName: string; model?: string;
}

/** A file to inject (Nova's injected_files; content base64 as the API received it). */
export interface InjectedFile { path: string; contents: string }

export interface GuestSpec {
  uuid: string;
  name: string; // hypervisor-side name (instance-0000000a)
  vcpus: number;
  memoryMb: number;
  rootGb: number;
  imageId: string | null;
  /** Same as image.properties; kept while callers move to `image`. */
  imageProps: Record<string, string>;
  /** Base64 as the API received it (Nova stores user_data base64). */
  userData: string | null;
  keyData: string | null;
  hostname: string | null;
  /** The instance's config_drive flag (diagnostics report it). */
  configDrive?: boolean;
  // ---- contract v2 additions
  displayName?: string | null;
  projectId?: string;
  userId?: string;
  flavor?: FlavorSpec;
  image?: ImageSpec | null;
  /** Instance metadata (server metadata key/values). */
  metadata?: Record<string, string>;
  keyName?: string | null;
  /** Passed over RPC only (never stored in plain text); null when none was set. */
  adminPassword?: string | null;
  injectedFiles?: InjectedFile[];
  availabilityZone?: string | null;
  launchIndex?: number;
  reservationId?: string;
  /** `none`: no NIC; `auto`: one user-mode NIC (see VifSpec). */
  network?: { mode: 'none' | 'auto'; vifs: VifSpec[] };
  createdAt?: string;
}

/** What a console client needs to reach a guest's console on this host. */
export type ConsoleKind = 'serial' | 'vnc' | 'spice';
export interface ConsoleEndpoint {
  kind: ConsoleKind;
  /** host + port (TCP) or path (unix socket) on the compute host. */
  host?: string; port?: number; path?: string;
  /** QEMU's own websocket port where it offers one (VNC websocket, serial websocket). */
  websocketPort?: number;
}

/** A guest changed state on its own (QMP event, process exit); the manager syncs the instance. */
export interface LifecycleEvent { uuid: string; event: 'started' | 'stopped' | 'paused' | 'resumed' | 'suspended'; powerState: number }

/** Where a snapshot's bytes go: the agent streams them to the image service. */
export interface SnapshotTarget {
  imageId: string;
  /** Called with the disk's content as a stream in `diskFormat`; resolves when it is stored. */
  upload(data: NodeJS.ReadableStream, diskFormat: string, containerFormat: string): Promise<void>;
}

export interface HostResources {
  vcpus: number;
  memoryMb: number;
  localGb: number;
  hypervisorType: string;
  hypervisorVersion: number;
  hypervisorHostname: string;
  cpuInfo: Record<string, unknown>;
  /** [arch, hypervisor_type, vm_mode] triples the host can run. */
  supportedInstances: [string, string, string][];
}

export interface GuestInfo { powerState: number }

/** Nova's Diagnostics object (the standard format of GET /servers/{id}/diagnostics from 2.48). */
export interface InstanceDiagnostics {
  state: string;
  /** One of Nova's Diagnostics driver values: libvirt, xenapi, vmwareapi, ironic, hyperv. */
  driver: string;
  hypervisor: string | null;
  hypervisor_os: string | null;
  uptime: number | null;
  config_drive: boolean;
  num_cpus: number;
  num_nics: number;
  num_disks: number;
  cpu_details: { id: number | null; time: number | null; utilisation: number | null }[];
  nic_details: {
    mac_address: string | null; rx_octets: number | null; rx_errors: number | null; rx_drop: number | null; rx_packets: number | null; rx_rate: number | null;
    tx_octets: number | null; tx_errors: number | null; tx_drop: number | null; tx_packets: number | null; tx_rate: number | null;
  }[];
  disk_details: { read_bytes: number | null; read_requests: number | null; write_bytes: number | null; write_requests: number | null; errors_count: number | null }[];
  memory_details: { maximum: number | null; used: number | null };
}

/** Where a guest goes: the destination compute host as the source sees it. */
export interface MoveTarget { host: string; /** the destination's [DEFAULT] my_ip */ address: string }

/**
 * What the source hands to the destination for a cold move (resize / migrate): opaque to the
 * manager, carried over RPC. For qemu: where and how to fetch the disks (URL on the source's
 * agent-to-agent channel + a per-migration token); for fake: {}.
 */
export type MigratedDisks = Record<string, unknown>;

/** What the destination prepares for a live migration (qemu: the -incoming URI it listens on). */
export type LiveMigrationTarget = Record<string, unknown>;

/**
 * What the source hands the destination before a live migration (Nova's migrate_data from
 * check_can_live_migrate_source): for qemu, where to fetch the files that must be the source's
 * own bytes (the config drive, the console log so far); for fake: {}.
 */
export type LiveMigrationSource = Record<string, unknown>;

export interface LiveMigrationProgress { totalBytes: number; processedBytes: number; remainingBytes: number }
export interface LiveMigrationOptions {
  /** Copy the disks too (no shared storage; Stratus never has shared storage today). */
  block: boolean;
  /** preLiveMigration: what the source's checkCanLiveMigrateSource answered. */
  source?: LiveMigrationSource;
  onProgress?(p: LiveMigrationProgress): void;
}
export interface LiveMigrationResult {
  totalTimeMs: number; downtimeMs: number | null;
  /** What the guest printed on its console since checkCanLiveMigrateSource's copy (the destination appends it before the guest runs there). */
  consoleTail?: Buffer;
}

export interface ComputeDriver {
  readonly type: string;
  /** Called once at agent start with the instances the database places here. */
  initHost(known: { uuid: string; vmState: string }[]): Promise<void>;
  hostResources(): Promise<HostResources>;
  spawn(g: GuestSpec): Promise<void>;
  destroy(uuid: string): Promise<void>;
  powerOff(uuid: string): Promise<void>;
  /** Starts a stopped guest from its spec alone (the driver may have been restarted since). */
  powerOn(g: GuestSpec): Promise<void>;
  /** Soft: the guest is asked to restart; hard: the guest is torn down and started from the spec. */
  reboot(g: GuestSpec, hard: boolean): Promise<void>;
  pause(uuid: string): Promise<void>;
  unpause(uuid: string): Promise<void>;
  suspend(uuid: string): Promise<void>;
  resume(g: GuestSpec): Promise<void>;
  rebuild(g: GuestSpec): Promise<void>;
  setAdminPassword(uuid: string, password: string): Promise<void>;
  /** Boots the guest from a rescue image (its own disk attached second), powered on. */
  rescue(g: GuestSpec, rescue: { imageId: string | null; password: string | null }): Promise<void>;
  /** Back to the guest's own disk, powered on. */
  unrescue(g: GuestSpec): Promise<void>;
  consoleOutput(uuid: string): Promise<string>;
  /** Diagnostics before 2.48: the hypervisor's free-form dictionary (Nova's get_diagnostics). */
  diagnostics(g: GuestSpec): Promise<Record<string, number>>;
  /** Diagnostics from 2.48 (Nova's get_instance_diagnostics). */
  instanceDiagnostics(g: GuestSpec): Promise<InstanceDiagnostics>;
  /** The guest's power state; InstanceNotFound when the driver has no such guest. */
  info(uuid: string): Promise<GuestInfo>;
  listGuests(): string[];
  /** Capabilities as os-traits names (COMPUTE_*), reported on the host's resource provider. */
  capabilities(): string[];
  // ---- optional: a driver without one answers NotSupported through the agent
  /** Snapshot of a guest's root disk, streamed to target (Nova's snapshot). */
  snapshot?(g: GuestSpec, target: SnapshotTarget): Promise<void>;
  getConsole?(g: GuestSpec, kind: ConsoleKind): Promise<ConsoleEndpoint>;
  /** Lifecycle events of guests that change state on their own. */
  onLifecycleEvent?(cb: (e: LifecycleEvent) => void): void;
  // ---- moves (Nova: migrate_disk_and_power_off, finish_migration, confirm_migration,
  //      finish_revert_migration; pre_live_migration, live_migration, post_live_migration_at_destination,
  //      rollback_live_migration_at_destination, live_migration_force_complete, live_migration_abort)
  /** Source, cold move: power the guest off and make its disks fetchable by `dest`; keeps them until confirm/revert. */
  migrateDiskAndPowerOff?(g: GuestSpec, dest: MoveTarget, newFlavor: FlavorSpec): Promise<MigratedDisks>;
  /** Destination, cold move: take the disks, grow them to g.flavor (the NEW flavor), start the guest if powerOn. */
  finishMigration?(g: GuestSpec, disks: MigratedDisks, opts: { resize: boolean; powerOn: boolean }): Promise<void>;
  /** Source, after confirm: delete what migrateDiskAndPowerOff kept. Idempotent. */
  confirmMigration?(uuid: string): Promise<void>;
  /** Source, after revert (the destination already destroyed its copy): the kept disks back, g.flavor = OLD flavor, started if powerOn. */
  finishRevertMigration?(g: GuestSpec, opts: { powerOn: boolean }): Promise<void>;
  /** Source, live, before the destination prepares: what the destination must take from here. */
  checkCanLiveMigrateSource?(g: GuestSpec, dest: MoveTarget): Promise<LiveMigrationSource>;
  /** Destination, live: get ready to receive (qemu: start with -incoming, disks created empty for block migration). */
  preLiveMigration?(g: GuestSpec, source: MoveTarget, opts: LiveMigrationOptions): Promise<LiveMigrationTarget>;
  /** Source, live: move the running guest to dest; resolves when the destination runs it (the source copy is gone). */
  liveMigrate?(g: GuestSpec, dest: MoveTarget, target: LiveMigrationTarget, opts: LiveMigrationOptions): Promise<LiveMigrationResult>;
  /** Destination, live, after success: the guest is ours now (adopt it, start watching it). */
  postLiveMigrationAtDestination?(g: GuestSpec, o?: { consoleTail?: Buffer }): Promise<void>;
  /** Destination, live, after failure/abort: remove whatever preLiveMigration made. Idempotent. */
  rollbackLiveMigrationAtDestination?(uuid: string): Promise<void>;
  /**
   * Source, live, after failure/abort: revoke what checkCanLiveMigrateSource offered (qemu: its
   * disk channel token), at once rather than at the offer's TTL. `source` is that answer: an
   * offer made since for another migration of the guest is left alone; without it, whatever the
   * guest has on offer goes. Nothing while this host's liveMigrate runs (it ends its own offer). Idempotent.
   */
  rollbackLiveMigrationAtSource?(uuid: string, source?: LiveMigrationSource): Promise<void>;
  /** Source, live, running: pause the guest so the migration converges (Nova's force_complete). */
  liveMigrationForceComplete?(uuid: string): Promise<void>;
  /** Source, live, running: cancel; the guest keeps running on the source; liveMigrate rejects with MigrationAborted (virt/errors.ts). */
  liveMigrationAbort?(uuid: string): Promise<void>;
  /** Source, at agent start, a live migration of this guest left unfinished by the last agent: stop what the hypervisor still does for it; the guest stays here, running if `running` (the instance is ACTIVE, not PAUSED). */
  cleanupLiveMigration?(uuid: string, o: { running: boolean }): Promise<void>;
  /** Stops background work (QMP connections, timers); guests keep running. */
  cleanupHost?(): Promise<void>;
}
