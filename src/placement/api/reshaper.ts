// POST /reshaper (1.30+): inventories and allocations of several providers changed atomically.
import { Type, type TSchema } from '@sinclair/typebox';
import type { Version } from '../../common/http/microversion.ts';
import { MV } from '../microversions.ts';
import { keyed, normalizeUuid, validate, type Handler } from './router.ts';
import { INVENTORY_DEFAULTS, MAX_INT, validateInventory, type InventoryFields } from '../model/inventories.ts';
import { reshape, type ReshapeInventory } from '../model/reshaper.ts';
import type { ConsumerWrite } from '../model/allocations.ts';

const UUID_KEY = '^[0-9a-fA-F-]{36}$';
const record = Type.Object({
  total: Type.Integer({ minimum: 1, maximum: MAX_INT }),
  reserved: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_INT })),
  min_unit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  max_unit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  step_size: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_INT })),
  allocation_ratio: Type.Optional(Type.Number({ maximum: 3.40282e38 })),
}, { additionalProperties: false });
const inventories = keyed(UUID_KEY, Type.Object({
  resource_provider_generation: Type.Integer(),
  inventories: keyed('^[A-Z0-9_]+$', record),
}, { additionalProperties: false }));

function schema(v: Version): TSchema {
  const consumer: Record<string, TSchema> = {
    allocations: keyed(UUID_KEY, Type.Object({
      generation: Type.Optional(Type.Integer()),
      resources: keyed('^[A-Z0-9_]+$', Type.Integer({ minimum: 1 }), { minProperties: 1 }),
    }, { additionalProperties: false })),
    project_id: Type.String({ minLength: 1, maxLength: 255 }),
    user_id: Type.String({ minLength: 1, maxLength: 255 }),
    consumer_generation: Type.Union([Type.Integer(), Type.Null()]),
  };
  if (v.atLeast(MV.mappings)) consumer.mappings = Type.Optional(Type.Record(Type.String(), Type.Array(Type.String({ format: 'uuid' }), { minItems: 1 })));
  if (v.atLeast(MV.consumerTypes)) consumer.consumer_type = Type.String({ pattern: '^[A-Z0-9_]+$', minLength: 1, maxLength: 255 });
  return Type.Object({
    inventories,
    allocations: keyed(UUID_KEY, Type.Object(consumer, { additionalProperties: false })),
  }, { additionalProperties: false });
}

interface Body {
  inventories: Record<string, { resource_provider_generation: number; inventories: Record<string, Partial<InventoryFields> & { total: number }> }>;
  allocations: Record<string, { allocations: Record<string, { resources: Record<string, number> }>; project_id: string; user_id: string; consumer_generation: number | null; consumer_type?: string }>;
}

export const post: Handler = async (c) => {
  const v = c.version;
  const data = validate(schema(v), c.body) as Body;
  const invs: Record<string, ReshapeInventory> = {};
  for (const [rp, e] of Object.entries(data.inventories)) {
    const uuid = normalizeUuid(rp);
    const set: Record<string, InventoryFields> = {};
    for (const [rc, r] of Object.entries(e.inventories)) {
      set[rc] = { ...INVENTORY_DEFAULTS, ...r };
      validateInventory(uuid, rc, set[rc], true);
    }
    invs[uuid] = { generation: e.resource_provider_generation, inventories: set };
  }
  const writes: ConsumerWrite[] = Object.entries(data.allocations).map(([consumer, d]) => ({
    uuid: normalizeUuid(consumer), projectId: d.project_id, userId: d.user_id, generation: d.consumer_generation,
    consumerType: v.atLeast(MV.consumerTypes) ? d.consumer_type : undefined,
    allocations: Object.fromEntries(Object.entries(d.allocations).map(([rp, a]) => [normalizeUuid(rp), a.resources])),
  }));
  await reshape(c.api.store, invs, writes, { checkGenerations: true });
  return { status: 204 };
};
