// npm run bench -- <name> [...args]: runs bench/<name>.ts, which prints its figures and writes
// them to bench/results/<name>-<date>.json. With no name, runs every benchmark in turn.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const [name, ...rest] = process.argv.slice(2);
const names = name ? [name] : readdirSync(here).filter((f) => f.endsWith('.ts') && !['run.ts', 'lib.ts'].includes(f)).map((f) => f.slice(0, -3));
for (const n of names) {
  const mod = await import(`./${n}.ts`);
  await mod.default(rest);
}
process.exit(0);
