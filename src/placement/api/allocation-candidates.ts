// GET /allocation_candidates (1.10+). Parses request groups from the query string as the
// microversion allows, asks the model, and shapes allocation_requests and provider_summaries
// for the version (list form before 1.12, mappings from 1.34, traits from 1.17, all classes
// from 1.27, tree uuids from 1.29).
import type { Version } from '../../common/http/microversion.ts';
import { MV } from '../microversions.ts';
import { RawJson, type Ctx, type Handler, type Query } from './router.ts';
import { parseInTree, parseMemberOf, parseRequired, parseResources, parseRootRequired } from './query.ts';
import { getCandidates, type CandidatesResult, type RequestGroup, type RequestWide } from '../model/candidates.ts';
import { badRequest, CODES } from '../errors.ts';

const PREFIXES = ['resources', 'required', 'member_of', 'in_tree'] as const;

function keyPattern(v: Version): RegExp {
  const suffix = v.atLeast(MV.stringSuffixes) ? '[a-zA-Z0-9_-]{1,64}' : '[1-9][0-9]*';
  const prefixes = v.atLeast(MV.candidatesInTree) ? PREFIXES.join('|') : 'resources|required|member_of';
  return new RegExp(`^(${prefixes})(${suffix})?$`);
}

/** The query keys each version knows, as upstream's per-version JSON schemas. */
function checkKeys(q: Query, v: Version): void {
  const granular = v.atLeast(MV.granular);
  const pat = keyPattern(v);
  const wide = new Set<string>();
  if (v.atLeast(MV.candidatesLimit)) wide.add('limit');
  if (granular) wide.add('group_policy');
  if (v.atLeast(MV.rootRequired)) wide.add('root_required');
  if (v.atLeast(MV.sameSubtree)) wide.add('same_subtree');
  for (const k of q.keys()) {
    if (wide.has(k)) continue;
    if (granular && pat.test(k)) continue;
    if (!granular && (k === 'resources' || (k === 'required' && v.atLeast(MV.candidatesRequired)) || (k === 'member_of' && v.atLeast(MV.candidatesMemberOf)))) continue;
    throw badRequest(`Invalid query string parameters: Additional properties are not allowed ('${k}' was unexpected)`);
  }
  if (!granular && !q.has('resources')) throw badRequest(`Invalid query string parameters: 'resources' is a required property`);
  for (const limit of q.all('limit')) if (!/^[1-9][0-9]*$/.test(limit)) throw badRequest(`Invalid query string parameters: '${limit}' does not match '^[1-9][0-9]*$'`);
  const limit = q.get('limit');
  if (limit !== undefined && !/^[1-9][0-9]*$/.test(limit)) throw badRequest(`Invalid query string parameters: '${limit}' does not match '^[1-9][0-9]*$'`);
  for (const gp of q.all('group_policy')) if (gp !== 'none' && gp !== 'isolate') throw badRequest(`Invalid query string parameters: '${gp}' is not one of ['none', 'isolate']`);
  const gp = q.get('group_policy');
  if (gp !== undefined && gp !== 'none' && gp !== 'isolate') throw badRequest(`Invalid query string parameters: '${gp}' is not one of ['none', 'isolate']`);
}

export function parseGroups(q: Query, v: Version, sameSubtrees: string[][]): RequestGroup[] {
  const pat = keyPattern(v);
  const bySuffix = new Map<string, RequestGroup>();
  const group = (s: string) => {
    if (!bySuffix.has(s)) bySuffix.set(s, { suffix: s, resources: {}, requiredTraits: [], forbiddenTraits: [], memberOf: [], forbiddenAggs: [] });
    return bySuffix.get(s)!;
  };
  for (const key of q.keys()) {
    const m = pat.exec(key);
    if (!m) continue;
    const [, prefix, suffix = ''] = m;
    const g = group(suffix);
    if (prefix === 'resources') g.resources = parseResources(q.get(key)!);
    else if (prefix === 'required') {
      const t = parseRequired(q, key, v);
      g.requiredTraits = t.required;
      g.forbiddenTraits = t.forbidden;
    } else if (prefix === 'member_of') {
      const mo = parseMemberOf(q, key, v);
      g.memberOf = mo.required;
      g.forbiddenAggs = mo.forbidden;
    } else g.inTree = parseInTree(q.get(key)!, key);
  }
  const groups = [...bySuffix.values()];
  const resourceless = groups.filter((g) => !Object.keys(g.resources).length);
  if (v.atLeast(MV.sameSubtree)) {
    if (resourceless.length === groups.length) {
      throw badRequest('There must be at least one resources or resources[$S] parameter.', CODES.QUERYPARAM_MISSING_VALUE);
    }
    const inSubtree = new Set(sameSubtrees.flat());
    const bad = resourceless.filter((g) => !inSubtree.has(g.suffix)).map((g) => g.suffix);
    if (bad.length) {
      throw badRequest(`Resourceless suffixed group request should be specified in \`same_subtree\` query param: bad group(s) - ${JSON.stringify(bad)}.`, CODES.QUERYPARAM_BAD_VALUE);
    }
    const unknown = [...inSubtree].filter((s) => !bySuffix.has(s));
    if (unknown.length) {
      throw badRequest(`Real suffixes should be specified in \`same_subtree\`: ${JSON.stringify(unknown)} not found in ${JSON.stringify([...bySuffix.keys()])}.`, CODES.QUERYPARAM_BAD_VALUE);
    }
  } else {
    const orphanTraits = groups.filter((g) => g.requiredTraits.length && !Object.keys(g.resources).length).map((g) => `required${g.suffix}`);
    if (orphanTraits.length) throw badRequest(`All traits parameters must be associated with resources.  Found the following orphaned traits keys: ${orphanTraits.join(', ')}`);
    const orphanAggs = groups.filter((g) => (g.memberOf.length || g.forbiddenAggs.length) && !Object.keys(g.resources).length).map((g) => `member_of${g.suffix}`);
    if (orphanAggs.length) throw badRequest(`All member_of parameters must be associated with resources. Found the following orphaned member_of keys: ${orphanAggs.join(', ')}`);
    if (resourceless.length) throw badRequest('All request groups must specify resources.');
    if (!groups.length) throw badRequest('At least one request group (`resources` or `resources{$S}`) is required.');
  }
  if (v.atLeast(MV.forbiddenTraits)) {
    const conflicts: string[] = [];
    for (const g of groups) {
      for (const any of g.requiredTraits) {
        if (any.every((t) => g.forbiddenTraits.includes(t))) conflicts.push(`required${g.suffix}: (${[...any].sort().join(', ')})`);
      }
    }
    if (conflicts.length) throw badRequest(`Conflicting required and forbidden traits found in the following traits keys: ${conflicts.sort().join(', ')}`);
  }
  // Unsuffixed group first, then the others in a stable order.
  return groups.sort((a, b) => (a.suffix === '' ? -1 : b.suffix === '' ? 1 : a.suffix.localeCompare(b.suffix)));
}

export const list: Handler = async (c: Ctx) => {
  const v = c.version;
  const q = c.query;
  checkKeys(q, v);
  const sameSubtrees: string[][] = [];
  for (const val of q.all('same_subtree')) {
    const set = [...new Set(val.split(',').map((s) => s.trim()))];
    if (set.includes('')) throw badRequest('Empty string (unsuffixed group) can not be specified in `same_subtree` ', CODES.QUERYPARAM_BAD_VALUE);
    sameSubtrees.push(set);
  }
  const groups = parseGroups(q, v, sameSubtrees);
  // Repeated limit or group_policy: the first counts, as upstream.
  const groupPolicy = q.all('group_policy')[0] as 'none' | 'isolate' | undefined;
  if (!groupPolicy && groups.filter((g) => g.suffix !== '').length > 1) {
    throw badRequest('The "group_policy" parameter is required when specifying more than one "resources{N}" parameter.');
  }
  const root = q.has('root_required') ? parseRootRequired(q) : { required: [], forbidden: [] };
  const limit = q.all('limit')[0];
  const wide: RequestWide = {
    limit: limit === undefined ? undefined : Number(limit),
    groupPolicy,
    rootRequired: root.required,
    rootForbidden: root.forbidden,
    sameSubtrees,
    nestedAware: v.atLeast(MV.nestedCandidates),
    randomize: c.api.config.randomizeCandidates,
    maxCandidates: c.api.config.maxCandidates,
  };
  const result = await getCandidates(c.api.store, groups, wide);
  return { status: 200, body: shape(result, v, c), lastModified: new Date().toISOString() };
};

function shape(r: CandidatesResult, v: Version, c: Ctx) {
  const rcName = (id: number) => c.api.store.rc.nameSync(id);
  const uuid = (id: number) => r.uuids.get(id)!;
  let requests: unknown[];
  if (v.atLeast(MV.allocationsDict)) {
    requests = r.requests.map((ar) => {
      const allocations: Record<string, { resources: Record<string, number> }> = {};
      for (const rr of ar.resources) ((allocations[uuid(rr.rpId)] ??= { resources: {} }).resources)[rcName(rr.rcId)] = rr.amount;
      const out: Record<string, unknown> = { allocations };
      if (v.atLeast(MV.mappings)) {
        out.mappings = Object.fromEntries([...ar.mappings].map(([s, ids]) => [s, [...ids].map(uuid)]));
      }
      return out;
    });
  } else {
    requests = r.requests.map((ar) => {
      const byRp = new Map<number, Record<string, number>>();
      for (const rr of ar.resources) {
        if (!byRp.has(rr.rpId)) byRp.set(rr.rpId, {});
        byRp.get(rr.rpId)![rcName(rr.rcId)] = rr.amount;
      }
      return { allocations: [...byRp].map(([id, resources]) => ({ resource_provider: { uuid: uuid(id) }, resources })) };
    });
  }
  // The summaries are written as JSON text here, byte for byte what JSON.stringify would make
  // of { resources, traits, parent_provider_uuid, root_provider_uuid }: the trait lists (a
  // dozen names per compute node, 300 KB at 1,000 hosts) come pre-rendered per shared set.
  const allClasses = v.atLeast(MV.allResourcesInSummaries);
  const withTraits = v.atLeast(MV.candidatesRequired);
  const nested = v.atLeast(MV.nestedCandidates);
  const traitCache = c.api.store.providerTraits;
  const summaries: string[] = [];
  for (const s of r.summaries) {
    const resources: Record<string, { capacity: number; used: number }> = {};
    for (const res of s.resources) {
      if (allClasses || r.requestedRcIds.has(res.rcId)) resources[rcName(res.rcId)] = { capacity: res.capacity, used: res.used };
    }
    let text = `${JSON.stringify(s.uuid)}:{"resources":${JSON.stringify(resources)}`;
    if (withTraits) text += `,"traits":${traitCache.json(s.traits)}`;
    if (nested) text += `,"parent_provider_uuid":${JSON.stringify(s.parentId === null ? null : uuid(s.parentId))},"root_provider_uuid":${JSON.stringify(uuid(s.rootId))}`;
    summaries.push(`${text}}`);
  }
  return new RawJson(`{"allocation_requests":${JSON.stringify(requests)},"provider_summaries":{${summaries.join(',')}}}`);
}
