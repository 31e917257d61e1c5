// Placement benchmark (issue 4): 1,000 providers (VCPU, MEMORY_MB, DISK_GB; some with traits
// and aggregates) and 10,000 allocations, then
//   - GET /allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1&limit=1000 (p50 < 25 ms)
//   - the same with required + member_of (p50 < 40 ms)
//   - PUT /allocations/{consumer} (p50 < 3 ms)
//   - sustained concurrent allocation writes (>= 200/s on SQLite)
// and, with --explain, the query plans of the candidates queries (PostgreSQL / MariaDB).
//
//   npm run bench -- placement [--db=sqlite|mysql|postgresql] [--explain] [--providers=N] [--allocations=N]
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompiledQuery, type KyselyPlugin } from 'kysely';
import { load, machine, summary, timeMany, writeResult } from './lib.ts';

interface Args { db: string; explain: boolean; providers: number; allocations: number; seconds: number; concurrency: number }

function parseArgs(argv: string[]): Args {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  return {
    db: get('db') ?? process.env.STRATUS_TEST_DB ?? 'sqlite',
    explain: argv.includes('--explain'),
    providers: Number(get('providers') ?? 1000),
    allocations: Number(get('allocations') ?? 10000),
    seconds: Number(get('seconds') ?? 10),
    concurrency: Number(get('concurrency') ?? 32),
  };
}

export default async function run(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  process.env.STRATUS_TEST_DB = args.db; // read by the test backend helper at import
  const { startTestService } = await import('../test/helpers/service.ts');
  const { placementService } = await import('../src/placement/index.ts');
  const { PlacementClient } = await import('../src/placement/testing.ts');
  const svc = await startTestService(placementService);
  const client = new PlacementClient(svc.url);
  try {
    const aggs = Array.from({ length: 10 }, () => randomUUID());
    const t0 = Date.now();
    const providers = await seed(client, args, aggs);
    const seedSeconds = (Date.now() - t0) / 1000;
    console.log(`seeded ${providers.length} providers and ${args.allocations} allocations in ${seedSeconds.toFixed(1)} s (${args.db})`);

    const plain = '/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1&limit=1000';
    const filtered = `/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1&limit=1000&required=HW_CPU_X86_AVX2&member_of=in:${aggs.slice(0, 5).join(',')}`;
    const check = async (path: string) => {
      const r = await client.get(path);
      if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.text.slice(0, 200)}`);
      return r.body.allocation_requests.length as number;
    };
    const plainCount = await check(plain);
    const filteredCount = await check(filtered);
    // Timed as a client sees it: request sent, whole body received (parsing is the client's).
    const headers = { 'x-auth-token': 'admin', 'openstack-api-version': 'placement latest', accept: 'application/json' };
    const fetchText = async (path: string, version = 'latest') => {
      const r = await fetch(svc.url + path, { headers: { ...headers, 'openstack-api-version': `placement ${version}` } });
      const text = await r.text();
      if (r.status !== 200) throw new Error(`${path}: ${r.status} ${text.slice(0, 200)}`);
      return text.length;
    };
    for (let i = 0; i < 20; i++) await fetchText(plain); // warm-up
    const bytes = await fetchText(plain);
    const candidates = summary(await timeMany(200, () => fetchText(plain)));
    const candidatesFiltered = summary(await timeMany(200, () => fetchText(filtered)));
    const candidates110 = summary(await timeMany(100, () => fetchText('/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1', '1.10')));
    console.log(`candidates (${plainCount} results): p50 ${candidates.p50} ms, p99 ${candidates.p99} ms`);
    console.log(`candidates with required+member_of (${filteredCount} results): p50 ${candidatesFiltered.p50} ms, p99 ${candidatesFiltered.p99} ms`);

    const body = (rp: string) => ({ allocations: { [rp]: { resources: { VCPU: 1, MEMORY_MB: 256, DISK_GB: 1 } } }, project_id: 'bench', user_id: 'bench', consumer_generation: null, consumer_type: 'INSTANCE' });
    const put = summary(await timeMany(1000, async (i) => {
      const r = await client.put(`/allocations/${randomUUID()}`, body(providers[i % providers.length]));
      if (r.status !== 204) throw new Error(`PUT allocations: ${r.status} ${r.text}`);
    }));
    console.log(`PUT /allocations/{c}: p50 ${put.p50} ms, p99 ${put.p99} ms`);

    let failures = 0;
    const sustained = await load(args.concurrency, args.seconds * 1000, async () => {
      const r = await client.put(`/allocations/${randomUUID()}`, body(providers[Math.floor(Math.random() * providers.length)]));
      if (r.status !== 204) failures++;
    });
    const perSecond = Math.round(sustained.perSecond);
    console.log(`sustained: ${perSecond} allocations/s with ${args.concurrency} clients for ${args.seconds} s (${failures} refused), p50 ${summary(sustained.lat).p50} ms`);

    let explainFile: string | undefined;
    if (args.explain) explainFile = await explain(svc.config.get<string>('placement_database', 'connection'), args.db, aggs);

    writeResult(`placement-${args.db}`, {
      backend: args.db,
      // The machine is shared: its load during the run, for reading the latencies.
      loadAverage1m: Math.round(loadavg()[0] * 100) / 100,
      dataset: { providers: providers.length, allocations: args.allocations, aggregates: aggs.length, seedSeconds },
      candidates: { query: plain, results: plainCount, responseBytes: bytes, ...candidates, target_p50_ms: 25 },
      candidatesRequiredMemberOf: { query: filtered, results: filteredCount, ...candidatesFiltered, target_p50_ms: 40 },
      candidatesMicroversion110: candidates110,
      putAllocations: { ...put, target_p50_ms: 3 },
      sustainedAllocations: { perSecond, clients: args.concurrency, seconds: args.seconds, refused: failures, ...summary(sustained.lat), target_per_second: 200 },
      explain: explainFile,
    });
  } finally {
    await svc.close();
  }
}

/** Providers through the API; allocations in batches through POST /allocations. */
async function seed(client: InstanceType<typeof import('../src/placement/testing.ts').PlacementClient>, args: Args, aggs: string[]): Promise<string[]> {
  await client.put('/traits/CUSTOM_FAST');
  const providers: string[] = [];
  const batch = 25;
  for (let i = 0; i < args.providers; i += batch) {
    const made = await Promise.all(Array.from({ length: Math.min(batch, args.providers - i) }, (_, k) => {
      const n = i + k;
      const traits = n % 3 === 0 ? ['COMPUTE_NODE', 'HW_CPU_X86_AVX2', ...(n % 5 === 0 ? ['CUSTOM_FAST'] : [])] : n % 3 === 1 ? ['COMPUTE_NODE'] : undefined;
      return client.provider(`bench-${n}`, {
        inventory: { VCPU: { total: 64, allocation_ratio: 16 }, MEMORY_MB: { total: 262144, allocation_ratio: 1.5 }, DISK_GB: 4000 },
        traits,
        aggregates: n % 2 === 0 ? [aggs[n % aggs.length]] : undefined,
      });
    }));
    providers.push(...made);
  }
  const perRequest = 100;
  for (let i = 0; i < args.allocations; i += perRequest) {
    const body: Record<string, unknown> = {};
    for (let k = i; k < Math.min(i + perRequest, args.allocations); k++) {
      body[randomUUID()] = {
        allocations: { [providers[k % providers.length]]: { resources: { VCPU: 2, MEMORY_MB: 4096, DISK_GB: 20 } } },
        project_id: `project-${k % 50}`, user_id: 'bench', consumer_generation: null, consumer_type: 'INSTANCE',
      };
    }
    const r = await client.post('/allocations', body);
    if (r.status !== 204) throw new Error(`seeding allocations: ${r.status} ${r.text.slice(0, 300)}`);
  }
  return providers;
}

/**
 * Runs the candidate searches through the model with a plugin that records every compiled
 * query, then asks the database for the plan of each query that reads inventories.
 */
async function explain(url: string, db: string, aggs: string[]): Promise<string> {
  const { openDatabase } = await import('../src/common/db/database.ts');
  const { PlacementStore } = await import('../src/placement/model/store.ts');
  const { getCandidates } = await import('../src/placement/model/candidates.ts');
  const database = await openDatabase(url);
  const recorded: CompiledQuery[] = [];
  const recorder: KyselyPlugin = {
    transformQuery: ({ node, queryId }) => { recorded.push(database.db.getExecutor().compileQuery(node, queryId)); return node; },
    transformResult: async ({ result }) => result,
  };
  const store = new PlacementStore({ ...database, db: database.db.withPlugin(recorder) } as typeof database);
  await store.syncStandards();
  const out: string[] = [`# Placement candidates query plans — ${db} — ${new Date().toISOString()}`, `# machine: ${JSON.stringify(machine())}`, ''];
  const wide = { limit: 1000, rootRequired: [], rootForbidden: [], sameSubtrees: [], nestedAware: true, randomize: false, maxCandidates: -1 };
  const searches = [
    { name: 'resources=VCPU:1,MEMORY_MB:512,DISK_GB:1', group: { suffix: '', resources: { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }, requiredTraits: [], forbiddenTraits: [], memberOf: [], forbiddenAggs: [] } },
    { name: '… &required=HW_CPU_X86_AVX2&member_of=in:<5 aggregates>', group: { suffix: '', resources: { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }, requiredTraits: [['HW_CPU_X86_AVX2']], forbiddenTraits: [], memberOf: [aggs.slice(0, 5)], forbiddenAggs: [] } },
  ];
  for (const s of searches) {
    recorded.length = 0;
    const r = await getCandidates(store, [s.group], wide);
    out.push(`## ${s.name} → ${r.requests.length} candidates`, '');
    // Every query the search ran, with its plan.
    for (const q of recorded.filter((x) => /^select/i.test(x.sql))) {
      out.push('```sql', q.sql, `-- parameters: ${JSON.stringify(q.parameters)}`, '```');
      const explainSql = db === 'postgresql' ? `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${q.sql}` : db === 'mysql' ? `ANALYZE ${q.sql}` : `EXPLAIN QUERY PLAN ${q.sql}`;
      const rows = (await database.db.executeQuery(CompiledQuery.raw(explainSql, [...q.parameters]))).rows as Record<string, unknown>[];
      out.push('```', ...formatPlan(rows), '```', '');
    }
    const touchesAllocations = recorded.some((x) => /"allocations"|`allocations`/.test(x.sql));
    out.push(`allocations table read by this search: ${touchesAllocations ? 'YES' : 'no'}`, '');
  }
  await database.close();
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `placement-explain-${db}-${new Date().toISOString().slice(0, 10)}.md`);
  writeFileSync(file, out.join('\n') + '\n');
  console.log(out.join('\n'));
  console.log(`plans written to ${file}`);
  return file;
}

function formatPlan(rows: Record<string, unknown>[]): string[] {
  if (!rows.length) return [];
  if (rows.length && 'QUERY PLAN' in rows[0]) return rows.map((r) => String(r['QUERY PLAN']));
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? 'NULL').length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(width[i])).join(' | ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => String(r[c] ?? 'NULL'))))];
}
