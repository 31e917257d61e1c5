// Every service this build can run, in start order. `stratus up` mounts the enabled ones in one
// process; `stratus serve <name>` runs one.
import type { ServiceDefinition } from '../common/service.ts';
import { identityService } from '../identity/index.ts';
import { computeService } from '../compute/index.ts';
import { imageService } from '../image/index.ts';
import { placementService } from '../placement/index.ts';
import { ec2Service } from '../ec2/index.ts';
import { dashboardService } from '../dashboard/index.ts';
import { metadataService } from '../compute/metadata/service.ts';

export const allServices: ServiceDefinition[] = [identityService, imageService, placementService, computeService, ec2Service, metadataService, dashboardService];

export function serviceByName(name: string): ServiceDefinition | undefined {
  return allServices.find((s) => s.name === name);
}
