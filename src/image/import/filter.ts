// Which URIs web-download may fetch: Glance's [import_filtering_opts] (allowed/disallowed
// schemes, hosts, ports; an allow list wins over its deny list), plus Stratus's refusal of
// loopback, link-local and unspecified addresses unless the host is explicitly allowed. Host
// names are resolved here and the connection is pinned to the vetted address, so a DNS answer
// cannot change between the check and the fetch.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Config } from '../../common/config.ts';

export interface UriFilter {
  allowedSchemes: string[];
  disallowedSchemes: string[];
  allowedHosts: string[];
  disallowedHosts: string[];
  allowedPorts: number[];
  disallowedPorts: number[];
  denyLoopback: boolean;
}

export function uriFilterFrom(config: Config): UriFilter {
  const ports = (k: string) => config.get<string[]>('import_filtering_opts', k).map((p) => Number(p)).filter((n) => Number.isInteger(n));
  return {
    allowedSchemes: config.get<string[]>('import_filtering_opts', 'allowed_schemes').map((s) => s.toLowerCase()),
    disallowedSchemes: config.get<string[]>('import_filtering_opts', 'disallowed_schemes').map((s) => s.toLowerCase()),
    allowedHosts: config.get<string[]>('import_filtering_opts', 'allowed_hosts').map((s) => s.toLowerCase()),
    disallowedHosts: config.get<string[]>('import_filtering_opts', 'disallowed_hosts').map((s) => s.toLowerCase()),
    allowedPorts: ports('allowed_ports'),
    disallowedPorts: ports('disallowed_ports'),
    denyLoopback: config.get<boolean>('import_filtering_opts', 'deny_loopback'),
  };
}

export interface VettedUri { url: URL; address: string; family: 4 | 6 }

/** Why `uri` may not be fetched, or undefined when it passes the static checks. */
export function staticCheck(f: UriFilter, uri: string): string | undefined {
  let u: URL;
  try { u = new URL(uri); } catch { return 'not a valid URI'; }
  const scheme = u.protocol.replace(/:$/, '').toLowerCase();
  if (!['http', 'https'].includes(scheme)) return `scheme ${scheme} is not supported`;
  if (f.allowedSchemes.length ? !f.allowedSchemes.includes(scheme) : f.disallowedSchemes.includes(scheme)) return `scheme ${scheme} is not allowed`;
  if (u.username || u.password) return 'credentials in the URI are not allowed';
  const host = hostOf(u);
  if (f.allowedHosts.length ? !f.allowedHosts.includes(host) : f.disallowedHosts.includes(host)) return `host ${host} is not allowed`;
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80;
  if (f.allowedPorts.length ? !f.allowedPorts.includes(port) : f.disallowedPorts.includes(port)) return `port ${port} is not allowed`;
  return undefined;
}

/** Full check: static rules, then the resolved address. Returns the address to connect to. */
export async function vet(f: UriFilter, uri: string): Promise<VettedUri> {
  const why = staticCheck(f, uri);
  if (why) throw new UriRefused(why);
  const url = new URL(uri);
  const host = hostOf(url);
  let addrs: { address: string; family: number }[];
  if (isIP(host)) addrs = [{ address: host, family: isIP(host) }];
  else {
    try { addrs = await lookup(host, { all: true }); } catch (e) { throw new UriRefused(`host ${host} does not resolve (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  }
  if (!addrs.length) throw new UriRefused(`host ${host} does not resolve`);
  const explicitlyAllowed = f.allowedHosts.includes(host);
  if (f.denyLoopback && !explicitlyAllowed) {
    const bad = addrs.find((a) => isInternal(a.address));
    if (bad) throw new UriRefused(`host ${host} resolves to ${bad.address}, a loopback, link-local or unspecified address`);
  }
  return { url, address: addrs[0].address, family: addrs[0].family === 6 ? 6 : 4 };
}

export class UriRefused extends Error {}

function hostOf(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/** Loopback, link-local (incl. cloud metadata at 169.254.169.254), unspecified; also IPv4-mapped IPv6. */
export function isInternal(addr: string): boolean {
  let a = addr.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) a = mapped[1];
  if (isIP(a) === 4) {
    const [o1, o2] = a.split('.').map(Number);
    return o1 === 127 || o1 === 0 || (o1 === 169 && o2 === 254);
  }
  if (a === '::1' || a === '::') return true;
  return /^fe[89ab][0-9a-f]:/.test(a);
}
