// HTTP clients for the services compute depends on: placement (as the scheduler and the
// resource tracker use it) and the image service (image metadata at boot).
import { Readable } from 'node:stream';
import { BadRequest, NotFound, ServiceUnavailable, StratusError } from '../common/errors.ts';
import { httpRequest, retryOnConflict } from '../common/http-client.ts';

export interface ServiceAccess {
  endpoint(): Promise<string>;
  token(): Promise<string>;
}

export class PlacementError extends StratusError {
  constructor(readonly httpStatus: number, message: string, readonly body?: any) { super(message); }
}

const PLACEMENT_VERSION = 'placement 1.36';

/** A provider as this client last saw it: its generation and, where known, traits and inventory. */
/** A provider's inventories by resource class (placement's fields: total, reserved, allocation_ratio …). */
export type Inventories = Record<string, Record<string, number>>;
export interface ProviderState { generation: number; traits?: string[]; inventories?: Inventories }

export class PlacementClient {
  constructor(private readonly access: ServiceAccess) {}

  async request(method: string, path: string, body?: unknown, version = PLACEMENT_VERSION): Promise<{ status: number; body: any }> {
    const base = await this.access.endpoint();
    let res: Response;
    try {
      // Timeouts and retries of idempotent calls (GET, PUT, DELETE) come from the shared client.
      res = await httpRequest(`${base}${path}`, {
        method,
        headers: {
          'x-auth-token': await this.access.token(), 'openstack-api-version': version, accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ServiceUnavailable(`Placement API service is not responding (${(e as Error).message})`);
    }
    const text = await res.text();
    let parsed: any;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
    return { status: res.status, body: parsed };
  }

  private async ok(method: string, path: string, body?: unknown, accept: number[] = [200, 201, 204]): Promise<any> {
    const r = await this.request(method, path, body);
    if (!accept.includes(r.status)) {
      const detail = r.body?.errors?.[0]?.detail ?? JSON.stringify(r.body);
      throw new PlacementError(r.status, `Placement ${method} ${path.split('?')[0]} answered ${r.status}: ${String(detail).trim()}`, r.body);
    }
    return r.body;
  }

  allocationCandidates(query: string): Promise<{ allocation_requests: { allocations: Record<string, { resources: Record<string, number> }> }[]; provider_summaries: Record<string, any> }> {
    return this.ok('GET', `/allocation_candidates?${query}`);
  }

  /** Claims (replaces) a consumer's allocations; false on a capacity or generation conflict. */
  async claim(consumer: string, allocations: Record<string, { resources: Record<string, number> }>, projectId: string, userId: string): Promise<boolean> {
    // First as a new consumer (the common case: one round trip); on a generation conflict
    // read the consumer's generation and try again.
    let generation: number | null = null;
    return retryOnConflict<boolean>(4, async (attempt) => {
      if (attempt > 0) generation = (await this.ok('GET', `/allocations/${consumer}`))?.consumer_generation ?? null;
      const r = await this.request('PUT', `/allocations/${consumer}`, {
        allocations, project_id: projectId, user_id: userId, consumer_generation: generation,
      });
      if (r.status === 204) return { done: true, value: true };
      if (r.status === 409) return r.body?.errors?.[0]?.code === 'placement.concurrent_update' ? { done: false } : { done: true, value: false };
      throw new PlacementError(r.status, `Placement PUT /allocations answered ${r.status}: ${JSON.stringify(r.body)}`);
    }, () => new PlacementError(409, `Placement PUT /allocations/${consumer}: concurrent updates kept conflicting`)).catch((e) => {
      // Capacity conflicts are an answer (false); so is a consumer that never settled.
      if (e instanceof PlacementError && e.httpStatus === 409) return false;
      throw e;
    });
  }

  /**
   * Moves every allocation of `from` to `to` in one write (Nova's move_allocations): `to`'s own
   * allocations are replaced, `from` is left with none. A `from` without allocations moves nothing
   * (false). Migration-based allocations: instance → migration at the start of a move, migration →
   * instance on revert or rollback.
   */
  async moveAllocations(from: string, to: string): Promise<boolean> {
    return retryOnConflict<boolean>(4, async () => {
      const src = await this.ok('GET', `/allocations/${from}`);
      if (!src?.allocations || !Object.keys(src.allocations).length) return { done: true, value: false };
      const dst = await this.ok('GET', `/allocations/${to}`);
      const allocations = Object.fromEntries(Object.entries(src.allocations as Record<string, { resources: Record<string, number> }>).map(([rp, a]) => [rp, { resources: a.resources }]));
      const r = await this.request('POST', '/allocations', {
        [from]: { allocations: {}, project_id: src.project_id, user_id: src.user_id, consumer_generation: src.consumer_generation ?? null },
        [to]: { allocations, project_id: src.project_id, user_id: src.user_id, consumer_generation: dst?.consumer_generation ?? null },
      });
      if (r.status === 204) return { done: true, value: true };
      if (r.status === 409 && r.body?.errors?.[0]?.code === 'placement.concurrent_update') return { done: false };
      throw new PlacementError(r.status, `Placement POST /allocations answered ${r.status}: ${JSON.stringify(r.body)}`, r.body);
    }, () => new PlacementError(409, `Placement POST /allocations (${from} → ${to}): concurrent updates kept conflicting`));
  }

  async deleteAllocations(consumer: string): Promise<void> {
    await this.ok('DELETE', `/allocations/${consumer}`, undefined, [204, 404]);
  }

  async getAllocations(consumer: string): Promise<Record<string, { resources: Record<string, number> }>> {
    return (await this.ok('GET', `/allocations/${consumer}`)).allocations ?? {};
  }

  async providerAllocations(rp: string): Promise<Record<string, { resources: Record<string, number> }>> {
    return (await this.ok('GET', `/resource_providers/${rp}/allocations`)).allocations ?? {};
  }

  /**
   * Creates the provider if missing. A provider just created is known exactly (no traits, no
   * inventory, its generation): the caller may hand that state to setTraits/setInventory, which
   * then write without reading first — registering a host costs what it did before it had
   * capability traits.
   */
  async ensureProvider(uuid: string, name: string): Promise<ProviderState | undefined> {
    const r = await this.request('GET', `/resource_providers/${uuid}`);
    if (r.status === 200) return undefined;
    const c = await this.request('POST', '/resource_providers', { uuid, name });
    if (c.status === 200 || c.status === 201) return { generation: c.body?.generation ?? 0, traits: [], inventories: {} };
    if (c.status === 409) {
      // A provider of that name but another uuid: a host that was re-created. Nova refuses too.
      const again = await this.request('GET', `/resource_providers/${uuid}`);
      if (again.status === 200) return undefined;
    }
    throw new PlacementError(c.status, `Could not create resource provider ${name} (${uuid}): ${JSON.stringify(c.body)}`);
  }


  /**
   * Sets a provider's inventory unless it already is that. `known`: the provider's state as the
   * caller last saw it (from ensureProvider or a previous set*), used instead of a read on the
   * first attempt; a conflict reads it fresh. Returns the provider's state after the call.
   * `inventories` may be a function of the provider's current inventory (read, or `known`'s),
   * for fields the caller keeps as placement has them (an allocation ratio an operator set).
   */
  async setInventory(uuid: string, inventories: Inventories | ((current: Inventories) => Inventories), known?: ProviderState): Promise<ProviderState> {
    return retryOnConflict<ProviderState>(5, async (attempt) => {
      const cur = attempt === 0 && known?.inventories ? known : await this.readInventory(uuid, known);
      const inv = typeof inventories === 'function' ? inventories(cur.inventories ?? {}) : inventories;
      const want = JSON.stringify(sortKeys(fillInventory(inv)));
      if (JSON.stringify(sortKeys(cur.inventories ?? {})) === want) return { done: true, value: cur };
      const r = await this.request('PUT', `/resource_providers/${uuid}/inventories`, { resource_provider_generation: cur.generation, inventories: inv });
      if (r.status === 200) return { done: true, value: { ...cur, generation: r.body.resource_provider_generation, inventories: r.body.inventories } };
      if (r.status === 409) return { done: false };
      throw new PlacementError(r.status, `Could not set the inventory of ${uuid}: ${JSON.stringify(r.body)}`);
    }, () => new PlacementError(409, `Could not set the inventory of ${uuid}: concurrent updates kept conflicting`));
  }

  /** Adds and removes traits of a provider (others kept); `known` and the result as setInventory's. */
  async setTraits(uuid: string, add: string[], remove: string[], known?: ProviderState): Promise<ProviderState> {
    return retryOnConflict<ProviderState>(5, async (attempt) => {
      const cur = attempt === 0 && known?.traits ? known : await this.readTraits(uuid, known);
      const had = cur.traits ?? [];
      const traits = new Set<string>(had);
      for (const t of add) traits.add(t);
      for (const t of remove) traits.delete(t);
      if (traits.size === had.length && add.every((t) => had.includes(t))) return { done: true, value: cur };
      const r = await this.request('PUT', `/resource_providers/${uuid}/traits`, { resource_provider_generation: cur.generation, traits: [...traits] });
      if (r.status === 200) return { done: true, value: { ...cur, generation: r.body.resource_provider_generation, traits: r.body.traits } };
      if (r.status === 409) return { done: false };
      throw new PlacementError(r.status, `Could not set the traits of ${uuid}: ${JSON.stringify(r.body)}`);
    }, () => new PlacementError(409, `Could not set the traits of ${uuid}: concurrent updates kept conflicting`));
  }

  // What the caller knew of the other half is kept only if the generation says it is current.
  private async readInventory(uuid: string, known?: ProviderState): Promise<ProviderState & { inventories: Record<string, Record<string, number>> }> {
    const cur = await this.ok('GET', `/resource_providers/${uuid}/inventories`);
    return { generation: cur.resource_provider_generation, inventories: cur.inventories, traits: known && known.generation === cur.resource_provider_generation ? known.traits : undefined };
  }

  private async readTraits(uuid: string, known?: ProviderState): Promise<ProviderState & { traits: string[] }> {
    const cur = await this.ok('GET', `/resource_providers/${uuid}/traits`);
    return { generation: cur.resource_provider_generation, traits: cur.traits, inventories: known && known.generation === cur.resource_provider_generation ? known.inventories : undefined };
  }

  /** A provider's aggregates (placement 1.19+: with the provider generation); undefined when the provider does not exist. */
  async providerAggregates(uuid: string): Promise<{ aggregates: string[]; generation: number } | undefined> {
    const r = await this.request('GET', `/resource_providers/${uuid}/aggregates`);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new PlacementError(r.status, `Could not read the aggregates of ${uuid}: ${JSON.stringify(r.body)}`, r.body);
    return { aggregates: r.body.aggregates ?? [], generation: r.body.resource_provider_generation };
  }

  /**
   * Adds and removes aggregate uuids on a provider (Nova's report client aggregate_add_host /
   * aggregate_remove_host): read with the generation, write, and on a generation conflict
   * (409 placement.concurrent_update) read again and retry. false when the provider does not exist.
   */
  async updateProviderAggregates(uuid: string, add: string[], remove: string[]): Promise<boolean> {
    return retryOnConflict<boolean>(5, async () => {
      const cur = await this.providerAggregates(uuid);
      if (!cur) return { done: true, value: false };
      const aggs = new Set(cur.aggregates);
      for (const a of add) aggs.add(a);
      for (const a of remove) aggs.delete(a);
      if (aggs.size === cur.aggregates.length && cur.aggregates.every((a) => aggs.has(a))) return { done: true, value: true };
      const r = await this.request('PUT', `/resource_providers/${uuid}/aggregates`, { aggregates: [...aggs], resource_provider_generation: cur.generation });
      if (r.status === 200) return { done: true, value: true };
      if (r.status === 404) return { done: true, value: false };
      if (r.status === 409) return { done: false };
      throw new PlacementError(r.status, `Could not set the aggregates of ${uuid}: ${JSON.stringify(r.body)}`, r.body);
    }, () => new PlacementError(409, `Could not set the aggregates of ${uuid}: concurrent updates kept conflicting`));
  }

  async deleteProvider(uuid: string): Promise<void> {
    await this.ok('DELETE', `/resource_providers/${uuid}`, undefined, [204, 404, 409]);
  }
}

function fillInventory(inv: Record<string, Record<string, number>>) {
  const out: Record<string, Record<string, number>> = {};
  for (const [k, v] of Object.entries(inv)) out[k] = { allocation_ratio: 1, max_unit: v.total, min_unit: 1, reserved: 0, step_size: 1, ...v };
  return out;
}
function sortKeys(o: any): any {
  if (!o || typeof o !== 'object' || Array.isArray(o)) return o;
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, sortKeys(o[k])]));
}

export interface ImageMeta {
  id: string; name?: string; status: string; size?: number | null; virtual_size?: number | null;
  min_ram?: number; min_disk?: number; disk_format?: string; container_format?: string;
  owner?: string; visibility?: string; created_at?: string; updated_at?: string; protected?: boolean;
  [prop: string]: unknown;
}

/**
 * Reads images with the caller's token, as Nova does (visibility is the image service's call);
 * the compute agent downloads image data with its own service token.
 */
export class ImageClient {
  constructor(private readonly endpoint: () => Promise<string>, private readonly serviceToken?: () => Promise<string>) {}

  /**
   * Streams an image's data (GET /v2/images/{id}/file) with the service token. NotFound when the
   * image does not exist or has no data; the caller verifies size and hashes against ImageSpec.
   */
  async download(id: string): Promise<Readable> {
    if (!this.serviceToken) throw new ServiceUnavailable('This image client has no service credentials to download images with.');
    let res: Response;
    try {
      // The timeout covers the wait for the headers; the data then streams as fast as the reader takes it.
      res = await httpRequest(`${await this.endpoint()}/v2/images/${encodeURIComponent(id)}/file`, { headers: { 'x-auth-token': await this.serviceToken() } });
    } catch (e) {
      throw new ServiceUnavailable(`Connection to glance failed: ${(e as Error).message}`);
    }
    if (res.status === 404 || res.status === 204 || !res.body) {
      await res.body?.cancel();
      throw new NotFound(`Image ${id} could not be found or has no data.`);
    }
    if (res.status !== 200) {
      await res.body.cancel();
      throw new ServiceUnavailable(`Error downloading image ${id} from the image service (${res.status})`);
    }
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }

  /**
   * Stores a snapshot's data in a queued image with the service token: its formats first (the
   * driver says what it produced), then the bytes, streamed (PUT /v2/images/{id}/file).
   */
  async upload(id: string, data: NodeJS.ReadableStream, diskFormat: string, containerFormat: string): Promise<void> {
    if (!this.serviceToken) throw new ServiceUnavailable('This image client has no service credentials to upload images with.');
    const token = await this.serviceToken();
    const patch = await this.request(token, 'PATCH', `/v2/images/${encodeURIComponent(id)}`, [
      { op: 'replace', path: '/disk_format', value: diskFormat }, { op: 'replace', path: '/container_format', value: containerFormat },
    ], 'application/openstack-images-v2.1-json-patch');
    if (patch.status !== 200) throw new ServiceUnavailable(`Could not set the formats of snapshot image ${id} (${patch.status})`);
    let res: Response;
    try {
      // A stream cannot be sent twice: no retries; the timeout covers the wait for the answer's headers.
      res = await httpRequest(`${await this.endpoint()}/v2/images/${encodeURIComponent(id)}/file`, {
        method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
        stream: Readable.from(data as AsyncIterable<Uint8Array>), retries: 0, timeoutMs: 3_600_000,
      });
    } catch (e) {
      throw new ServiceUnavailable(`Connection to glance failed: ${(e as Error).message}`);
    }
    await res.text();
    if (res.status !== 204) throw new ServiceUnavailable(`Error uploading snapshot image ${id} to the image service (${res.status})`);
  }

  /** Where clients find an image (Nova's Location for createImage before 2.45). */
  async imageUrl(id: string): Promise<string> {
    return `${(await this.endpoint()).replace(/\/+$/, '')}/v2/images/${id}`;
  }

  /** Images whose properties match every filter, all pages, with the service token (the backups to rotate). */
  async list(filters: Record<string, string>): Promise<{ id: string; created_at: string }[]> {
    if (!this.serviceToken) throw new ServiceUnavailable('This image client has no service credentials to list images with.');
    const token = await this.serviceToken();
    const out: { id: string; created_at: string }[] = [];
    let path: string | undefined = `/v2/images?${new URLSearchParams({ ...filters, limit: '100', sort: 'created_at:desc' })}`;
    while (path) {
      const r = await this.request(token, 'GET', path);
      if (r.status !== 200) throw new ServiceUnavailable(`Could not list images (${r.status})`);
      for (const i of r.body.images as { id: string; created_at: string }[]) out.push({ id: i.id, created_at: i.created_at });
      // `next` is relative to the endpoint's root (/v2/images?marker=…), as Glance writes it.
      path = typeof r.body.next === 'string' && r.body.images.length ? r.body.next : undefined;
    }
    return out;
  }

  /** Deletes an image with the service token (a snapshot that failed); a missing one is fine. */
  async remove(id: string): Promise<void> {
    if (!this.serviceToken) return;
    const r = await this.request(await this.serviceToken(), 'DELETE', `/v2/images/${encodeURIComponent(id)}`);
    if (r.status !== 204 && r.status !== 404) throw new ServiceUnavailable(`Could not delete image ${id} (${r.status})`);
  }

  async request(token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any; headers: Headers }> {
    let res: Response;
    try {
      res = await httpRequest(`${await this.endpoint()}${path}`, {
        method, headers: { 'x-auth-token': token, accept: 'application/json', ...(body !== undefined ? { 'content-type': contentType } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ServiceUnavailable(`Connection to glance failed: ${(e as Error).message}`);
    }
    const text = await res.text();
    let parsed: any;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** undefined when the image does not exist or is not visible to the caller. */
  async get(token: string, id: string): Promise<ImageMeta | undefined> {
    const r = await this.request(token, 'GET', `/v2/images/${encodeURIComponent(id)}`);
    if (r.status === 404 || r.status === 403) return undefined;
    // The image service failing (its database restarting) is not the caller's mistake: retriable 503.
    if (r.status >= 500) throw new ServiceUnavailable(`Error fetching image ${id} from the image service (${r.status})`);
    if (r.status !== 200) throw new BadRequest(`Error fetching image ${id} from the image service (${r.status})`);
    return r.body as ImageMeta;
  }
}
