// Connects to a console URL as `openstack console url show` prints it, through the proxy:
// `vnc` completes the RFB 3.8 handshake up to ServerInit and prints the desktop name; `serial`
// prints the first line the guest's console sends. Exit 1 when the proxy refuses.
import WebSocket from 'ws';

const [kind, url] = process.argv.slice(2);
const u = new URL(url);
const path = u.searchParams.get('path');
const target = path !== null ? `${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}/${path.replace(/^\//, '')}` : url;
const ws = new WebSocket(target, ['binary']);
let buf = Buffer.alloc(0);
let stage = 0;
const fail = (m) => { console.error(m); process.exit(1); };
setTimeout(() => fail('timed out'), 10_000).unref();
ws.on('close', (code, reason) => fail(`closed by the proxy: ${code} ${reason}`));
ws.on('error', (e) => fail(e.message));
ws.on('message', (d) => {
  buf = Buffer.concat([buf, d]);
  if (kind === 'serial') {
    if (buf.includes(10)) { console.log(buf.toString().split('\n')[0].trim()); process.exit(0); }
    return;
  }
  if (stage === 0 && buf.length >= 12) { if (!buf.subarray(0, 12).toString().startsWith('RFB 003.')) fail('not RFB'); buf = buf.subarray(12); ws.send('RFB 003.008\n'); stage = 1; }
  if (stage === 1 && buf.length >= 1 + buf[0]) { buf = buf.subarray(1 + buf[0]); ws.send(Buffer.from([1])); stage = 2; }
  if (stage === 2 && buf.length >= 4) { if (buf.readUInt32BE(0) !== 0) fail('security failed'); buf = buf.subarray(4); ws.send(Buffer.from([1])); stage = 3; }
  if (stage === 3 && buf.length >= 24 && buf.length >= 24 + buf.readUInt32BE(20)) {
    console.log(`RFB ${buf.readUInt16BE(0)}x${buf.readUInt16BE(2)} "${buf.subarray(24, 24 + buf.readUInt32BE(20))}"`);
    process.exit(0);
  }
});
