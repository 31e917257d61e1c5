// The compute API's route table: every resource module contributes its routes.
import type { ComputeRow } from './rows.ts';
import { flavorRoutes } from './flavors.ts';
import { keypairRoutes } from './keypairs.ts';
import { serverRoutes } from './servers.ts';
import { actionRoutes } from './server-actions.ts';
import { serverSubRoutes } from './server-sub.ts';
import { adminRoutes } from './admin.ts';
import { imageRoutes } from './images.ts';
import { aggregateRoutes } from './aggregates.ts';
import { reportRoutes } from './admin-reports.ts';
import { diagnosticsRoutes } from './diagnostics.ts';
import { consoleRoutes } from '../console/api.ts';
import { serverMigrationRoutes } from './server-migrations.ts';

export const ROUTES: ComputeRow[] = [...flavorRoutes, ...keypairRoutes, ...serverRoutes, ...actionRoutes, ...serverSubRoutes, ...adminRoutes, ...imageRoutes,
  ...aggregateRoutes, ...reportRoutes, ...diagnosticsRoutes, ...consoleRoutes, ...serverMigrationRoutes];
