// /traits, /traits/{name} and /resource_providers/{uuid}/traits
import { Type } from '@sinclair/typebox';
import { allowQuery, validate, type Handler } from './router.ts';
import { deleteTrait, ensureTrait, findTrait, listTraits, providerTraits, setProviderTraits, type TraitFilter } from '../model/traits.ts';
import { forExistingProvider, getProvider, modified } from '../model/providers.ts';
import { badRequest, notFound } from '../errors.ts';

const CUSTOM_TRAIT = /^CUSTOM_[A-Z0-9_]+$/;
const TRAIT = '^[A-Z0-9_]+$';
const setSchema = Type.Object({
  traits: Type.Array(Type.String({ pattern: TRAIT, maxLength: 255 }), { uniqueItems: true }),
  resource_provider_generation: Type.Integer(),
}, { additionalProperties: false });

export const list: Handler = async (c) => {
  allowQuery(c.query, (k) => k === 'name' || k === 'associated');
  const f: TraitFilter = {};
  const name = c.query.get('name');
  if (name !== undefined) {
    if (name.startsWith('in:')) f.names = name.slice(3).split(',').map((s) => s.trim()).filter(Boolean);
    else if (name.startsWith('startswith:')) f.prefix = name.slice('startswith:'.length);
    else throw badRequest(`Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: "${name}"`);
  }
  const assoc = c.query.get('associated');
  if (assoc !== undefined) {
    const a = assoc.toLowerCase();
    if (a !== 'true' && a !== 'false') {
      throw badRequest(`Invalid query string parameters: '${assoc}' is not one of ['true', 'false']`);
    }
    f.associated = a === 'true';
  }
  return { status: 200, body: { traits: await listTraits(c.api.store, f) }, lastModified: new Date().toISOString() };
};

export const show: Handler = async (c) => {
  const t = await findTrait(c.api.store, c.params.name);
  if (!t) throw notFound(`The trait ${c.params.name} does not exist.`);
  return { status: 204, lastModified: modified(t) };
};

export const put: Handler = async (c) => {
  const name = c.params.name;
  if (!CUSTOM_TRAIT.test(name) || name.length > 255) {
    throw badRequest('The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"');
  }
  const { created, modified: m } = await ensureTrait(c.api.store, name);
  if (created) return { status: 201, headers: { location: c.location(`/traits/${name}`) }, lastModified: m };
  return { status: 204, lastModified: m };
};

export const remove: Handler = async (c) => {
  await deleteTrait(c.api.store, c.params.name);
  return { status: 204 };
};

export const listForProvider: Handler = async (c) => {
  const store = c.api.store;
  const p = await getProvider(store.db, c.params.uuid);
  return { status: 200, body: { traits: await providerTraits(store, p.id), resource_provider_generation: p.generation }, lastModified: modified(p) };
};

export const setForProvider: Handler = async (c) => {
  const store = c.api.store;
  const out = await forExistingProvider(store.db, c.params.uuid, () => {
    const data = validate(setSchema, c.body);
    return setProviderTraits(store, c.params.uuid, data.resource_provider_generation, data.traits);
  });
  return { status: 200, body: { traits: out.traits, resource_provider_generation: out.provider.generation }, lastModified: new Date().toISOString() };
};

export const removeForProvider: Handler = async (c) => {
  await setProviderTraits(c.api.store, c.params.uuid, undefined, []);
  return { status: 204 };
};
