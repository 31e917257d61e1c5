import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecentClaims } from './recent-claims.ts';

const alloc = (rp: string, ram: number) => ({ [rp]: { resources: { MEMORY_MB: ram, VCPU: 1 } } });

test('a claim in flight or finished after a read is unseen by that read; one finished before it is not', async () => {
  const c = new RecentClaims();
  let release!: (ok: boolean) => void;
  const inFlight = c.track(alloc('a', 512), () => new Promise<boolean>((r) => { release = r; }));
  const read1 = c.now();
  assert.deepEqual(c.unseen(read1).get('a'), { MEMORY_MB: 512, VCPU: 1 });
  release(true);
  assert.equal(await inFlight, true);
  assert.deepEqual(c.unseen(read1).get('a'), { MEMORY_MB: 512, VCPU: 1 }, 'finished after read1 began');
  await new Promise((r) => setTimeout(r, 5));
  const read2 = c.now();
  assert.equal(c.unseen(read2).size, 0, 'finished before read2: in its answer');
});

test('a failed or rejected claim is forgotten; claims on one provider add up', async () => {
  const c = new RecentClaims();
  const read = c.now();
  assert.equal(await c.track(alloc('a', 512), async () => false), false);
  await assert.rejects(c.track(alloc('a', 512), async () => { throw new Error('placement down'); }));
  assert.equal(c.unseen(read).size, 0);
  await c.track(alloc('a', 256), async () => true);
  await c.track(alloc('a', 256), async () => true);
  await c.track(alloc('b', 128), async () => true);
  assert.deepEqual(Object.fromEntries(c.unseen(read)), { a: { MEMORY_MB: 512, VCPU: 2 }, b: { MEMORY_MB: 128, VCPU: 1 } });
});
