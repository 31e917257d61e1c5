#!/usr/bin/env node
// Builds the server bundle that bin/stratus.mjs runs: dist/stratus.mjs and, beside it in
// dist/chunks/, what the code imports only on demand (a database driver, the AMQP client, the
// QEMU driver, the console proxies' websocket server…). Run by `npm run build`.
//
// The npm dependencies are bundled too, not left to Node's module loader: resolving and reading
// a few hundred small ESM files cost more than half of a start (`stratus --help` 0.40 → 0.17 s,
// 96 → 72 MB). Only native addons (better-sqlite3) and optional packages that are not installed
// (pg-native) stay external. Whitespace is minified, which also drops the comments: a single
// non-ASCII character in a comment makes V8 hold the whole source as a two-byte string, twice
// the memory. The licence comments go to dist/*.LEGAL.txt.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';

await rm('dist/chunks', { recursive: true, force: true });
await rm('dist/stratus.mjs', { force: true });
await build({
  entryPoints: { stratus: 'src/cli/main.ts' },
  bundle: true, splitting: true, platform: 'node', format: 'esm', target: 'node20',
  outdir: 'dist', outExtension: { '.js': '.mjs' }, chunkNames: 'chunks/[name]-[hash]',
  external: ['better-sqlite3', 'pg-native'],
  // The bundled CommonJS packages call require() for Node's built-ins.
  banner: { js: "import { createRequire as __stratusRequire } from 'node:module'; const require = __stratusRequire(import.meta.url);" },
  minifyWhitespace: true, legalComments: 'external', charset: 'ascii', logLevel: 'warning',
});
