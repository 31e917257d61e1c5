#!/usr/bin/env node
// Builds the dashboard SPA (src/dashboard/app) into dist/dashboard: one minified, content-hashed
// JS bundle and stylesheet, and an index.html that names them. Run by `npm run build`.
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';

const out = 'dist/dashboard';
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const r = await build({
  entryPoints: { app: 'src/dashboard/app/main.tsx' },
  bundle: true, minify: true, format: 'esm', target: ['chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic', jsxImportSource: 'preact',
  outdir: `${out}/assets`, entryNames: '[name]-[hash]', metafile: true, logLevel: 'warning',
  legalComments: 'linked', sourcemap: false,
});
const outputs = Object.keys(r.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stratus</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="assets/${css}">` : ''}
<script type="module" src="assets/${js}"></script>
</head>
<body>
<noscript>The Stratus dashboard needs JavaScript. The APIs are at the paths the catalog lists.</noscript>
<div id="app"></div>
</body>
</html>
`;
await writeFile(`${out}/index.html`, html);

// The compressed forms the server sends (src/dashboard/assets.ts), made here once instead of at
// every start of the server.
for (const f of [...outputs.map((o) => `${out}/assets/${o}`), `${out}/index.html`].filter((f) => /\.(js|css|html)$/.test(f))) {
  const body = await readFile(f);
  await writeFile(`${f}.gz`, gzipSync(body, { level: 9 }));
  await writeFile(`${f}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
}
