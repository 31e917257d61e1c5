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
//  - download (issue 14): 512 MiB with `curl -o /dev/null`, the first download after the upload,
//    the second and third, and one after `drop_caches`, under upload_direct_io and
//    download_direct_io = auto (the default: the page cache) and always (O_DIRECT), alternating; next to dd/cat of the stored file hot and cold and to Node
//    serving the same bytes from memory (the HTTP + loopback + curl ceiling), all in the same run;
//  - upload (issue 14): 512 MiB with `curl -T`, the service's CPU per GiB by thread (event loop:
//    HTTP receive, inspection, the copy into the ring; the two hash workers; the rest: libuv's
//    pool doing the writes and fsync, V8), next to dd write + fsync and openssl md5 and sha512
//    run side by side on the same file (the parallel hash ceiling), all in the same run.
// Usage: npm run bench -- image [--quick] [--only=transfer,rss,list,concurrent,download,upload]
//   [--rounds=N] [--tag=NAME] (--quick: 256 MiB / 1 GiB instead of 1 GiB / 4 GiB; --tag: the
//   result goes to image-NAME-<date>.json)
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import v8 from 'node:v8';
import type { AddressInfo } from 'node:net';
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

/** Drops the whole page cache and waits until the balloon has handed the freed memory back to
 * the host (free page reporting runs ~2 s after pages are freed): a cold read then finds what a
 * cold read finds in production, not pages freed a moment ago. */
function dropAllCaches(): void {
  execFileSync('bash', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches; sleep 3'], { stdio: 'ignore' });
}

/** CPU seconds (user, system) of this process's threads, grouped: the event loop, the niced
 * hash workers (hashpool.ts), everything else (libuv's pool, V8's platform threads, GC). */
function threadCpu(): { main: number; hash: number; other: number; user: number; sys: number } {
  const hz = 100;
  const out = { main: 0, hash: 0, other: 0, user: 0, sys: 0 };
  for (const tid of readdirSync('/proc/self/task')) {
    let f: string[];
    try { f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').replace(/^.*\) /, '').split(' '); } catch { continue; }
    // after "pid (comm) ": state=0 … utime=11 stime=12 … nice=16
    const u = Number(f[11]) / hz;
    const sy = Number(f[12]) / hz;
    const key = Number(tid) === process.pid ? 'main' : Number(f[16]) > 0 ? 'hash' : 'other';
    out[key] += u + sy;
    out.user += u;
    out.sys += sy;
  }
  return out;
}

function cpuDelta(a: ReturnType<typeof threadCpu>, b: ReturnType<typeof threadCpu>, gib: number) {
  return Object.fromEntries(Object.keys(a).map((k) => [k, round((b[k as keyof typeof a] - a[k as keyof typeof a]) / gib, 3)]));
}

/** `curl ARGS` (or any `command`) with bash's `times` after it: its seconds and CPU seconds. */
async function curlTimed(args: string, command = `curl ${args}`): Promise<{ seconds: number; curlCpu: number }> {
  const r = await timed('bash', ['-c', `${command}; times`]);
  const lines = r.out.trim().split('\n');
  const sec = (x: string) => { const m = /(\d+)m([\d.]+)s/.exec(x)!; return Number(m[1]) * 60 + Number(m[2]); };
  const [cu, cs] = lines[lines.length - 1].trim().split(/\s+/);
  return { seconds: r.seconds, curlCpu: sec(cu) + sec(cs) };
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
  // The service runs in this process: give it the young generation `stratus` gives it
  // (bin/stratus.mjs). With V8's default 16 MB semi-spaces a test process uploading 1 GiB ran
  // between 3 and 32 full GCs from one run to the next; with 2 MB semi-spaces, 2 every time.
  v8.setFlagsFromString('--max-semi-space-size=2');
  const quick = args.includes('--quick');
  const tag = args.find((a) => a.startsWith('--tag='))?.slice(6);
  const roundsArg = Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
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
    if (part('download') || part('upload')) await dataPath(url, svc.dataDir, storeDir, { download: part('download'), upload: part('upload'), rounds: roundsArg, result });
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
  writeResult(tag ? `image-${tag}` : 'image', result);
}

const DATA_MiB = 512;

/** Issue 14's download and upload figures (see the header), alternating modes round by round. */
async function dataPath(url: string, dataDir: string, storeDir: string, opts: { download: boolean; upload: boolean; rounds: number; result: Record<string, unknown> }): Promise<void> {
  const gib = DATA_MiB / 1024;
  const src = join(dataDir, 'source-512.bin');
  sh('bash', ['-c', `openssl enc -aes-128-ctr -pass pass:stratus -nosalt -pbkdf2 -in /dev/zero 2>/dev/null | head -c ${DATA_MiB}M > ${src}`]);
  const expectedMd5 = sh('md5sum', [src]).split(' ')[0];
  // The same service with downloads forced to O_DIRECT (the former behaviour), in this process.
  const always = await startTestService(imageService, { configText: '[glance_store]\nupload_direct_io = always\ndownload_direct_io = always\n' });
  const services = { auto: { url, storeDir }, always: { url: always.url, storeDir: join(always.dataDir, 'images') } };
  // Node serving the same number of bytes from one reused 4 MiB buffer: what HTTP over loopback
  // into curl costs without any file, the ceiling of any download from this process.
  const mem = Buffer.alloc(4 * MiB, 0x5a);
  const memServer = createServer(async (_req, res) => {
    res.writeHead(200, { 'content-length': DATA_MiB * MiB, 'content-type': 'application/octet-stream' });
    for (let n = 0; n < DATA_MiB * MiB; n += mem.length) if (!res.write(mem)) await new Promise((r) => res.once('drain', r));
    res.end();
  });
  await new Promise<void>((r) => memServer.listen(0, '127.0.0.1', () => r()));
  const memUrl = `http://127.0.0.1:${(memServer.address() as AddressInfo).port}/`;
  const tok = 'x-auth-token: admin';
  const mibps = (s: number) => round(DATA_MiB / s, 0);
  const rounds: Record<string, unknown>[] = [];
  try {
    /** Creates an image on `s` and uploads the source with curl: its id, the upload, the CPU spent. */
    const put = async (s: { url: string }, name: string) => {
      const create = await fetch(`${s.url}/v2/images`, { method: 'POST', headers: { 'x-auth-token': 'admin', 'content-type': 'application/json' }, body: JSON.stringify({ name, disk_format: 'raw', container_format: 'bare' }) });
      const id = ((await create.json()) as { id: string }).id;
      ddRead([]); // the source hot, so curl -T reads memory
      const c0 = threadCpu();
      const up = await curlTimed(`-sS -f -T ${src} -H '${tok}' -H 'content-type: application/octet-stream' -X PUT ${s.url}/v2/images/${id}/file`);
      const c1 = threadCpu();
      const info = (await (await fetch(`${s.url}/v2/images/${id}`, { headers: { 'x-auth-token': 'admin' } })).json()) as { checksum: string; status: string };
      if (info.checksum !== expectedMd5 || info.status !== 'active') throw new Error(`upload ${id}: ${JSON.stringify(info)}`);
      return { id, up, c0, c1 };
    };
    const remove = (s: { url: string }, id: string) => fetch(`${s.url}/v2/images/${id}`, { method: 'DELETE', headers: { 'x-auth-token': 'admin' } });
    const ddRead = (extra: string[]) => { const t0 = process.hrtime.bigint(); sh('dd', [`if=${src}`, 'of=/dev/null', 'bs=1M', ...extra]); return mibps(Number(process.hrtime.bigint() - t0) / 1e9); };
    for (let r = 0; r < opts.rounds; r++) {
      const row: Record<string, unknown> = { round: r, load1: round(loadavg()[0], 2) };
      if (opts.upload) {
        const dd = join(storeDir, '.dd-baseline');
        row.dd_write_fsync_direct = round(ddWrite(dd, DATA_MiB, true), 0);
        rmSync(dd);
        row.dd_write_fsync_cached = round(ddWrite(dd, DATA_MiB, false), 0);
        rmSync(dd);
        ddRead([]);
        // md5 and sha512 at once on two processes: the fastest both hashes can be had here. Their
        // CPU time gives the same ceiling as two free cores would (the wall figure is whatever
        // share of the cores the machine's other work leaves).
        const t0 = process.hrtime.bigint();
        const [hm, hs] = await Promise.all([curlTimed('', `openssl dgst -md5 ${src} >/dev/null`), curlTimed('', `openssl dgst -sha512 ${src} >/dev/null`)]);
        row.hash_parallel_ceiling = mibps(Number(process.hrtime.bigint() - t0) / 1e9);
        row.md5_cpu_s_per_GiB = round(hm.curlCpu / gib, 3);
        row.sha512_cpu_s_per_GiB = round(hs.curlCpu / gib, 3);
        row.hash_ceiling_free_cores = round(DATA_MiB / Math.max(hm.curlCpu, hs.curlCpu), 0);
        row.upload_ceiling = Math.min(row.hash_parallel_ceiling as number, Math.max(row.dd_write_fsync_direct as number, row.dd_write_fsync_cached as number));
        // One unmeasured upload first: after the previous round's drop_caches the host has taken
        // the freed memory back (free page reporting), and the first upload after it pays a host
        // fault for every fresh page its socket buffers, mallocs and GC touch (~2x its CPU here).
        await remove(services.auto, (await put(services.auto, `warm-${r}`)).id);
        const { id, up, c0, c1 } = await put(services.auto, `up-${r}`);
        await remove(services.auto, id);
        row.upload = mibps(up.seconds);
        row.upload_of_ceiling = round((row.upload as number) / (row.upload_ceiling as number), 3);
        row.upload_cpu_s_per_GiB = cpuDelta(c0, c1, gib);
        row.upload_curl_cpu_s_per_GiB = round(up.curlCpu / gib, 3);
        // What this upload's CPU (service + curl) allows on two free cores, against the hash
        // ceiling on two free cores: the same comparison without the machine's load in it.
        const total = (c1.main + c1.hash + c1.other - c0.main - c0.hash - c0.other + up.curlCpu) / gib;
        row.upload_free_cores = round(Math.min(row.hash_ceiling_free_cores as number, 2048 / total), 0);
        row.upload_free_cores_of_ceiling = round((row.upload_free_cores as number) / (row.hash_ceiling_free_cores as number), 3);
      }
      if (opts.download) {
        // Physical limits, this round: the file hot and cold, and the HTTP ceiling.
        ddRead([]);
        row.dd_hot = ddRead([]);
        dropAllCaches();
        row.dd_cold = ddRead([]);
        dropAllCaches();
        row.dd_cold_direct = ddRead(['iflag=direct']);
        const m = await curlTimed(`-sS -f -o /dev/null ${memUrl}`);
        row.http_from_memory = mibps(m.seconds);
        row.curl_cpu_s_per_GiB = round(m.curlCpu / gib, 3);
        for (const mode of r % 2 === 0 ? (['auto', 'always'] as const) : (['always', 'auto'] as const)) {
          const s = services[mode];
          const { id } = await put(s, `dl-${r}`);
          const get = async () => {
            const a = threadCpu();
            const d = await curlTimed(`-sS -f -o /dev/null -H '${tok}' ${s.url}/v2/images/${id}/file`);
            const b = threadCpu();
            return { MiBps: mibps(d.seconds), cpu_s_per_GiB: round((b.main + b.other + b.hash - a.main - a.other - a.hash) / gib, 3), sys_s_per_GiB: round((b.sys - a.sys) / gib, 3) };
          };
          const res: Record<string, unknown> = {};
          res.first_after_upload = await get();
          res.second = await get();
          res.third = await get();
          dropAllCaches();
          res.cold = await get();
          res.hot = await get();
          row[`download_${mode}`] = res;
          await remove(s, id);
        }
      }
      row.load1_end = round(loadavg()[0], 2);
      console.log(JSON.stringify(row));
      rounds.push(row);
    }
  } finally {
    memServer.close();
    await always.close();
    rmSync(src, { force: true });
  }
  opts.result.data_path = { MiB: DATA_MiB, rounds, note: 'MiB/s; cpu = the service process\'s CPU seconds per GiB (main = event loop, hash = the two niced hash workers, other = libuv pool writes/fsync + V8). dd/openssl/http_from_memory measured in the same round.' };
}
