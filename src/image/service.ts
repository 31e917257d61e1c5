// The running Image service: configuration resolved once, the database, the stores, the policy,
// quota arithmetic, and the background work that keeps images from being stuck (stale uploads go
// back to `queued`, orphaned files are scrubbed).
import { getHashes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, isAbsolute, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/logging.ts';
import type { Database } from '../common/db/database.ts';
import { PolicyEngine } from '../common/http/policy.ts';
import { ImageRepo } from './db/repo.ts';
import type { ImageDB } from './db/schema.ts';
import { FilesystemStore, type DirectIo } from './store/filesystem.ts';
import { imagePolicyDefaults } from './policy.ts';
import { parseSize } from './config.ts';
import { nowIso } from './model.ts';
import { seedMetadefs } from './metadefs/store.ts';
import { OverQuota } from '../common/errors.ts';

/** Glance answers quota overruns with 413. */
export class QuotaExceeded extends OverQuota {
  override readonly status = 413;
}

export interface ImageLimits {
  sizeCap: number;
  storageQuota: number;
  countTotal: number;
  countUploading: number;
  stageTotalBytes: number;
  members: number;
  properties: number;
  tags: number;
}

export class ImageService {
  readonly repo: ImageRepo;
  readonly stores = new Map<string, FilesystemStore>();
  readonly defaultStore: FilesystemStore;
  readonly staging: FilesystemStore;
  readonly multiStore: boolean;
  readonly hashAlgo: string;
  readonly limits: ImageLimits;
  readonly diskFormats: string[];
  readonly containerFormats: string[];
  readonly importMethods: string[];
  readonly nodeId: string;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    readonly config: Config,
    readonly database: Database<ImageDB>,
    readonly policy: PolicyEngine,
    readonly logger: Logger,
    readonly publicUrl: string,
  ) {
    this.repo = new ImageRepo(database.db);
    this.repo.taskTtlHours = config.get<number>('task', 'task_time_to_live');
    const statePath = config.get<string>('DEFAULT', 'state_path');
    const backends = config.get<string[]>('DEFAULT', 'enabled_backends');
    this.multiStore = backends.length > 0;
    if (this.multiStore) {
      const defaultId = config.get<string | undefined>('glance_store', 'default_backend');
      for (const spec of backends) {
        const [id, type] = spec.split(':').map((s) => s.trim());
        if (!id || (type ?? 'file') !== 'file') throw new Error(`[DEFAULT] enabled_backends: "${spec}" is not "<id>:file" (only filesystem stores are supported)`);
        if (id.startsWith('os_glance_')) throw new Error(`[DEFAULT] enabled_backends: store ids starting with os_glance_ are reserved`);
        const dir = config.get<string | undefined>(id, 'filesystem_store_datadir') ?? join(statePath, 'images', id);
        this.stores.set(id, new FilesystemStore(id, dir, false, config.get<string | undefined>(id, 'store_description')));
      }
      const def = defaultId ?? [...this.stores.keys()][0];
      if (!this.stores.has(def)) throw new Error(`[glance_store] default_backend = ${def} is not in [DEFAULT] enabled_backends`);
      const d = this.stores.get(def)!;
      this.defaultStore = new FilesystemStore(d.id, d.dir, true, d.description);
      this.stores.set(def, this.defaultStore);
    } else {
      const dir = config.get<string | undefined>('glance_store', 'filesystem_store_datadir') ?? join(statePath, 'images');
      this.defaultStore = new FilesystemStore('file', dir, true);
      this.stores.set('file', this.defaultStore);
    }
    const stagingUri = config.get<string | undefined>('DEFAULT', 'node_staging_uri');
    const stagingDir = stagingUri ? fileUriPath(stagingUri) : join(statePath, 'images', 'staging');
    this.staging = new FilesystemStore('os_glance_staging_store', stagingDir);
    const writes = config.get<DirectIo>('glance_store', 'upload_direct_io');
    const reads = config.get<DirectIo>('glance_store', 'download_direct_io');
    for (const s of [...this.stores.values(), this.staging]) { s.uploadDirectIo = writes; s.downloadDirectIo = reads; }

    const algo = config.get<string>('DEFAULT', 'hashing_algorithm');
    const known = getHashes();
    const nodeAlgo = known.includes(algo) ? algo : algo.replace('_', '-');
    if (!known.includes(nodeAlgo)) throw new Error(`[DEFAULT] hashing_algorithm = ${algo} is not a hash this system provides`);
    this.hashAlgo = nodeAlgo;

    const quota = config.get<string>('DEFAULT', 'user_storage_quota');
    let storageQuota: number;
    try { storageQuota = parseSize(quota); } catch (e) { throw new Error(`[DEFAULT] user_storage_quota: ${(e as Error).message}`); }
    const stage = config.get<number>('image_limits', 'image_stage_total');
    this.limits = {
      sizeCap: config.get<number>('DEFAULT', 'image_size_cap'),
      storageQuota: storageQuota || Infinity,
      countTotal: unlimited(config.get<number>('image_limits', 'image_count_total')),
      countUploading: unlimited(config.get<number>('image_limits', 'image_count_uploading')),
      stageTotalBytes: stage < 0 ? Infinity : stage * 2 ** 20,
      members: unlimited(config.get<number>('DEFAULT', 'image_member_quota')),
      properties: unlimited(config.get<number>('DEFAULT', 'image_property_quota')),
      tags: unlimited(config.get<number>('DEFAULT', 'image_tag_quota')),
    };
    this.diskFormats = config.get<string[]>('image_format', 'disk_formats');
    this.containerFormats = config.get<string[]>('image_format', 'container_formats');
    this.importMethods = config.get<string[]>('DEFAULT', 'enabled_import_methods');
    for (const m of this.importMethods) {
      if (!['glance-direct', 'web-download', 'copy-image'].includes(m)) throw new Error(`[DEFAULT] enabled_import_methods: unknown method ${m}`);
    }
    const host = config.get<string>('DEFAULT', 'host') || hostname();
    this.nodeId = `${host}:${this.defaultStore.dir}`;
  }

  static async policyFrom(config: Config): Promise<PolicyEngine> {
    const file = config.get<string>('oslo_policy', 'policy_file');
    const base = config.file ? dirname(config.file) : process.cwd();
    const path = isAbsolute(file) ? file : resolve(base, file);
    return PolicyEngine.load(imagePolicyDefaults, path);
  }

  async start(): Promise<void> {
    for (const s of [...this.stores.values(), this.staging]) await s.init();
    await this.recover();
    const seeded = await seedMetadefs(this.database.db);
    if (seeded.length) this.logger.info({ namespaces: seeded }, 'seeded metadata definitions');
    const staleMs = this.config.get<number>('image_limits', 'stale_upload_seconds') * 1000;
    const t = setInterval(() => { this.resetStale(staleMs).catch((e) => this.logger.error({ err: e }, 'stale upload check failed')); }, Math.min(60_000, staleMs / 2));
    t.unref();
    this.timers.push(t);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /**
   * Start-up recovery: uploads this node was running when it stopped can never finish, so their
   * images go back to `queued` (imports back to where they started); temporary files of dead
   * processes and data files no image refers to are removed.
   */
  async recover(): Promise<void> {
    const db = this.database.db;
    const stuck = await db.selectFrom('images').select(['id', 'status']).where('deleted', '=', 0)
      .where('status', 'in', ['saving', 'importing', 'uploading']).where('upload_owner', '=', this.nodeId).execute();
    for (const s of stuck) {
      const to = await this.rollbackStatus(s.id, s.status);
      await this.repo.transition(s.id, s.status, to, { upload_owner: null, upload_heartbeat: null });
      this.logger.warn({ image: s.id, from: s.status, to }, 'image upload interrupted by a restart: status reset');
    }
    for (const store of this.stores.values()) {
      const removed = await store.scrub(async (name) => {
        const loc = await db.selectFrom('image_locations').select('image_id').where('store', '=', store.id).where('path', '=', name).executeTakeFirst();
        return loc !== undefined;
      });
      if (removed.length) this.logger.info({ store: store.id, removed }, 'scrubbed orphaned image files');
    }
    const removed = await this.staging.scrub(async (name) => {
      const st = await db.selectFrom('image_staging').select('image_id').where('path', '=', name).executeTakeFirst();
      return st !== undefined;
    });
    if (removed.length) this.logger.info({ removed }, 'scrubbed orphaned staging files');
  }

  /**
   * Where an interrupted upload goes back to: `queued`, except an import whose data is already
   * staged, which goes back to `uploading` (ready for another import call).
   */
  async rollbackStatus(imageId: string, status: string): Promise<string> {
    if (status === 'saving') return 'queued';
    const staged = await this.repo.stagingOf(imageId);
    return staged && status === 'importing' ? 'uploading' : 'queued';
  }

  /** Uploads whose process stopped reporting (crashed elsewhere) go back to `queued`. */
  async resetStale(staleMs: number): Promise<void> {
    const before = new Date(Date.now() - staleMs).toISOString();
    const stale = await this.database.db.selectFrom('images').select(['id', 'status', 'upload_owner']).where('deleted', '=', 0)
      .where('status', 'in', ['saving', 'importing', 'uploading']).where('upload_heartbeat', '<', before).execute();
    for (const s of stale) {
      const to = await this.rollbackStatus(s.id, s.status);
      if (await this.repo.transition(s.id, s.status, to, { upload_owner: null, upload_heartbeat: null })) {
        this.logger.warn({ image: s.id, owner: s.upload_owner, to }, 'image upload stopped reporting: status reset');
      }
    }
  }

  storeFor(id: string | undefined): FilesystemStore | undefined {
    return id === undefined ? this.defaultStore : this.stores.get(id);
  }

  // --- quotas ----------------------------------------------------------------------------------

  /** Bytes `owner` may still store (Infinity when unlimited). */
  async remainingStorage(owner: string | null): Promise<number> {
    if (this.limits.storageQuota === Infinity || !owner) return Infinity;
    return Math.max(0, this.limits.storageQuota - (await this.repo.usedBytes(owner)));
  }

  async checkImageCount(owner: string | null): Promise<void> {
    if (this.limits.countTotal === Infinity || !owner) return;
    const n = await this.repo.countImages(owner);
    if (n >= this.limits.countTotal) {
      throw new QuotaExceeded(`Maximum number of images exceeded: project ${owner} has ${n} of ${this.limits.countTotal} images`);
    }
  }

  async checkUploading(owner: string | null): Promise<void> {
    if (this.limits.countUploading === Infinity || !owner) return;
    const n = await this.repo.countImages(owner, ['saving', 'importing', 'uploading']);
    if (n >= this.limits.countUploading) {
      throw new QuotaExceeded(`Maximum number of images uploading at once exceeded: project ${owner} has ${n} of ${this.limits.countUploading}`);
    }
  }

  async usage(owner: string): Promise<Record<string, { usage: number; limit: number }>> {
    const lim = (n: number) => (n === Infinity ? -1 : n);
    const mib = (b: number) => Math.ceil(b / 2 ** 20);
    return {
      image_size_total: { usage: mib(await this.repo.usedBytes(owner)), limit: this.limits.storageQuota === Infinity ? -1 : Math.floor(this.limits.storageQuota / 2 ** 20) },
      image_stage_total: { usage: mib(await this.repo.stagedBytes(owner)), limit: this.limits.stageTotalBytes === Infinity ? -1 : this.limits.stageTotalBytes / 2 ** 20 },
      image_count_total: { usage: await this.repo.countImages(owner), limit: lim(this.limits.countTotal) },
      image_count_uploading: { usage: await this.repo.countImages(owner, ['saving', 'importing', 'uploading']), limit: lim(this.limits.countUploading) },
    };
  }

  /** Starts reporting that this node is still receiving an image's data; returns the stop function. */
  heartbeat(imageId: string): () => void {
    const t = setInterval(() => { this.repo.heartbeat(imageId, this.nodeId).catch((err) => this.logger.warn({ err, image: imageId }, 'could not record the upload heartbeat')); }, 30_000);
    t.unref();
    return () => clearInterval(t);
  }

  uploadMarks(): { upload_owner: string; upload_heartbeat: string } {
    return { upload_owner: this.nodeId, upload_heartbeat: nowIso() };
  }
}

const unlimited = (n: number) => (n < 0 ? Infinity : n);

function fileUriPath(uri: string): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (isAbsolute(uri)) return uri;
  throw new Error(`[DEFAULT] node_staging_uri = ${uri} is not a file:// URI`);
}
