// Image service benchmark (issue 3). The service runs in this process with a fresh database
// (STRATUS_TEST_DB, sqlite by default) and its store in a temp dir; clients are curl processes so
// they do not share the service's event loop. Figures:
//  - 1 GiB upload and download MB/s, as a ratio of the raw sequential write (dd conv=fsync) and
//    read (dd, page cache dropped) speed of the same filesystem, measured in the same run, each
//    the faster of dd through the page cache and dd with O_DIRECT (see ddWrite);
//  - RSS growth of this process during a 4 GiB upload;
//  - GET /v2/images?limit=1000 latency with 1,000 images;
//  - GET /v2/images p99 while four 1 GiB uploads run;
//  - the hash ceiling: md5 and sha512 MB/s on one core (OpenSSL through node:crypto), and the
//    fastest an upload could go on this machine's cores if hashing were the only work. An upload
//    can't beat md5 (a serial hash) nor the two hashes' sum spread over the cores, whatever the
//    disk does; where the disk is faster than that, the dd ratio has a ceiling below 1.
// Usage: npm run bench -- image [--quick] [--only=transfer,rss,list,concurrent]
// (--quick: 256 MiB / 1 GiB instead of 1 GiB / 4 GiB)
import { spawn, execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, loadavg } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { startTestService } from '../test/helpers/service.ts';
import { imageService } from '../src/image/index.ts';
import { percentile, round, summary, writeResult } from './lib.ts';

const MiB = 2 ** 20;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command, returns [seconds, stdout]. */
function timed(cmd: string, args: string[], input?: { bytes: number }): Promise<{ seconds: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.stderr!.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${err}`));
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, out });
    });
  });
}

/** Drops the page cache of one file (posix_fadvise DONTNEED through dd's nocache flag). */
function dropCache(path: string): void {
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
}

/** MB/s of one hash on one core over `mib` MiB, fed 1 MiB at a time. */
function hashSpeed(algo: string, mib: number): number {
  const buf = randomBytes(1 << 20);
  const h = createHash(algo);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < mib; i++) h.update(buf);
  h.digest();
  return mib / (Number(process.hrtime.bigint() - t0) / 1e9);
}

// dd through the page cache and with O_DIRECT (what the store itself uses). The disk's own speed
// is the faster of the two: on these VMs the page-cache figure swings 4x with how recently the
// guest touched the pages it lands in, while the direct one is steady.
function ddWrite(path: string, mib: number, direct: boolean): number {
  const t0 = process.hrtime.bigint();
  sh('dd', ['if=/dev/zero', `of=${path}`, 'bs=1M', `count=${mib}`, 'conv=fsync', ...(direct ? ['oflag=direct'] : [])]);
  return mib / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function ddRead(path: string, mib: number, direct: boolean): number {
  dropCache(path);
  const t0 = process.hrtime.bigint();
  sh('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M', ...(direct ? ['iflag=direct'] : [])]);
  return mib / (Number(process.hrtime.bigint() - t0) / 1e9);
}

export default async function main(args: string[] = []): Promise<void> {
  const quick = args.includes('--quick');
  const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
  const part = (name: string) => !only || only.includes(name);
  const sizeMiB = quick ? 256 : 1024;
  const bigMiB = quick ? 1024 : 4096;
  const svc = await startTestService(imageService, { configText: '[DEFAULT]\napi_limit_max = 1000\n' });
  const url = svc.url;
  const storeDir = join(svc.dataDir, 'images');
  const headers = ['-H', 'x-auth-token: admin', '-H', 'content-type: application/octet-stream'];
  const create = async (name: string): Promise<string> => {
    const r = await fetch(`${url}/v2/images`, { method: 'POST', headers: { 'x-auth-token': 'admin', 'content-type': 'application/json' }, body: JSON.stringify({ name, disk_format: 'raw', container_format: 'bare', visibility: 'private' }) });
    return ((await r.json()) as { id: string }).id;
  };
  /** curl uploading `mib` MiB of pseudo-random data (from a file, or a pipe when no file). */
  const upload = (id: string, file: string) => timed('curl', ['-sS', '-f', '-T', file, ...headers, '-X', 'PUT', `${url}/v2/images/${id}/file`]);
  const uploadZeros = (id: string, mib: number) => timed('bash', ['-c', `head -c ${mib}M /dev/zero | curl -sS -f -T - -H 'x-auth-token: admin' -H 'content-type: application/octet-stream' -X PUT ${url}/v2/images/${id}/file`]);

  const list = async (q: string) => {
    const s = process.hrtime.bigint();
    const r = await fetch(`${url}/v2/images${q}`, { headers: { 'x-auth-token': 'admin' } });
    const body = await r.arrayBuffer();
    if (r.status !== 200 || body.byteLength < 100) throw new Error(`list failed ${r.status}`);
    return Number(process.hrtime.bigint() - s) / 1e6;
  };
  const result: Record<string, unknown> = { backend: process.env.STRATUS_TEST_DB ?? 'sqlite', storeDir, quick, loadavg_start: loadavg().map((x) => round(x, 2)) };
  try {
    if (part('transfer')) {
    // --- 1. disk baseline and 1 GiB up/down, interleaved rounds (the disk's speed drifts) -------
    const src = join(svc.dataDir, 'source.bin');
    sh('bash', ['-c', `openssl enc -aes-128-ctr -pass pass:stratus -nosalt -pbkdf2 -in /dev/zero 2>/dev/null | head -c ${sizeMiB}M > ${src}`]);
    const expectedMd5 = sh('md5sum', [src]).split(' ')[0];
    const rounds: Record<string, number>[] = [];
    let hashesOk = true;
    for (let r = 0; r < (quick ? 2 : 3); r++) {
      const dd = join(storeDir, '.dd-baseline');
      const ddWc = ddWrite(dd, sizeMiB, false);
      const ddRc = ddRead(dd, sizeMiB, false);
      rmSync(dd);
      const ddWd = ddWrite(dd, sizeMiB, true);
      const ddRd = ddRead(dd, sizeMiB, true);
      rmSync(dd);
      const ddW = Math.max(ddWc, ddWd);
      const ddR = Math.max(ddRc, ddRd);
      const id = await create(`bench-${r}`);
      const up = await upload(id, src);
      const stored = join(storeDir, id);
      dropCache(stored);
      const down = await timed('curl', ['-sS', '-f', '-o', '/dev/null', '-H', 'x-auth-token: admin', `${url}/v2/images/${id}/file`]);
      const info = (await (await fetch(`${url}/v2/images/${id}`, { headers: { 'x-auth-token': 'admin' } })).json()) as { checksum: string; os_hash_value: string };
      hashesOk &&= info.checksum === expectedMd5 && info.os_hash_value?.length === 128 && statSync(stored).size === sizeMiB * MiB;
      const round_ = {
        dd_write_cached_fsync_MBps: ddWc, dd_write_direct_MBps: ddWd, dd_read_cached_MBps: ddRc, dd_read_direct_MBps: ddRd,
        dd_write_fsync_MBps: ddW, dd_read_MBps: ddR, upload_MBps: sizeMiB / up.seconds, download_MBps: sizeMiB / down.seconds };
      rounds.push(round_);
      console.log('round', r, Object.fromEntries(Object.entries(round_).map(([k, v]) => [k, round(v, 1)])));
      await fetch(`${url}/v2/images/${id}`, { method: 'DELETE', headers: { 'x-auth-token': 'admin' } });
    }
    rmSync(src);
    const med = (k: string) => { const v = rounds.map((x) => x[k]).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
    const md5 = Math.max(hashSpeed('md5', 512), hashSpeed('md5', 512));
    const sha512 = Math.max(hashSpeed('sha512', 512), hashSpeed('sha512', 512));
    const cores = availableParallelism();
    const ceiling = Math.min(md5, sha512, cores / (1 / md5 + 1 / sha512));
    result.transfer = {
      sizeMiB, rounds: rounds.map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, round(v, 1)]))),
      median: {
        dd_write_fsync_MBps: round(med('dd_write_fsync_MBps'), 1), dd_read_MBps: round(med('dd_read_MBps'), 1),
        upload_MBps: round(med('upload_MBps'), 1), download_MBps: round(med('download_MBps'), 1),
      },
      upload_ratio: round(med('upload_MBps') / med('dd_write_fsync_MBps'), 3),
      download_ratio: round(med('download_MBps') / med('dd_read_MBps'), 3),
      targets: { upload_ratio: 0.7, download_ratio: 0.8 },
      hashes_computed: hashesOk,
      hash_ceiling: {
        md5_MBps: round(md5, 1), sha512_MBps: round(sha512, 1), cores,
        upload_ceiling_MBps: round(ceiling, 1),
        upload_ratio_ceiling: round(ceiling / med('dd_write_fsync_MBps'), 3),
        upload_of_ceiling: round(med('upload_MBps') / ceiling, 3),
      },
    };
    console.log('transfer', result.transfer);

    }
    if (part('rss')) {
    // --- 2. RSS growth during a big upload ---------------------------------------------------------
    const bigId = await create('bench-4g');
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let rssMax = rss0;
    const sampler = setInterval(() => { rssMax = Math.max(rssMax, process.memoryUsage().rss); }, 50);
    const big = await uploadZeros(bigId, bigMiB);
    clearInterval(sampler);
    result.rss = {
      uploadMiB: bigMiB, upload_MBps: round(bigMiB / big.seconds, 1),
      rss_before_MiB: round(rss0 / MiB, 1), rss_max_MiB: round(rssMax / MiB, 1), growth_MiB: round((rssMax - rss0) / MiB, 1),
      target_growth_MiB: 64,
    };
    console.log('rss', result.rss);
    await fetch(`${url}/v2/images/${bigId}`, { method: 'DELETE', headers: { 'x-auth-token': 'admin' } });

    }
    if (part('list') || part('concurrent')) {
    // --- 3. list latency with 1,000 images --------------------------------------------------------
    const t0 = Date.now();
    for (let i = 0; i < 1000; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => create(`img-${String(i + j).padStart(4, '0')}`)));
    const createSeconds = (Date.now() - t0) / 1000;
    for (let i = 0; i < 5; i++) await list('?limit=1000'); // warm-up
    const lat1000: number[] = [];
    for (let i = 0; i < 100; i++) lat1000.push(await list('?limit=1000'));
    lat1000.sort((a, b) => a - b);
    const latDefault: number[] = [];
    for (let i = 0; i < 200; i++) latDefault.push(await list(''));
    latDefault.sort((a, b) => a - b);
    result.list = {
      images: 1002, create_1000_seconds: round(createSeconds, 2),
      limit_1000_ms: summary(lat1000), default_page_ms: summary(latDefault), target_p50_ms: 20,
    };
    console.log('list', result.list);

    }
    if (part('concurrent')) {
    // --- 4. list p99 during four concurrent 1 GiB uploads -----------------------------------------
    const ids = await Promise.all([0, 1, 2, 3].map((i) => create(`concurrent-${i}`)));
    const t1 = process.hrtime.bigint();
    let done = false;
    const uploads = Promise.all(ids.map((i) => uploadZeros(i, sizeMiB))).finally(() => { done = true; });
    const during: number[] = [];
    const during1000: number[] = [];
    await new Promise((r) => setTimeout(r, 300));
    while (!done) {
      during.push(await list(''));
      if (during.length % 10 === 0) during1000.push(await list('?limit=1000'));
    }
    const ups = await uploads;
    const wall = Number(process.hrtime.bigint() - t1) / 1e9;
    during.sort((a, b) => a - b);
    during1000.sort((a, b) => a - b);
    result.concurrent = {
      uploads: 4, each_MiB: sizeMiB, aggregate_MBps: round((4 * sizeMiB) / wall, 1),
      per_upload_seconds: ups.map((u) => round(u.seconds, 2)),
      list_default_page_ms: summary(during), list_p99_ms: round(percentile(during, 99)), target_p99_ms: 50,
      list_limit_1000_ms: summary(during1000),
    };
    console.log('concurrent', result.concurrent);
    }
  } finally {
    await svc.close();
  }
  result.loadavg_end = loadavg().map((x) => round(x, 2));
  result.note = 'The machine is shared with other work (see loadavg): disk and CPU speed vary between runs, which is why the transfer figures are medians of interleaved rounds against dd.';
  writeResult('image', result);
}
