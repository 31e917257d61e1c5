// Cells v2: the API database maps instances and compute hosts to cells; each cell has its own
// database (and may have its own message bus). This module opens and caches those databases
// and implements the operator verbs of `nova-manage cell_v2` / `api_db sync` / `db sync`.
import { randomUUID } from 'node:crypto';
import { openDatabase, type Database } from '../common/db/database.ts';
import { migrate } from '../common/db/migrate.ts';
import { parseDbUrl, redactDbUrl } from '../common/db/url.ts';
import { NotFound, BadRequest, Conflict } from '../common/errors.ts';
import { apiMigrations, cellMigrations } from './db/schema.ts';
import { now } from './util.ts';
import type { ApiDb, CellDb } from './db/tables.ts';

export const CELL0_UUID = '00000000-0000-0000-0000-000000000000';

export interface CellMapping {
  id: number;
  uuid: string;
  name: string | null;
  transport_url: string;
  database_connection: string;
  disabled: number;
}

/** Opens the API database and the cell databases it maps, one pool per cell, on demand. */
/** Instances whose cell is remembered (a few hundred KB at most). */
const INSTANCE_CELL_CACHE = 10_000;

export class Cells {
  private cellDbs = new Map<string, Promise<Database>>();
  private mappings?: { at: number; list: CellMapping[] };
  /**
   * Instance -> cell id, once the instance has one: a mapping's cell is set once (cell0 or the
   * cell it was built in) and never changes, and every request about an instance asks for it,
   * often several times (a delete: four).
   */
  private instanceCells = new Map<string, number>();
  constructor(readonly api: Database, private readonly poolSize = 10) {}

  static async open(apiUrl: string, opts: { apiPoolSize?: number; cellPoolSize?: number } = {}): Promise<Cells> {
    return new Cells(await openDatabase(apiUrl, { poolSize: opts.apiPoolSize ?? 10 }), opts.cellPoolSize ?? 10);
  }

  get db(): ApiDb { return this.api.db; }

  /** Cell mappings, re-read at most once a second (create_cell in another process shows up). */
  async list(fresh = false): Promise<CellMapping[]> {
    if (!fresh && this.mappings && Date.now() - this.mappings.at < 1000) return this.mappings.list;
    const list = await this.api.db.selectFrom('cell_mappings').selectAll().orderBy('id').execute() as CellMapping[];
    this.mappings = { at: Date.now(), list };
    return list;
  }

  async byId(id: number): Promise<CellMapping> {
    let c = (await this.list()).find((m) => m.id === id);
    if (!c) c = (await this.list(true)).find((m) => m.id === id);
    if (!c) throw new NotFound(`Cell ${id} could not be found.`);
    return c;
  }

  async byUuid(uuid: string): Promise<CellMapping> {
    const c = (await this.list(true)).find((m) => m.uuid === uuid);
    if (!c) throw new NotFound(`Cell ${uuid} has no mapping.`);
    return c;
  }

  /** The cell database of a mapping (opened once, kept). */
  cellDb(cell: CellMapping): Promise<CellDb> {
    let p = this.cellDbs.get(cell.database_connection);
    if (!p) {
      p = openDatabase(cell.database_connection, { poolSize: this.poolSize });
      p.catch(() => this.cellDbs.delete(cell.database_connection));
      this.cellDbs.set(cell.database_connection, p);
    }
    return p.then((d) => d.db);
  }

  /** Every cell with its database, cell0 included unless told otherwise. */
  async all(opts: { includeCell0?: boolean } = {}): Promise<{ cell: CellMapping; db: CellDb }[]> {
    const cells = (await this.list()).filter((c) => opts.includeCell0 !== false || c.uuid !== CELL0_UUID);
    return Promise.all(cells.map(async (cell) => ({ cell, db: await this.cellDb(cell) })));
  }

  /** The cell an instance lives in (undefined while it is still a build request). */
  async cellOfInstance(uuid: string): Promise<{ cell: CellMapping; db: CellDb } | undefined> {
    let cellId = this.instanceCells.get(uuid);
    if (cellId === undefined) {
      const m = await this.api.db.selectFrom('instance_mappings').select(['cell_id']).where('instance_uuid', '=', uuid).executeTakeFirst();
      if (m?.cell_id == null) return undefined;
      cellId = Number(m.cell_id);
      if (this.instanceCells.size >= INSTANCE_CELL_CACHE) this.instanceCells.delete(this.instanceCells.keys().next().value!);
      this.instanceCells.set(uuid, cellId);
    }
    let cell: CellMapping;
    try { cell = await this.byId(cellId); } catch (e) {
      // A cell deleted since (with its mappings): ask the database again.
      if (!(e instanceof NotFound) || !this.instanceCells.delete(uuid)) throw e;
      return this.cellOfInstance(uuid);
    }
    return { cell, db: await this.cellDb(cell) };
  }

  async cellOfHost(host: string): Promise<CellMapping | undefined> {
    const m = await this.api.db.selectFrom('host_mappings').select(['cell_id']).where('host', '=', host).executeTakeFirst();
    return m ? this.byId(m.cell_id) : undefined;
  }

  async close(): Promise<void> {
    for (const p of this.cellDbs.values()) await p.then((d) => d.close(), () => undefined);
    this.cellDbs.clear();
    await this.api.close();
  }
}

// --- operator verbs -------------------------------------------------------------------------

async function migrateUrl(url: string, set = cellMigrations): Promise<string[]> {
  const d = await openDatabase(url);
  try { return (await migrate(d, set)).applied; } finally { await d.close(); }
}

export async function apiDbSync(apiUrl: string): Promise<string[]> {
  return migrateUrl(apiUrl, apiMigrations);
}

/** `db sync`: the local cell database and, as Nova does, cell0 when it is mapped. */
export async function dbSync(apiUrl: string | undefined, cellUrl: string | undefined, log: (m: string) => void = () => {}): Promise<void> {
  const urls = new Set<string>();
  if (cellUrl) urls.add(cellUrl);
  if (apiUrl) {
    const cells = await Cells.open(apiUrl);
    try {
      for (const c of await cells.list(true)) urls.add(c.database_connection);
    } catch { /* API database not synced yet: only the local cell */ } finally { await cells.close(); }
  }
  for (const u of urls) {
    const applied = await migrateUrl(u);
    log(`${redactDbUrl(u)}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
  }
}

/** Nova's default cell0 URL: the cell database's name with `_cell0` appended. */
export function defaultCell0Url(cellUrl: string): string {
  const u = parseDbUrl(cellUrl);
  if (u.dialect === 'sqlite') {
    if (u.path === ':memory:') throw new BadRequest('Cannot derive a cell0 database from an in-memory SQLite URL; pass --database_connection.');
    return cellUrl.replace(/(\.[a-z0-9]+)?(\?.*)?$/i, (_m, ext: string | undefined, q: string | undefined) => `_cell0${ext ?? ''}${q ?? ''}`);
  }
  const m = /^(.*\/)([^/?]+)(\?.*)?$/.exec(cellUrl)!;
  return `${m[1]}${m[2]}_cell0${m[3] ?? ''}`;
}

async function withApi<T>(apiUrl: string, fn: (c: Cells) => Promise<T>): Promise<T> {
  const cells = await Cells.open(apiUrl);
  try { return await fn(cells); } finally { await cells.close(); }
}

export async function mapCell0(apiUrl: string, o: { databaseConnection?: string; cellUrl?: string }): Promise<{ created: boolean; cell: CellMapping }> {
  return withApi(apiUrl, async (cells) => {
    const existing = (await cells.list(true)).find((c) => c.uuid === CELL0_UUID);
    if (existing) return { created: false, cell: existing };
    const url = o.databaseConnection ?? (o.cellUrl ? defaultCell0Url(o.cellUrl) : undefined);
    if (!url) throw new BadRequest('No [database] connection to derive the cell0 database from; pass --database_connection.');
    await migrateUrl(url);
    await cells.db.insertInto('cell_mappings').values({ uuid: CELL0_UUID, name: 'cell0', transport_url: 'none:///', database_connection: url, disabled: 0, created_at: now() }).execute();
    return { created: true, cell: (await cells.list(true)).find((c) => c.uuid === CELL0_UUID)! };
  });
}

export async function createCell(apiUrl: string, o: { name?: string; databaseConnection?: string; transportUrl?: string; disabled?: boolean }): Promise<CellMapping> {
  if (!o.databaseConnection) throw new BadRequest('Must specify --database_connection if [database]/connection is not set in the configuration file.');
  if (!o.transportUrl) throw new BadRequest('Must specify --transport-url if [DEFAULT]/transport_url is not set in the configuration file.');
  return withApi(apiUrl, async (cells) => {
    const list = await cells.list(true);
    if (list.some((c) => c.database_connection === o.databaseConnection && c.transport_url === o.transportUrl)) {
      throw new Conflict('The specified transport_url and/or database_connection combination already exists for another cell with uuid ' +
        `${list.find((c) => c.database_connection === o.databaseConnection && c.transport_url === o.transportUrl)!.uuid}.`);
    }
    await migrateUrl(o.databaseConnection!);
    const uuid = randomUUID();
    await cells.db.insertInto('cell_mappings').values({ uuid, name: o.name ?? null, transport_url: o.transportUrl!, database_connection: o.databaseConnection!, disabled: o.disabled ? 1 : 0, created_at: now() }).execute();
    return (await cells.list(true)).find((c) => c.uuid === uuid)!;
  });
}

export async function listCells(apiUrl: string): Promise<CellMapping[]> {
  return withApi(apiUrl, (c) => c.list(true));
}

export interface DiscoverResult { host: string; cell: CellMapping }

/** Maps compute hosts that registered in a cell but are not yet in host_mappings. */
export async function discoverHosts(cells: Cells, o: { cellUuid?: string; log?: (m: string) => void } = {}): Promise<DiscoverResult[]> {
  const log = o.log ?? (() => {});
  const list = (await cells.list(true)).filter((c) => !o.cellUuid || c.uuid === o.cellUuid);
  log(`Found ${list.length} cell mappings.`);
  const out: DiscoverResult[] = [];
  for (const cell of list) {
    if (cell.uuid === CELL0_UUID) { log('Skipping cell0 since it does not contain hosts.'); continue; }
    log(`Getting computes from cell '${cell.name ?? ''}': ${cell.uuid}`);
    const db = await cells.cellDb(cell);
    const nodes = await db.selectFrom('compute_nodes').select(['id', 'host']).where('mapped', '=', 0).execute();
    const hosts = [...new Set(nodes.map((n) => n.host as string))];
    for (const host of hosts) {
      log(`Checking host mapping for compute host '${host}': ${nodes.find((n) => n.host === host)!.id}`);
      const existing = await cells.db.selectFrom('host_mappings').select(['cell_id']).where('host', '=', host).executeTakeFirst();
      if (!existing) {
        log(`Creating host mapping for compute host '${host}': ${nodes.find((n) => n.host === host)!.id}`);
        try {
          await cells.db.insertInto('host_mappings').values({ cell_id: cell.id, host, created_at: now() }).execute();
          out.push({ host, cell });
        } catch { /* another discoverer mapped it at the same time */ }
      }
      await db.updateTable('compute_nodes').set({ mapped: 1 }).where('host', '=', host).execute();
    }
    log(`Found ${hosts.length} unmapped computes in cell: ${cell.uuid}`);
  }
  return out;
}

export async function listHosts(apiUrl: string, cellUuid?: string): Promise<{ cellName: string | null; cellUuid: string; host: string }[]> {
  return withApi(apiUrl, async (cells) => {
    const list = await cells.list(true);
    const rows = await cells.db.selectFrom('host_mappings').select(['cell_id', 'host']).orderBy('host').execute();
    return rows.map((r) => ({ cell: list.find((c) => c.id === r.cell_id)!, host: r.host as string }))
      .filter((r) => r.cell && (!cellUuid || r.cell.uuid === cellUuid))
      .map((r) => ({ cellName: r.cell.name, cellUuid: r.cell.uuid, host: r.host }));
  });
}

/** Exit codes as nova-manage: 0 deleted, 1 not found, 2 hosts mapped, 3 instances. */
export async function deleteCell(apiUrl: string, cellUuid: string, force = false): Promise<{ code: number; message: string }> {
  return withApi(apiUrl, async (cells) => {
    const cell = (await cells.list(true)).find((c) => c.uuid === cellUuid);
    if (!cell) return { code: 1, message: `Cell with uuid ${cellUuid} was not found.` };
    const hosts = await cells.db.selectFrom('host_mappings').select('id').where('cell_id', '=', cell.id).execute();
    if (hosts.length && !force) return { code: 2, message: 'There are existing hosts mapped to cell with uuid ' + `${cellUuid}.` };
    const db = await cells.cellDb(cell);
    const inst = await db.selectFrom('instances').select('id').where('deleted', '=', 0).limit(1).execute();
    if (inst.length) return { code: 3, message: `There are existing instances mapped to cell with uuid ${cellUuid}.` };
    await cells.db.deleteFrom('host_mappings').where('cell_id', '=', cell.id).execute();
    await cells.db.deleteFrom('instance_mappings').where('cell_id', '=', cell.id).execute();
    await cells.db.deleteFrom('cell_mappings').where('id', '=', cell.id).execute();
    return { code: 0, message: '' };
  });
}

/**
 * The all-in-one's cells, idempotent: cell0 next to the local cell database and cell1 on the
 * local cell database and bus.
 */
export async function ensureDefaultCells(apiUrl: string, cellUrl: string, transportUrl: string): Promise<void> {
  await apiDbSync(apiUrl);
  await mapCell0(apiUrl, { cellUrl });
  const list = await listCells(apiUrl);
  if (!list.some((c) => c.uuid !== CELL0_UUID)) await createCell(apiUrl, { name: 'cell1', databaseConnection: cellUrl, transportUrl });
  await dbSync(apiUrl, cellUrl);
}
