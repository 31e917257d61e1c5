// The virt driver registry: `[DEFAULT] compute_driver` names a driver, a factory registered here
// makes it. workers.ts gets its drivers only from here (through ./drivers.ts, which registers
// the built-in ones).
import type { Readable } from 'node:stream';
import type { Config } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import { BadRequest } from '../../common/errors.ts';
import type { ComputeDriver, ImageSpec } from './driver.ts';

/** What a driver factory is given: enough for a real hypervisor driver. */
export interface DriverDeps {
  config: Config;
  logger: Logger;
  /** The compute host this driver serves (one process may present several fake hosts). */
  host: string;
  /** Streams an image's data from the image service with the agent's service token. */
  downloadImage(imageId: string): Promise<Readable>;
  /** An image's metadata (kernel, ramdisk and rescue images the spec does not carry), with the service token. */
  imageMeta?(imageId: string): Promise<ImageSpec>;
  /** Where per-instance files live (`[DEFAULT] instances_path`, default `$state_path/instances`). */
  instancesPath: string;
}

export type DriverFactory = (deps: DriverDeps) => ComputeDriver | Promise<ComputeDriver>;

const factories = new Map<string, DriverFactory>();

export function registerDriver(name: string, factory: DriverFactory): void {
  factories.set(name, factory);
}

export function registeredDrivers(): string[] {
  return [...factories.keys()].sort();
}

export async function createDriver(name: string, deps: DriverDeps): Promise<ComputeDriver> {
  // Nova's spelling (fake.FakeDriver, libvirt.LibvirtDriver) names the same drivers.
  const key = factories.has(name) ? name : name.split('.')[0].toLowerCase();
  const f = factories.get(key);
  if (!f) throw new BadRequest(`[DEFAULT] compute_driver = ${name}: unknown driver (available: ${registeredDrivers().join(', ') || 'none'})`);
  return f(deps);
}
