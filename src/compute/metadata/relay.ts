// The guest side of the metadata service. QEMU's user-mode network forwards each guest TCP
// connection to 169.254.169.254:80 to a new process (guestfwd …-cmd:), with the connection on
// its stdin/stdout: bin/stratus-metadata-relay.mjs. That process is told at start which
// instance it serves and the signature proving it (HMAC-SHA256 of the instance uuid with
// [neutron] metadata_proxy_shared_secret, what Nova's metadata handler checks from neutron's
// proxy), adds both headers to every request after dropping any the guest sent, and forwards to
// [DEFAULT] metadata_url. The guest never sees the secret or the signature: it can only ask
// for its own instance's data.
//
// The signature sits on the relay's command line (as it does in the qemu-system command line
// that holds the guestfwd option): local users of the compute host can read it, and with it
// that one instance's metadata — nothing else, and never the secret.
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, type Config } from '../../common/config.ts';
import './config.ts';

/** X-Instance-ID-Signature for an instance: HMAC-SHA256(secret, uuid), hex. */
export function instanceSignature(secret: string, instanceUuid: string): string {
  return createHmac('sha256', secret).update(instanceUuid).digest('hex');
}

let relayPath: string | undefined;

/** bin/stratus-metadata-relay.mjs of this installation (from src/ or from the dist/ bundle). */
export function relayProgram(): string {
  if (relayPath) return relayPath;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'bin', 'stratus-metadata-relay.mjs');
    if (existsSync(p)) return (relayPath = p);
    dir = dirname(dir);
  }
  throw new Error('bin/stratus-metadata-relay.mjs not found beside the Stratus sources');
}

/** The argv of the relay for one instance. */
export function metadataRelayArgv(config: Config, instanceUuid: string): string[] {
  const secret = config.get<string>('neutron', 'metadata_proxy_shared_secret');
  if (!secret) throw new ConfigError('[neutron] metadata_proxy_shared_secret is not set: guests cannot reach the metadata service without it');
  const url = config.get<string>('DEFAULT', 'metadata_url').replace(/\/+$/, '');
  // --no-warnings: the relay's stderr is the guest's connection too.
  return [process.execPath, '--no-warnings', relayProgram(), url, instanceUuid, instanceSignature(secret, instanceUuid)];
}

/**
 * The text to put after `cmd:` in QEMU's `guestfwd=tcp:169.254.169.254:80-cmd:…` (commas
 * already doubled, as QEMU's option parser needs). libslirp splits it into argv with shell
 * quoting rules (no shell runs), so each argument is single-quoted.
 */
export function metadataRelayCommand(config: Config, instanceUuid: string): string {
  return metadataRelayArgv(config, instanceUuid).map(shellQuote).join(' ').replace(/,/g, ',,');
}

function shellQuote(s: string): string {
  return /^[\w@%+=:./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
