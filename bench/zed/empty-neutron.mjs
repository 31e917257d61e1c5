// A stand-in for Neutron with nothing in it, for the reference Zed of `npm run bench -- compare`:
// Zed's Nova asks Neutron for a server's ports and security groups whenever it shows or lists
// servers (a 500 without it), even for servers booted with `networks: none`, which is how the
// compare boots them on both clouds. It answers those reads with empty lists and anything else
// with 404. Port 19696 (127.0.0.1). Run by bench/zed/osref.sh; no state, no auth checks.
import { createServer } from 'node:http';

const empty = {
  '/v2.0/ports': { ports: [] },
  '/v2.0/security-groups': { security_groups: [] },
  '/v2.0/networks': { networks: [] },
  '/v2.0/floatingips': { floatingips: [] },
  '/v2.0/extensions': { extensions: [] },
};
createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\.json$/, '').replace(/\/$/, '');
  const body = req.method === 'GET' ? empty[path] : undefined;
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body ?? { NeutronError: { type: 'HTTPNotFound', message: `${req.method} ${path} is not served by this stand-in`, detail: '' } }));
}).listen(Number(process.env.PORT ?? 19696), '127.0.0.1');
