// Placement's route table: every path, method, handler, policy rule, microversion range and the
// error statuses each handler may answer beyond the kit's own (409: generation and capacity
// conflicts, duplicate names, in-use resources), in one place (as upstream's ROUTE_DECLARATIONS),
// in the route kit's row format (common/http/route-kit.ts). Paths use fastify's :param syntax.
import type { RouteDef } from './router.ts';
import { MV } from '../microversions.ts';
import { versionDocument } from './root.ts';
import * as providers from './resource-providers.ts';
import * as inventories from './inventories.ts';
import * as usages from './usages.ts';
import * as aggregates from './aggregates.ts';
import * as allocations from './allocations.ts';
import * as candidates from './allocation-candidates.ts';
import * as traits from './traits.ts';
import * as resourceClasses from './resource-classes.ts';
import * as reshaper from './reshaper.ts';
import { candidatesResponse, providerListResponse, providerResponse, versionDocumentResponse } from './responses.ts';

const RP = '/resource_providers/:uuid';

export const ROUTES: RouteDef[] = [
  { method: 'GET', path: '/', handler: versionDocument, errors: [], response: { 200: versionDocumentResponse } },

  { method: 'GET', path: '/resource_classes', handler: resourceClasses.list, policy: 'placement:resource_classes:list', since: MV.resourceClasses, errors: [] },
  { method: 'POST', path: '/resource_classes', handler: resourceClasses.create, policy: 'placement:resource_classes:create', since: MV.resourceClasses, json: true, errors: [409] },
  { method: 'GET', path: '/resource_classes/:name', handler: resourceClasses.show, policy: 'placement:resource_classes:show', since: MV.resourceClasses, errors: [] },
  { method: 'PUT', path: '/resource_classes/:name', handler: resourceClasses.rename, policy: 'placement:resource_classes:update', since: MV.resourceClasses, until: '1.6', json: true, errors: [409] },
  { method: 'PUT', path: '/resource_classes/:name', handler: resourceClasses.ensure, policy: 'placement:resource_classes:update', since: MV.rcPutCreates, errors: [409] },
  { method: 'DELETE', path: '/resource_classes/:name', handler: resourceClasses.remove, policy: 'placement:resource_classes:delete', since: MV.resourceClasses, errors: [409] },

  { method: 'GET', path: '/resource_providers', handler: providers.list, policy: 'placement:resource_providers:list', errors: [], response: { 200: providerListResponse } },
  { method: 'POST', path: '/resource_providers', handler: providers.create, policy: 'placement:resource_providers:create', json: true, errors: [409] },
  { method: 'GET', path: RP, handler: providers.show, policy: 'placement:resource_providers:show', errors: [], response: { 200: providerResponse } },
  { method: 'PUT', path: RP, handler: providers.update, policy: 'placement:resource_providers:update', json: true, errors: [409] },
  { method: 'DELETE', path: RP, handler: providers.remove, policy: 'placement:resource_providers:delete', errors: [409] },

  { method: 'GET', path: `${RP}/inventories`, handler: inventories.list, policy: 'placement:resource_providers:inventories:list', errors: [] },
  { method: 'POST', path: `${RP}/inventories`, handler: inventories.create, policy: 'placement:resource_providers:inventories:create', json: true, errors: [409] },
  { method: 'PUT', path: `${RP}/inventories`, handler: inventories.replaceAll, policy: 'placement:resource_providers:inventories:update', json: true, errors: [409] },
  { method: 'DELETE', path: `${RP}/inventories`, handler: inventories.removeAll, policy: 'placement:resource_providers:inventories:delete', since: MV.deleteAllInventories, outOfRange: 405, errors: [409] },
  { method: 'GET', path: `${RP}/inventories/:resource_class`, handler: inventories.show, policy: 'placement:resource_providers:inventories:show', errors: [] },
  { method: 'PUT', path: `${RP}/inventories/:resource_class`, handler: inventories.update, policy: 'placement:resource_providers:inventories:update', json: true, errors: [409] },
  { method: 'DELETE', path: `${RP}/inventories/:resource_class`, handler: inventories.remove, policy: 'placement:resource_providers:inventories:delete', errors: [409] },

  { method: 'GET', path: `${RP}/usages`, handler: usages.forProvider, policy: 'placement:resource_providers:usages', errors: [] },
  { method: 'GET', path: `${RP}/aggregates`, handler: aggregates.get, policy: 'placement:resource_providers:aggregates:list', since: MV.aggregates, errors: [] },
  { method: 'PUT', path: `${RP}/aggregates`, handler: aggregates.put, policy: 'placement:resource_providers:aggregates:update', since: MV.aggregates, json: true, errors: [409] },
  { method: 'GET', path: `${RP}/allocations`, handler: allocations.forProvider, policy: 'placement:resource_providers:allocations:list', errors: [] },
  { method: 'GET', path: `${RP}/traits`, handler: traits.listForProvider, policy: 'placement:resource_providers:traits:list', since: MV.traits, errors: [] },
  { method: 'PUT', path: `${RP}/traits`, handler: traits.setForProvider, policy: 'placement:resource_providers:traits:update', since: MV.traits, json: true, errors: [409] },
  { method: 'DELETE', path: `${RP}/traits`, handler: traits.removeForProvider, policy: 'placement:resource_providers:traits:delete', since: MV.traits, errors: [409] },

  { method: 'POST', path: '/allocations', handler: allocations.post, policy: 'placement:allocations:manage', since: MV.postAllocations, json: true, errors: [409] },
  { method: 'GET', path: '/allocations/:consumer_uuid', handler: allocations.get, policy: 'placement:allocations:list', errors: [] },
  { method: 'PUT', path: '/allocations/:consumer_uuid', handler: allocations.put, policy: 'placement:allocations:update', json: true, errors: [409] },
  { method: 'DELETE', path: '/allocations/:consumer_uuid', handler: allocations.remove, policy: 'placement:allocations:delete', errors: [409] },

  { method: 'GET', path: '/allocation_candidates', handler: candidates.list, policy: 'placement:allocation_candidates:list', since: MV.candidates, errors: [], response: { 200: candidatesResponse } },

  { method: 'GET', path: '/traits', handler: traits.list, policy: 'placement:traits:list', since: MV.traits, errors: [] },
  { method: 'GET', path: '/traits/:name', handler: traits.show, policy: 'placement:traits:show', since: MV.traits, errors: [] },
  { method: 'PUT', path: '/traits/:name', handler: traits.put, policy: 'placement:traits:update', since: MV.traits, errors: [409] },
  { method: 'DELETE', path: '/traits/:name', handler: traits.remove, policy: 'placement:traits:delete', since: MV.traits, errors: [409] },

  { method: 'GET', path: '/usages', handler: usages.total, policy: 'placement:usages', since: MV.usages, errors: [] },
  { method: 'POST', path: '/reshaper', handler: reshaper.post, policy: 'placement:reshaper:reshape', since: MV.reshaper, json: true, errors: [409] },
];
