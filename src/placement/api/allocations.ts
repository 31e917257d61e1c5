// /allocations/{consumer_uuid}, POST /allocations and /resource_providers/{uuid}/allocations.
// The request body changes shape along the microversions (see the schemas below); all shapes
// are normalised to ConsumerWrite for the model.
import { Type, type TSchema } from '@sinclair/typebox';
import type { Version } from '../../common/http/microversion.ts';
import { MV } from '../microversions.ts';
import { isUuidLike, keyed, normalizeUuid, validate, type Ctx, type Handler } from './router.ts';
import {
  allocationsForConsumer, allocationsForProvider, deleteAllocations, writeAllocations, type ConsumerWrite,
} from '../model/allocations.ts';
import { findProvider } from '../model/providers.ts';
import { badRequest, notFound } from '../errors.ts';

const UUID_KEY = '^[0-9a-fA-F-]{36}$';
const RC_KEY = '^[A-Z0-9_]+$';
const ID = Type.String({ minLength: 1, maxLength: 255 });
const resources = keyed(RC_KEY, Type.Integer({ minimum: 1 }), { minProperties: 1 });

/** 1.0 - 1.11: a list of { resource_provider: { uuid }, resources }. */
const listForm = Type.Array(Type.Object({
  resource_provider: Type.Object({ uuid: Type.String({ format: 'uuid' }) }, { additionalProperties: false }),
  resources,
}, { additionalProperties: false }), { minItems: 1 });
const put10 = Type.Object({ allocations: listForm }, { additionalProperties: false });
const put18 = Type.Object({ allocations: listForm, project_id: ID, user_id: ID }, { additionalProperties: false });

/** 1.12+: a dict by provider uuid; `generation` is accepted and ignored, as upstream. */
const byProvider = (minProperties: number) => keyed(UUID_KEY, Type.Object({
  generation: Type.Optional(Type.Integer()), resources,
}, { additionalProperties: false }), { minProperties });
const mappings = Type.Record(Type.String(), Type.Array(Type.String({ format: 'uuid' }), { minItems: 1 }), { minProperties: 1 });
// 'unknown' is what GET shows for a consumer without a type; clients (osc-placement's
// `allocation unset`) send it back, so it is accepted and means "no type" (upstream's pattern
// refuses it, which breaks that round trip).
const CONSUMER_TYPE = Type.String({ pattern: '^([A-Z0-9_]+|unknown)$', minLength: 1, maxLength: 255 });
const consumerType = (t: string | undefined) => (t === 'unknown' ? null : t);
const generation = Type.Union([Type.Integer(), Type.Null()]);

function consumerSchema(v: Version, forPost: boolean): TSchema {
  const props: Record<string, TSchema> = {
    allocations: byProvider(forPost || v.atLeast(MV.consumerGeneration) ? 0 : 1), project_id: ID, user_id: ID,
  };
  if (v.atLeast(MV.consumerGeneration)) props.consumer_generation = generation;
  if (v.atLeast(MV.mappings)) props.mappings = Type.Optional(mappings);
  if (v.atLeast(MV.consumerTypes)) props.consumer_type = CONSUMER_TYPE;
  return Type.Object(props, { additionalProperties: false });
}

function putSchema(v: Version): TSchema {
  if (!v.atLeast(MV.allocationProjectUser)) return put10;
  if (!v.atLeast(MV.allocationsDict)) return put18;
  return consumerSchema(v, false);
}

interface DictBody {
  allocations: Record<string, { resources: Record<string, number> }>;
  project_id: string; user_id: string; consumer_generation?: number | null; consumer_type?: string;
}

function toWrite(uuid: string, d: DictBody, v: Version): ConsumerWrite {
  const allocations: Record<string, Record<string, number>> = {};
  for (const [rp, a] of Object.entries(d.allocations)) allocations[normalizeUuid(rp)] = a.resources;
  return {
    uuid, projectId: d.project_id, userId: d.user_id, allocations,
    generation: v.atLeast(MV.consumerGeneration) ? (d.consumer_generation ?? null) : undefined,
    consumerType: v.atLeast(MV.consumerTypes) ? consumerType(d.consumer_type) : undefined,
  };
}

export const put: Handler = async (c: Ctx) => {
  const v = c.version;
  const raw = c.params.consumer_uuid;
  if (!isUuidLike(raw)) throw badRequest(`Malformed consumer_uuid: ${raw}`);
  const uuid = normalizeUuid(raw);
  const data = validate(putSchema(v), c.body) as Record<string, unknown>;
  let write: ConsumerWrite;
  if (!v.atLeast(MV.allocationsDict)) {
    const allocations: Record<string, Record<string, number>> = {};
    for (const a of data.allocations as { resource_provider: { uuid: string }; resources: Record<string, number> }[]) {
      allocations[normalizeUuid(a.resource_provider.uuid)] = a.resources;
    }
    write = {
      uuid, allocations,
      projectId: (data.project_id as string | undefined) ?? c.api.config.incompleteProjectId,
      userId: (data.user_id as string | undefined) ?? c.api.config.incompleteUserId,
    };
  } else {
    write = toWrite(uuid, data as unknown as DictBody, v);
  }
  await writeAllocations(c.api.store, [write], { checkGenerations: v.atLeast(MV.consumerGeneration) });
  return { status: 204 };
};

export const post: Handler = async (c) => {
  const v = c.version;
  const schema = keyed(UUID_KEY, consumerSchema(v, true), { minProperties: 1 });
  const data = validate(schema, c.body) as Record<string, DictBody>;
  const writes = Object.entries(data).map(([consumer, d]) => toWrite(normalizeUuid(consumer), d, v));
  await writeAllocations(c.api.store, writes, { checkGenerations: v.atLeast(MV.consumerGeneration) });
  return { status: 204 };
};

export const get: Handler = async (c) => {
  const v = c.version;
  const raw = c.params.consumer_uuid;
  const uuid = isUuidLike(raw) ? normalizeUuid(raw) : raw;
  const a = await allocationsForConsumer(c.api.store, uuid);
  const body: Record<string, unknown> = {
    allocations: Object.fromEntries([...a.allocations].map(([rp, e]) => [rp, { generation: e.generation, resources: e.resources }])),
  };
  if (a.allocations.size && a.consumer && v.atLeast(MV.allocationsDict)) {
    body.project_id = a.consumer.project_id;
    body.user_id = a.consumer.user_id;
    if (v.atLeast(MV.consumerGeneration)) body.consumer_generation = a.consumer.generation;
    if (v.atLeast(MV.consumerTypes)) body.consumer_type = a.consumer.consumer_type ?? 'unknown';
  }
  return { status: 200, body, lastModified: a.lastModified ?? new Date().toISOString() };
};

export const remove: Handler = async (c) => {
  const raw = c.params.consumer_uuid;
  await deleteAllocations(c.api.store, isUuidLike(raw) ? normalizeUuid(raw) : raw);
  return { status: 204 };
};

export const forProvider: Handler = async (c) => {
  const store = c.api.store;
  const p = await findProvider(store.db, c.params.uuid);
  if (!p) throw notFound(`Resource provider '${c.params.uuid}' not found: No resource provider with uuid ${c.params.uuid} found`);
  const { byConsumer, lastModified } = await allocationsForProvider(store, p.id);
  const withGen = c.version.atLeast(MV.consumerGeneration);
  const allocations = Object.fromEntries([...byConsumer].map(([consumer, e]) => [consumer, withGen ? { resources: e.resources, consumer_generation: e.generation } : { resources: e.resources }]));
  return { status: 200, body: { allocations, resource_provider_generation: p.generation }, lastModified: lastModified ?? new Date().toISOString() };
};
