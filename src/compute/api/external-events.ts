// os-server-external-events: how Neutron, Cinder and Cyborg tell Nova about a server (a VIF
// plugged, a volume extended...). Event names per microversion as Nova's schemas; each event is
// answered with its own code (200 accepted, 404 unknown server, 422 server on no host, 400 a
// volume event without its tag), the response 207 when some failed, 404 when none was accepted.
import { NotFound } from '../../common/errors.ts';
import { normUuid } from '../util.ts';
import { validate } from './validation.ts';
import type { Ctx } from './context.ts';
import type { ComputeRow } from './rows.ts';

const NAMES: [string, string][] = [
  ['network-changed', '2.1'], ['network-vif-plugged', '2.1'], ['network-vif-unplugged', '2.1'], ['network-vif-deleted', '2.1'],
  ['volume-extended', '2.51'], ['power-update', '2.76'], ['accelerator-request-bound', '2.82'], ['volume-reimaged', '2.93'],
];

function schema(c: Ctx) {
  return {
    type: 'object',
    properties: {
      events: {
        type: 'array', minItems: 1,
        items: {
          type: 'object',
          properties: {
            server_uuid: { type: 'string', format: 'uuid' },
            name: { type: 'string', enum: NAMES.filter(([, v]) => c.v.atLeast(v)).map(([n]) => n) },
            status: { type: 'string', enum: ['failed', 'completed', 'in-progress'] },
            tag: { type: 'string', maxLength: 255 },
          },
          required: ['server_uuid', 'name'],
          additionalProperties: false,
        },
      },
    },
    required: ['events'],
    additionalProperties: false,
  };
}

async function create(c: Ctx) {
  const body = validate<{ events: { server_uuid: string; name: string; status?: string; tag?: string }[] }>(schema(c), c.body);
  c.enforce('os_compute_api:os-server-external-events:create', {});
  const hosts = new Map<string, string | null>();
  for (const uuid of new Set(body.events.map((e) => normUuid(e.server_uuid)))) {
    const cell = await c.api.cells.cellOfInstance(uuid);
    if (!cell) continue;
    const inst = await cell.db.selectFrom('instances').select(['host']).where('uuid', '=', uuid).where('deleted', '=', 0).executeTakeFirst();
    if (inst) hosts.set(uuid, inst.host);
  }
  let status = 200;
  let accepted = 0;
  const events = body.events.map((e) => {
    const out: Record<string, unknown> = { ...e };
    const uuid = normUuid(e.server_uuid);
    if (!hosts.has(uuid)) {
      c.api.logger.debug({ event: e.name, tag: e.tag, instance: uuid }, 'dropping event for unknown instance');
      Object.assign(out, { status: 'failed', code: 404 });
      status = 207;
    } else if ((e.name === 'volume-extended' || e.name === 'volume-reimaged') && e.tag === undefined) {
      Object.assign(out, { status: 'failed', code: 400 });
      status = 207;
    } else if (hosts.get(uuid)) {
      c.api.logger.info({ event: e.name, tag: e.tag, status: e.status ?? 'completed', instance: uuid }, 'creating event');
      Object.assign(out, { status: 'completed', code: 200 });
      accepted++;
    } else {
      Object.assign(out, { status: 'failed', code: 422 });
      status = 207;
    }
    return out;
  });
  // The fake driver has no VIFs or volumes waiting on these events: accepted is all there is to do.
  if (!accepted) throw new NotFound('No instances found for any event');
  return { status, body: { events } };
}

export const externalEventRoutes: ComputeRow[] = [
  { method: 'POST', path: '/os-server-external-events', policy: 'os_compute_api:os-server-external-events:create', errors: [], handler: create },
];
