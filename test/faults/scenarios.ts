// The fault scenarios: each drives a workload against a Deployment, injects its fault, waits for
// every server to reach a final state, then runs the invariant checker (src/compute/audit/) and
// returns the figures of the fault table. Used by test/faults/faults.test.ts (asserts zeros)
// and test/faults/run.ts (`npm run faults`, writes bench/results/faults-*.md).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Cells } from '../../src/compute/cells.ts';
import { PlacementClient } from '../../src/compute/clients.ts';
import { openDatabase } from '../../src/common/db/database.ts';
import { auditDeployment, summarize, type Finding } from '../../src/compute/audit/invariants.ts';
import { Deployment, sleep, until } from '../deploy/deployment.ts';

export interface ScenarioResult {
  scenario: string;
  backend: string;
  servers: number;
  stuck: number;
  orphaned: number;
  quotaDrift: number;
  duplicates: number;
  /** Milliseconds from the end of the fault until everything was final and consistent. */
  recoverMs: number;
  /** Requests the API refused during the fault (5xx), retried by the scenario as a client would. */
  apiErrors: number;
  findings: Finding[];
  notes: string;
}

const FINAL = new Set(['ACTIVE', 'ERROR']);

export class Harness {
  apiErrors = 0;
  private image?: Promise<string>;
  constructor(readonly dep: Deployment) {}

  /** The servers' image, uploaded once (a scenario's concurrent boots all wait for the same one): 4 KiB of zeros on the fake driver, the minimal guest (STRATUS_MINIMAL_IMAGE) on qemu. */
  imageId(): Promise<string> {
    this.image ??= this.uploadImage();
    return this.image;
  }

  private async uploadImage(): Promise<string> {
    const d = this.dep;
    const qemu = d.opts.driver === 'qemu';
    const img = await d.http('POST', `${d.imageUrl}/v2/images`, { name: 'faults', disk_format: qemu ? 'qcow2' : 'raw', container_format: 'bare', visibility: 'public' });
    const data = qemu ? readFileSync(process.env.STRATUS_MINIMAL_IMAGE ?? join(homedir(), '.cache', 'stratus', 'minimal-ci.qcow2')) : Buffer.alloc(4096);
    const up = await fetch(`${d.imageUrl}/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': d.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
    if (up.status !== 204) throw new Error(`image upload: ${up.status} ${await up.text()} ${d.proc('image').stderr.slice(-1500)}`);
    return img.body.id;
  }

  /** POST /servers, retried while the API answers 5xx or cannot be reached (a client's retry). */
  async boot(name: string): Promise<string> {
    const image = await this.imageId();
    for (let i = 0; ; i++) {
      const r = await this.dep.http('POST', `${this.dep.computeUrl}/servers`, { server: { name, imageRef: image, flavorRef: '1', networks: 'none' } }).catch((e) => ({ status: 599, body: String(e) }));
      if (r.status === 202) return r.body.server.id;
      if (r.status < 500 || i > 40) throw new Error(`boot ${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      this.apiErrors++;
      await sleep(500);
    }
  }

  async remove(id: string): Promise<void> {
    for (let i = 0; ; i++) {
      const r = await this.dep.http('DELETE', `${this.dep.computeUrl}/servers/${id}`).catch((e) => ({ status: 599, body: String(e) }));
      if (r.status === 204 || r.status === 404) return;
      if (r.status === 409 && i < 40) { await sleep(500); continue; } // locked in a task: try again
      if (r.status < 500 || i > 40) throw new Error(`delete ${id}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      this.apiErrors++;
      await sleep(500);
    }
  }

  /** GET /servers/detail, retried on 5xx as a client would (each one counted). */
  async servers(): Promise<any[]> {
    for (let i = 0; ; i++) {
      const r = await this.dep.http('GET', `${this.dep.computeUrl}/servers/detail?all_tenants=1`).catch((e) => ({ status: 599, body: String(e) }));
      if (r.status === 200) return r.body.servers;
      if (r.status < 500 || i > 20) throw new Error(`list: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      this.apiErrors++;
      await sleep(500);
    }
  }

  /** Every server in a final state (and no deleting in progress). */
  async settled(ms = 150_000): Promise<any[]> {
    return until('every server ACTIVE or ERROR', async () => {
      const all = await this.servers();
      return all.every((s) => FINAL.has(s.status) && !s['OS-EXT-STS:task_state']) ? all : undefined;
    }, ms, 500);
  }

  async audit(): Promise<Finding[]> {
    const d = this.dep;
    // Through the deployment's database proxy (open again by the time the audit runs).
    const cells = await Cells.open(d.urls.nova_api, { apiPoolSize: 2, cellPoolSize: 2 });
    const images = await openDatabase(d.urls.image, { poolSize: 1 });
    try {
      const placement = new PlacementClient({ endpoint: async () => d.placementUrl, token: async () => d.token });
      return await auditDeployment(cells, placement, {
        buildTimeoutMs: 0, taskTimeoutMs: 0, imageTimeoutMs: 0,
        images: () => (images.db as any).selectFrom('images').select(['id', 'status', 'updated_at']).where('deleted', '=', 0).execute(),
      });
    } finally {
      await images.close();
      await cells.close();
    }
  }

  /** Waits for a clean audit (the reconciler may still be working), returns the last findings. */
  async consistent(ms = 60_000): Promise<Finding[]> {
    let last: Finding[] = [];
    try {
      await until('a clean audit', async () => { last = await this.audit(); return last.length === 0; }, ms, 2000);
    } catch { /* reported as findings */ }
    return last;
  }

  /** Deletes every server; the number still there after two minutes (counted as stuck: a delete that never finished). */
  async deleteAll(): Promise<number> {
    const all = await this.servers();
    await Promise.all(all.map((s) => this.remove(s.id)));
    let left: any[] = all;
    await until('every server gone', async () => (left = await this.servers()).length === 0, 120_000, 500).catch(() => undefined);
    // Named in the run's output, so that a CI log alone says what would not go.
    for (const x of left) console.error(`  not deleted: ${x.id} ${x.name} ${x.status}/${x['OS-EXT-STS:task_state'] ?? '-'} on ${x['OS-EXT-SRV-ATTR:host'] ?? 'no host'}`);
    return left.length;
  }
}

async function conclude(h: Harness, scenario: string, faultEnd: number, servers: number, notes: string, dupNames = 0): Promise<ScenarioResult> {
  let stuckNow = 0;
  try { await h.settled(); } catch { stuckNow = (await h.servers()).filter((s) => !FINAL.has(s.status) || s['OS-EXT-STS:task_state']).length; }
  const findings = await h.consistent();
  const recoverMs = Date.now() - faultEnd;
  const s = summarize(findings);
  // How the servers ended (a run where every build failed would prove little).
  const ended = new Map<string, number>();
  for (const x of await h.servers()) ended.set(x.status, (ended.get(x.status) ?? 0) + 1);
  notes = [notes, [...ended].map(([k, v]) => `${v} ${k}`).join(', ')].filter(Boolean).join('; ');
  return {
    scenario, backend: h.dep.backend, servers,
    stuck: Math.max(stuckNow, s.stuck_instance + s.stuck_build_request + s.stuck_image) + s.unmapped_instance,
    orphaned: s.orphan_allocation + s.allocation_wrong_host + s.missing_allocation + s.allocation_mismatch,
    quotaDrift: s.quota_drift, duplicates: s.duplicate_instance + dupNames,
    recoverMs, apiErrors: h.apiErrors, findings, notes,
  };
}

function duplicateNames(servers: any[]): number {
  const n = new Map<string, number>();
  for (const s of servers) n.set(s.name, (n.get(s.name) ?? 0) + 1);
  return [...n.values()].filter((c) => c > 1).length;
}

const brokerAccepted = (d: Deployment) => [d.broker, ...d.hostBroker.values()].reduce((n, p) => n + p.accepted, 0);
const reconnects = (d: Deployment, before: number) => brokerAccepted(d) - before;

export type Scenario = (h: Harness, o: { scale: number }) => Promise<ScenarioResult>;

/** 50 concurrent boots while the broker connection of every process is cut twice. */
export const brokerRestart: Scenario = async (h, { scale }) => {
  const n = Math.round(50 * scale);
  const before = brokerAccepted(h.dep);
  const boots = Promise.all(Array.from({ length: n }, (_, i) => h.boot(`rb${i}`)));
  boots.catch(() => undefined); // awaited below; a rejection meanwhile must not end the process
  await sleep(300);
  await h.dep.restartRabbit(2000);
  await sleep(1500);
  await h.dep.restartRabbit(2000);
  const end = Date.now();
  await boots;
  const r = await conclude(h, `broker restarted twice during ${n} boots`, end, n, `broker proxies cut 2 s, twice; ${reconnects(h.dep, before)} broker reconnections`, 0);
  r.duplicates += duplicateNames(await h.servers());
  r.stuck += await h.deleteAll();
  return r;
};

/** 50 boots and 50 deletes while the database connection of every service is cut. */
export const databaseRestart: Scenario = async (h, { scale }) => {
  const n = Math.round(50 * scale);
  const old = await Promise.all(Array.from({ length: n }, (_, i) => h.boot(`old${i}`)));
  await h.settled();
  const dbBefore = h.dep.database.accepted;
  const work = Promise.all([
    ...Array.from({ length: n }, (_, i) => h.boot(`db${i}`)),
    ...old.map((id) => h.remove(id)),
  ]);
  work.catch(() => undefined); // awaited below
  await sleep(300);
  await h.dep.restartDatabase(3000);
  const end = Date.now();
  await work;
  const r = await conclude(h, `database restarted during ${n} boots + ${n} deletes`, end, 2 * n, `database proxy cut 3 s; ${h.dep.database.accepted - dbBefore} new database connections`);
  const left = await h.servers();
  r.duplicates += duplicateNames(left);
  if (left.some((s) => s.name.startsWith('old'))) r.stuck += left.filter((s) => s.name.startsWith('old')).length;
  r.stuck += await h.deleteAll();
  return r;
};

/** A compute host partitioned for 2 × service_down_time during builds, then healed. */
export const hostPartition: Scenario = async (h, { scale }) => {
  const n = Math.round(20 * scale);
  const down = h.dep.opts.serviceDownTime ?? 10;
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => h.boot(`part${i}`)));
  await sleep(200);
  h.dep.partition('compute2');
  await sleep(2 * down * 1000);
  h.dep.heal('compute2');
  const end = Date.now();
  const r = await conclude(h, `compute host partitioned 2 × service_down_time (${2 * down} s) during ${n} builds`, end, n, 'compute2 broker + placement stalled');
  // Late reports must not resurrect: each server on exactly one host, the one its allocation names.
  r.duplicates += duplicateNames(await h.servers());
  void ids;
  r.stuck += await h.deleteAll();
  return r;
};

/** One of two conductors and one of two schedulers killed -9 mid-stream, restarted afterwards. */
export const workerKill: Scenario = async (h, { scale }) => {
  const n = Math.round(50 * scale);
  const boots = Promise.all(Array.from({ length: n }, (_, i) => h.boot(`wk${i}`)));
  boots.catch(() => undefined); // awaited below
  await sleep(400);
  h.dep.kill9('conductor1');
  h.dep.kill9('scheduler1');
  const end = Date.now();
  await boots;
  const r = await conclude(h, `one of two conductors and schedulers killed -9 during ${n} boots`, end, n, 'conductor1 + scheduler1 SIGKILL');
  r.duplicates += duplicateNames(await h.servers());
  r.stuck += await h.deleteAll();
  await h.dep.restart('conductor1');
  await h.dep.restart('scheduler1');
  return r;
};

/** 200 deletes while their builds are still in flight. */
export const deleteStorm: Scenario = async (h, { scale }) => {
  const n = Math.round(200 * scale);
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => h.boot(`ds${i}`)));
  await Promise.all(ids.map((id) => h.remove(id)));
  const end = Date.now();
  let left: any[] = [];
  try { await until('every server gone', async () => (left = await h.servers()).length === 0, 150_000, 500); } catch { /* counted */ }
  const findings = await h.consistent();
  const s = summarize(findings);
  return {
    scenario: `${n} deletes while their builds are in flight`, backend: h.dep.backend, servers: n,
    stuck: left.length + s.stuck_instance + s.stuck_build_request + s.unmapped_instance, orphaned: s.orphan_allocation + s.allocation_wrong_host + s.missing_allocation + s.allocation_mismatch,
    quotaDrift: s.quota_drift, duplicates: s.duplicate_instance, recoverMs: Date.now() - end, apiErrors: h.apiErrors, findings, notes: 'DELETE right after each 202',
  };
};

/** Image uploads cut by the client at random points and by killing the image server. */
export const imageUploadCut: Scenario = async (h, { scale }) => {
  const d = h.dep;
  const n = Math.max(2, Math.round(6 * scale));
  const size = 4 << 20;
  const data = randomBytes(size);
  const sha = createHash('sha256').update(data).digest('hex');
  const ids: string[] = [];
  let wrong = 0;
  for (let i = 0; i < n; i++) {
    const img = await d.http('POST', `${d.imageUrl}/v2/images`, { name: `cut${i}`, disk_format: 'raw', container_format: 'bare' });
    ids.push(img.body.id);
    const cutAt = Math.floor(Math.random() * size);
    const ctl = new AbortController();
    const body = new ReadableStream({
      start(c) { c.enqueue(data.subarray(0, cutAt)); },
      pull() { return new Promise(() => { /* never sends the rest */ }); },
    });
    const server = i % 2 === 1; // every other cut is a kill -9 of the image server
    const put = fetch(`${d.imageUrl}/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': d.token, 'content-type': 'application/octet-stream' }, body, duplex: 'half', signal: ctl.signal } as RequestInit).catch(() => undefined);
    await sleep(300);
    if (server) { d.kill9('image'); await sleep(200); await d.restart('image'); } else ctl.abort();
    await put;
    await until('image service back', async () => (await d.http('GET', `${d.imageUrl}/v2/images/${img.body.id}`).catch(() => ({ status: 0 }))).status === 200, 30_000);
  }
  const end = Date.now();
  // Every image ends queued (upload again) or active with exactly the data: then upload each fully.
  await until('no upload in progress', async () => {
    const st = await Promise.all(ids.map(async (id) => (await d.http('GET', `${d.imageUrl}/v2/images/${id}`)).body.status));
    return st.every((s) => s === 'queued' || s === 'active');
  }, 90_000, 1000).catch(() => undefined);
  for (const id of ids) {
    const st = (await d.http('GET', `${d.imageUrl}/v2/images/${id}`)).body.status;
    if (st === 'active') {
      const got = createHash('sha256').update(Buffer.from(await (await fetch(`${d.imageUrl}/v2/images/${id}/file`, { headers: { 'x-auth-token': d.token } })).arrayBuffer())).digest('hex');
      if (got !== sha) wrong++;
    }
  }
  const findings = await h.consistent(30_000);
  const s = summarize(findings);
  const stuck = (await Promise.all(ids.map(async (id) => (await d.http('GET', `${d.imageUrl}/v2/images/${id}`)).body.status))).filter((x) => x !== 'queued' && x !== 'active').length;
  for (const id of ids) await d.http('DELETE', `${d.imageUrl}/v2/images/${id}`);
  return {
    scenario: `${n} image uploads cut (client abort, image server kill -9)`, backend: d.backend, servers: 0,
    stuck: stuck + s.stuck_image, orphaned: 0, quotaDrift: 0, duplicates: wrong, recoverMs: Date.now() - end, apiErrors: 0, findings,
    notes: `active with wrong data: ${wrong} (counted as duplicates/corruption)`,
  };
};

/** Boots while every placement request (scheduler claims, agents' inventory) is slowed down. */
export const slowPlacement: Scenario = async (h, { scale }) => {
  const n = Math.round(30 * scale);
  h.dep.slowPlacement(300);
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => h.boot(`sp${i}`)));
    await h.settled().catch(() => undefined); // counted by conclude
  } finally {
    h.dep.slowPlacement(0);
  }
  const r = await conclude(h, `${n} boots with placement slowed by 300 ms per chunk`, Date.now(), n, 'placement proxies delayed');
  r.duplicates += duplicateNames(await h.servers());
  r.stuck += await h.deleteAll();
  return r;
};

/**
 * Builds on hosts whose instances_path is full (qemu driver: a 1 GiB tmpfs with 8 MiB free, less
 * than the image): every build ends in ERROR with the reason, and once deleted nothing is left —
 * no allocation, no quota usage, no file or qemu process on any host.
 */
export const fullDisk: Scenario = async (h, { scale }) => {
  const d = h.dep;
  const hosts = d.opts.computeHosts ?? ['compute1', 'compute2'];
  const n = Math.max(2, Math.round(3 * scale));
  for (const host of hosts) await d.fullDisk(host, 8);
  try {
    await until('compute hosts up on their full disks', async () => d.ready(), 180_000, 1000);
    await Promise.all(Array.from({ length: n }, (_, i) => h.boot(`fd${i}`)));
    const end = Date.now();
    const r = await conclude(h, `${n} builds on full instances_path (tmpfs, 8 MiB free)`, end, n, '');
    const servers = await h.servers();
    const reasons = new Set(servers.map((s) => `${s.status}: ${String(s.fault?.message ?? '').slice(-240)}`));
    const wrong = servers.filter((s) => s.status !== 'ERROR' || !/disk space/i.test(String(s.fault?.message ?? '')));
    r.notes = `every build ERROR with its reason: ${wrong.length === 0 ? 'yes' : `no (${wrong.length} not)`}; ${[...reasons].join(' | ')}`;
    r.stuck += wrong.length;
    r.stuck += await h.deleteAll();
    const left = (await Promise.all(hosts.map(async (host) => (await d.leftovers(host)).map((f) => `${host}:${f}`)))).flat();
    if (left.length) r.notes += `; left behind: ${left.join(', ')}`;
    r.orphaned += left.length;
    return r;
  } finally {
    for (const host of hosts) await d.freeDisk(host);
    await until('compute hosts back on their disks', async () => d.ready(), 180_000, 1000).catch(() => undefined);
  }
};

/** On the qemu driver: what each host still has (files, qemu processes) once every server is gone. */
export async function hostLeftovers(h: Harness): Promise<string[]> {
  const hosts = h.dep.opts.computeHosts ?? ['compute1', 'compute2'];
  return (await Promise.all(hosts.map(async (host) => (await h.dep.leftovers(host)).map((f) => `${host}:${f}`)))).flat();
}

/** The reduced set run on real guests (`npm run faults -- --driver qemu`): a few minimal guests each. */
export const QEMU_SCENARIOS = ['broker', 'workers', 'deletes', 'full-disk'];

export const SCENARIOS: [string, Scenario][] = [
  ['slow-placement', slowPlacement],
  ['broker', brokerRestart], ['database', databaseRestart], ['partition', hostPartition],
  ['workers', workerKill], ['deletes', deleteStorm], ['image', imageUploadCut],
  // Only where asked for (--only full-disk, or --driver qemu): it needs the qemu driver and root (mount).
  ['full-disk', fullDisk],
];
