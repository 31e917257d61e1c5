// The store's data path in both of its modes: O_DIRECT (aligned slots, a padded tail cut back
// by ftruncate) and buffered (for filesystems that refuse O_DIRECT, forced here), read back both
// ways. Sizes straddle the 4 KiB alignment and the 1 MiB slot; downloads use unaligned ranges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { FilesystemStore, sendRange } from './filesystem.ts';
import { ingest } from './ingest.ts';
import { QuotaExceeded } from '../service.ts';
import { SLOT } from './ring.ts';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A byte sink that keeps what it was sent, taking it at a modest pace like a real socket. */
class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error) => void) {
    this.chunks.push(Buffer.from(chunk)); // a copy: the store reuses its buffers after cb
    setImmediate(cb);
  }
  get bytes() { return Buffer.concat(this.chunks); }
}

/** Feeds `data` in uneven pieces, as a socket delivers it. */
function source(data: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let o = 0, i = 0; o < data.length; i++) {
    const n = [65536, 1, 4095, 300_000, 17][i % 5];
    pieces.push(data.subarray(o, o + n));
    o += n;
  }
  return Readable.from(pieces, { objectMode: false });
}

async function storeIn(dir: string, direct: boolean): Promise<FilesystemStore> {
  const store = new FilesystemStore('file', dir);
  await store.init();
  if (direct) store.uploadDirectIo = 'always';
  else store.directIo = false;
  return store;
}

const DIR = mkdtempSync(join(tmpdir(), 'stratus-store-'));
test.after(() => rmSync(DIR, { recursive: true, force: true }));

test('the store probes O_DIRECT at init and leaves no probe file behind', async () => {
  const dir = join(DIR, 'probe');
  assert.equal((await storeIn(dir, true)).directIo, true, `${tmpdir()} is expected to allow O_DIRECT`);
  assert.deepEqual(readdirSync(dir), []);
});

for (const direct of [true, false]) {
  const mode = direct ? 'direct' : 'buffered';
  test(`${mode}: uploads of awkward sizes come back byte-identical, with both hashes, whole and by range`, async () => {
    const store = await storeIn(join(DIR, mode), direct);
    for (const size of [1, 4095, 4097, SLOT, SLOT + 1, 3 * SLOT + 12345]) {
      const data = randomBytes(size);
      const id = `img-${mode}-${size}`;
      const r = await ingest(source(data), { store, imageId: id, maxBytes: 1 << 30, overLimit: () => new QuotaExceeded('x'), hashAlgo: 'sha512' });
      assert.equal(r.size, size);
      assert.equal(r.checksum, md5(data));
      assert.equal(r.hashValue, createHash('sha512').update(data).digest('hex'));
      assert.equal(statSync(r.tmpPath).size, size, `the padded tail is cut back (${size})`);
      const rel = await store.commit(r.tmpPath, id);
      for (const reads of ['always', 'never'] as const) {
        store.downloadDirectIo = reads;
        for (const [a, b] of [[0, size - 1], [1, size - 1], [size >> 1, size - 1], [0, Math.min(size - 1, 4096)], [Math.min(4097, size - 1), size - 1]]) {
          const sink = new Sink();
          await store.send(rel, sink, a, b);
          assert.ok(sink.bytes.equals(data.subarray(a, b + 1)), `${mode} writes, ${reads} direct reads, size ${size} range ${a}-${b}`);
        }
      }
    }
    assert.deepEqual(readdirSync(join(DIR, mode)).filter((n) => n.endsWith('.tmp')), [], 'no temporary file is left');
  });
}

test('a download whose client goes away rejects, and the next one still works', async () => {
  const store = await storeIn(join(DIR, 'gone'), true);
  const data = randomBytes(6 * SLOT);
  const r = await ingest(source(data), { store, imageId: 'gone', maxBytes: 1 << 30, overLimit: () => new QuotaExceeded('x'), hashAlgo: 'sha512' });
  const rel = await store.commit(r.tmpPath, 'gone');
  const out = new PassThrough({ highWaterMark: 1024 });
  let seen = 0;
  out.on('data', (c: Buffer) => { seen += c.length; if (seen > SLOT) out.destroy(); });
  await assert.rejects(store.send(rel, out, 0, data.length - 1), /closed the connection|destroyed/);
  const sink = new Sink();
  await store.send(rel, sink, 0, data.length - 1);
  assert.equal(md5(sink.bytes), md5(data));
});

test('a data file shorter than the recorded size is an error, not a short download passed as whole', async () => {
  const store = await storeIn(join(DIR, 'short'), true);
  const data = randomBytes(SLOT + 10);
  const r = await ingest(source(data), { store, imageId: 'short', maxBytes: 1 << 30, overLimit: () => new QuotaExceeded('x'), hashAlgo: 'sha512' });
  const rel = await store.commit(r.tmpPath, 'short');
  await assert.rejects(sendRange(store.absolute(rel), new Sink(), 0, 2 * SLOT + 5, true), /ends at byte/);
  await assert.rejects(sendRange(store.absolute(rel), new Sink(), 0, 2 * SLOT + 5, false), /ends at byte/);
});

test('upload_direct_io and download_direct_io: auto uses the page cache except for data over a quarter of RAM', async () => {
  const store = await storeIn(join(DIR, 'auto'), true);
  store.uploadDirectIo = 'auto';
  const data = randomBytes(2 * SLOT + 3);
  const put = async (id: string, declared?: number) => {
    const r = await ingest(source(data), { store, imageId: id, maxBytes: 1 << 30, overLimit: () => new QuotaExceeded('x'), hashAlgo: 'sha512', expectedSize: declared });
    return store.commit(r.tmpPath, id);
  };
  const get = async (rel: string) => {
    const sink = new Sink();
    const mode = await store.send(rel, sink, 0, data.length - 1);
    assert.equal(md5(sink.bytes), md5(data));
    return mode;
  };
  const written: boolean[] = [];
  const createTemp = store.createTemp.bind(store);
  store.createTemp = async (id, declared) => { const t = await createTemp(id, declared); written.push(t.direct); return t; };
  const rel = await put('auto', data.length);
  assert.deepEqual([await get(rel), await get(rel)], ['page-cache', 'page-cache']);
  store.hugeBytes = data.length - 1;
  const huge = await put('auto-huge', data.length);
  await put('auto-chunked'); // no Content-Length: the size is not known in advance
  assert.deepEqual(written, [false, true, false], 'a declared size over hugeBytes is written with O_DIRECT');
  assert.deepEqual([await get(huge), await get(rel)], ['direct', 'direct'], 'and any download that large is read with it');
  store.hugeBytes = Infinity;
  store.uploadDirectIo = 'always';
  store.downloadDirectIo = 'always';
  await put('auto-always');
  assert.equal(written.at(-1), true);
  assert.equal(await get(rel), 'direct');
  store.uploadDirectIo = 'never';
  store.downloadDirectIo = 'never';
  store.hugeBytes = 0;
  await put('auto-never', data.length);
  assert.equal(written.at(-1), false);
  assert.equal(await get(huge), 'page-cache');
  const buffered = await storeIn(join(DIR, 'auto-buffered'), false);
  const r = await ingest(source(data), { store: buffered, imageId: 'b', maxBytes: 1 << 30, overLimit: () => new QuotaExceeded('x'), hashAlgo: 'sha512' });
  const relB = await buffered.commit(r.tmpPath, 'b');
  buffered.downloadDirectIo = 'always';
  const sink = new Sink();
  assert.equal(await buffered.send(relB, sink, 0, data.length - 1), 'page-cache', 'a filesystem without O_DIRECT reads through the cache whatever the option says');
});
