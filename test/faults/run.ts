// `npm run faults`: every fault scenario (test/faults/scenarios.ts) on MariaDB and PostgreSQL,
// one deployment per backend, and the table of bench/results/faults-2026-12-01.md.
//   --reduced        one pass, MariaDB only, smaller workloads (what CI runs)
//   --backend B      mysql or postgresql only
//   --only a,b       scenarios by name (slow-placement, broker, database, partition, workers, deletes, image,
//                    full-disk: qemu driver and root only, never run unless named or with --driver qemu)
//   --driver qemu    compute hosts on the qemu driver with the minimal guest (STRATUS_MINIMAL_IMAGE):
//                    broker, workers, deletes, full-disk with 2–10 guests each, and after each scenario
//                    no file or qemu process may be left on a host
//   --logs DIR       every process's stderr kept in DIR/<backend>/<process>.log
//   --out FILE       the table's file (default bench/results/faults[-reduced]-2026-12-01.md)
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Deployment, infraAvailable, type Backend } from '../deploy/deployment.ts';
import { Harness, QEMU_SCENARIOS, SCENARIOS, hostLeftovers, type ScenarioResult } from './scenarios.ts';

const args = process.argv.slice(2);
const reduced = args.includes('--reduced');
const opt = (n: string) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : undefined; };
const backends: Backend[] = opt('--backend') ? [opt('--backend') as Backend] : reduced ? ['mysql'] : ['mysql', 'postgresql'];
const driver = opt('--driver') === 'qemu' ? 'qemu' : 'fake';
const only = opt('--only')?.split(',') ?? (driver === 'qemu' ? QEMU_SCENARIOS : undefined);
// Real guests under TCG on a shared 2-core host: a few per scenario (3 boots, 10 deletes).
const scale = driver === 'qemu' ? 0.05 : reduced ? 0.4 : 1;

export async function runFaults(backend: Backend, o: { scale: number; only?: string[]; log?: (m: string) => void; logDir?: string; driver?: 'fake' | 'qemu' }): Promise<ScenarioResult[]> {
  const dep = new Deployment({
    backend, serviceDownTime: 6, reportInterval: 1, logDir: o.logDir ? join(o.logDir, backend) : undefined, driver: o.driver,
    env: { OS_FAKE_DRIVER__SPAWN_DELAY_MS: '300', OS_DEFAULT__RECONCILE_INTERVAL: '3', OS_DEFAULT__INSTANCE_BUILD_TIMEOUT: '120' },
  });
  const out: ScenarioResult[] = [];
  try {
    const t0 = Date.now();
    await dep.start();
    o.log?.(`${backend}: deployment up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    for (const [name, fn] of SCENARIOS) {
      if (o.only ? !o.only.includes(name) : name === 'full-disk') continue;
      const t0 = Date.now();
      const h = new Harness(dep);
      const r = await fn(h, { scale: o.scale });
      if (o.driver === 'qemu') {
        // No qemu process or disk of a deleted server may stay on any host.
        const left = await hostLeftovers(h);
        r.orphaned += left.length;
        if (left.length) r.notes += `; left on hosts: ${left.join(', ')}`;
      }
      out.push(r);
      o.log?.(`${backend} ${name}: stuck ${r.stuck}, orphaned ${r.orphaned}, quota drift ${r.quotaDrift}, duplicates ${r.duplicates}, recover ${(r.recoverMs / 1000).toFixed(1)} s (${((Date.now() - t0) / 1000).toFixed(0)} s)${r.findings.length ? `\n  ${r.findings.map((f) => `${f.kind} ${f.subject}: ${f.detail}`).join('\n  ')}` : ''}`);
    }
  } finally {
    await dep.stop();
  }
  return out;
}

export function table(results: ScenarioResult[]): string {
  const rows = results.map((r) => `| ${r.scenario} | ${r.backend === 'mysql' ? 'MariaDB' : 'PostgreSQL'} | ${r.servers} | ${r.stuck} | ${r.orphaned} | ${r.quotaDrift} | ${r.duplicates} | ${(r.recoverMs / 1000).toFixed(1)} s | ${r.apiErrors} |`);
  return ['| fault | backend | servers | instances stuck | orphaned allocations | quota drift | duplicates | time to recover | API 5xx retried |', '|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // The processes start from the bundle (bin/stratus.mjs uses dist/ when it is fresh): eleven
  // processes compiling TypeScript at start would take minutes on a loaded machine.
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('npm', ['run', 'build'], { stdio: 'inherit' }).status !== 0) process.exit(1);
  const all: ScenarioResult[] = [];
  const t0 = Date.now();
  const { loadavg } = await import('node:os');
  const load = () => loadavg().map((l) => l.toFixed(2)).join(', ');
  const loadBefore = load();
  for (const b of backends) {
    if (!(await infraAvailable(b))) { console.error(`skipping ${b}: RabbitMQ/rabbitmqctl or the database is not here`); continue; }
    all.push(...await runFaults(b, { scale, only, log: (m) => console.log(m), logDir: opt('--logs'), driver }));
  }
  const bad = all.filter((r) => r.stuck || r.orphaned || r.quotaDrift || r.duplicates);
  const md = [
    `# Fault scenarios (${reduced ? 'reduced: one pass, smaller workloads' : 'full'}), 2026-12-01`, '',
    `\`npm run faults${args.length ? ` -- ${args.join(' ')}` : ''}\` — distributed deployment (test/deploy/): identity, image, placement, compute-api, conductor ×2, scheduler ×2, 2 compute hosts (${driver === 'qemu' ? 'qemu driver, TCG, the minimal guest' : 'fake driver, 300 ms spawn'}), RabbitMQ (own vhost) and the SQL server reached through fault proxies; service_down_time 6 s, reconcile_interval 3 s. Shared 2-core machine loaded by other engineers: times are indicative (load average ${loadBefore} at the start, ${load()} at the end).`, '',
    table(all), '',
    ...(all.some((r) => r.notes) ? ['Notes per scenario:', '', ...all.map((r) => `- ${r.scenario}: ${r.notes}`), ''] : []),
    `Total ${((Date.now() - t0) / 1000).toFixed(0)} s. ${bad.length ? `${bad.length} scenario(s) with non-zero cells.` : 'Every cell of the first four columns is 0.'}`, '',
  ].join('\n');
  const out = opt('--out') ?? (only ? undefined : join(import.meta.dirname, '..', '..', 'bench', 'results', `faults${reduced ? '-reduced' : ''}-2026-12-01.md`));
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, md);
  }
  console.log(md);
  process.exit(bad.length || !all.length ? 1 : 0);
}
