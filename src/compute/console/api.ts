// The console APIs (Nova's remote_consoles.py and console_auth_tokens.py):
// POST /servers/{id}/remote-consoles (2.6+), the legacy actions os-getVNCConsole,
// os-getSPICEConsole and os-getSerialConsole (2.1–2.5), and GET /os-console-auth-tokens/{token}.
// The API asks the instance's agent where the console is (a `get_console` call; the agent asks
// its driver), then issues a token bound to that endpoint in the instance's cell and hands out
// the proxy's URL with it.
import { BadRequest, Conflict, NotFound, Unauthorized } from '../../common/errors.ts';
import { NotSupported } from '../errors.ts';
import { computeRpc } from '../rpc.ts';
import { VM } from '../objects.ts';
import { validate } from '../api/validation.ts';
import type { Ctx } from '../api/context.ts';
import type { ComputeRow } from '../api/rows.ts';
import type { ServerAction } from '../api/server-actions.ts';
import { getServer } from '../api/servers.ts';
import { CONSOLE_TYPES, issueToken, lookupToken, type ConsoleType } from './tokens.ts';
import './config.ts';

/** Where each console type's URL points, and the option that turns the protocol on. */
const TYPE_CONFIG: Record<ConsoleType, { section: string; base: string }> = {
  novnc: { section: 'vnc', base: 'novncproxy_base_url' },
  'spice-html5': { section: 'spice', base: 'html5proxy_base_url' },
  serial: { section: 'serial_console', base: 'base_url' },
};
/** The types each protocol admits (Nova's compute manager raises ConsoleTypeInvalid for others). */
const PROTOCOL_TYPES: Record<string, string[]> = { vnc: ['novnc'], spice: ['spice-html5'], serial: ['serial'] };

/** The URL a client opens: noVNC ≥ 1.1 takes the websocket path (with the token) in `path`. */
export function accessUrl(type: ConsoleType, base: string, token: string): string {
  const sep = base.includes('?') ? '&' : '?';
  return type === 'novnc' ? `${base}${sep}${new URLSearchParams({ path: `?token=${token}` })}` : `${base}${sep}token=${token}`;
}

/** Gets a console of `protocol`/`type` for the server in the path; returns its URL. */
async function getConsoleUrl(c: Ctx, protocol: string, type: string): Promise<string> {
  const ref = await getServer(c, c.params.id);
  const row = ref.located?.row ?? ref.build?.row;
  c.enforce('os_compute_api:os-remote-consoles', { project_id: row?.project_id });
  // Protocols that exist in Nova but that no driver of this cloud offers.
  if (!PROTOCOL_TYPES[protocol]) throw new NotSupported(`Unable to get ${protocol} console, functionality not implemented`);
  if (!PROTOCOL_TYPES[protocol].includes(type)) throw new BadRequest(`Invalid console type ${type}`);
  const consoleType = type as ConsoleType;
  const tc = TYPE_CONFIG[consoleType];
  if (!c.api.config.get<boolean>(tc.section, 'enabled')) throw new BadRequest(`Unavailable console type ${type}.`);
  const l = ref.located;
  if (!l || !l.row.host) throw new Conflict(`Instance ${row?.uuid ?? c.params.id} is not ready`);
  // A console is a running guest's (a paused one still shows its screen).
  if (![VM.ACTIVE, VM.RESCUED, VM.PAUSED].includes(l.row.vm_state as never)) throw new Conflict(`Instance ${l.row.uuid} is not ready`);
  const rpc = await computeRpc(c.api.cellTransports, l.cell, l.row.host);
  const endpoint = await rpc.call(c.rpcContext(), 'get_console', { instance_uuid: l.row.uuid, kind: CONSOLE_TYPES[consoleType] }, { timeoutMs: 30_000 });
  const base = c.api.config.get<string>(tc.section, tc.base);
  const { token } = await issueToken(l.db, {
    instanceUuid: l.row.uuid, consoleType, endpoint, computeHost: l.row.host,
    ttlSec: c.api.config.get<number>('consoleauth', 'token_ttl'), accessUrlBase: base,
  });
  return accessUrl(consoleType, base, token);
}

const remoteConsoleSchema = (v28: boolean) => ({
  type: 'object', required: ['remote_console'], additionalProperties: false,
  properties: {
    remote_console: {
      type: 'object', required: ['protocol', 'type'], additionalProperties: false,
      properties: {
        protocol: { type: 'string', enum: ['vnc', 'spice', 'rdp', 'serial', ...(v28 ? ['mks'] : [])] },
        type: { type: 'string', enum: ['novnc', 'xvpvnc', 'rdp-html5', 'spice-html5', 'serial', ...(v28 ? ['webmks'] : [])] },
      },
    },
  },
});

async function remoteConsole(c: Ctx) {
  const b = validate(remoteConsoleSchema(c.v.atLeast('2.8')), c.body).remote_console as { protocol: string; type: string };
  const url = await getConsoleUrl(c, b.protocol, b.type);
  return { status: 200, body: { remote_console: { protocol: b.protocol, type: b.type, url } } };
}

/** The legacy actions (< 2.6): `{"os-getVNCConsole": {"type": "novnc"}}` → `{"console": {type, url}}`. */
function legacy(action: string, protocol: string, types: string[]): ServerAction {
  return {
    // Nova's versioned action: unknown from 2.6 on.
    policy: 'os_compute_api:os-remote-consoles', until: '2.5',
    schema: {
      type: 'object', required: [action], properties: {
        [action]: { type: 'object', required: ['type'], additionalProperties: false, properties: { type: { type: 'string', enum: types } } },
      },
    },
    run: async (c: Ctx, a: { type: string }) => {
      const url = await getConsoleUrl(c, protocol, a.type);
      return { status: 200, body: { console: { type: a.type, url } } };
    },
  };
}

/** Merged into the server action table (api/server-actions.ts). */
export const CONSOLE_ACTIONS: Record<string, ServerAction> = {
  'os-getVNCConsole': legacy('os-getVNCConsole', 'vnc', ['novnc', 'xvpvnc']),
  'os-getSPICEConsole': legacy('os-getSPICEConsole', 'spice', ['spice-html5']),
  'os-getSerialConsole': legacy('os-getSerialConsole', 'serial', ['serial']),
};

/** GET /os-console-auth-tokens/{token} (admin): what a token opens; before 2.31 rdp-html5 tokens only. */
async function showToken(c: Ctx) {
  c.enforce('os_compute_api:os-console-auth-tokens');
  const token = c.params.token ?? '';
  if (!token.trim()) throw new BadRequest('Empty token');
  for (const { db } of await c.api.cells.all()) {
    const auth = await lookupToken(db, token);
    if (!auth) continue;
    if (!c.v.atLeast('2.31') && auth.consoleType !== ('rdp-html5' as never)) throw new Unauthorized('The requested console type details are not accessible');
    return { status: 200, body: { console: { instance_uuid: auth.instanceUuid, host: auth.host, port: auth.port, internal_access_path: auth.internalAccessPath } } };
  }
  throw new NotFound('Token not found');
}

export const consoleRoutes: ComputeRow[] = [
  { method: 'POST', path: '/servers/:id/remote-consoles', policy: 'os_compute_api:os-remote-consoles', errors: [409, 503, 504], handler: remoteConsole, since: '2.6' },
  { method: 'GET', path: '/os-console-auth-tokens/:token', policy: 'os_compute_api:os-console-auth-tokens', errors: [], handler: showToken },
];
