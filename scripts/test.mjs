#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node:test through tsx.
// Usage: node scripts/test.mjs [path-filter ...] [!excluded-path-filter ...]
// The storage and RPC backends come from STRATUS_TEST_DB (sqlite|mysql|postgresql) and
// STRATUS_TEST_TRANSPORT (memory|rabbit); .ci/run walks the matrix.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('!'));
const excluded = args.filter((a) => a.startsWith('!')).map((a) => a.slice(1));
let files = [...walk('src', []), ...walk('test', [])].sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
files = files.filter((f) => !excluded.some((x) => f.includes(x)));
if (!files.length) { console.error('no test files matched'); process.exit(1); }
const concurrency = process.env.STRATUS_TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
