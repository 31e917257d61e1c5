// /resource_providers and /resource_providers/{uuid}
import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { Version } from '../../common/http/microversion.ts';
import { MV } from '../microversions.ts';
import { allowQuery, isUuidLike, normalizeUuid, validate, type Ctx, type Handler } from './router.ts';
import { parseInTree, parseMemberOf, parseRequired, parseResources } from './query.ts';
import { createProvider, deleteProvider, getProvider, listProviders, modified, updateProvider, type Provider, type ProviderFilters } from '../model/providers.ts';
import { badRequest } from '../errors.ts';

export function providerLinks(prefix: string, uuid: string, v: Version) {
  const self = `${prefix}/resource_providers/${uuid}`;
  const rels = ['inventories', 'usages'];
  if (v.atLeast(MV.aggregates)) rels.push('aggregates');
  if (v.atLeast(MV.traits)) rels.push('traits');
  if (v.atLeast(MV.allocationsLink)) rels.push('allocations');
  return [{ rel: 'self', href: self }, ...rels.map((rel) => ({ rel, href: `${self}/${rel}` }))];
}

export function serializeProvider(p: Provider, v: Version, prefix: string) {
  const out: Record<string, unknown> = { uuid: p.uuid, name: p.name, generation: p.generation, links: providerLinks(prefix, p.uuid, v) };
  if (v.atLeast(MV.nested)) {
    out.parent_provider_uuid = p.parent_provider_uuid;
    out.root_provider_uuid = p.root_provider_uuid;
  }
  return out;
}

const uuidString = Type.String({ format: 'uuid' });
const createSchema = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }), uuid: Type.Optional(uuidString) }, { additionalProperties: false });
const createSchema114 = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }), uuid: Type.Optional(uuidString),
  parent_provider_uuid: Type.Optional(Type.Union([uuidString, Type.Null()])),
}, { additionalProperties: false });
const updateSchema = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
const updateSchema114 = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  parent_provider_uuid: Type.Optional(Type.Union([uuidString, Type.Null()])),
}, { additionalProperties: false });

export const list: Handler = async (c: Ctx) => {
  const v = c.version;
  const allowed = new Set(['name', 'uuid']);
  if (v.atLeast(MV.memberOfList)) allowed.add('member_of');
  if (v.atLeast(MV.resourcesFilter)) allowed.add('resources');
  if (v.atLeast(MV.nested)) allowed.add('in_tree');
  if (v.atLeast(MV.listRequired)) allowed.add('required');
  allowQuery(c.query, (k) => allowed.has(k));
  const f: ProviderFilters = {};
  const q = c.query;
  if (q.has('name')) f.name = q.get('name');
  if (q.has('uuid')) {
    const u = q.get('uuid')!;
    if (!isUuidLike(u)) throw badRequest(`Invalid query string parameters: '${u}' is not a 'uuid'`);
    f.uuid = normalizeUuid(u);
  }
  if (q.has('member_of')) {
    const m = parseMemberOf(q, 'member_of', v);
    f.memberOf = m.required;
    f.forbiddenAggs = m.forbidden;
  }
  if (q.has('in_tree')) f.inTree = parseInTree(q.get('in_tree')!);
  if (q.has('resources')) f.resources = parseResources(q.get('resources')!);
  if (q.has('required')) {
    const t = parseRequired(q, 'required', v);
    f.requiredTraits = t.required;
    f.forbiddenTraits = t.forbidden;
  }
  const providers = await listProviders(c.api.store, f);
  const lastModified = providers.reduce<string | undefined>((m, p) => (!m || modified(p) > m ? modified(p) : m), undefined) ?? new Date().toISOString();
  return { status: 200, body: { resource_providers: providers.map((p) => serializeProvider(p, v, c.prefix)) }, lastModified };
};

export const show: Handler = async (c) => {
  const p = await getProvider(c.api.store.db, c.params.uuid);
  return { status: 200, body: serializeProvider(p, c.version, c.prefix), lastModified: modified(p) };
};

export const create: Handler = async (c) => {
  const v = c.version;
  const data = validate(v.atLeast(MV.nested) ? createSchema114 : createSchema, c.body) as { name: string; uuid?: string; parent_provider_uuid?: string | null };
  const uuid = data.uuid ? normalizeUuid(data.uuid) : randomUUID();
  const parent = data.parent_provider_uuid ? normalizeUuid(data.parent_provider_uuid) : data.parent_provider_uuid;
  const p = await createProvider(c.api.store, { uuid, name: data.name, parentUuid: parent });
  const location = c.location(`/resource_providers/${p.uuid}`);
  if (v.atLeast(MV.createReturnsBody)) {
    return { status: 200, body: serializeProvider(p, v, c.prefix), headers: { location }, lastModified: modified(p) };
  }
  return { status: 201, headers: { location } };
};

export const update: Handler = async (c) => {
  const v = c.version;
  await getProvider(c.api.store.db, c.params.uuid);
  const data = validate(v.atLeast(MV.nested) ? updateSchema114 : updateSchema, c.body) as { name: string; parent_provider_uuid?: string | null };
  const parent = data.parent_provider_uuid ? normalizeUuid(data.parent_provider_uuid) : data.parent_provider_uuid;
  const p = await updateProvider(c.api.store, c.params.uuid, { name: data.name, parentUuid: parent }, v.atLeast(MV.reparenting));
  return { status: 200, body: serializeProvider(p, v, c.prefix), lastModified: modified(p) };
};

export const remove: Handler = async (c) => {
  await deleteProvider(c.api.store, c.params.uuid);
  return { status: 204 };
};
