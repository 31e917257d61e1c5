#!/usr/bin/env node
// The `stratus` command. Runs the esbuild bundle in dist/ when it is up to date with src/
// (built by `npm run build`, which `npm ci` runs through `prepare`): a bundle loads faster and
// idles in about 40 MB less memory than compiling TypeScript on the fly. Otherwise (a developer
// editing src/) it runs the TypeScript sources through tsx.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

// A small young generation: API work allocates little per request, and the default
// reservation (16 MB semi-spaces) is most of an idle process's footprint.
v8.setFlagsFromString('--max-semi-space-size=2');

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'stratus.mjs');

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

if (process.env.STRATUS_FROM_SOURCE !== '1' && existsSync(bundle) && statSync(bundle).mtimeMs >= newestSource(join(root, 'src'))) {
  await import(bundle);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
