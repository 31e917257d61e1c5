// The placement resources one instance of a flavor claims: VCPU, MEMORY_MB, DISK_GB (root +
// ephemeral + swap rounded up to GiB), with `resources:<CLASS>=N` extra specs and image
// properties overriding (0 removes a class). Used by the scheduler to ask and by the audit to check.
export interface FlavorLike { vcpus: number; memory_mb: number; root_gb: number; ephemeral_gb: number; swap?: number; extra_specs?: Record<string, string> }

export function flavorResources(flavor: FlavorLike, imageProperties: Record<string, unknown> = {}): Record<string, number> {
  const resources: Record<string, number> = { VCPU: flavor.vcpus, MEMORY_MB: flavor.memory_mb };
  const disk = flavor.root_gb + flavor.ephemeral_gb + Math.ceil((flavor.swap ?? 0) / 1024);
  if (disk > 0) resources.DISK_GB = disk;
  for (const [k, v] of Object.entries({ ...imageProperties, ...(flavor.extra_specs ?? {}) })) {
    const rm = /^resources:([A-Z0-9_]+)$/.exec(k);
    if (!rm) continue;
    const n = Number(v);
    if (n === 0) delete resources[rm[1]]; else if (n > 0) resources[rm[1]] = n;
  }
  return resources;
}
