// The fake driver: behaves like a hypervisor from the outside (power states, resources,
// console output, configurable spawn time) without running anything. Guests live in memory;
// at start the agent hands over the instances the database places on this host and they are
// adopted as if they had kept running, as real guests do across an agent restart.
import { POWER } from '../objects.ts';
import type { ComputeDriver, GuestSpec, HostResources, GuestInfo } from './driver.ts';

export interface FakeOptions {
  hostname: string;
  vcpus: number;
  memoryMb: number;
  localGb: number;
  spawnDelayMs: number;
  hypervisorType: string;
  architecture: string;
}

interface Guest { spec?: GuestSpec; power: number; console: string[] }

export class FakeDriver implements ComputeDriver {
  readonly type = 'fake';
  private guests = new Map<string, Guest>();
  /** Test hook: makes the next spawns fail (as a hypervisor error would). */
  failSpawns = 0;
  constructor(private readonly o: FakeOptions) {}

  async initHost(known: { uuid: string; vmState: string }[]): Promise<void> {
    for (const k of known) {
      if (this.guests.has(k.uuid)) continue;
      const power = k.vmState === 'active' ? POWER.RUNNING : k.vmState === 'paused' ? POWER.PAUSED : k.vmState === 'suspended' ? POWER.SUSPENDED : POWER.SHUTDOWN;
      if (k.vmState !== 'building') this.guests.set(k.uuid, { power, console: ['FAKE CONSOLE OUTPUT', 'ANOTHER', 'LAST LINE'] });
    }
  }

  hostResources(): HostResources {
    return {
      vcpus: this.o.vcpus, memoryMb: this.o.memoryMb, localGb: this.o.localGb, hypervisorType: this.o.hypervisorType,
      hypervisorVersion: 1000, hypervisorHostname: this.o.hostname,
      cpuInfo: { arch: this.o.architecture, model: 'Nehalem', vendor: 'Intel', features: ['pge', 'clflush'], topology: { cores: 1, threads: 1, sockets: 4 } },
      supportedInstances: [[this.o.architecture, this.o.hypervisorType, 'hvm']],
    };
  }

  private get(uuid: string): Guest {
    const g = this.guests.get(uuid);
    if (!g) throw new Error(`Instance ${uuid} not found on hypervisor ${this.o.hostname}`);
    return g;
  }

  async spawn(spec: GuestSpec): Promise<void> {
    if (this.o.spawnDelayMs) await new Promise((r) => setTimeout(r, this.o.spawnDelayMs));
    if (this.failSpawns > 0) { this.failSpawns--; throw new Error('Fake driver: injected spawn failure'); }
    this.guests.set(spec.uuid, { spec, power: POWER.RUNNING, console: ['FAKE CONSOLE OUTPUT', 'ANOTHER', 'LAST LINE'] });
  }
  async destroy(uuid: string): Promise<void> { this.guests.delete(uuid); }
  async powerOff(uuid: string): Promise<void> { this.get(uuid).power = POWER.SHUTDOWN; }
  async powerOn(uuid: string): Promise<void> { this.get(uuid).power = POWER.RUNNING; }
  async reboot(uuid: string, _hard: boolean): Promise<void> {
    const g = this.get(uuid);
    g.power = POWER.RUNNING;
    g.console.push('reboot: Restarting system');
  }
  async pause(uuid: string): Promise<void> { this.get(uuid).power = POWER.PAUSED; }
  async unpause(uuid: string): Promise<void> { this.get(uuid).power = POWER.RUNNING; }
  async suspend(uuid: string): Promise<void> { this.get(uuid).power = POWER.SUSPENDED; }
  async resume(uuid: string): Promise<void> { this.get(uuid).power = POWER.RUNNING; }
  async rebuild(spec: GuestSpec): Promise<void> {
    if (this.o.spawnDelayMs) await new Promise((r) => setTimeout(r, this.o.spawnDelayMs));
    this.guests.set(spec.uuid, { spec, power: POWER.RUNNING, console: ['FAKE CONSOLE OUTPUT', 'ANOTHER', 'LAST LINE'] });
  }
  async setAdminPassword(uuid: string, _password: string): Promise<void> { this.get(uuid); }
  async consoleOutput(uuid: string): Promise<string> { return this.get(uuid).console.join('\n') + '\n'; }
  info(uuid: string): GuestInfo | undefined {
    const g = this.guests.get(uuid);
    return g ? { powerState: g.power } : undefined;
  }
  listGuests(): string[] { return [...this.guests.keys()]; }
}
