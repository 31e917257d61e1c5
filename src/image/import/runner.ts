// Interoperable image import (POST /v2/images/{id}/import): glance-direct (data staged with PUT
// …/stage), web-download (fetched from a URI that passes the filters), copy-image (an active
// image copied into more stores). Each import is a task run in the background; the image carries
// Glance's progress properties (os_glance_import_task, os_glance_importing_to_stores,
// os_glance_failed_import) while it runs. Data is staged, inspected (the same checks as a direct
// upload), optionally converted with qemu-img, then streamed into each target store with its
// hashes computed on the way.
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { ImageService } from '../service.ts';
import { QuotaExceeded } from '../service.ts';
import { ImageInspection, type Verdict } from '../../common/format/index.ts';
import { ingest } from '../store/ingest.ts';
import type { FilesystemStore } from '../store/filesystem.ts';
import { nowIso, type Image } from '../model.ts';
import type { TaskRow } from '../db/schema.ts';
import { uriFilterFrom, vet, UriRefused } from './filter.ts';
import { inspectionFor } from '../api/data.ts';

const run = promisify(execFile);

export type ImportMethod = 'glance-direct' | 'web-download' | 'copy-image';

export interface ImportRequest {
  image: Image;
  method: ImportMethod;
  uri?: string;
  /** Target store ids (the default store when the service has a single store). */
  stores: string[];
  allStoresMustSucceed: boolean;
  owner: string | null;
  userId: string;
  requestId: string;
}

export const LOCK = 'os_glance_import_task';
const IMPORTING = 'os_glance_importing_to_stores';
const FAILED = 'os_glance_failed_import';

class ImportFailed extends Error {}

export class ImportRunner {
  private readonly running = new Map<string, Promise<void>>();

  constructor(private readonly svc: ImageService) {}

  /** Creates the task, takes the image's import lock and starts the work. Returns the task id. */
  async start(r: ImportRequest): Promise<string> {
    const ts = nowIso();
    const task: TaskRow = {
      id: randomUUID(), type: 'api_image_import', status: 'pending', owner: r.owner, image_id: r.image.id,
      user_id: r.userId, request_id: r.requestId,
      input: JSON.stringify({ image_id: r.image.id, import_req: { method: { name: r.method, ...(r.uri ? { uri: r.uri } : {}) }, stores: r.stores, all_stores_must_succeed: r.allStoresMustSucceed }, backend: r.stores }),
      result: null, message: '', created_at: ts, updated_at: ts, expires_at: null,
    };
    await this.svc.repo.createTask(task);
    if (!(await this.svc.repo.setPropertyIfAbsent(r.image.id, LOCK, task.id))) {
      await this.svc.repo.updateTask(task.id, { status: 'failure', message: 'Image has active task' });
      return '';
    }
    const p = this.execute(task, r).finally(() => this.running.delete(task.id));
    this.running.set(task.id, p);
    return task.id;
  }

  /**
   * Runs a tasks-API `import` task (POST /v2/tasks, Glance's legacy import): the input is
   * checked, the image is created from `image_properties`, then its data is fetched from
   * `import_from` exactly as a web-download import would (filters, inspection, stores), under
   * this same task, whose result names the image.
   */
  runLegacyImport(task: TaskRow, create: (properties: Record<string, unknown>) => Promise<Image>, userId: string, requestId: string): void {
    const svc = this.svc;
    const p = (async () => {
      await svc.repo.updateTask(task.id, { status: 'processing' });
      const input = JSON.parse(task.input) as Record<string, unknown>;
      let image: Image;
      try {
        for (const key of ['import_from', 'import_from_format', 'image_properties']) {
          if (!(key in input)) throw new ImportFailed(`Input does not contain '${key}' field`);
        }
        const props = input.image_properties;
        if (!props || typeof props !== 'object' || Array.isArray(props)) throw new ImportFailed("'image_properties' must be an object");
        // Glance's set_base_image_properties: an empty property set means a bare qcow2.
        const properties = Object.keys(props).length ? { ...props } : { disk_format: 'qcow2', container_format: 'bare' };
        image = await create(properties);
      } catch (e) {
        svc.logger.warn({ task: task.id, err: (e as Error).message }, 'import task refused');
        await svc.repo.updateTask(task.id, { status: 'failure', message: (e as Error).message });
        return;
      }
      await svc.repo.updateTask(task.id, { image_id: image.id });
      if (!(await svc.repo.setPropertyIfAbsent(image.id, LOCK, task.id))) {
        await svc.repo.updateTask(task.id, { status: 'failure', message: 'Image has active task' });
        return;
      }
      await this.execute(task, {
        image, method: 'web-download', uri: String(input.import_from), stores: [svc.defaultStore.id], allStoresMustSucceed: true,
        owner: image.owner, userId, requestId,
      });
    })().catch((e) => svc.logger.error({ task: task.id, err: e }, 'import task failed unexpectedly'))
      .finally(() => this.running.delete(task.id));
    this.running.set(task.id, p);
  }

  /** True while a task runs in this process (others are judged by their heartbeat). */
  isRunning(taskId: string): boolean { return this.running.has(taskId); }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private async execute(task: TaskRow, r: ImportRequest): Promise<void> {
    const svc = this.svc;
    const id = r.image.id;
    const log = svc.logger.child({ image: id, task: task.id, method: r.method });
    // Bookkeeping and cleanup that must not stop what they accompany: logged, not thrown.
    const warn = (what: string) => (err: unknown): undefined => { log.warn({ err }, `could not ${what}`); return undefined; };
    await svc.repo.updateTask(task.id, { status: 'processing' });
    const beat = setInterval(() => {
      svc.repo.updateTask(task.id, {}).catch(warn('touch the task'));
      svc.repo.heartbeat(id, svc.nodeId).catch(warn('record the import heartbeat'));
    }, 30_000);
    beat.unref();
    const cleanup: string[] = [];
    let activated = false;
    try {
      if (r.method === 'copy-image') {
        await this.copy(r);
      } else {
        const from = r.method === 'glance-direct' ? 'uploading' : 'queued';
        if (!(await svc.repo.transition(id, from, 'importing', svc.uploadMarks()))) {
          throw new ImportFailed(`Image ${id} is no longer ${from}`);
        }
        // Progress per store is only reported with multiple stores (as Glance).
        if (svc.multiStore) await svc.repo.setProperty(id, IMPORTING, r.stores.join(','));
        let staged = await svc.repo.stagingOf(id);
        if (r.method === 'web-download') {
          staged = await this.download(r);
        }
        if (!staged) throw new ImportFailed('No staged data found for this image');
        const stagedPath = svc.staging.absolute(staged.path);
        cleanup.push(stagedPath);
        const verdict = await inspectFile(stagedPath, inspectionFor(svc, r.image));
        if (verdict.errors.length) throw new ImportFailed(verdict.errors.join('; '));
        let source = stagedPath;
        let diskFormat = r.image.disk_format;
        if (svc.config.get<string[]>('image_import_opts', 'image_import_plugins').includes('image_conversion')) {
          const target = svc.config.get<string>('image_conversion', 'output_format');
          if (verdict.detected !== target) {
            const out = join(svc.staging.dir, `${id}.${target}`);
            cleanup.push(out);
            log.info({ from: verdict.detected, to: target }, 'converting image');
            await run('qemu-img', ['convert', '-q', '-f', verdict.detected, '-O', target, source, out], { timeout: 3600_000 });
            source = out;
            diskFormat = target;
          }
        }
        const failed: string[] = [];
        for (const storeId of r.stores) {
          const store = svc.storeFor(storeId)!;
          try {
            const done = await this.writeToStore(r, store, source, diskFormat, !activated);
            if (!done) throw new ImportFailed(`Image ${id} was deleted during the import`);
            activated = true;
          } catch (e) {
            if (e instanceof ImportFailed && /deleted/.test(e.message)) throw e;
            log.warn({ store: storeId, err: (e as Error).message }, 'import into store failed');
            failed.push(storeId);
            if (svc.multiStore) await svc.repo.setProperty(id, FAILED, failed.join(','));
            if (r.allStoresMustSucceed || !activated) throw e;
          } finally {
            await this.progress(id, storeId);
          }
        }
        await svc.repo.removeStaging(id);
      }
      await svc.repo.updateTask(task.id, { status: 'success', result: JSON.stringify({ image_id: id }) });
      log.info('import finished');
    } catch (e) {
      const msg = e instanceof QuotaExceeded || e instanceof ImportFailed || e instanceof UriRefused ? e.message : `${(e as Error).message}`;
      log.warn({ err: msg }, 'import failed');
      await svc.repo.updateTask(task.id, { status: 'failure', message: msg }).catch(warn('record the task failure'));
      if (r.method !== 'copy-image' && !activated) {
        // Back to where a new attempt can start: the data is gone, the image queued.
        await svc.repo.transition(id, 'importing', 'queued', { upload_owner: null, upload_heartbeat: null }).catch(warn('put the image back to queued'));
        await svc.repo.removeStaging(id).catch(warn('remove the staged data'));
      }
    } finally {
      clearInterval(beat);
      if (r.method !== 'copy-image') for (const p of cleanup) await rm(p, { force: true }).catch(warn(`remove ${p}`));
      await svc.repo.deleteProperty(id, LOCK).catch(warn('release the import lock'));
      const now = await svc.repo.get(id).catch(warn('read the image back'));
      if (now && now.properties[IMPORTING] === '') await svc.repo.deleteProperty(id, IMPORTING).catch(warn('clear os_glance_importing_to_stores'));
    }
  }

  /** Removes a store from os_glance_importing_to_stores. */
  private async progress(id: string, storeId: string): Promise<void> {
    if (!this.svc.multiStore) return;
    const img = await this.svc.repo.get(id);
    if (!img) return;
    const left = (img.properties[IMPORTING] ?? '').split(',').filter((s) => s && s !== storeId);
    await this.svc.repo.setProperty(id, IMPORTING, left.join(','));
  }

  /** Streams a local file into a store; the first store also activates the image. */
  private async writeToStore(r: ImportRequest, store: FilesystemStore, source: string, diskFormat: string | null, activate: boolean): Promise<boolean> {
    const svc = this.svc;
    const id = r.image.id;
    const remaining = activate ? await svc.remainingStorage(r.owner) : Infinity;
    const cap = svc.limits.sizeCap;
    const result = await ingest(createReadStream(source, { highWaterMark: 1 << 20 }), {
      store, imageId: id, maxBytes: Math.min(cap, remaining), hashAlgo: svc.hashAlgo,
      overLimit: (n) => new QuotaExceeded(n > cap ? `The incoming image is too large: ${n} bytes exceed the image size cap of ${cap} bytes` : `Image exceeds the storage quota: The size of the data ${n} will exceed the limit. ${remaining} bytes remaining.`),
      inspection: new ImageInspection({ declared: diskFormat, containerFormat: r.image.container_format, requireMatch: false }),
    });
    const rel = await store.commit(result.tmpPath, id);
    const loc = { image_id: id, store: store.id, path: rel, created_at: nowIso() };
    if (!activate) {
      if (!(await svc.repo.getRow(id))) { await store.delete(rel); return false; }
      await svc.repo.addLocation(loc);
      return true;
    }
    const ok = await svc.repo.activate(id, 'importing', {
      size: result.size, virtual_size: result.verdict?.virtualSize ?? result.size, checksum: result.checksum,
      os_hash_algo: svc.config.get<string>('DEFAULT', 'hashing_algorithm'), os_hash_value: result.hashValue,
      disk_format: diskFormat,
    }, loc);
    if (!ok) await store.delete(rel);
    return ok;
  }

  /** copy-image: the image's data, read from one store, written to the others; hashes must agree. */
  private async copy(r: ImportRequest): Promise<void> {
    const svc = this.svc;
    const id = r.image.id;
    const src = r.image.locations[0];
    const srcStore = src && svc.stores.get(src.store);
    if (!src || !srcStore) throw new ImportFailed('The image has no data to copy');
    await svc.repo.setProperty(id, IMPORTING, r.stores.join(','));
    const failed: string[] = [];
    for (const storeId of r.stores) {
      const store = svc.storeFor(storeId)!;
      try {
        const result = await ingest(srcStore.read(src.path), {
          store, imageId: id, maxBytes: Infinity, hashAlgo: svc.hashAlgo, overLimit: () => new QuotaExceeded('unreachable'),
        });
        if (result.hashValue !== r.image.os_hash_value && r.image.os_hash_algo === svc.config.get<string>('DEFAULT', 'hashing_algorithm')) {
          await rm(result.tmpPath, { force: true });
          throw new ImportFailed(`Copy to store ${storeId} does not match the image's ${r.image.os_hash_algo} hash`);
        }
        const rel = await store.commit(result.tmpPath, id);
        if (!(await svc.repo.getRow(id))) { await store.delete(rel); throw new ImportFailed(`Image ${id} was deleted during the copy`); }
        await svc.repo.addLocation({ image_id: id, store: store.id, path: rel, created_at: nowIso() });
      } catch (e) {
        failed.push(storeId);
        await svc.repo.setProperty(id, FAILED, failed.join(','));
        if (r.allStoresMustSucceed) throw e;
      } finally {
        await this.progress(id, storeId);
      }
    }
    if (failed.length === r.stores.length) throw new ImportFailed(`Copying to ${failed.join(', ')} failed`);
  }

  /** web-download: fetch into the staging area (redirects re-vetted), within the size limits. */
  private async download(r: ImportRequest) {
    const svc = this.svc;
    const id = r.image.id;
    const filter = uriFilterFrom(svc.config);
    let uri = r.uri!;
    let res: IncomingMessage | undefined;
    for (let hop = 0; hop < 6; hop++) {
      const v = await vet(filter, uri);
      res = await get(v.url, v.address, v.family);
      if ([301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && res.headers.location) {
        res.resume();
        uri = new URL(res.headers.location, v.url).toString();
        continue;
      }
      break;
    }
    if (!res) throw new ImportFailed('web-download failed');
    if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
      res.resume();
      throw new ImportFailed(`web-download of ${uri} failed: HTTP ${res.statusCode}`);
    }
    const stageLeft = svc.limits.stageTotalBytes === Infinity || !r.owner ? Infinity : Math.max(0, svc.limits.stageTotalBytes - (await svc.repo.stagedBytes(r.owner)));
    const cap = svc.limits.sizeCap;
    const declared = res.headers['content-length'] ? Number(res.headers['content-length']) : undefined;
    const result = await ingest(res, {
      store: svc.staging, imageId: id, maxBytes: Math.min(cap, stageLeft), hashAlgo: svc.hashAlgo,
      expectedSize: declared !== undefined && Number.isFinite(declared) ? declared : undefined,
      overLimit: (n) => new QuotaExceeded(n > cap ? `The incoming image is too large: ${n} bytes exceed the image size cap of ${cap} bytes` : `Image exceeds the staging quota: ${n} bytes`),
    });
    const rel = await svc.staging.commit(result.tmpPath, id);
    const row = { image_id: id, owner: r.owner, path: rel, size: result.size, created_at: nowIso() };
    await svc.repo.recordStaging(row);
    return row;
  }
}

function get(url: URL, address: string, family: 4 | 6): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'GET',
      // Connect to the address that was vetted, whatever DNS says now.
      lookup: (_h: string, opts: unknown, cb: (err: Error | null, a: string | { address: string; family: number }[], f?: number) => void) => {
        if ((opts as { all?: boolean })?.all) cb(null, [{ address, family }]);
        else cb(null, address, family);
      },
      headers: { 'user-agent': 'stratus-image-import' },
      timeout: 60_000,
    }, resolve);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => reject(new ImportFailed(`web-download of ${url} failed: ${e.message}`)));
    req.end();
  });
}

/** Runs the format inspectors over a local file. */
export function inspectFile(path: string, inspection: ImageInspection): Promise<Verdict> {
  return new Promise((resolve, reject) => {
    const s = createReadStream(path, { highWaterMark: 1 << 20 });
    s.on('data', (c) => inspection.feed(c as Buffer));
    s.on('end', () => resolve(inspection.finish()));
    s.on('error', reject);
  });
}
