// Placement's default policy: every operation needs the admin or the service role, as upstream
// Placement's defaults. A policy.yaml ([oslo_policy] policy_file) may override any rule.
export const BASE_RULES: Record<string, string> = {
  admin_api: 'role:admin',
  service_api: 'role:service',
  admin_or_service_api: 'role:admin or role:service',
};

const OPERATIONS = [
  'placement:resource_providers:list', 'placement:resource_providers:create', 'placement:resource_providers:show',
  'placement:resource_providers:update', 'placement:resource_providers:delete',
  'placement:resource_providers:inventories:list', 'placement:resource_providers:inventories:create',
  'placement:resource_providers:inventories:show', 'placement:resource_providers:inventories:update',
  'placement:resource_providers:inventories:delete',
  'placement:resource_providers:aggregates:list', 'placement:resource_providers:aggregates:update',
  'placement:resource_providers:usages', 'placement:usages',
  'placement:resource_providers:traits:list', 'placement:resource_providers:traits:update',
  'placement:resource_providers:traits:delete',
  'placement:traits:list', 'placement:traits:show', 'placement:traits:update', 'placement:traits:delete',
  'placement:resource_classes:list', 'placement:resource_classes:create', 'placement:resource_classes:show',
  'placement:resource_classes:update', 'placement:resource_classes:delete',
  'placement:allocations:list', 'placement:allocations:manage', 'placement:allocations:update',
  'placement:allocations:delete', 'placement:resource_providers:allocations:list',
  'placement:allocation_candidates:list', 'placement:reshaper:reshape',
] as const;

export type PlacementRule = (typeof OPERATIONS)[number];

export const DEFAULT_POLICY: Record<string, string> = {
  ...BASE_RULES,
  ...Object.fromEntries(OPERATIONS.map((op) => [op, 'rule:admin_or_service_api'])),
};
