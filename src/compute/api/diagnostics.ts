// servers/{id}/diagnostics. Being built; the table is empty until then.
import type { Route } from './router.ts';

export const diagnosticsRoutes: Route[] = [];
