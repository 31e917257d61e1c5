// QEMU driver benchmark (issue 11, Performance): the all-in-one with the qemu driver and the
// minimal image (STRATUS_MINIMAL_IMAGE, or built into the guest cache once), cached image:
//   - API accept -> qemu exec: from the 202 of POST /servers to the start of the guest's qemu
//     process (/proc/<pid>/stat starttime against /proc/uptime read at the 202: 10 ms ticks)
//   - qemu exit -> SHUTOFF: from SIGKILL of the guest's qemu to the first GET /servers/{id}
//     that says SHUTOFF (polled every 5 ms), through QMP's closed socket and the power sync
//   - the second boot of a cached image: bytes the image cache fetched from the image service
//   - `concurrent` minimal guests at once: all reach "stratus-init: up in" (time to the last)
//   - RSS of each idle guest's qemu and of the all-in-one process (the agent is in it)
//   - createImage of a stopped guest whose overlay holds 1 GiB (written with qemu-io) against
//     `qemu-img convert` of that overlay alone, and this CPU's md5 / sha512 time on the same bytes
//     (ceilingRatio: the best createImage / convert possible while Glance's hashes are computed)
//
//   - accept -> exec broken into its parts from the all-in-one's own log lines (debug level, the
//     request id the benchmark sends): API accept, conductor, placement candidates, claim, cast to
//     the agent, agent, and the driver's spawn steps (image cache, overlay, config drive, exec)
//
//   npm run bench -- qemu [--n=10] [--concurrent=10] [--no-overlay]   (--concurrent=0: skip that step)
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, round, summary, writeResult } from './lib.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uptimeMs = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const startMs = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]) * (1000 / CLK_TCK);
const rssMiB = (pid: number) => round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024, 1);

/** Wall time (ms) of one thread hashing a file in 1 MiB reads. */
function hashFile(path: string, algo: string): number {
  const t0 = process.hrtime.bigint();
  const h = createHash(algo);
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, 'r');
  try { for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n)); } finally { closeSync(fd); }
  h.digest();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export default async function run(argv: string[]): Promise<void> {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  const n = Number(get('n') ?? 10);
  const concurrent = Number(get('concurrent') ?? 10);
  process.env.STRATUS_TEST_DRIVER = 'qemu';
  process.env.OS_DEFAULT__SHUTDOWN_TIMEOUT ??= '5';
  // The accelerator probe's guest and its cached verdict, shared with the other real-guest runs.
  process.env.OS_QEMU__GUEST_CACHE_DIR ??= process.env.STRATUS_GUEST_CACHE ?? (await import('../src/guest/build.ts')).defaultCacheDir();
  const { startCloud } = await import('../test/helpers/cloud.ts');
  const { computeApi, mv } = await import('../test/helpers/compute.ts');
  const { minimalImage } = await import('../test/qemu/helpers.ts');
  const imagePath = await minimalImage();
  const logDir = mkdtempSync(join(tmpdir(), 'stratus-bench-qemu-'));
  const logFile = join(logDir, 'stratus.log');
  const cloud = await startCloud({
    config: {
      DEFAULT: {
        debug: 'true', log_file: logFile,
        // Room for the concurrent step: it runs `concurrent` guests of 1 vCPU beside two others,
        // and Nova's default cpu_allocation_ratio (4.0) offers 8 vCPUs on this 2-core host, so
        // the scheduler rightly answers NoValidHost past 8 guests (the ERROR of the first run).
        // 16.0 is what an operator packing tiny TCG guests sets (Nova's default before Stein).
        cpu_allocation_ratio: '16',
      },
    },
  });
  const result: Record<string, unknown> = { n, concurrent, loadavgBefore: loadavg().map((x) => round(x, 2)) };
  const servers: string[] = [];
  const bootIds: Record<'plain' | 'configDrive', string[]> = { plain: [], configDrive: [] };
  let completed = false;
  try {
    const token = await cloud.adminToken();
    const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
    // Room for the concurrent guests beside the others (the default quota is 10 instances).
    const project = (await cloud.req('GET', '/identity/v3/projects?name=admin', { token })).body.projects[0].id;
    await api('PUT', `/os-quota-sets/${project}`, { quota_set: { instances: concurrent + 10, cores: concurrent + 10, ram: (concurrent + 10) * 2048 } });
    // The agent is up once its service reports up (its start includes the accelerator probe).
    for (let i = 0; ; i++) {
      const s = await api('GET', '/os-services?binary=nova-compute');
      if (s.body?.services?.some((x: { state: string }) => x.state === 'up')) break;
      if (i > 600) throw new Error(`the compute service never came up: ${s.text}`);
      await sleep(500);
    }
    const driver = cloud.compute!.agents[0]!.driver as unknown as { dir: string; cache: { downloadedBytes: number } };
    const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'minimal', disk_format: 'qcow2', container_format: 'bare', visibility: 'public', hypervisor_type: 'qemu' } });
    await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: readFileSync(imagePath) });
    const pidOf = (id: string) => { try { return Number(readFileSync(join(driver.dir, id, 'qemu.pid'), 'utf8').trim()) || 0; } catch { return 0; } };
    const consoleOf = (id: string) => { try { return readFileSync(join(driver.dir, id, 'console.log'), 'latin1'); } catch { return ''; } };
    /** Waits for ACTIVE; a server in ERROR stops the run at once with its fault. */
    const waitActive = async (id: string, ms: number) => {
      const end = Date.now() + ms;
      for (;;) {
        const s = (await api('GET', `/servers/${id}`, undefined, mv('2.93'))).body?.server;
        if (s?.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null) return;
        if (s?.status === 'ERROR') throw new Error(`server ${s.name} (${id}) went to ERROR: ${JSON.stringify(s.fault)}`);
        if (Date.now() > end) throw new Error(`server ${id} not ACTIVE after ${ms} ms (${s?.status})`);
        await sleep(100);
      }
    };
    const boot = async (name: string, o: { wait?: boolean; configDrive?: boolean } = {}) => {
      const requestId = `req-${randomUUID()}`;
      const r = await api('POST', '/servers', { server: { name, imageRef: img.body.id, flavorRef: '1', networks: 'none', config_drive: !!o.configDrive } },
        { ...mv('2.93'), 'x-openstack-request-id': requestId });
      if (r.status !== 202) throw new Error(`boot ${name}: ${r.status} ${r.text}`);
      const acceptedAt = uptimeMs();
      servers.push(r.body.server.id);
      if (o.wait ?? true) await waitActive(r.body.server.id, 300_000);
      return { id: r.body.server.id as string, acceptedAt, requestId };
    };

    // The first boot downloads the image; the second one must not.
    const first = await boot('first');
    const afterFirst = driver.cache.downloadedBytes;
    const second = await boot('second');
    result.secondBootDownloadedBytes = driver.cache.downloadedBytes - afterFirst;
    result.firstBootDownloadedBytes = afterFirst;

    // API accept -> qemu exec, n boots of the cached image without and n with a config drive,
    // alternated (each deleted before the next).
    const accept: Record<'plain' | 'configDrive', number[]> = { plain: [], configDrive: [] };
    for (let i = 0; i < 2 * n; i++) {
      const kind = i % 2 ? 'configDrive' : 'plain';
      const b = await boot(`accept-${i}`, { configDrive: kind === 'configDrive' });
      accept[kind].push(startMs(pidOf(b.id)) - b.acceptedAt);
      await api('DELETE', `/servers/${b.id}`);
      await waitFor(b.id, ['DELETED'], 60_000);
      bootIds[kind].push(b.requestId);
    }
    // The daemonized guest process starts once QEMU's own start-up (before it forks) is done.
    result.acceptToGuestProcessStartMs = { plain: summary(accept.plain.sort((a, b) => a - b)), configDrive: summary(accept.configDrive.sort((a, b) => a - b)) };
    console.log('accept -> guest process start', result.acceptToGuestProcessStartMs, 'second boot downloaded', result.secondBootDownloadedBytes);

    // qemu exit -> SHUTOFF visible in the API, n kills of the same guest.
    const exit: number[] = [];
    for (let i = 0; i < n; i++) {
      const pid = pidOf(second.id);
      const t0 = process.hrtime.bigint();
      process.kill(pid, 'SIGKILL');
      for (;;) {
        const s = await api('GET', `/servers/${second.id}`, undefined, mv('2.93'));
        if (s.body?.server?.status === 'SHUTOFF') break;
        await sleep(5);
      }
      exit.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await waitFor(second.id, ['SHUTOFF']);
      await api('POST', `/servers/${second.id}/action`, { 'os-start': null });
      await waitFor(second.id, ['ACTIVE'], 120_000);
    }
    result.qemuExitToShutoffMs = summary(exit.sort((a, b) => a - b));
    console.log('qemu exit -> SHUTOFF', result.qemuExitToShutoffMs);

    // Concurrent guests: every one reaches the minimal guest's init.
    const t0 = Date.now();
    const many = await Promise.all(Array.from({ length: concurrent }, (_x, i) => boot(`many-${i}`, { wait: false })));
    for (const m of many) await waitActive(m.id, 300_000);
    const reached = new Map<string, number>();
    while (reached.size < many.length && Date.now() - t0 < 600_000) {
      for (const m of many) if (!reached.has(m.id) && /stratus-init: up in/.test(consoleOf(m.id))) reached.set(m.id, Date.now() - t0);
      await sleep(250);
    }
    result.concurrentGuests = { started: many.length, reachedInit: reached.size, lastReachedInitMs: reached.size ? Math.max(...reached.values()) : null };
    await sleep(5000); // idle
    result.rssMiB = {
      idleGuests: many.map((m) => rssMiB(pidOf(m.id))).sort((a, b) => a - b),
      allInOne: rssMiB(process.pid),
    };
    for (const m of many) await api('DELETE', `/servers/${m.id}`);
    for (const m of many) await waitFor(m.id, ['DELETED'], 120_000);

    // createImage of a stopped guest whose overlay holds 1 GiB, against qemu-img convert alone.
    if (!argv.includes('--no-overlay')) {
      await api('POST', `/servers/${first.id}/action`, { 'os-stop': null });
      await waitFor(first.id, ['SHUTOFF'], 120_000);
      const disk = join(driver.dir, first.id, 'disk');
      // The whole 1 GiB root disk of flavor 1 (the guest is not booted again).
      execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 1G', disk], { stdio: 'ignore' });
      // Two rounds, each copy timed after a sync: neither pays for the other's (or qemu-io's)
      // dirty pages being written back.
      const rounds: Record<string, number>[] = [];
      for (let round_ = 0; round_ < 2; round_++) {
        execFileSync('sync');
        const c0 = process.hrtime.bigint();
        execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'qcow2', disk, `${disk}.bench-copy`]);
        const convertMs = Number(process.hrtime.bigint() - c0) / 1e6;
        const copyBytes = statSync(`${disk}.bench-copy`).size;
        // This CPU's hash rate on the same bytes (the page cache holds them): the image service
        // must md5 and os_hash every byte, so max(md5, sha512) bounds createImage from below
        // even with the copy, the hashes and the write all overlapped.
        const hashMs = Object.fromEntries(['md5', 'sha512'].map((algo) => [algo, round(hashFile(`${disk}.bench-copy`, algo), 1)]));
        execFileSync('rm', ['-f', `${disk}.bench-copy`]);
        execFileSync('sync');
        const s0 = process.hrtime.bigint();
        const r = await api('POST', `/servers/${first.id}/action`, { createImage: { name: `bench-1g-${round_}` } }, mv('2.45'));
        for (;;) {
          const i = await cloud.req('GET', `/image/v2/images/${r.body.image_id}`, { token });
          if (i.body?.status === 'active') break;
          if (i.status !== 200) throw new Error(`snapshot image: ${i.status} ${i.text}`);
          await sleep(20);
        }
        const createImageMs = Number(process.hrtime.bigint() - s0) / 1e6;
        const floorMs = Math.max(convertMs, hashMs.md5!, hashMs.sha512!);
        rounds.push({
          createImageMs: round(createImageMs), qemuImgConvertMs: round(convertMs), ratio: round(createImageMs / convertMs, 2), convertedBytes: copyBytes, loadavg: round(loadavg()[0], 1),
          md5Ms: hashMs.md5!, sha512Ms: hashMs.sha512!, md5MiBps: round(copyBytes / 1048576 / (hashMs.md5! / 1000), 0), sha512MiBps: round(copyBytes / 1048576 / (hashMs.sha512! / 1000), 0),
          ceilingRatio: round(floorMs / convertMs, 2),
        });
        await waitFor(first.id, ['SHUTOFF']); // the snapshot task is over
        await cloud.req('DELETE', `/image/v2/images/${r.body.image_id}`, { token });
      }
      result.createImage1GiB = { rounds };
    }
    result.loadavgAfter = loadavg().map((x) => round(x, 2));
    completed = true;
  } finally {
    for (const id of servers) await cloud.req('DELETE', `/compute/v2.1/servers/${id}`, { token: await cloud.adminToken() }).catch(() => undefined);
    await sleep(2000);
    await cloud.stop();
    // Guests are detached from the agent: none of this run's may outlive it (builds still under
    // way when a step failed included), so every qemu naming this cloud's instances path goes.
    const dir = (cloud.compute?.agents[0]?.driver as unknown as { dir?: string })?.dir;
    for (const pid of dir ? readdirSync('/proc').filter((p) => /^\d+$/.test(p)) : []) {
      try { if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${dir}/`)) process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    // The log is complete once the cloud has stopped (its logger writes asynchronously).
    if (completed) {
      const plain = bootIds.plain.map((id) => timeline(logFile, id));
      const cd = bootIds.configDrive.map((id) => timeline(logFile, id));
      const execs = (t: Record<string, number>[]) => summary(t.map((x) => x['spawn.exec']).filter((v) => v !== undefined).sort((a, b) => a - b));
      // Accept -> the driver's spawn of qemu-system (Stratus's part), from the same timelines.
      result.acceptToQemuExecMs = { plain: execs(plain), configDrive: execs(cd) };
      result.acceptToExecSteps = { plain: medians(plain), configDrive: medians(cd) };
      console.log('accept -> qemu exec', result.acceptToQemuExecMs, 'p50 of each step (ms since the API accepted the request)', result.acceptToExecSteps);
      // createImage's two halves, as the driver logged them: the disk copy, the upload.
      const snaps = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"snapshot uploaded"')).map((l) => JSON.parse(l) as { copyMs: number; uploadMs: number; bytes: number });
      (result.createImage1GiB as { rounds?: object[] } | undefined)?.rounds?.forEach((r, i) => { if (snaps[i]) Object.assign(r, { driverCopyMs: snaps[i]!.copyMs, driverUploadMs: snaps[i]!.uploadMs, snapshotBytes: snaps[i]!.bytes }); });
    }
    if (process.env.STRATUS_BENCH_KEEP_LOG) console.log('log kept in', logFile); else rmSync(logDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result, null, 2));
  // Named after the branch measured (bench/results/ keeps one file per branch: no merge conflicts).
  const branch = execFileSync('git', ['rev-parse', '--abbrev-ref', 'HEAD'], { encoding: 'utf8' }).trim().replace(/[^\w.-]+/g, '-');
  writeResult(`qemu-${branch}`, result);
}

/**
 * The steps of one boot from the all-in-one's log: ms of each line of the request (matched by
 * the request id the benchmark sent) since the API's access line for the POST, and the driver's
 * spawn steps (logged relative to the spawn's start) placed on the same clock.
 */
function timeline(logFile: string, requestId: string): Record<string, number> {
  const LINES: Record<string, string> = {
    'scheduling the build': 'conductor',
    'placement answered the allocation candidates': 'candidates',
    'claiming in placement': 'claimStart',
    'selected destinations': 'claimed',
    'instance scheduled; casting the build to its host': 'cast',
    'build received': 'agent',
    spawning: 'spawning',
  };
  const out: Record<string, number> = {};
  let accepted: number | undefined;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes(requestId)) continue;
    let l: { time: number; msg: string; method?: string; url?: string; ms?: Record<string, number> };
    try { l = JSON.parse(line); } catch { continue; }
    if (l.msg === 'access' && l.method === 'POST' && /\/servers$/.test(l.url ?? '')) accepted = l.time;
    const step = LINES[l.msg];
    if (step && out[step] === undefined) out[step] = l.time;
    if (l.msg.startsWith('guest spawned') && l.ms && out.spawning !== undefined) {
      for (const [k, v] of Object.entries(l.ms)) out[`spawn.${k}`] = out.spawning + v;
    }
  }
  if (accepted === undefined) return {};
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, round(v - accepted!, 1)]));
}

/** p50 of each step over the boots, in the order of the first boot's steps. */
function medians(boots: Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(boots.flatMap((b) => Object.keys(b)))];
  const rows = keys.map((k) => [k, percentile(boots.map((b) => b[k]).filter((v) => v !== undefined).sort((a, b) => a - b), 50)] as const);
  return Object.fromEntries(rows.sort((a, b) => a[1] - b[1]));
}
