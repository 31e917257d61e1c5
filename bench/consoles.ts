// Console proxy benchmark, all-in-one (fake driver's consoles) on the selected backend:
//   - connect latency: websocket open with a fresh token → the first RFB bytes through /novnc
//     (token redeemed in the cell, Origin check, TCP connect to the guest's VNC server)
//   - throughput: 64 MiB sent through the serial proxy to the fake serial console (which echoes)
//     and read back, against the same bytes on a direct TCP connection to that console
//
//
// With --driver=qemu, a real minimal guest (TCG here) instead: see runQemu below.
//
//   npm run bench -- consoles [--db=sqlite|mysql|postgresql] [--n=50] [--mib=64]
//   npm run bench -- consoles --driver qemu [--n=30] [--seconds=4] [--rounds=3] [--serial-mib=2] [--tag=NAME]
import { loadavg } from 'node:os';
import { connect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { summary, writeResult, round } from './lib.ts';

export default async function run(argv: string[]): Promise<void> {
  // --key=value or --key value
  const get = (k: string) => {
    const i = argv.findIndex((a) => a === `--${k}` || a.startsWith(`--${k}=`));
    if (i < 0) return undefined;
    return argv[i]!.includes('=') ? argv[i]!.slice(argv[i]!.indexOf('=') + 1) : argv[i + 1];
  };
  if (get('driver') === 'qemu') return runQemu(get);
  const db = get('db') ?? process.env.STRATUS_TEST_DB ?? 'sqlite';
  const n = Number(get('n') ?? 50);
  const mib = Number(get('mib') ?? 64);
  process.env.STRATUS_TEST_DB = db;
  const { default: WebSocket } = await import('ws');
  const { startCloud } = await import('../test/helpers/cloud.ts');
  const { computeApi, mv, uploadImage } = await import('../test/helpers/compute.ts');
  const cloud = await startCloud();
  const result: Record<string, unknown> = { db, loadavgBefore: loadavg().map((x) => round(x, 2)) };
  try {
    const token = await cloud.adminToken();
    const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
    const imageRef = await uploadImage(cloud, token, { name: 'g', bytes: 1024 });
    const r = await api('POST', '/servers', { server: { name: 'vm', imageRef, flavorRef: '1', networks: 'none' } }, mv('2.37'));
    const id: string = r.body.server.id;
    await waitFor(id, ['ACTIVE']);
    const consoleUrl = async (protocol: string, type: string) => (await api('POST', `/servers/${id}/remote-consoles`, { remote_console: { protocol, type } }, mv('2.6'))).body.remote_console.url as string;

    const lat: number[] = [];
    for (let i = 0; i < n; i++) {
      const u = new URL(await consoleUrl('vnc', 'novnc'));
      const ws = `ws://${u.host}/${u.searchParams.get('path')!.replace(/^\//, '')}`;
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const c = new WebSocket(ws, ['binary']);
        c.once('message', () => { lat.push(performance.now() - t0); c.close(); resolve(); });
        c.once('error', reject);
      });
    }
    result.connectMs = summary(lat.sort((a, b) => a - b));

    const total = mib * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    // Through the proxy: wait for the console log, then send and count the echo.
    const serial = await consoleUrl('serial', 'serial');
    const viaProxy = await new Promise<number>((resolve, reject) => {
      const c = new WebSocket(serial, ['binary']);
      let got = 0; let t0 = 0; let started = false;
      c.on('message', (d: Buffer) => {
        if (!started) { started = true; t0 = performance.now(); for (let s = 0; s < total; s += chunk.length) c.send(chunk); return; }
        got += d.length;
        if (got >= total) { const ms = performance.now() - t0; c.close(); resolve(ms); }
      });
      c.once('error', reject);
    });
    // Direct: the same console endpoint (os-console-auth-tokens tells where it is).
    const tok = new URL(await consoleUrl('serial', 'serial')).searchParams.get('token');
    const ep = (await api('GET', `/os-console-auth-tokens/${tok}`, undefined, mv('2.31'))).body.console;
    const direct = await new Promise<number>((resolve, reject) => {
      const s = connect({ host: ep.host, port: ep.port });
      let got = 0; let t0 = 0; let started = false;
      s.on('data', (d: Buffer) => {
        if (!started) { started = true; t0 = performance.now(); for (let x = 0; x < total; x += chunk.length) s.write(chunk); return; }
        got += d.length;
        if (got >= total) { const ms = performance.now() - t0; s.destroy(); resolve(ms); }
      });
      s.once('error', reject);
    });
    // A direct websocket baseline: an echoing websocket server in this process (the framing and
    // masking costs of the client side are in both figures).
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    wss.on('connection', (c) => { c.send('hello\n'); c.on('message', (d: Buffer) => c.send(d)); });
    await new Promise((r) => wss.once('listening', r));
    const wsPort = (wss.address() as { port: number }).port;
    const directWs = await new Promise<number>((resolve, reject) => {
      const c = new WebSocket(`ws://127.0.0.1:${wsPort}/`);
      let got = 0; let t0 = 0; let started = false;
      c.on('message', (d: Buffer) => {
        if (!started) { started = true; t0 = performance.now(); for (let x = 0; x < total; x += chunk.length) c.send(chunk); return; }
        got += d.length;
        if (got >= total) { const ms = performance.now() - t0; c.close(); resolve(ms); }
      });
      c.once('error', reject);
    });
    await new Promise((r) => wss.close(r));
    result.throughput = {
      mib, proxyMiBps: round(mib / (viaProxy / 1000), 1), directWebsocketMiBps: round(mib / (directWs / 1000), 1), directTcpMiBps: round(mib / (direct / 1000), 1),
      ratioToDirectWebsocket: round(directWs / viaProxy, 3), ratioToDirectTcp: round(direct / viaProxy, 3),
    };
  } finally {
    await cloud.stop();
  }
  result.loadavgAfter = loadavg().map((x) => round(x, 2));
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${writeResult(`consoles-${db}`, result)}`);
}

// ---- the qemu driver: a real minimal guest
//
// Baseline: a raw TCP (VNC) or unix-socket (serial) reader of the very socket the proxy connects
// to, found through os-console-auth-tokens. That is stricter than a websocket straight to QEMU
// (`-vnc …,websocket=`): the same bytes without any websocket framing or masking, so a proxy
// within 90 % of it is within 90 % of QEMU's own websocket too. Both paths are read by the same
// client code in this process, and the rounds alternate (direct, proxy, direct, …) so that the
// machine's load falls on both alike.
//   - connect: websocket open with a fresh token → QEMU's first RFB bytes through the proxy
//     (token redeemed in the cell, Origin check, TCP connect to QEMU's VNC server)
//   - VNC: an RFB 3.8 client (shared, raw encoding) keeping two non-incremental full-screen
//     FramebufferUpdateRequests in flight for --seconds; bytes/s of framebuffer data. The guest
//     redraws its VGA text console all the while (QEMU's VNC refresh slows to 3 s on a still screen).
//   - serial: the guest's shell prints --serial-mib MiB on ttyS0; bytes/s until the end marker.

/** What both paths look like to the measuring client: bytes in, bytes out. */
interface Pipe { write(b: Buffer): void; onData(cb: (b: Buffer) => void): void; close(): void }

function tcpPipe(s: Socket): Pipe {
  s.setNoDelay(true);
  return { write: (b) => { s.write(b); }, onData: (cb) => { s.on('data', cb); }, close: () => { s.destroy(); } };
}

async function openTcp(o: { host?: string; port?: number; path?: string }): Promise<Pipe> {
  const s = o.path ? connect({ path: o.path }) : connect({ host: o.host!, port: o.port! });
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  return tcpPipe(s);
}

async function openWs(url: string): Promise<Pipe> {
  const { default: WebSocket } = await import('ws');
  const c = new WebSocket(url, ['binary'], { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => { c.once('open', () => resolve()); c.once('error', reject); });
  return { write: (b) => { c.send(b); }, onData: (cb) => { c.on('message', (d: Buffer) => cb(d)); }, close: () => { c.close(); } };
}

/** Reads exactly what the RFB handshake needs, then hands every further byte to a counter. */
class RfbClient {
  private buf: Buffer = Buffer.alloc(0);
  private want?: { n: number; resolve: (b: Buffer) => void };
  /** Framebuffer parsing after the handshake: header (4), rect (12), pixel data (n). */
  private state: { kind: 'msg' | 'rect' | 'data'; left: number; rects: number } = { kind: 'msg', left: 0, rects: 0 };
  pixelBytes = 0;
  updates = 0;
  private onUpdate?: () => void;
  width = 0; height = 0; bpp = 32;

  constructor(private readonly p: Pipe) { p.onData((d) => this.feed(d)); }

  private feed(d: Buffer): void {
    if (this.onUpdate) return this.count(d);
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.take();
  }

  private take(): void {
    if (this.want && this.buf.length >= this.want.n) {
      const w = this.want; this.want = undefined;
      const out = this.buf.subarray(0, w.n); this.buf = this.buf.subarray(w.n);
      w.resolve(out);
    }
  }

  private read(n: number): Promise<Buffer> {
    return new Promise((resolve) => { this.want = { n, resolve }; this.take(); });
  }

  async handshake(): Promise<void> {
    const version = (await this.read(12)).toString('latin1');
    if (!version.startsWith('RFB ')) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
    this.p.write(Buffer.from('RFB 003.008\n'));
    const n = (await this.read(1))[0]!;
    const types = [...await this.read(n)];
    if (!types.includes(1)) throw new Error(`no security type None offered: ${types}`);
    this.p.write(Buffer.from([1]));
    if ((await this.read(4)).readUInt32BE(0) !== 0) throw new Error('security handshake failed');
    this.p.write(Buffer.from([1])); // shared: the other path may be connected too
    const init = await this.read(24);
    this.width = init.readUInt16BE(0); this.height = init.readUInt16BE(2); this.bpp = init[4]!;
    await this.read(init.readUInt32BE(20)); // desktop name
    const enc = Buffer.alloc(8); enc[0] = 2; enc.writeUInt16BE(1, 2); enc.writeInt32BE(0, 4); // SetEncodings: raw only
    this.p.write(enc);
    const rest = this.buf; this.buf = Buffer.alloc(0);
    this.onUpdate = () => {};
    if (rest.length) this.count(rest);
  }

  request(): void {
    const r = Buffer.alloc(10); r[0] = 3; r[1] = 0; r.writeUInt16BE(this.width, 6); r.writeUInt16BE(this.height, 8);
    this.p.write(r);
  }

  /** Walks the server messages (only FramebufferUpdate with raw rects is expected) without copying pixel data. */
  private count(d: Buffer): void {
    let i = 0;
    while (i < d.length) {
      const s = this.state;
      if (s.kind === 'data') {
        const k = Math.min(s.left, d.length - i);
        this.pixelBytes += k; s.left -= k; i += k;
        if (s.left === 0) this.nextRect();
        continue;
      }
      // Headers are tiny: gather them byte by byte across chunk edges.
      const need = s.kind === 'msg' ? 4 : 12;
      const k = Math.min(need - this.buf.length, d.length - i);
      this.buf = Buffer.concat([this.buf, d.subarray(i, i + k)]); i += k;
      if (this.buf.length < need) continue;
      const h = this.buf; this.buf = Buffer.alloc(0);
      if (s.kind === 'msg') {
        if (h[0] !== 0) throw new Error(`unexpected RFB server message ${h[0]}`);
        s.rects = h.readUInt16BE(2);
        if (s.rects === 0) this.done(); else s.kind = 'rect';
      } else {
        const w = h.readUInt16BE(4), hh = h.readUInt16BE(6), enc = h.readInt32BE(8);
        if (enc !== 0) throw new Error(`unexpected encoding ${enc}`);
        s.kind = 'data'; s.left = w * hh * (this.bpp / 8);
        if (s.left === 0) this.nextRect();
      }
    }
  }

  private nextRect(): void {
    const s = this.state;
    if (--s.rects === 0) this.done(); else s.kind = 'rect';
  }

  private done(): void { this.state = { kind: 'msg', left: 0, rects: 0 }; this.updates++; this.onUpdate?.(); }

  /** Keeps `depth` requests in flight for `ms`; framebuffer bytes per second. */
  async stream(ms: number, depth = 2): Promise<{ MiBps: number; updates: number }> {
    const b0 = this.pixelBytes, u0 = this.updates;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      this.onUpdate = () => { if (performance.now() - t0 >= ms) { this.onUpdate = () => {}; resolve(); } else this.request(); };
      for (let i = 0; i < depth; i++) this.request();
    });
    const s = (performance.now() - t0) / 1000;
    return { MiBps: round((this.pixelBytes - b0) / 2 ** 20 / s, 2), updates: this.updates - u0 };
  }
}

/** Sends a shell command on the serial console and times its output up to the end marker. */
async function serialRun(p: Pipe, bytes: number): Promise<{ MiBps: number; bytes: number }> {
  const mark = `END-${Date.now()}`;
  let got = 0; let tail = ''; let t0 = 0;
  const done = new Promise<number>((resolve) => {
    p.onData((d) => {
      if (!t0) return;
      got += d.length;
      tail = (tail + d.toString('latin1')).slice(-64);
      if (tail.includes(`${mark}\r\n`) || tail.includes(`${mark}\n`)) resolve(performance.now() - t0);
    });
  });
  // The marker is built by the shell, so the echoed command line does not end the count.
  p.write(Buffer.from(`\n`));
  await new Promise((r) => setTimeout(r, 300));
  t0 = performance.now();
  p.write(Buffer.from(`head -c ${bytes} /dev/zero | tr '\\0' x; echo; echo END-${mark.slice(4, 8)}""${mark.slice(8)}\n`));
  const ms = await done;
  return { MiBps: round(got / 2 ** 20 / (ms / 1000), 3), bytes: got };
}

async function runQemu(get: (k: string) => string | undefined): Promise<void> {
  const n = Number(get('n') ?? 30);
  const seconds = Number(get('seconds') ?? 4);
  const rounds = Number(get('rounds') ?? 3);
  const serialMib = Number(get('serial-mib') ?? 1);
  const tag = get('tag');
  process.env.STRATUS_TEST_DRIVER = 'qemu';
  const { startCloud } = await import('../test/helpers/cloud.ts');
  const { computeApi, mv } = await import('../test/helpers/compute.ts');
  const { cacheDir, minimalImage } = await import('../test/qemu/helpers.ts');
  const cloud = await startCloud({ extraConfig: ['[qemu]', `guest_cache_dir = ${cacheDir}`] });
  const result: Record<string, unknown> = { driver: 'qemu', loadavgBefore: loadavg().map((x) => round(x, 2)) };
  try {
    const token = await cloud.adminToken();
    const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
    const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'minimal', disk_format: 'qcow2', container_format: 'bare' } });
    const up = await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: await readFile(await minimalImage()) });
    if (up.status !== 204) throw new Error(`image upload: ${up.status}`);
    const f = await api('POST', '/flavors', { flavor: { name: 'bench.console', id: 'bench-console', ram: 256, vcpus: 1, disk: 1 } });
    if (f.status !== 200) throw new Error(f.text);
    const r = await api('POST', '/servers', { server: { name: 'vm', imageRef: img.body.id, flavorRef: 'bench-console', networks: 'none' } }, mv('2.37'));
    const id: string = r.body.server.id;
    await waitFor(id, ['ACTIVE'], 300_000);
    const consoleOut = async () => (await api('POST', `/servers/${id}/action`, { 'os-getConsoleOutput': {} })).body.output as string ?? '';
    for (let t0 = Date.now(); !/Please press Enter/.test(await consoleOut()); ) {
      if (Date.now() - t0 > 300_000) throw new Error(`the guest never reached its shell:\n${(await consoleOut()).slice(-2000)}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    const consoleUrl = async (protocol: string, type: string) => (await api('POST', `/servers/${id}/remote-consoles`, { remote_console: { protocol, type } }, mv('2.6'))).body.remote_console.url as string;
    const endpoint = async (url: string) => (await api('GET', `/os-console-auth-tokens/${new URL(url).searchParams.get('token') ?? new URL(`http://x${new URL(url).searchParams.get('path')}`).searchParams.get('token')}`, undefined, mv('2.31'))).body.console;
    const novnc = (url: string) => { const u = new URL(url); return `ws://${u.host}/${u.searchParams.get('path')!.replace(/^\//, '')}`; };

    // Serial first (one client at a time on QEMU's chardev socket): the shell, then the guest's
    // VGA console kept busy for the VNC part (its output goes to tty0, not to the serial line).
    const serialUrl = await consoleUrl('serial', 'serial');
    const serialEp = await endpoint(serialUrl);
    const serial: { direct: number[]; proxy: number[] } = { direct: [], proxy: [] };
    const bytes = Math.round(serialMib * 2 ** 20);
    for (let i = 0; i < rounds; i++) {
      const d = await openTcp(serialEp.internal_access_path ? { path: serialEp.internal_access_path } : serialEp);
      serial.direct.push((await serialRun(d, bytes)).MiBps); d.close();
      const p = await openWs(await consoleUrl('serial', 'serial'));
      serial.proxy.push((await serialRun(p, bytes)).MiBps); p.close();
      await new Promise((res) => setTimeout(res, 200));
    }
    {
      const s = await openWs(await consoleUrl('serial', 'serial'));
      s.write(Buffer.from('\n'));
      await new Promise((res) => setTimeout(res, 300));
      s.write(Buffer.from('(while true; do cat /proc/interrupts /proc/meminfo > /dev/tty0; done) &\n'));
      await new Promise((res) => setTimeout(res, 1000));
      s.close();
    }

    // Connect latency through /novnc, with token validation, against a direct TCP connect.
    const vncEp = await endpoint(await consoleUrl('vnc', 'novnc'));
    const firstBytes = (p: Promise<Pipe>, t0: number) => p.then((c) => new Promise<number>((resolve) => c.onData(() => { resolve(performance.now() - t0); c.close(); })));
    const lat: number[] = []; const latDirect: number[] = [];
    for (let i = 0; i < n; i++) {
      const url = novnc(await consoleUrl('vnc', 'novnc'));
      let t0 = performance.now();
      lat.push(await firstBytes(openWs(url), t0));
      t0 = performance.now();
      latDirect.push(await firstBytes(openTcp(vncEp), t0));
    }
    result.connectMs = { proxyWithToken: summary(lat.sort((a, b) => a - b)), directTcp: summary(latDirect.sort((a, b) => a - b)), targetMs: 20 };

    const vnc: { direct: number[]; proxy: number[]; frame?: string } = { direct: [], proxy: [] };
    for (let i = 0; i < rounds; i++) {
      for (const way of ['direct', 'proxy'] as const) {
        const c = new RfbClient(way === 'direct' ? await openTcp(vncEp) : await openWs(novnc(await consoleUrl('vnc', 'novnc'))));
        await c.handshake();
        await c.stream(500); // warm-up: QEMU's refresh interval comes down while the screen changes
        const s = await c.stream(seconds * 1000);
        vnc[way].push(s.MiBps);
        vnc.frame = `${c.width}x${c.height}x${c.bpp}`;
        console.log(`vnc ${way}: ${s.MiBps} MiB/s (${s.updates} full frames of ${vnc.frame})`);
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    result.vnc = { ...vnc, seconds, directMiBpsMedian: med(vnc.direct), proxyMiBpsMedian: med(vnc.proxy), ratio: round(med(vnc.proxy) / med(vnc.direct), 3), baseline: 'raw TCP reader of the guest\'s VNC socket' };
    result.serial = { ...serial, bytes, directMiBpsMedian: med(serial.direct), proxyMiBpsMedian: med(serial.proxy), ratio: round(med(serial.proxy) / med(serial.direct), 3), baseline: 'unix-socket reader of the guest\'s serial chardev' };
    await api('DELETE', `/servers/${id}`);
    await waitFor(id, ['DELETED'], 120_000);
  } finally {
    await cloud.stop();
  }
  result.loadavgAfter = loadavg().map((x) => round(x, 2));
  console.log(JSON.stringify(result, null, 2));
  writeResult(tag ? `consoles-${tag}` : 'consoles-qemu', result);
}
