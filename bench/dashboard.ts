// Dashboard benchmark (issue 13), in Debian's chromium against a fresh all-in-one:
//  - first page usable after a cold navigation (new browser context, empty cache), from the
//    Performance API: navigation start → the login form rendered, and → the overview's quota
//    bars for a logged-in tab;
//  - the JavaScript (and CSS) shipped, gzipped and brotli'd, as the server sends it;
//  - the instance list of 1,000 servers: from the API's answer (JSON parsed) to the frame after
//    the rows were painted (the app's performance marks). The 1,000 servers are one real
//    server's record repeated under new ids, served through the browser's request routing, so
//    no fake hosts or quotas are needed;
//  - upload throughput from the dashboard (XHR PUT with progress events) against `curl -T` of
//    the same file to the same API.
// Usage: npm run bench -- dashboard [--mib=128] [--runs=5]
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';
import { startCloud, type TestCloud } from '../test/helpers/cloud.ts';
import { CHROMIUM_ARGS } from '../test/dashboard/browser-args.ts';
import { round, writeResult } from './lib.ts';

const arg = (name: string, d: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

function assetSizes() {
  const dir = 'dist/dashboard/assets';
  const out: Record<string, number> = { js: 0, jsGzip: 0, jsBrotli: 0, css: 0, cssGzip: 0 };
  for (const f of readdirSync(dir)) {
    const b = readFileSync(join(dir, f));
    if (f.endsWith('.js')) { out.js += b.length; out.jsGzip += gzipSync(b, { level: 9 }).length; out.jsBrotli += brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length; }
    if (f.endsWith('.css')) { out.css += b.length; out.cssGzip += gzipSync(b, { level: 9 }).length; }
  }
  return out;
}

async function session(cloud: TestCloud) {
  const r = await cloud.login('admin', cloud.adminPassword, 'admin');
  const t = r.body.token;
  return { token: r.token, expiresAt: t.expires_at, user: t.user, project: t.project, roles: t.roles.map((x: any) => x.name), catalog: t.catalog, method: 'password' };
}

async function firstPage(browser: Browser, cloud: TestCloud, runs: number) {
  const login: number[] = [], overview: number[] = [];
  const s = await session(cloud);
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${cloud.url}/dashboard/`);
    await p.getByRole('button', { name: 'Log in' }).waitFor();
    // The app marks 'stratus-ready' once the first render is in the DOM.
    login.push(await p.evaluate(() => performance.getEntriesByName('stratus-ready')[0].startTime));
    await ctx.close();
    // A tab with a session: the first page is the overview, usable once its quota bars are in.
    const ctx2 = await browser.newContext();
    await ctx2.addInitScript((json) => {
      sessionStorage.setItem('stratus.session', json);
      // The moment the quota bars (the data of the first page) are in the DOM.
      new MutationObserver((_, o) => {
        if (document.querySelector('[role=meter]')) { (window as any).__usable = performance.now(); o.disconnect(); }
      }).observe(document, { subtree: true, childList: true });
    }, JSON.stringify(s));
    const p2 = await ctx2.newPage();
    await p2.goto(`${cloud.url}/dashboard/#/overview`);
    await p2.getByRole('meter', { name: 'Instances' }).waitFor();
    overview.push(await p2.evaluate(() => (window as any).__usable as number));
    await ctx2.close();
  }
  return { loginFormMs: { median: round(median(login), 1), max: round(Math.max(...login), 1) }, overviewMs: { median: round(median(overview), 1), max: round(Math.max(...overview), 1) }, runs };
}

async function list1000(browser: Browser, cloud: TestCloud, runs: number) {
  const token = await cloud.adminToken();
  const mv = { 'OpenStack-API-Version': 'compute 2.90' };
  const image = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'bench', disk_format: 'raw', container_format: 'bare' } });
  await cloud.req('PUT', `/image/v2/images/${image.body.id}/file`, { token, raw: 'x'.repeat(4096), headers: { 'content-type': 'application/octet-stream' } });
  const created = await cloud.req('POST', '/compute/v2.1/servers', { token, headers: mv, body: { server: { name: 'model', imageRef: image.body.id, flavorRef: '1', networks: 'none' } } });
  let model: any;
  for (let i = 0; i < 100; i++) {
    model = (await cloud.req('GET', `/compute/v2.1/servers/${created.body.server.id}`, { token, headers: mv })).body.server;
    if (model.status === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const servers = Array.from({ length: 1000 }, (_, i) => ({ ...model, id: `${model.id.slice(0, 24)}${String(i).padStart(12, '0')}`, name: `vm-${String(i).padStart(4, '0')}`, created: new Date(Date.parse(model.created) - i * 60_000).toISOString().replace(/\.\d+Z$/, 'Z') }));
  const body = JSON.stringify({ servers });
  const s = await session(cloud);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext();
    await ctx.addInitScript((json) => { sessionStorage.setItem('stratus.session', json); }, JSON.stringify(s));
    await ctx.route(/\/compute\/v2\.1\/servers\/detail/, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: new URL(route.request().url()).searchParams.has('changes-since') ? '{"servers":[]}' : body }));
    const p = await ctx.newPage();
    await p.goto(`${cloud.url}/dashboard/#/instances`);
    await p.waitForFunction(() => performance.getEntriesByName('servers-rendered').length > 0);
    const rows = await p.locator('tbody tr').count();
    if (rows !== 50) throw new Error(`expected a page of 50 rows, got ${rows}`);
    times.push(await p.evaluate(() => performance.getEntriesByName('servers-rendered')[0].startTime - performance.getEntriesByName('servers-answered')[0].startTime));
    await ctx.close();
  }
  await cloud.req('DELETE', `/compute/v2.1/servers/${created.body.server.id}`, { token });
  return { servers: 1000, renderMs: { median: round(median(times), 1), max: round(Math.max(...times), 1) }, runs };
}

async function upload(browser: Browser, cloud: TestCloud, mib: number, runs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-bench-'));
  const file = join(dir, 'disk.raw');
  execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${mib}`], { stdio: 'ignore' });
  const token = await cloud.adminToken();
  const newImage = async (name: string) => (await cloud.req('POST', '/image/v2/images', { token, body: { name, disk_format: 'raw', container_format: 'bare' } })).body.id as string;
  const curl: number[] = [], ui: number[] = [];
  const s = await session(cloud);
  try {
    for (let i = 0; i < runs; i++) {
      const id = await newImage(`curl-${i}`);
      const t0 = process.hrtime.bigint();
      const r = spawnSync('curl', ['-sS', '-f', '-o', '/dev/null', '-T', file, '-H', `x-auth-token: ${token}`, '-H', 'content-type: application/octet-stream', `${cloud.url}/image/v2/images/${id}/file`]);
      if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
      curl.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await cloud.req('DELETE', `/image/v2/images/${id}`, { token });

      const ctx = await browser.newContext();
      await ctx.addInitScript((json) => { sessionStorage.setItem('stratus.session', json); }, JSON.stringify(s));
      const p = await ctx.newPage();
      await p.goto(`${cloud.url}/dashboard/#/images`);
      await p.getByRole('button', { name: 'Create image' }).click();
      const d = p.getByRole('dialog', { name: 'Create image' });
      await d.getByLabel('Name').fill(`ui-${i}`);
      await d.getByLabel('Image file').setInputFiles(file);
      const put = p.waitForEvent('requestfinished', { predicate: (q) => q.method() === 'PUT' && q.url().endsWith('/file'), timeout: 600_000 });
      await d.getByRole('button', { name: 'Create' }).click();
      const req = await put;
      const t = req.timing();
      ui.push(t.responseEnd); // ms from the request's start to the end of the response
      const imageId = req.url().split('/').slice(-2)[0];
      await ctx.close();
      await cloud.req('DELETE', `/image/v2/images/${imageId}`, { token });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const best = (xs: number[]) => Math.min(...xs);
  const mbps = (ms: number) => round(mib / (ms / 1000), 1);
  return {
    mib, runs, curlMiBps: mbps(best(curl)), dashboardMiBps: mbps(best(ui)),
    overheadPercent: round((1 - best(curl) / best(ui)) * 100, 1),
    curlMs: curl.map((x) => round(x, 0)), dashboardMs: ui.map((x) => round(x, 0)),
  };
}

export default async function run(args: string[]) {
  void args;
  const runs = arg('runs', 5);
  const b = spawnSync(process.execPath, ['scripts/build-dashboard.mjs'], { stdio: 'inherit' });
  if (b.status !== 0) throw new Error('dashboard build failed');
  const cloud = await startCloud();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const sizes = assetSizes();
    console.log('assets', sizes);
    const first = await firstPage(browser, cloud, runs);
    console.log('first page', first);
    const list = await list1000(browser, cloud, runs);
    console.log('1,000-server list', list);
    const up = await upload(browser, cloud, arg('mib', 128), Math.min(runs, 3));
    console.log('upload', up);
    const targets = {
      firstPageUnder1s: first.overviewMs.max < 1000 && first.loginFormMs.max < 1000,
      jsUnder250KBGzip: sizes.jsGzip < 250 * 1024,
      list1000Under300ms: list.renderMs.max < 300,
      uploadOverheadUnder10pc: up.overheadPercent < 10,
    };
    console.log('targets', targets);
    writeResult('dashboard', { assets: sizes, firstPage: first, list1000: list, upload: up, targets, note: 'cold = a new browser context (empty cache) per run; times from the Performance API in chromium' });
  } finally {
    await browser.close();
    await cloud.stop();
  }
}
