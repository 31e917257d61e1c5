// The fake driver's consoles: small servers on loopback that speak just enough of each
// protocol for a console client through the proxies — a VNC server (RFB 3.8, no
// authentication, a small static framebuffer: enough for noVNC and Tempest's RFB handshake
// check) and a serial console that prints the guest's console log and echoes what it is sent.
// SPICE gets a listener that accepts connections and speaks nothing (no fake SPICE protocol).
// Servers start when a console is first asked for, one per guest and kind (the serial one
// shows that guest's log), and stop when the guest is destroyed.
import { createServer, type Server, type Socket } from 'node:net';
import type { ConsoleEndpoint, ConsoleKind } from './driver.ts';

export const FB_WIDTH = 64;
export const FB_HEIGHT = 48;
const NAME = 'stratus fake guest';

/** The RFB server side of one connection: version, security None, init, then raw updates. */
function serveRfb(sock: Socket): void {
  let buf = Buffer.alloc(0);
  let stage: 'version' | 'security' | 'init' | 'normal' = 'version';
  let bpp = 32;
  sock.write('RFB 003.008\n');
  const need = (n: number) => buf.length >= n;
  const take = (n: number) => { const b = buf.subarray(0, n); buf = buf.subarray(n); return b; };
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (stage === 'version') {
        if (!need(12)) return;
        const v = take(12).toString('latin1');
        if (!/^RFB 003\.00[378]\n$/.test(v)) { sock.destroy(); return; }
        // 3.7 and 3.8 negotiate: one security type, None (1).
        sock.write(Buffer.from([1, 1]));
        stage = 'security';
      } else if (stage === 'security') {
        if (!need(1)) return;
        if (take(1)[0] !== 1) { sock.destroy(); return; }
        sock.write(Buffer.from([0, 0, 0, 0])); // SecurityResult OK
        stage = 'init';
      } else if (stage === 'init') {
        if (!need(1)) return;
        take(1); // shared flag
        const init = Buffer.alloc(24 + NAME.length);
        init.writeUInt16BE(FB_WIDTH, 0); init.writeUInt16BE(FB_HEIGHT, 2);
        // Pixel format: 32 bpp, depth 24, little endian, true colour, 255/255/255 at 16/8/0.
        Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).copy(init, 4);
        init.writeUInt32BE(NAME.length, 20); init.write(NAME, 24, 'latin1');
        sock.write(init);
        stage = 'normal';
      } else {
        if (!need(1)) return;
        const type = buf[0];
        if (type === 0) { if (!need(20)) return; const m = take(20); bpp = m[4] || 32; }
        else if (type === 2) { if (!need(4)) return; const n = buf.readUInt16BE(2); if (!need(4 + 4 * n)) return; take(4 + 4 * n); }
        else if (type === 3) {
          if (!need(10)) return;
          const m = take(10);
          // Nothing ever changes on this screen: only a full (non-incremental) request gets pixels.
          if (m[1] === 0) sock.write(frame(bpp));
        } else if (type === 4) { if (!need(8)) return; take(8); }
        else if (type === 5) { if (!need(6)) return; take(6); }
        else if (type === 6) { if (!need(8)) return; const n = buf.readUInt32BE(4); if (!need(8 + n)) return; take(8 + n); }
        else { sock.destroy(); return; }
      }
    }
  });
  sock.on('error', () => sock.destroy());
}

/** One raw rectangle covering the screen: a grey gradient, in the client's bytes per pixel. */
function frame(bpp: number): Buffer {
  const px = Math.max(1, bpp / 8);
  const head = Buffer.alloc(16);
  head[0] = 0; head.writeUInt16BE(1, 2);
  head.writeUInt16BE(0, 4); head.writeUInt16BE(0, 6); head.writeUInt16BE(FB_WIDTH, 8); head.writeUInt16BE(FB_HEIGHT, 10);
  head.writeInt32BE(0, 12); // raw encoding
  const pixels = Buffer.alloc(FB_WIDTH * FB_HEIGHT * px);
  for (let y = 0; y < FB_HEIGHT; y++) for (let x = 0; x < FB_WIDTH; x++) pixels.fill((x * 4) & 0xff, (y * FB_WIDTH + x) * px, (y * FB_WIDTH + x + 1) * px);
  return Buffer.concat([head, pixels]);
}

export class FakeConsoles {
  private servers = new Map<string, { server: Promise<Server>; sockets: Set<Socket> }>();

  constructor(private readonly consoleLog: (uuid: string) => string) {}

  async endpoint(uuid: string, kind: ConsoleKind): Promise<ConsoleEndpoint> {
    const key = `${uuid}/${kind}`;
    let s = this.servers.get(key);
    if (!s) { s = this.listen(uuid, kind); this.servers.set(key, s); }
    const addr = (await s.server).address() as { port: number };
    return { kind, host: '127.0.0.1', port: addr.port };
  }

  private listen(uuid: string, kind: ConsoleKind): { server: Promise<Server>; sockets: Set<Socket> } {
    const sockets = new Set<Socket>();
    const server = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      if (kind === 'vnc') serveRfb(sock);
      else if (kind === 'serial') {
        sock.write(this.consoleLog(uuid).replace(/\n/g, '\r\n'));
        sock.on('data', (d) => sock.write(d));
        sock.on('error', () => sock.destroy());
      } else sock.on('error', () => sock.destroy());
    });
    return {
      sockets,
      server: new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      }),
    };
  }

  /** Stops the consoles of one guest (uuid) or of all; open connections are cut. */
  async close(uuid?: string): Promise<void> {
    const keys = [...this.servers.keys()].filter((k) => !uuid || k.startsWith(`${uuid}/`));
    await Promise.all(keys.map(async (k) => {
      const e = this.servers.get(k)!;
      this.servers.delete(k);
      for (const sock of e.sockets) sock.destroy();
      const s = await e.server.catch(() => undefined); // it never listened (the failure went to its caller): nothing to close
      if (s) await new Promise((r) => s.close(() => r(undefined)));
    }));
  }
}
