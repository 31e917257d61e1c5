// npm run bench -- identity: token validation, token issue (token and password methods),
// validation throughput at concurrency 10, idle RSS of the all-in-one and cold start to the
// first token. The all-in-one runs as a child process, as a user would start it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { load, summary, timeMany, writeResult, round } from './lib.ts';
import { SCRYPT } from '../src/identity/passwords.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function freePort(): Promise<number> {
  return new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
}
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024, 1) : NaN;
}

async function startCloud(dir: string, port: number): Promise<{ child: ChildProcess; coldStartMs: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(root, 'bin/stratus.mjs'), 'up', '--data-dir', dir, '--port', String(port), '--driver', 'fake'], { stdio: 'ignore', env: { ...process.env, STRATUS_LOG_LEVEL: 'warn' } });
  const body = () => JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: readPassword(dir) } } }, scope: { project: { name: 'admin', domain: { name: 'Default' } } } } });
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/identity/v3/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() });
      if (r.status === 201) { await r.text(); break; }
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, coldStartMs: round(performance.now() - t0, 0) };
}
function readPassword(dir: string): string {
  try { return /OS_PASSWORD='([^']+)'/.exec(readFileSync(join(dir, 'admin-openrc'), 'utf8'))![1]; } catch { return ''; }
}

export default async function identityBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-bench-id-'));
  const port = await freePort();
  // First start creates everything (keys, databases, bootstrap); the second is a plain restart.
  const first = await startCloud(dir, port);
  first.child.kill('SIGTERM');
  await new Promise((r) => first.child.once('exit', r));
  const { child, coldStartMs } = await startCloud(dir, port);
  await new Promise((r) => setTimeout(r, 3000));
  const idleRss = rssMiB(child.pid!);
  const base = `http://127.0.0.1:${port}/identity/v3`;
  const pw = readPassword(dir);
  const auth = (identity: unknown, scoped = true) => JSON.stringify({ auth: { identity, ...(scoped ? { scope: { project: { name: 'admin', domain: { name: 'Default' } } } } : {}) } });
  const issue = async (body: string) => {
    const r = await fetch(`${base}/auth/tokens?nocatalog`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (r.status !== 201) throw new Error(`token issue: ${r.status}`);
    await r.text();
    return r.headers.get('x-subject-token')!;
  };
  const pwBody = auth({ methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: pw } } });
  const admin = await issue(pwBody);
  const subject = await issue(pwBody);
  const validate = async () => {
    const r = await fetch(`${base}/auth/tokens`, { headers: { 'x-auth-token': admin, 'x-subject-token': subject } });
    if (r.status !== 200) throw new Error(`validate: ${r.status}`);
    await r.arrayBuffer();
  };
  for (let i = 0; i < 200; i++) await validate(); // warm-up
  const validation = summary(await timeMany(3000, validate));
  const tokenMethod = summary(await timeMany(500, () => issue(auth({ methods: ['token'], token: { id: subject } }))));
  const password = summary(await timeMany(50, () => issue(pwBody)));
  const throughput = await load(10, 5000, validate);
  await new Promise((r) => setTimeout(r, 2000));
  const afterLoadRss = rssMiB(child.pid!);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });

  const result = {
    note: 'HTTP round trips over loopback from a separate client process; server = `stratus up` child process, SQLite, memory bus.',
    token_validation_ms: validation,
    token_issue_token_method_ms: tokenMethod,
    password_auth_ms: { ...password, kdf: `scrypt N=${SCRYPT.N} r=${SCRYPT.r} p=${SCRYPT.p} (${(128 * SCRYPT.N * SCRYPT.r) / 2 ** 20} MiB per hash)` },
    validate_rps_concurrency_10: round(throughput.perSecond, 0),
    validate_latency_concurrency_10_ms: summary(throughput.lat),
    idle_rss_mib: idleRss,
    rss_after_load_mib: afterLoadRss,
    dist_bundle_present: existsSync(join(root, 'dist/stratus.mjs')), // used by bin/stratus.mjs only when newer than src/
    cold_start_to_first_token_ms: coldStartMs,
    targets: { validation_p50_ms: 1, idle_rss_mib: 120, cold_start_ms: 2000 },
  };
  console.log(JSON.stringify(result, null, 2));
  writeResult('identity', result);
}
