// The disk channel on loopback: a sparse file arrives whole and stays sparse, every refusal
// (no token, a wrong one, an unknown move, a file not offered, after the move ended) is the
// right status, and a receiver that is sent garbage keeps nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../common/logging.ts';
import { MigrationPreCheckError } from '../errors.ts';
import { DiskChannel, fetchOffer, TOKEN_HEADER } from './disk-transfer.ts';

const logger = createLogger({ level: 'silent' });
const MiB = 1024 ** 2;

test('a sparse file crosses whole, stays sparse; wrong tokens and unknown moves get 403, files not offered 404; the token dies with the move', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-channel-'));
  const ch = new DiskChannel({ address: '127.0.0.1', port: 0, logger });
  try {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    await mkdir(src);
    await mkdir(dst);
    // 64 MiB with data at the start, in the middle (not block-aligned) and a short tail.
    const data = [randomBytes(3 * MiB), randomBytes(MiB + 17), randomBytes(100)];
    const fh = await open(join(src, 'disk'), 'w');
    await fh.truncate(64 * MiB + 100);
    await fh.write(data[0]!, 0, data[0]!.length, 0);
    await fh.write(data[1]!, 0, data[1]!.length, 20 * MiB + 5);
    await fh.write(data[2]!, 0, data[2]!.length, 64 * MiB);
    await fh.close();
    const size = (await stat(join(src, 'disk'))).size;
    const offer = await ch.offer('vm1', src, [{ name: 'disk', size }]);

    for (const headers of [{}, { [TOKEN_HEADER]: `${offer.token.slice(0, -1)}x` }, { [TOKEN_HEADER]: '' }] as Record<string, string>[]) {
      const r = await fetch(`${offer.url}/disk`, { headers });
      assert.equal(r.status, 403);
      await r.body?.cancel();
    }
    const unknown = await fetch(`${offer.url.replace('vm1', 'vm2')}/disk`, { headers: { [TOKEN_HEADER]: offer.token } });
    assert.equal(unknown.status, 403);
    const notOffered = await fetch(`${offer.url}/guest.json`, { headers: { [TOKEN_HEADER]: offer.token } });
    assert.equal(notOffered.status, 404);
    assert.equal((await notOffered.json() as { error: { code: number } }).error.code, 404);
    const up = await fetch(`${offer.url}/..%2Fetc`, { headers: { [TOKEN_HEADER]: offer.token } });
    assert.equal(up.status, 404);

    let bytes = 0;
    await fetchOffer(offer, dst, { onBytes: (n) => { bytes += n; } });
    assert.ok((await readFile(join(dst, 'disk'))).equals(await readFile(join(src, 'disk'))));
    assert.ok(bytes < 8 * MiB, `zero blocks were sent (${bytes} bytes)`);
    const st = await stat(join(dst, 'disk'));
    assert.equal(st.size, size);
    assert.ok(st.blocks * 512 < 16 * MiB, 'the copy is sparse');

    await ch.end('vm1');
    await assert.rejects(fetchOffer(offer, dst), MigrationPreCheckError);
  } finally {
    await ch.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a receiver sent a damaged body (wrong hash, cut frame) refuses it and keeps nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-channel-'));
  const bodies = [
    { trailer: 'ab'.repeat(32), body: Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]), Buffer.from('abcd')]) },
    { trailer: undefined, body: Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2]) },
  ];
  let i = 0;
  const server = createServer((_req, res) => {
    const b = bodies[i++]!;
    res.writeHead(200, b.trailer ? { trailer: 'x-sha256' } : {});
    res.write(b.body);
    if (b.trailer) res.addTrailers({ 'x-sha256': b.trailer });
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/migrations/x`;
    for (const _b of bodies) {
      await assert.rejects(fetchOffer({ url, token: 't', files: [{ name: 'disk', size: 4096 }] }, dir), MigrationPreCheckError);
    }
    assert.deepEqual(await readdir(dir), []);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('revoking an offer by its token (a live migration given up): a stale token leaves the newer offer open, the right one ends it at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-channel-'));
  const ch = new DiskChannel({ address: '127.0.0.1', port: 0, logger });
  try {
    const src = join(dir, 'src');
    await mkdir(src);
    const fh = await open(join(src, 'console.log.live'), 'w');
    await fh.write('boot\n');
    await fh.close();
    const files = [{ name: 'console.log.live', size: 5 }];
    const first = await ch.offer('vm1', src, files, { ttlMs: 600_000 });
    const second = await ch.offer('vm1', src, files, { ttlMs: 600_000 });
    const get = async (o: typeof first) => { const r = await fetch(`${o.url}/console.log.live`, { headers: { [TOKEN_HEADER]: o.token } }); await r.body?.cancel(); return r.status; };
    assert.equal(await get(first), 403, 'a new offer replaces the old one');
    assert.equal(await ch.end('vm1', first.token), true, 'the stale token ends nothing');
    assert.equal(await get(second), 200);
    assert.equal(await ch.end('vm1', second.token), false);
    await assert.rejects(fetchOffer(second, join(dir, 'x')), MigrationPreCheckError);
    assert.equal(await ch.end('vm1', second.token), false, 'idempotent');
  } finally {
    await ch.close();
    await rm(dir, { recursive: true, force: true });
  }
});
