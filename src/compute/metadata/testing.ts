// Test helpers of the metadata module: a GuestSpec with every field the metadata uses, an HTTP
// response stream parser, and a relay run as QEMU runs it (the guest's bytes on its stdin).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { GuestSpec } from '../virt/driver.ts';

export const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests k1@test';
export const UUID = '6b2f6c1e-6f1d-4d55-9a07-3a1f5a2b9c10';

export function sampleSpec(over: Partial<GuestSpec> = {}): GuestSpec {
  return {
    uuid: UUID, name: 'instance-0000000a', vcpus: 1, memoryMb: 512, rootGb: 20, imageId: 'f0e1d2c3-1111-4222-8333-444455556666',
    imageProps: {}, userData: Buffer.from('#!/bin/sh\necho hello\n').toString('base64'), keyData: KEY, keyName: 'k1',
    hostname: 'vm1', displayName: 'vm1', projectId: 'p-123', userId: 'u-1', metadata: { role: 'web', 'über': 'ß' },
    adminPassword: 'S3cret', availabilityZone: 'nova', launchIndex: 0, reservationId: 'r-abc12345', configDrive: true,
    flavor: { id: '2', name: 'm1.small', vcpus: 1, memoryMb: 2048, rootGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
    network: { mode: 'auto', vifs: [{ id: '0d3ad3b3-5c1a-4f6e-8f37-1234567890ab', mac: 'fa:16:3e:12:34:56', address: '169.254.0.15', networkName: 'user' }] },
    injectedFiles: [{ path: '/etc/motd', contents: Buffer.from('hi\n').toString('base64') }],
    ...over,
  };
}


/** Splits a stream of HTTP responses (Content-Length or chunked framed). */
export function responses(raw: string): { status: number; headers: Record<string, string>; body: string }[] {
  const out = [];
  let rest = raw;
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end > 0, `a response head in ${JSON.stringify(rest.slice(0, 200))}`);
    const [line, ...hs] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const h of hs) { const i = h.indexOf(':'); headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim(); }
    rest = rest.slice(end + 4);
    const status = Number(line.split(' ')[1]);
    let body = '';
    if (status === 100) { out.push({ status, headers, body }); continue; }
    if (headers['content-length'] !== undefined) {
      body = rest.slice(0, Number(headers['content-length']));
      rest = rest.slice(body.length);
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const nl = rest.indexOf('\r\n');
        const n = parseInt(rest.slice(0, nl), 16);
        rest = rest.slice(nl + 2);
        if (n === 0) { rest = rest.slice(2); break; }
        body += rest.slice(0, n);
        rest = rest.slice(n + 2);
      }
    } else { body = rest; rest = ''; }
    out.push({ status, headers, body });
  }
  return out;
}

/** Runs a relay argv (metadataRelayArgv) with `input` as what the guest sends; resolves when it exits. */
export function runRelay(argv: string[], input: string, o: { endInput?: boolean } = {}): Promise<{ out: string; err: string; code: number | null }> {
  const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  p.stdin.write(input);
  if (o.endInput) p.stdin.end();
  const kill = setTimeout(() => p.kill(), 20_000);
  return new Promise((resolve) => p.on('close', (code) => { clearTimeout(kill); resolve({ out, err, code }); }));
}
