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
  consoleOutput(uuid: string): Promise<string>;
  info(uuid: string): GuestInfo | undefined;
  listGuests(): string[];
}
