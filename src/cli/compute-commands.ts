// Compute's operator commands, mirroring nova-manage and nova-status:
//   stratus manage api_db sync | db sync (cells) | cell_v2 map_cell0|create_cell|list_cells|
//     discover_hosts|list_hosts|delete_cell|update_cell
//   stratus status upgrade-check | audit (audit-commands.ts, with manage placement heal_allocations|audit)
//   stratus serve compute-api|conductor|scheduler|compute
import type { Command } from 'commander';
import { Option } from 'commander';
import { ConfigError, loadConfig, type Config } from '../common/config.ts';
import { redactDbUrl } from '../common/db/url.ts';
import { createLogger } from '../common/logging.ts';
import { apiDbSync, CELL0_UUID, Cells, createCell, dbSync, deleteCell, discoverHosts, listCells, listHosts, mapCell0 } from '../compute/cells.ts';
import { startWorkers, type WorkerKind } from '../compute/workers.ts';
import { upgradeCheck } from './status.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { mapInstances } from '../compute/audit/repair.ts';
import { prettyTable } from './table.ts';
import '../compute/config.ts';

const configOpt = () => new Option('--config <file>', 'configuration file (default /etc/stratus/stratus.conf)');

function apiUrl(config: Config): string {
  const u = config.get<string | undefined>('api_database', 'connection');
  if (!u) throw new ConfigError('[api_database] connection is not set.');
  return u;
}

const redactTransport = (u: string) => u.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1****@');

export function registerComputeCommands(program: Command, manage: Command): void {
  const apiDb = manage.command('api_db').description('Compute API database (nova-manage api_db)');
  apiDb.command('sync').description('Create or upgrade the compute API database schema').addOption(configOpt())
    .action(async (o: { config?: string }) => {
      const config = await loadConfig(o.config);
      const applied = await apiDbSync(apiUrl(config));
      console.log(`compute_api: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
    });

  const cell = manage.command('cell_v2').description('Cells v2 (nova-manage cell_v2)');
  cell.command('map_cell0').description('Create the cell0 mapping (its database defaults to [database] connection with _cell0 appended)')
    .addOption(configOpt()).option('--database_connection <url>', 'cell0 database URL')
    .action(async (o: { config?: string; database_connection?: string }) => {
      const config = await loadConfig(o.config);
      const r = await mapCell0(apiUrl(config), { databaseConnection: o.database_connection, cellUrl: config.get<string | undefined>('database', 'connection') });
      if (!r.created) console.log('Cell0 is already setup');
    });
  cell.command('create_cell').description('Create a cell mapping for the database and message bus of a cell')
    .addOption(configOpt()).option('--name <name>', 'cell name').option('--database_connection <url>', 'cell database (default [database] connection)')
    .option('--transport-url <url>', 'cell message bus (default [DEFAULT] transport_url)').option('--verbose', 'print the cell uuid').option('--disabled', 'create the cell disabled')
    .action(async (o: { config?: string; name?: string; database_connection?: string; transportUrl?: string; verbose?: boolean; disabled?: boolean }) => {
      const config = await loadConfig(o.config);
      try {
        const c = await createCell(apiUrl(config), {
          name: o.name, databaseConnection: o.database_connection ?? config.get<string | undefined>('database', 'connection'),
          transportUrl: o.transportUrl ?? config.get<string>('DEFAULT', 'transport_url'), disabled: o.disabled,
        });
        if (o.verbose) console.log(c.uuid);
      } catch (e) {
        console.log((e as Error).message);
        process.exit(e instanceof Error && /already exists/.test(e.message) ? 2 : 1);
      }
    });
  cell.command('list_cells').description('List cell mappings').addOption(configOpt()).option('--verbose', 'show passwords in URLs')
    .action(async (o: { config?: string; verbose?: boolean }) => {
      const config = await loadConfig(o.config);
      const cells = await listCells(apiUrl(config));
      const rows = [...cells].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '')).map((c) => [
        c.name ?? '', c.uuid, o.verbose ? c.transport_url : redactTransport(c.transport_url),
        o.verbose ? c.database_connection : redactDbUrl(c.database_connection).replace('***', '****'), c.disabled ? 'True' : 'False',
      ]);
      console.log(prettyTable(['Name', 'UUID', 'Transport URL', 'Database Connection', 'Disabled'], rows));
    });
  cell.command('discover_hosts').description('Map compute hosts that registered since the last discovery')
    .addOption(configOpt()).option('--cell_uuid <uuid>', 'only this cell').option('--verbose', 'explain every step').option('--strict', 'exit 1 when no new host was found')
    .option('--by-service', 'accepted for compatibility (hosts are found by their compute nodes)')
    .action(async (o: { config?: string; cell_uuid?: string; verbose?: boolean; strict?: boolean }) => {
      const config = await loadConfig(o.config);
      const cells = await Cells.open(apiUrl(config));
      try {
        const found = await discoverHosts(cells, { cellUuid: o.cell_uuid, log: o.verbose ? (m) => console.log(m) : undefined });
        if (o.strict && !found.length) process.exitCode = 1;
      } finally { await cells.close(); }
    });
  cell.command('map_instances').description('Map the live instances of a cell that have no instance mapping (the API cannot find them)')
    .addOption(configOpt()).requiredOption('--cell_uuid <uuid>', 'the cell whose instances are mapped')
    .option('--max-count <n>', 'accepted for compatibility (every unmapped instance is mapped in one run)')
    .action(async (o: { config?: string; cell_uuid: string }) => {
      const config = await loadConfig(o.config);
      const cells = await Cells.open(apiUrl(config));
      try {
        if (!(await cells.list(true)).some((c) => c.uuid === o.cell_uuid)) { console.error(`Cell with uuid ${o.cell_uuid} was not found.`); process.exitCode = 1; return; }
        const mapped = await mapInstances(cells, { cellUuid: o.cell_uuid });
        console.log(`${mapped.length} instance(s) mapped in cell ${o.cell_uuid}.`);
      } finally { await cells.close(); }
    });
  cell.command('list_hosts').description('List mapped compute hosts').addOption(configOpt()).option('--cell_uuid <uuid>', 'only this cell')
    .action(async (o: { config?: string; cell_uuid?: string }) => {
      const config = await loadConfig(o.config);
      const hosts = await listHosts(apiUrl(config), o.cell_uuid);
      console.log(prettyTable(['Cell Name', 'Cell UUID', 'Hostname'], hosts.map((h) => [h.cellName ?? '', h.cellUuid, h.host])));
    });
  cell.command('delete_cell').description('Delete an empty cell mapping').addOption(configOpt()).requiredOption('--cell_uuid <uuid>', 'cell to delete').option('--force', 'also delete its host mappings')
    .action(async (o: { config?: string; cell_uuid: string; force?: boolean }) => {
      const config = await loadConfig(o.config);
      if (o.cell_uuid === CELL0_UUID && !o.force) { /* nova-manage allows deleting cell0 too */ }
      const r = await deleteCell(apiUrl(config), o.cell_uuid, o.force);
      if (r.message) console.log(r.message);
      process.exitCode = r.code;
    });

  const status = program.command('status').description('Deployment checks (nova-status)');
  status.command('upgrade-check').description('Checks a compute deployment is ready (cells, placement, hosts, service versions)').addOption(configOpt())
    .option('--format <fmt>', 'table or json', 'table')
    .action(async (o: { config?: string; format: string }) => {
      const config = await loadConfig(o.config);
      process.exitCode = await upgradeCheck(config, o.format === 'json' ? 'json' : 'table');
    });
  registerAuditCommands(status, manage);
}

/** `stratus serve conductor|scheduler|compute`: the compute processes without an HTTP API. */
export const WORKER_NAMES: Record<string, WorkerKind> = { conductor: 'conductor', scheduler: 'scheduler', compute: 'compute', 'nova-conductor': 'conductor', 'nova-scheduler': 'scheduler', 'nova-compute': 'compute' };

export async function serveWorker(name: string, o: { config?: string; fakeHosts?: number }): Promise<{ stop(): Promise<void> }> {
  const config = await loadConfig(o.config);
  const logger = createLogger({ level: config.get<boolean>('DEFAULT', 'debug') ? 'debug' : 'info', file: config.get<string | undefined>('DEFAULT', 'log_file') });
  for (const w of config.warnings) logger.warn(w.message);
  const kind = WORKER_NAMES[name];
  const w = await startWorkers({ config, logger, kinds: [kind], fakeHosts: o.fakeHosts });
  logger.info(`${kind} running${kind === 'compute' ? ` (${w.agents.map((a) => a.host).join(', ')})` : ''}`);
  return w;
}
