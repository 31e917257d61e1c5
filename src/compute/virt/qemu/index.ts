// `[DEFAULT] compute_driver = qemu`: the QEMU driver, made from the agent's dependencies
// (registered in ../drivers.ts, which imports this module only when an agent runs it).
import type { DriverDeps } from '../registry.ts';
import type { ImageSpec } from '../driver.ts';
import { QemuDriver } from './driver.ts';

export function createQemuDriver(deps: DriverDeps): QemuDriver {
  return new QemuDriver({
    config: deps.config, logger: deps.logger, hostname: deps.host, instancesPath: deps.instancesPath,
    images: {
      open: (id) => deps.downloadImage(id),
      meta: async (id): Promise<ImageSpec> => {
        if (!deps.imageMeta) throw new Error(`No image metadata source to fetch image ${id} with`);
        return deps.imageMeta(id);
      },
    },
  });
}

