// /resource_providers/{uuid}/aggregates: a plain list before 1.19, then a generation-guarded
// object { aggregates, resource_provider_generation }.
import { Type } from '@sinclair/typebox';
import { MV } from '../microversions.ts';
import { normalizeUuid, validate, type Handler } from './router.ts';
import { providerAggregates, setProviderAggregates } from '../model/aggregates.ts';
import { getProvider, modified } from '../model/providers.ts';

const list = Type.Array(Type.String({ format: 'uuid' }), { uniqueItems: true });
const withGeneration = Type.Object({ aggregates: list, resource_provider_generation: Type.Integer() }, { additionalProperties: false });

function body(aggregates: string[], generation: number, withGen: boolean) {
  return withGen ? { aggregates, resource_provider_generation: generation } : { aggregates };
}

export const get: Handler = async (c) => {
  const store = c.api.store;
  const p = await getProvider(store.db, c.params.uuid);
  return { status: 200, body: body(await providerAggregates(store, p.id), p.generation, c.version.atLeast(MV.aggregateGeneration)), lastModified: modified(p) };
};

export const put: Handler = async (c) => {
  const store = c.api.store;
  await getProvider(store.db, c.params.uuid);
  const withGen = c.version.atLeast(MV.aggregateGeneration);
  let uuids: string[];
  let generation: number | undefined;
  if (withGen) {
    const d = validate(withGeneration, c.body);
    uuids = d.aggregates;
    generation = d.resource_provider_generation;
  } else {
    uuids = validate(list, c.body);
  }
  const out = await setProviderAggregates(store, c.params.uuid, uuids.map(normalizeUuid), generation);
  return { status: 200, body: body(out.aggregates, out.provider.generation, withGen), lastModified: new Date().toISOString() };
};
