// `stratus status upgrade-check` (nova-status upgrade check): named checks (the deployment's here,
// the compute host's for real guests in host-checks.ts), each Success,
// Warning or Failure with details, printed in nova-status's table; exit code 0/1/2 as the worst
// result (255 when a check itself crashed).
import type { Config } from '../common/config.ts';
import { Cells, CELL0_UUID } from '../compute/cells.ts';
import { serviceAccess } from '../compute/workers.ts';
import { SERVICE_VERSION } from '../compute/rpc.ts';
import { prettyTable } from './table.ts';
import { hostChecks, type CheckResult as Result } from './host-checks.ts';

const NAMES = ['Success', 'Warning', 'Failure'];
const REQUIRED_PLACEMENT = '1.36';

export async function upgradeCheck(config: Config, format: 'table' | 'json' = 'table'): Promise<number> {
  const apiUrl = config.get<string | undefined>('api_database', 'connection');
  let cells: Cells | undefined;
  const checks: [string, () => Promise<Result>][] = [
    ['Cells v2', async () => {
      if (!apiUrl) return { code: 2, details: '[api_database] connection is not set.' };
      cells = await Cells.open(apiUrl);
      const list = await cells.list(true);
      if (!list.length) return { code: 2, details: 'There needs to be at least two cell mappings, one for cell0 and one for your compute cells. Run `stratus manage cell_v2 map_cell0` and `stratus manage cell_v2 create_cell`.' };
      if (!list.some((c) => c.uuid === CELL0_UUID)) return { code: 2, details: 'No cell0 mapping found. Run `stratus manage cell_v2 map_cell0`.' };
      if (list.length < 2) return { code: 2, details: 'No cell mapping besides cell0: run `stratus manage cell_v2 create_cell`.' };
      const hosts = await cells.db.selectFrom('host_mappings').select('id').limit(1).execute();
      if (!hosts.length) {
        let computes = 0;
        for (const { db } of await cells.all({ includeCell0: false })) computes += (await db.selectFrom('compute_nodes').select('id').execute()).length;
        if (computes) return { code: 2, details: `No host mappings found but there are ${computes} compute nodes. Run \`stratus manage cell_v2 discover_hosts\`.` };
        return { code: 0, details: 'No host mappings or compute nodes were found. Remember to run command `stratus manage cell_v2 discover_hosts` when new compute hosts are deployed.' };
      }
      return { code: 0 };
    }],
    ['Placement API', async () => {
      // The all-in-one's config names no auth_url (its port is a flag): admin-openrc's OS_AUTH_URL serves.
      const access = serviceAccess(config, config.get<string | undefined>('keystone_authtoken', 'auth_url') ?? process.env.OS_AUTH_URL, 'placement');
      let base: string;
      try { base = await access.endpoint(); } catch (e) { return { code: 2, details: `Placement API endpoint not found: ${(e as Error).message}` }; }
      let res: Response;
      try { res = await fetch(`${base}/`, { headers: { 'x-auth-token': await access.token(), accept: 'application/json' } }); } catch (e) {
        return { code: 2, details: `Placement API does not seem to be running at ${base}: ${(e as Error).message}` };
      }
      if (res.status !== 200) return { code: 2, details: `Placement service answered ${res.status} at ${base}/` };
      const doc = (await res.json()) as { versions?: { max_version?: string }[] };
      const max = doc.versions?.[0]?.max_version ?? '1.0';
      const [a, b] = max.split('.').map(Number);
      const [x, y] = REQUIRED_PLACEMENT.split('.').map(Number);
      if (a < x || (a === x && b < y)) return { code: 2, details: `Placement API version ${REQUIRED_PLACEMENT} needed, you have ${max}.` };
      return { code: 0 };
    }],
    ['Compute hosts discovered', async () => {
      if (!cells) return { code: 1, details: 'Skipped: no API database.' };
      const unmapped: string[] = [];
      for (const { db } of await cells.all({ includeCell0: false })) {
        for (const n of await db.selectFrom('compute_nodes').select('host').where('mapped', '=', 0).execute()) unmapped.push(n.host);
      }
      if (unmapped.length) return { code: 1, details: `Compute hosts not mapped to a cell yet: ${[...new Set(unmapped)].join(', ')}. Run \`stratus manage cell_v2 discover_hosts\` (or wait for [scheduler] discover_hosts_in_cells_interval).` };
      return { code: 0 };
    }],
    ['Older than N-1 computes', async () => {
      if (!cells) return { code: 1, details: 'Skipped: no API database.' };
      const old: string[] = [];
      for (const { db } of await cells.all({ includeCell0: false })) {
        for (const s of await db.selectFrom('services').select(['host', 'binary', 'version']).execute()) if (s.version < SERVICE_VERSION - 1) old.push(`${s.binary} on ${s.host} (version ${s.version})`);
      }
      if (old.length) return { code: 1, details: `Current service version is ${SERVICE_VERSION}; these services are older than the previous release: ${old.join(', ')}.` };
      return { code: 0 };
    }],
    ...hostChecks(config),
    ['Policy File JSON to YAML Migration', async () => ({ code: 0 })],
  ];
  const results: { check: string; code: number; details?: string }[] = [];
  let crashed = false;
  for (const [name, fn] of checks) {
    try {
      const r = await fn();
      results.push({ check: name, ...r });
    } catch (e) {
      crashed = true;
      results.push({ check: name, code: 2, details: `Error: ${(e as Error).message}` });
    }
  }
  await cells?.close();
  if (format === 'json') {
    console.log(JSON.stringify({ name: 'Upgrade Check Results', checks: results.map((r) => ({ check: r.check, result: NAMES[r.code], details: r.details ?? null })) }, null, 2));
  } else {
    const rows: string[][] = [];
    for (const r of results) {
      rows.push([`Check: ${r.check}`], [`Result: ${NAMES[r.code]}`]);
      const d = `Details: ${r.details ?? 'None'}`;
      for (const line of wrap(d, 60)) rows.push([line]);
      rows.push(['\u0000']);
    }
    // nova-status separates checks with a rule: render each check as its own row group.
    const width = Math.max(60, ...rows.map((r) => r[0].length));
    const rule = `+${'-'.repeat(width + 2)}+`;
    const out = [rule, `| ${'Upgrade Check Results'.padEnd(width)} |`, rule];
    for (const r of rows) out.push(r[0] === '\u0000' ? rule : `| ${r[0].padEnd(width)} |`);
    console.log(out.join('\n'));
  }
  if (crashed) return 255;
  return Math.max(0, ...results.map((r) => r.code));
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const w of text.split(/\s+/)) {
    if (cur && cur.length + w.length + 1 > width) { lines.push(cur); cur = `  ${w}`; } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(cur);
  return lines;
}

export { prettyTable };
