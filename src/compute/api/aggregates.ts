// os-aggregates (host aggregates and their placement/AZ sync). Being built; the table is empty until then.
import type { Route } from './router.ts';

export const aggregateRoutes: Route[] = [];
