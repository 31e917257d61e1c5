// The network of an instance without a network service (contracts.md): `networks: none` gives no
// NIC, `networks: auto` one user-mode NIC whose VIF is fixed at create and kept in the
// instance's system_metadata `network_info` (a JSON array of VifSpec, Nova's info cache in
// miniature). The API renders `addresses` and /ips from it; the agent hands it to the driver.
import { createHash, randomUUID } from 'node:crypto';
import type { VifSpec } from './virt/driver.ts';
import { parseJson } from './util.ts';

/** The network name the guest's NIC shows under in `addresses`. */
export const AUTO_NETWORK_NAME = 'user';
/** The address user-mode networking leases to the guest (its DHCP start). */
export const AUTO_ADDRESS = '169.254.0.15';

/** OpenStack's MAC prefix (fa:16:3e) and three bytes derived from the instance uuid. */
export function macFor(instanceUuid: string): string {
  const h = createHash('sha256').update(instanceUuid).digest();
  return ['fa', '16', '3e', ...[0, 1, 2].map((i) => h[i].toString(16).padStart(2, '0'))].join(':');
}

export function autoVif(instanceUuid: string): VifSpec {
  return { id: randomUUID(), mac: macFor(instanceUuid), address: AUTO_ADDRESS, networkName: AUTO_NETWORK_NAME, model: 'virtio' };
}

export function vifsOf(systemMetadata: Record<string, unknown>): VifSpec[] {
  const v = parseJson<unknown>(typeof systemMetadata.network_info === 'string' ? systemMetadata.network_info : null, []);
  return Array.isArray(v) ? v.filter((x): x is VifSpec => !!x && typeof x === 'object' && typeof (x as VifSpec).mac === 'string') : [];
}

export interface AddressEntry { version: 4 | 6; addr: string; 'OS-EXT-IPS:type'?: 'fixed'; 'OS-EXT-IPS-MAC:mac_addr'?: string }

/** Nova's `addresses` (server views: with the OS-EXT-IPS keys; /ips: version and addr only). */
export function addressesOf(vifs: VifSpec[], o: { extended: boolean }): Record<string, AddressEntry[]> {
  const out: Record<string, AddressEntry[]> = {};
  for (const v of vifs) {
    if (!v.address) continue;
    const e: AddressEntry = { version: v.address.includes(':') ? 6 : 4, addr: v.address };
    if (o.extended) { e['OS-EXT-IPS:type'] = 'fixed'; e['OS-EXT-IPS-MAC:mac_addr'] = v.mac; }
    (out[v.networkName] ??= []).push(e);
  }
  return out;
}
