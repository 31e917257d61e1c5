// os-hosts, os-simple-tenant-usage, os-instance_usage_audit_log, os-migrations, os-server-external-events. Being built; the table is empty until then.
import type { Route } from './router.ts';

export const reportRoutes: Route[] = [];
