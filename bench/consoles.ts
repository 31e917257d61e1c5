// Console proxy benchmark, all-in-one (fake driver's consoles) on the selected backend:
//   - connect latency: websocket open with a fresh token → the first RFB bytes through /novnc
//     (token redeemed in the cell, Origin check, TCP connect to the guest's VNC server)
//   - throughput: 64 MiB sent through the serial proxy to the fake serial console (which echoes)
//     and read back, against the same bytes on a direct TCP connection to that console
//
//   npm run bench -- consoles [--db=sqlite|mysql|postgresql] [--n=50] [--mib=64]
import { loadavg } from 'node:os';
import { connect } from 'node:net';
import { summary, writeResult, round } from './lib.ts';

export default async function run(argv: string[]): Promise<void> {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
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
