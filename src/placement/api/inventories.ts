// /resource_providers/{uuid}/inventories and /resource_providers/{uuid}/inventories/{rc}
import { Type, type Static } from '@sinclair/typebox';
import { MV } from '../microversions.ts';
import { keyed, validate, type Handler } from './router.ts';
import { forExistingProvider, getProvider, modified } from '../model/providers.ts';
import {
  INVENTORY_DEFAULTS, MAX_INT, createInventory, deleteInventory, listInventories, setInventories, updateInventory, validateInventory,
  type Inventory, type InventoryFields,
} from '../model/inventories.ts';
import { notFound } from '../errors.ts';

const FLOAT_MAX = 3.40282e38;
const RC_PATTERN = '^[A-Z0-9_]+$';
const fields = {
  total: Type.Integer({ minimum: 1, maximum: MAX_INT }),
  reserved: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_INT })),
  min_unit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  max_unit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  step_size: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  allocation_ratio: Type.Optional(Type.Number({ maximum: FLOAT_MAX })),
};
const record = Type.Object(fields, { additionalProperties: false });
const putAll = Type.Object({
  resource_provider_generation: Type.Integer(),
  inventories: keyed(RC_PATTERN, record),
}, { additionalProperties: false });
const postOne = Type.Object({ ...fields, resource_class: Type.String({ pattern: RC_PATTERN }) }, { additionalProperties: false });
const putOne = Type.Object({ ...fields, resource_provider_generation: Type.Integer() }, { additionalProperties: false });

function withDefaults(r: Static<typeof record>): InventoryFields {
  return { ...INVENTORY_DEFAULTS, ...r };
}

function serialize(i: Inventory, generation?: number) {
  const out: Record<string, unknown> = {
    total: i.total, reserved: i.reserved, min_unit: i.min_unit, max_unit: i.max_unit, step_size: i.step_size, allocation_ratio: i.allocation_ratio,
  };
  if (generation !== undefined) out.resource_provider_generation = generation;
  return out;
}

function lastOf(invs: Inventory[]): string {
  return invs.reduce<string | undefined>((m, i) => (!m || modified(i) > m ? modified(i) : m), undefined) ?? new Date().toISOString();
}

export const list: Handler = async (c) => {
  const store = c.api.store;
  const p = await getProvider(store.db, c.params.uuid);
  const invs = await listInventories(store, store.db, p.id);
  return {
    status: 200,
    body: { resource_provider_generation: p.generation, inventories: Object.fromEntries(invs.map((i) => [i.resource_class, serialize(i)])) },
    lastModified: lastOf(invs),
  };
};

export const show: Handler = async (c) => {
  const store = c.api.store;
  const p = await getProvider(store.db, c.params.uuid);
  const inv = (await listInventories(store, store.db, p.id)).find((i) => i.resource_class === c.params.resource_class);
  if (!inv) throw notFound(`No inventory of class ${c.params.resource_class} for ${p.uuid}`);
  return { status: 200, body: serialize(inv, p.generation), lastModified: modified(inv) };
};

export const replaceAll: Handler = async (c) => {
  const store = c.api.store;
  const out = await forExistingProvider(store.db, c.params.uuid, () => {
    const data = validate(putAll, c.body);
    const invs: Record<string, InventoryFields> = {};
    for (const [rc, r] of Object.entries(data.inventories)) {
      invs[rc] = withDefaults(r);
      validateInventory(c.params.uuid, rc, invs[rc], c.version.atLeast(MV.reservedEqualsTotal));
    }
    return setInventories(store, c.params.uuid, data.resource_provider_generation, invs);
  });
  return {
    status: 200,
    body: { resource_provider_generation: out.provider.generation, inventories: Object.fromEntries(out.inventories.map((i) => [i.resource_class, serialize(i)])) },
    lastModified: lastOf(out.inventories),
  };
};

export const create: Handler = async (c) => {
  const store = c.api.store;
  await getProvider(store.db, c.params.uuid);
  const { resource_class: rc, ...rest } = validate(postOne, c.body);
  const inv = withDefaults(rest);
  validateInventory(c.params.uuid, rc, inv, c.version.atLeast(MV.reservedEqualsTotal));
  const out = await createInventory(store, c.params.uuid, rc, inv);
  return {
    status: 201, body: serialize(out.inventory, out.provider.generation), lastModified: modified(out.inventory),
    headers: { location: c.location(`/resource_providers/${out.provider.uuid}/inventories/${rc}`) },
  };
};

export const update: Handler = async (c) => {
  const store = c.api.store;
  await getProvider(store.db, c.params.uuid);
  const { resource_provider_generation: gen, ...rest } = validate(putOne, c.body);
  const inv = withDefaults(rest);
  validateInventory(c.params.uuid, c.params.resource_class, inv, c.version.atLeast(MV.reservedEqualsTotal));
  const out = await updateInventory(store, c.params.uuid, c.params.resource_class, gen, inv);
  return { status: 200, body: serialize(out.inventory, out.provider.generation), lastModified: modified(out.inventory) };
};

export const remove: Handler = async (c) => {
  await deleteInventory(c.api.store, c.params.uuid, c.params.resource_class);
  return { status: 204 };
};

export const removeAll: Handler = async (c) => {
  await setInventories(c.api.store, c.params.uuid, undefined, {});
  return { status: 204 };
};
