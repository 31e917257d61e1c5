// The hypervisor boundary (Nova's virt/driver.py), narrowed to what Stratus uses. Every method
// may throw; the compute manager turns a spawn failure into a reschedule and other failures
// into an instance fault plus ERROR (or the previous state for power operations).
export interface GuestSpec {
  uuid: string;
  name: string; // hypervisor-side name (instance-0000000a)
  vcpus: number;
  memoryMb: number;
  rootGb: number;
  imageId: string | null;
  imageProps: Record<string, string>;
  userData: string | null;
  keyData: string | null;
  hostname: string | null;
  /** The instance's config_drive flag (diagnostics report it). */
  configDrive?: boolean;
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

export interface ComputeDriver {
  readonly type: string;
  /** Called once at agent start with the instances the database places here. */
  initHost(known: { uuid: string; vmState: string }[]): Promise<void>;
  hostResources(): HostResources;
  spawn(g: GuestSpec): Promise<void>;
  destroy(uuid: string): Promise<void>;
  powerOff(uuid: string): Promise<void>;
  powerOn(uuid: string): Promise<void>;
  reboot(uuid: string, hard: boolean): Promise<void>;
  pause(uuid: string): Promise<void>;
  unpause(uuid: string): Promise<void>;
  suspend(uuid: string): Promise<void>;
  resume(uuid: string): Promise<void>;
  rebuild(g: GuestSpec): Promise<void>;
  setAdminPassword(uuid: string, password: string): Promise<void>;
  /** Boots the guest from a rescue image (its own disk attached second), powered on. */
  rescue(g: GuestSpec, rescue: { imageId: string | null; password: string | null }): Promise<void>;
  /** Back to the guest's own disk, powered on. */
  unrescue(uuid: string): Promise<void>;
  consoleOutput(uuid: string): Promise<string>;
  /** Diagnostics before 2.48: the hypervisor's free-form dictionary (Nova's get_diagnostics). */
  diagnostics(g: GuestSpec): Promise<Record<string, number>>;
  /** Diagnostics from 2.48 (Nova's get_instance_diagnostics). */
  instanceDiagnostics(g: GuestSpec): Promise<InstanceDiagnostics>;
  info(uuid: string): GuestInfo | undefined;
  listGuests(): string[];
}
