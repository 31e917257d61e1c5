// Test support for Placement's HTTP suites (test/placement-*.test.ts): a small client and a
// gabbi-style table runner — each step is a request and the response it must produce.
// Lives beside the service so other services' tests can also drive a real placement.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

export interface Response { status: number; body: any; headers: Headers; text: string }

export class PlacementClient {
  constructor(readonly url: string, readonly token = 'admin', readonly version = 'latest') {}

  async call(method: string, path: string, opts: { body?: unknown; version?: string | null; token?: string | null; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    const token = opts.token === undefined ? this.token : opts.token;
    if (token !== null) headers['x-auth-token'] = token;
    const version = opts.version === undefined ? this.version : opts.version;
    if (version !== null) headers['openstack-api-version'] = `placement ${version}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const r = await fetch(this.url + path, { method, headers, body });
    const text = await r.text();
    let parsed: unknown;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
    return { status: r.status, body: parsed, headers: r.headers, text };
  }

  get(path: string, version?: string) { return this.call('GET', path, { version }); }
  put(path: string, body?: unknown, version?: string) { return this.call('PUT', path, { body, version }); }
  post(path: string, body?: unknown, version?: string) { return this.call('POST', path, { body, version }); }
  delete(path: string, version?: string) { return this.call('DELETE', path, { version }); }

  /** Creates a provider (optionally with inventory, traits, aggregates, parent); returns its uuid. */
  async provider(name: string, opts: { inventory?: Record<string, number | Record<string, number>>; traits?: string[]; aggregates?: string[]; parent?: string; uuid?: string } = {}): Promise<string> {
    const r = await this.post('/resource_providers', { name, ...(opts.uuid ? { uuid: opts.uuid } : {}), ...(opts.parent ? { parent_provider_uuid: opts.parent } : {}) });
    assert.equal(r.status, 200, `create provider ${name}: ${r.text}`);
    const uuid = r.body.uuid as string;
    let gen = 0;
    if (opts.inventory) {
      const inventories = Object.fromEntries(Object.entries(opts.inventory).map(([rc, v]) => [rc, typeof v === 'number' ? { total: v } : v]));
      const i = await this.put(`/resource_providers/${uuid}/inventories`, { resource_provider_generation: gen, inventories });
      assert.equal(i.status, 200, `inventory of ${name}: ${i.text}`);
      gen = i.body.resource_provider_generation;
    }
    if (opts.traits) {
      for (const t of opts.traits) if (t.startsWith('CUSTOM_')) await this.put(`/traits/${t}`);
      const t = await this.put(`/resource_providers/${uuid}/traits`, { traits: opts.traits, resource_provider_generation: gen });
      assert.equal(t.status, 200, `traits of ${name}: ${t.text}`);
      gen = t.body.resource_provider_generation;
    }
    if (opts.aggregates) {
      const a = await this.put(`/resource_providers/${uuid}/aggregates`, { aggregates: opts.aggregates, resource_provider_generation: gen });
      assert.equal(a.status, 200, `aggregates of ${name}: ${a.text}`);
    }
    return uuid;
  }
}

export interface Step {
  name: string;
  method?: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
  /** May use {var} placeholders filled from earlier `save`s. */
  url: string;
  version?: string | null;
  token?: string | null;
  headers?: Record<string, string>;
  body?: unknown;
  status: number;
  /** errors[0].code expected (implies a Placement error body). */
  code?: string;
  /** Deep subset the JSON body must contain. */
  expect?: unknown;
  /** Response headers that must match. */
  responseHeaders?: Record<string, string | RegExp | null>;
  check?: (body: any, res: Response) => void;
  save?: Record<string, (body: any, res: Response) => string>;
}

function fill(v: unknown, vars: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
  if (Array.isArray(v)) return v.map((x) => fill(x, vars));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [fill(k, vars) as string, fill(x, vars)]));
  return v;
}

/** Asserts that `actual` contains everything in `expected` (arrays compared element-wise). */
export function assertSubset(actual: unknown, expected: unknown, path = '$'): void {
  if (expected === null || typeof expected !== 'object') {
    assert.deepEqual(actual, expected, `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path}: expected ${expected.length} items, got ${JSON.stringify(actual)}`);
    expected.forEach((e, i) => assertSubset((actual as unknown[])[i], e, `${path}[${i}]`));
    return;
  }
  assert.ok(actual && typeof actual === 'object', `${path}: expected an object, got ${JSON.stringify(actual)}`);
  for (const [k, e] of Object.entries(expected)) {
    assert.ok(k in (actual as object), `${path}.${k} missing in ${JSON.stringify(actual).slice(0, 400)}`);
    assertSubset((actual as Record<string, unknown>)[k], e, `${path}.${k}`);
  }
}

/** Runs steps in order as subtests; `vars` carries saved values between them. */
export async function runTable(t: TestContext, client: PlacementClient, steps: Step[], vars: Record<string, string> = {}): Promise<void> {
  for (const s of steps) {
    await t.test(s.name, async () => {
      const url = fill(s.url, vars) as string;
      const res = await client.call(s.method ?? 'GET', url, {
        body: s.body === undefined ? undefined : fill(s.body, vars), version: s.version, token: s.token, headers: s.headers,
      });
      assert.equal(res.status, s.status, `${s.method ?? 'GET'} ${url}: expected ${s.status}, got ${res.status}: ${res.text.slice(0, 500)}`);
      if (s.code !== undefined) {
        assert.equal(res.body?.errors?.[0]?.code, s.code, `error code for ${url}: ${res.text.slice(0, 500)}`);
      }
      if (s.status >= 400 && s.status !== 401) {
        const e = res.body?.errors?.[0];
        assert.ok(e && e.status === s.status && typeof e.title === 'string' && typeof e.detail === 'string' && typeof e.request_id === 'string',
          `placement error body expected: ${res.text.slice(0, 300)}`);
      }
      if (s.expect !== undefined) assertSubset(res.body, fill(s.expect, vars));
      for (const [h, want] of Object.entries(s.responseHeaders ?? {})) {
        const got = res.headers.get(h);
        if (want === null) assert.equal(got, null, `header ${h} should be absent`);
        else if (want instanceof RegExp) assert.match(got ?? '', want, `header ${h}`);
        else assert.equal(got, fill(want, vars), `header ${h}`);
      }
      s.check?.(res.body, res);
      for (const [k, f] of Object.entries(s.save ?? {})) vars[k] = f(res.body, res);
    });
  }
}
