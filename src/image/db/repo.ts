// Every query of the Image service. Visibility rules live here as SQL conditions (as in Glance's
// database layer), so list, show and every mutation see the same set of images.
import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool, type Transaction } from 'kysely';
import type { ImageDB, ImageRow, LocationRow, MemberRow, StagingRow, TaskRow } from './schema.ts';
import { rowToImage, nowIso, type Image } from '../model.ts';
import { isUniqueViolation, retryOnDeadlock } from '../../common/db/database.ts';
import { Conflict } from '../../common/errors.ts';

export type DB = Kysely<ImageDB>;
type EB = ExpressionBuilder<ImageDB, 'images'>;

/** Who is looking: admins see everything, others their project's, public, community and shared-with-them images. */
export interface Viewer { projectId?: string; isAdmin: boolean }

export type Op = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte';
export interface Cmp { op: Op; value: string }

export interface ListFilters {
  visibility?: 'public' | 'private' | 'shared' | 'community' | 'all';
  memberStatus: 'pending' | 'accepted' | 'rejected' | 'all';
  /** `in:` lists or a single value (an array of one). */
  name?: string[];
  id?: string[];
  status?: string[];
  disk_format?: string[];
  container_format?: string[];
  owner?: string[];
  size_min?: number;
  size_max?: number;
  protected?: boolean;
  os_hidden: boolean;
  tags: string[];
  created_at: Cmp[];
  updated_at: Cmp[];
  properties: Record<string, string[]>;
}

export interface ListKey { id: string; revision: number; visibility: string; owner: string | null }

export interface ListParams {
  filters: ListFilters;
  sortKeys: string[];
  sortDirs: ('asc' | 'desc')[];
  limit: number;
  marker?: Image;
}

/**
 * Stored times carry milliseconds; filters name a second (`c.value` is YYYY-MM-DDTHH:MM:SS), as
 * the API shows times. So `gt:T` means after the whole second T, `eq:T` within it.
 */
function timeCond(eb: EB, col: 'images.created_at' | 'images.updated_at', c: Cmp): Expression<SqlBool> {
  const lo = `${c.value}.000Z`;
  const hi = `${c.value}.999Z`;
  switch (c.op) {
    case 'gt': return eb(col, '>', hi);
    case 'gte': return eb(col, '>=', lo);
    case 'lt': return eb(col, '<', lo);
    case 'lte': return eb(col, '<=', hi);
    case 'eq': return eb.and([eb(col, '>=', lo), eb(col, '<=', hi)]);
    case 'neq': return eb.or([eb(col, '<', lo), eb(col, '>', hi)]);
  }
}

export interface TaskQuery {
  owner?: string;
  status?: string;
  type?: string;
  sortKey: 'id' | 'type' | 'status' | 'owner' | 'created_at' | 'updated_at' | 'expires_at';
  sortDir: 'asc' | 'desc';
  limit: number;
  marker?: TaskRow;
}

export class ImageRepo {
  /** [task] task_time_to_live: a finished task is kept this long, then expires (Glance's 48 h). */
  taskTtlHours = 48;

  constructor(readonly db: DB) {}

  // --- visibility ----------------------------------------------------------------------------

  private memberOf(eb: EB, projectId: string, status: ListFilters['memberStatus'] | 'any') {
    let q = eb.selectFrom('image_members as m').select(sql.lit(1).as('one'))
      .whereRef('m.image_id', '=', 'images.id').where('m.member', '=', projectId);
    if (status !== 'any' && status !== 'all') q = q.where('m.status', '=', status);
    return eb.exists(q);
  }

  /** The images `viewer` may see at all (GET by id). */
  private visibleCond(eb: EB, viewer: Viewer): Expression<SqlBool> {
    if (viewer.isAdmin) return sql<SqlBool>`1 = 1`;
    const p = viewer.projectId;
    const ors: Expression<SqlBool>[] = [eb('images.visibility', 'in', ['public', 'community']), eb('images.owner', 'is', null)];
    if (p) {
      ors.push(eb('images.owner', '=', p));
      ors.push(eb.and([eb('images.visibility', '=', 'shared'), this.memberOf(eb, p, 'any')]));
    }
    return eb.or(ors);
  }

  /** The images a list shows, by Glance's rules for each `visibility` filter. */
  private listCond(eb: EB, viewer: Viewer, f: ListFilters): Expression<SqlBool> {
    const p = viewer.projectId ?? '\u0000';
    const mine = eb('images.owner', '=', p);
    const sharedWithMe = eb.and([eb('images.visibility', '=', 'shared'), this.memberOf(eb, p, f.memberStatus)]);
    const v = f.visibility;
    if (viewer.isAdmin) {
      if (v && v !== 'all') return eb('images.visibility', '=', v);
      if (v === 'all') return sql<SqlBool>`1 = 1`;
      // Default listing: everything but other projects' community images (they are listed only on request).
      return eb.or([eb('images.visibility', '<>', 'community'), mine]);
    }
    switch (v) {
      case 'public': return eb('images.visibility', '=', 'public');
      case 'community': return eb('images.visibility', '=', 'community');
      case 'private': return eb.and([eb('images.visibility', '=', 'private'), mine]);
      case 'shared': return eb.and([eb('images.visibility', '=', 'shared'), eb.or([mine, this.memberOf(eb, p, f.memberStatus)])]);
      case 'all': return eb.or([eb('images.visibility', 'in', ['public', 'community']), mine, sharedWithMe]);
      default: return eb.or([eb('images.visibility', '=', 'public'), mine, sharedWithMe]);
    }
  }

  // --- reads -----------------------------------------------------------------------------------

  async getRow(id: string, viewer?: Viewer, trx: DB | Transaction<ImageDB> = this.db): Promise<ImageRow | undefined> {
    let q = trx.selectFrom('images').selectAll().where('id', '=', id).where('deleted', '=', 0);
    if (viewer) q = q.where((eb) => this.visibleCond(eb, viewer));
    return q.executeTakeFirst();
  }

  /** An image with its properties, tags and locations, if it exists and `viewer` may see it. */
  async get(id: string, viewer?: Viewer, trx: DB | Transaction<ImageDB> = this.db): Promise<Image | undefined> {
    const row = await this.getRow(id, viewer, trx);
    if (!row) return undefined;
    const [props, tags, locs] = await Promise.all([
      trx.selectFrom('image_properties').select(['name', 'value']).where('image_id', '=', id).execute(),
      trx.selectFrom('image_tags').select(['value']).where('image_id', '=', id).orderBy('created_at').orderBy('value').execute(),
      trx.selectFrom('image_locations').selectAll().where('image_id', '=', id).orderBy('created_at').execute(),
    ]);
    return rowToImage(row, Object.fromEntries(props.map((p) => [p.name, p.value])), tags.map((t) => t.value), locs);
  }

  async list(viewer: Viewer, p: ListParams): Promise<Image[]> {
    const keys = await this.listKeys(viewer, p);
    return this.getMany(keys.map((k) => k.id));
  }

  /** Images by id, in the order given, with properties, tags and locations. */
  async getMany(ids: string[]): Promise<Image[]> {
    const rows: ImageRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      rows.push(...await this.db.selectFrom('images').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute());
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    return this.hydrate(ids.map((id) => byId.get(id)).filter((r): r is ImageRow => r !== undefined));
  }

  /**
   * The page of a list, as the few columns needed to decide what to show: callers reuse rendered
   * images whose revision has not changed and load only the others (see getMany()).
   */
  async listKeys(viewer: Viewer, p: ListParams): Promise<ListKey[]> {
    const f = p.filters;
    let q = this.db.selectFrom('images').select(['images.id', 'images.revision', 'images.visibility', 'images.owner']).where('images.deleted', '=', 0)
      .where((eb) => this.listCond(eb, viewer, f));
    if (f.status) q = q.where('images.status', 'in', f.status);
    else q = q.where('images.status', '<>', 'killed');
    if (f.name) q = q.where('images.name', 'in', f.name);
    if (f.id) q = q.where('images.id', 'in', f.id);
    if (f.disk_format) q = q.where('images.disk_format', 'in', f.disk_format);
    if (f.container_format) q = q.where('images.container_format', 'in', f.container_format);
    if (f.owner) q = q.where('images.owner', 'in', f.owner);
    if (f.size_min !== undefined) q = q.where('images.size', '>=', f.size_min);
    if (f.size_max !== undefined) q = q.where('images.size', '<=', f.size_max);
    if (f.protected !== undefined) q = q.where('images.protected', '=', f.protected ? 1 : 0);
    // os_hidden=false (the default) hides hidden images; os_hidden=true lists only them.
    q = q.where('images.os_hidden', '=', f.os_hidden ? 1 : 0);
    for (const c of f.created_at) q = q.where((eb) => timeCond(eb, 'images.created_at', c));
    for (const c of f.updated_at) q = q.where((eb) => timeCond(eb, 'images.updated_at', c));
    for (const tag of f.tags) {
      q = q.where((eb) => eb.exists(eb.selectFrom('image_tags as t').select(sql.lit(1).as('one'))
        .whereRef('t.image_id', '=', 'images.id').where('t.value', '=', tag)));
    }
    for (const [name, values] of Object.entries(f.properties)) {
      q = q.where((eb) => eb.exists(eb.selectFrom('image_properties as pr').select(sql.lit(1).as('one'))
        .whereRef('pr.image_id', '=', 'images.id').where('pr.name', '=', name).where('pr.value', 'in', values)));
    }
    // Sort by the requested keys, then created_at and id so pages never overlap or skip.
    const keys = [...p.sortKeys];
    const dirs = [...p.sortDirs];
    while (dirs.length < keys.length) dirs.push(dirs[dirs.length - 1] ?? 'desc');
    for (const k of ['created_at', 'id']) if (!keys.includes(k)) { keys.push(k); dirs.push(dirs[0] ?? 'desc'); }
    if (p.marker) {
      const m = p.marker as unknown as Record<string, unknown>;
      q = q.where((eb) => {
        const ors: Expression<SqlBool>[] = [];
        for (let i = 0; i < keys.length; i++) {
          const ands: Expression<SqlBool>[] = [];
          for (let j = 0; j < i; j++) ands.push(eb(sortExpr(keys[j]), '=', sortValue(keys[j], m[keys[j]])));
          ands.push(eb(sortExpr(keys[i]), dirs[i] === 'asc' ? '>' : '<', sortValue(keys[i], m[keys[i]])));
          ors.push(eb.and(ands));
        }
        return eb.or(ors);
      });
    }
    for (let i = 0; i < keys.length; i++) q = q.orderBy(sortExpr(keys[i]), dirs[i]);
    const rows = await q.limit(p.limit).execute();
    return rows.map((r) => ({ id: r.id, revision: Number(r.revision), visibility: r.visibility, owner: r.owner }));
  }

  /** Loads properties, tags and locations of many images in three queries. */
  async hydrate(rows: ImageRow[]): Promise<Image[]> {
    if (!rows.length) return [];
    const ids = rows.map((r) => r.id);
    const props = new Map<string, Record<string, string>>();
    const tags = new Map<string, string[]>();
    const locs = new Map<string, LocationRow[]>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const [pr, tg, lc] = await Promise.all([
        this.db.selectFrom('image_properties').select(['image_id', 'name', 'value']).where('image_id', 'in', chunk).execute(),
        this.db.selectFrom('image_tags').select(['image_id', 'value']).where('image_id', 'in', chunk).orderBy('created_at').orderBy('value').execute(),
        this.db.selectFrom('image_locations').selectAll().where('image_id', 'in', chunk).orderBy('created_at').execute(),
      ]);
      for (const r of pr) { let o = props.get(r.image_id); if (!o) props.set(r.image_id, (o = {})); o[r.name] = r.value; }
      for (const r of tg) { let o = tags.get(r.image_id); if (!o) tags.set(r.image_id, (o = [])); o.push(r.value); }
      for (const r of lc) { let o = locs.get(r.image_id); if (!o) locs.set(r.image_id, (o = [])); o.push(r); }
    }
    return rows.map((r) => rowToImage(r, props.get(r.id) ?? {}, tags.get(r.id) ?? [], locs.get(r.id) ?? []));
  }

  // --- writes ----------------------------------------------------------------------------------

  async create(img: Image): Promise<void> {
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('images').values({
          id: img.id, name: img.name, disk_format: img.disk_format, container_format: img.container_format,
          size: img.size, virtual_size: img.virtual_size, status: img.status, visibility: img.visibility,
          checksum: img.checksum, os_hash_algo: img.os_hash_algo, os_hash_value: img.os_hash_value,
          min_disk: img.min_disk, min_ram: img.min_ram, protected: img.protected ? 1 : 0, os_hidden: img.os_hidden ? 1 : 0,
          owner: img.owner, created_at: img.created_at, updated_at: img.updated_at, deleted: 0, deleted_at: null,
          upload_owner: null, upload_heartbeat: null, revision: 0,
        }).execute();
        await this.writeProperties(trx, img.id, {}, img.properties);
        await this.writeTags(trx, img.id, [], img.tags, img.created_at);
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`Image with identifier ${img.id} already exists!`);
      throw e;
    }
  }

  /**
   * Saves a modified image (base attributes, properties, tags), only if nobody changed it since
   * `before` was read (same revision); returns false otherwise, and the caller re-reads.
   */
  async save(before: Image, after: Image): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const set: Record<string, unknown> = { updated_at: after.updated_at, revision: BUMP };
      const cols = ['name', 'disk_format', 'container_format', 'size', 'virtual_size', 'status', 'visibility', 'checksum',
        'os_hash_algo', 'os_hash_value', 'min_disk', 'min_ram', 'owner'] as const;
      for (const c of cols) if (before[c] !== after[c]) (set as Record<string, unknown>)[c] = after[c];
      if (before.protected !== after.protected) set.protected = after.protected ? 1 : 0;
      if (before.os_hidden !== after.os_hidden) set.os_hidden = after.os_hidden ? 1 : 0;
      const r = await trx.updateTable('images').set(set as Partial<ImageRow>)
        .where('id', '=', after.id).where('deleted', '=', 0).where('revision', '=', before.revision).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await this.writeProperties(trx, after.id, before.properties, after.properties);
      await this.writeTags(trx, after.id, before.tags, after.tags, after.updated_at);
      return true;
    });
  }

  private async writeProperties(trx: Transaction<ImageDB>, id: string, before: Record<string, string>, after: Record<string, string>) {
    const removed = Object.keys(before).filter((k) => !(k in after));
    if (removed.length) await trx.deleteFrom('image_properties').where('image_id', '=', id).where('name', 'in', removed).execute();
    for (const [k, v] of Object.entries(after)) {
      if (!(k in before)) await trx.insertInto('image_properties').values({ image_id: id, name: k, value: v }).execute();
      else if (before[k] !== v) await trx.updateTable('image_properties').set({ value: v }).where('image_id', '=', id).where('name', '=', k).execute();
    }
  }

  private async writeTags(trx: Transaction<ImageDB>, id: string, before: string[], after: string[], ts: string) {
    const removed = before.filter((t) => !after.includes(t));
    if (removed.length) await trx.deleteFrom('image_tags').where('image_id', '=', id).where('value', 'in', removed).execute();
    const added = after.filter((t) => !before.includes(t));
    if (added.length) await trx.insertInto('image_tags').values(added.map((value) => ({ image_id: id, value, created_at: ts }))).execute();
  }

  /** Atomic status change with optional column updates; false when the image was not in `from`. */
  async transition(id: string, from: string | string[], to: string, extra: Partial<ImageRow> = {}): Promise<boolean> {
    const froms = Array.isArray(from) ? from : [from];
    const r = await this.db.updateTable('images').set({ ...extra, status: to, updated_at: extra.updated_at ?? nowIso(), revision: BUMP })
      .where('id', '=', id).where('deleted', '=', 0).where('status', 'in', froms).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** saving → active with the data's attributes and location, atomically; false if the image left `from`. */
  async activate(id: string, from: string, set: Partial<ImageRow>, loc: LocationRow): Promise<boolean> {
    // MariaDB may roll this back as a deadlock against the upload's heartbeat on the same row.
    return retryOnDeadlock(() => this.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('images')
        .set({ ...set, status: 'active', updated_at: nowIso(), upload_owner: null, upload_heartbeat: null, revision: BUMP })
        .where('id', '=', id).where('deleted', '=', 0).where('status', '=', from).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await putLocation(trx, loc);
      return true;
    }));
  }

  /** Records staged data of an image still `uploading`; false if the image left that status. */
  async staged(id: string, row: StagingRow): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('images').set({ updated_at: nowIso(), upload_owner: null, upload_heartbeat: null, revision: BUMP })
        .where('id', '=', id).where('deleted', '=', 0).where('status', '=', 'uploading').executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await putStaging(trx, row);
      return true;
    });
  }

  async recordStaging(row: StagingRow): Promise<void> {
    await this.db.transaction().execute((trx) => putStaging(trx, row));
  }

  /** Sets a property only if the image has none of that name (an atomic lock). */
  async setPropertyIfAbsent(id: string, name: string, value: string): Promise<boolean> {
    try {
      await this.db.insertInto('image_properties').values({ image_id: id, name, value }).execute();
      await this.touch(id);
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async setProperty(id: string, name: string, value: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      // The image row first, then its children: the lock order every transaction here follows.
      await this.touch(id, trx);
      const r = await trx.updateTable('image_properties').set({ value }).where('image_id', '=', id).where('name', '=', name).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) {
        const exists = await trx.selectFrom('image_properties').select('name').where('image_id', '=', id).where('name', '=', name).executeTakeFirst();
        if (!exists) await trx.insertInto('image_properties').values({ image_id: id, name, value }).execute();
      }
    });
  }

  /** Marks the image changed (updated_at, revision) after a change to its properties or locations. */
  async touch(id: string, trx: DB | Transaction<ImageDB> = this.db): Promise<void> {
    await trx.updateTable('images').set({ updated_at: nowIso(), revision: BUMP }).where('id', '=', id).execute();
  }

  async deleteProperty(id: string, name: string, value?: string): Promise<boolean> {
    let q = this.db.deleteFrom('image_properties').where('image_id', '=', id).where('name', '=', name);
    if (value !== undefined) q = q.where('value', '=', value);
    const r = await q.executeTakeFirst();
    const deleted = Number(r.numDeletedRows) > 0;
    if (deleted) await this.touch(id);
    return deleted;
  }

  async stagingOf(id: string): Promise<StagingRow | undefined> {
    return this.db.selectFrom('image_staging').selectAll().where('image_id', '=', id).executeTakeFirst();
  }

  async removeStaging(id: string): Promise<void> {
    await this.db.deleteFrom('image_staging').where('image_id', '=', id).execute();
  }

  async heartbeat(id: string, owner: string): Promise<void> {
    await this.db.updateTable('images').set({ upload_heartbeat: nowIso() })
      .where('id', '=', id).where('upload_owner', '=', owner).where('status', 'in', ['saving', 'importing', 'uploading']).execute();
  }

  async addLocation(loc: LocationRow): Promise<void> {
    await this.db.insertInto('image_locations').values(loc).execute();
    await this.touch(loc.image_id);
  }

  async removeLocation(imageId: string, store: string): Promise<void> {
    await this.db.deleteFrom('image_locations').where('image_id', '=', imageId).where('store', '=', store).execute();
    await this.touch(imageId);
  }

  /** Marks the image deleted; returns its locations (whose data the caller removes). */
  async markDeleted(id: string): Promise<LocationRow[] | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const ts = nowIso();
      const r = await trx.updateTable('images').set({ deleted: 1, deleted_at: ts, status: 'deleted', updated_at: ts })
        .where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return undefined;
      const locs = await trx.selectFrom('image_locations').selectAll().where('image_id', '=', id).execute();
      await trx.deleteFrom('image_locations').where('image_id', '=', id).execute();
      await trx.deleteFrom('image_members').where('image_id', '=', id).execute();
      return locs;
    });
  }

  // --- members ---------------------------------------------------------------------------------

  async members(imageId: string): Promise<MemberRow[]> {
    return this.db.selectFrom('image_members').selectAll().where('image_id', '=', imageId).orderBy('created_at').orderBy('member').execute();
  }

  async member(imageId: string, member: string): Promise<MemberRow | undefined> {
    return this.db.selectFrom('image_members').selectAll().where('image_id', '=', imageId).where('member', '=', member).executeTakeFirst();
  }

  async addMember(row: MemberRow): Promise<boolean> {
    try {
      await this.db.insertInto('image_members').values(row).execute();
      return true;
    } catch (e) {
      if (isUniqueViolation(e)) return false;
      throw e;
    }
  }

  async updateMember(imageId: string, member: string, status: string, ts: string): Promise<void> {
    await this.db.updateTable('image_members').set({ status, updated_at: ts }).where('image_id', '=', imageId).where('member', '=', member).execute();
  }

  async deleteMember(imageId: string, member: string): Promise<void> {
    await this.db.deleteFrom('image_members').where('image_id', '=', imageId).where('member', '=', member).execute();
  }

  async countMembers(imageId: string): Promise<number> {
    const r = await this.db.selectFrom('image_members').select((eb) => eb.fn.countAll().as('n')).where('image_id', '=', imageId).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  // --- usage -----------------------------------------------------------------------------------

  /** Bytes of image data a project stores (every copy in every store counts once per image). */
  async usedBytes(owner: string): Promise<number> {
    const r = await this.db.selectFrom('images').select((eb) => eb.fn.sum<number>('size').as('total'))
      .where('owner', '=', owner).where('deleted', '=', 0).where('status', 'in', ['active', 'deactivated', 'saving', 'importing'])
      .executeTakeFirst();
    return Number(r?.total ?? 0);
  }

  async countImages(owner: string, statuses?: string[]): Promise<number> {
    let q = this.db.selectFrom('images').select((eb) => eb.fn.countAll().as('n')).where('owner', '=', owner).where('deleted', '=', 0);
    if (statuses) q = q.where('status', 'in', statuses);
    const r = await q.executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async stagedBytes(owner: string): Promise<number> {
    const r = await this.db.selectFrom('image_staging').select((eb) => eb.fn.sum<number>('size').as('total')).where('owner', '=', owner).executeTakeFirst();
    return Number(r?.total ?? 0);
  }

  // --- tasks -----------------------------------------------------------------------------------

  async createTask(t: TaskRow): Promise<void> {
    await this.db.insertInto('tasks').values(t).execute();
  }

  /** Updates a task; one that ends (success or failure) gets its expiry, as Glance's succeed()/fail(). */
  async updateTask(id: string, set: Partial<TaskRow>): Promise<void> {
    const now = new Date();
    const ends = (set.status === 'success' || set.status === 'failure') && set.expires_at === undefined;
    const expires = ends ? { expires_at: new Date(now.getTime() + this.taskTtlHours * 3600_000).toISOString() } : {};
    await this.db.updateTable('tasks').set({ ...set, ...expires, updated_at: now.toISOString() }).where('id', '=', id).execute();
  }

  /** A task that has not expired. */
  async task(id: string): Promise<TaskRow | undefined> {
    return this.db.selectFrom('tasks').selectAll().where('id', '=', id)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]))
      .executeTakeFirst();
  }

  /** Removes expired tasks (Glance soft-deletes them when tasks are listed). */
  async purgeExpiredTasks(): Promise<void> {
    await this.db.deleteFrom('tasks').where('expires_at', 'is not', null).where('expires_at', '<=', nowIso()).execute();
  }

  /** One page of unexpired tasks, ordered by the sort key then id (a stable order to page on). */
  async listTasks(q: TaskQuery): Promise<TaskRow[]> {
    let query = this.db.selectFrom('tasks').selectAll()
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]));
    if (q.owner !== undefined) query = query.where('owner', '=', q.owner);
    if (q.status) query = query.where('status', '=', q.status);
    if (q.type) query = query.where('type', '=', q.type);
    // Null keys (owner, expires_at) sort as '' on every dialect.
    const key = sql<string>`coalesce(${sql.ref(q.sortKey)}, '')`;
    if (q.marker) {
      const mv = String(q.marker[q.sortKey] ?? '');
      const mid = q.marker.id;
      const after = q.sortDir === 'asc' ? '>' : '<';
      query = query.where((eb) => eb.or([eb(key, after, mv), eb.and([eb(key, '=', mv), eb('id', after, mid)])]));
    }
    return query.orderBy(key, q.sortDir).orderBy('id', q.sortDir).limit(q.limit).execute();
  }

  async tasksOf(imageId: string): Promise<TaskRow[]> {
    return this.db.selectFrom('tasks').selectAll().where('image_id', '=', imageId).orderBy('created_at').execute();
  }
}

const BUMP = sql<number>`revision + 1`;

// Nullable sort keys sort as '' / -1 so every dialect orders (and pages) them the same way.
function sortExpr(key: string) {
  if (key === 'name') return sql<string>`coalesce(images.name, '')`;
  if (key === 'size') return sql<number>`coalesce(images.size, -1)`;
  if (key === 'disk_format') return sql<string>`coalesce(images.disk_format, '')`;
  if (key === 'container_format') return sql<string>`coalesce(images.container_format, '')`;
  return sql.ref<string>(`images.${key}`);
}

function sortValue(key: string, v: unknown): string | number {
  if (key === 'size') return v === null || v === undefined ? -1 : Number(v);
  return v === null || v === undefined ? '' : String(v);
}

/**
 * Writes an image's location in one store. Not delete-then-insert: on MariaDB a DELETE of a key
 * that is not there takes a gap lock, and concurrent activations that each hold one deadlock on
 * their inserts (seen with 20 uploads at once, every retry deadlocking again). A plain read takes
 * no lock; the image row's own update already serialises two activations of the same image.
 */
async function putLocation(trx: Transaction<ImageDB>, loc: LocationRow): Promise<void> {
  const had = await trx.selectFrom('image_locations').select('path').where('image_id', '=', loc.image_id).where('store', '=', loc.store).executeTakeFirst();
  if (had) await trx.updateTable('image_locations').set({ path: loc.path, created_at: loc.created_at }).where('image_id', '=', loc.image_id).where('store', '=', loc.store).execute();
  else await trx.insertInto('image_locations').values(loc).execute();
}

/** The staged data of an image, written as putLocation writes a location (and for the same reason). */
async function putStaging(trx: Transaction<ImageDB>, row: StagingRow): Promise<void> {
  const had = await trx.selectFrom('image_staging').select('path').where('image_id', '=', row.image_id).executeTakeFirst();
  const { image_id: _, ...rest } = row;
  if (had) await trx.updateTable('image_staging').set(rest).where('image_id', '=', row.image_id).execute();
  else await trx.insertInto('image_staging').values(row).execute();
}
