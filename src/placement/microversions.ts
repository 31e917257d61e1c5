// Placement's microversions, declared once, each with the change it brought. Handlers and query
// parsers state the version they need (`since: '1.10'`, `v.atLeast(MV.forbiddenTraits)`) rather
// than scattering version literals.
import { Version } from '../common/http/microversion.ts';

export const VERSIONS: readonly [string, string][] = [
  ['1.0', 'Initial version: providers, inventories, usages, allocations'],
  ['1.1', 'GET/PUT /resource_providers/{uuid}/aggregates'],
  ['1.2', '/resource_classes with custom classes'],
  ['1.3', 'member_of filter on GET /resource_providers'],
  ['1.4', 'resources filter on GET /resource_providers'],
  ['1.5', 'DELETE /resource_providers/{uuid}/inventories'],
  ['1.6', '/traits and /resource_providers/{uuid}/traits'],
  ['1.7', 'PUT /resource_classes/{name} is a bodiless create-or-verify'],
  ['1.8', 'project_id and user_id required in PUT /allocations/{consumer}'],
  ['1.9', 'GET /usages per project (and user)'],
  ['1.10', 'GET /allocation_candidates'],
  ['1.11', "'allocations' link in provider representations"],
  ['1.12', 'allocations as a dict by provider (PUT body, GET, candidates) plus project/user in GET'],
  ['1.13', 'POST /allocations for several consumers'],
  ['1.14', 'nested providers: parent/root provider uuid, in_tree filter'],
  ['1.15', 'Last-Modified and Cache-Control headers'],
  ['1.16', 'limit on GET /allocation_candidates'],
  ['1.17', 'required traits on GET /allocation_candidates, traits in provider summaries'],
  ['1.18', 'required traits on GET /resource_providers'],
  ['1.19', 'generation in provider aggregates GET/PUT, conflict detection'],
  ['1.20', 'POST /resource_providers answers 200 with the provider'],
  ['1.21', 'member_of on GET /allocation_candidates'],
  ['1.22', 'forbidden traits (!TRAIT)'],
  ['1.23', 'code in error responses'],
  ['1.24', 'repeated member_of parameters (AND of ORs)'],
  ['1.25', 'granular request groups (resourcesN, requiredN, member_ofN, group_policy)'],
  ['1.26', 'reserved may equal total'],
  ['1.27', 'provider summaries list every inventoried class'],
  ['1.28', 'consumer generations'],
  ['1.29', 'nested providers in allocation candidates; parent/root in provider summaries'],
  ['1.30', 'POST /reshaper'],
  ['1.31', 'in_tree and in_treeN on GET /allocation_candidates'],
  ['1.32', 'forbidden aggregates (member_of=!...)'],
  ['1.33', 'string suffixes for request groups'],
  ['1.34', 'mappings in allocation requests'],
  ['1.35', 'root_required on GET /allocation_candidates'],
  ['1.36', 'same_subtree and resourceless request groups'],
  ['1.37', 're-parenting and un-parenting providers'],
  ['1.38', 'consumer_type on allocations and /usages'],
  ['1.39', 'required=in:T1,T2 (any-of traits) and repeated required'],
];

export const MIN_VERSION = VERSIONS[0][0];
export const MAX_VERSION = VERSIONS[VERSIONS.length - 1][0];

/** Named thresholds used by the handlers. */
export const MV = {
  aggregates: '1.1',
  resourceClasses: '1.2',
  memberOfList: '1.3',
  resourcesFilter: '1.4',
  deleteAllInventories: '1.5',
  traits: '1.6',
  rcPutCreates: '1.7',
  allocationProjectUser: '1.8',
  usages: '1.9',
  candidates: '1.10',
  allocationsLink: '1.11',
  allocationsDict: '1.12',
  postAllocations: '1.13',
  nested: '1.14',
  lastModified: '1.15',
  candidatesLimit: '1.16',
  candidatesRequired: '1.17',
  listRequired: '1.18',
  aggregateGeneration: '1.19',
  createReturnsBody: '1.20',
  candidatesMemberOf: '1.21',
  forbiddenTraits: '1.22',
  errorCodes: '1.23',
  multiMemberOf: '1.24',
  granular: '1.25',
  reservedEqualsTotal: '1.26',
  allResourcesInSummaries: '1.27',
  consumerGeneration: '1.28',
  nestedCandidates: '1.29',
  reshaper: '1.30',
  candidatesInTree: '1.31',
  forbiddenAggregates: '1.32',
  stringSuffixes: '1.33',
  mappings: '1.34',
  rootRequired: '1.35',
  sameSubtree: '1.36',
  reparenting: '1.37',
  consumerTypes: '1.38',
  anyTraits: '1.39',
} as const;

for (const v of Object.values(MV)) {
  if (!VERSIONS.some(([x]) => x === v)) throw new Error(`microversion ${v} is not declared`);
}

export { Version };
