import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectStartupGarbage } from './settle.ts';

test('the post-start-up collection frees garbage nothing else would collect', async () => {
  let garbage: number[][] | undefined = Array.from({ length: 400 }, () => Array.from({ length: 10_000 }, (_, i) => i + 0.5));
  const before = process.memoryUsage().heapUsed;
  garbage = undefined;
  collectStartupGarbage(10);
  await new Promise((r) => setTimeout(r, 300));
  const after = process.memoryUsage().heapUsed;
  assert.equal(garbage, undefined);
  assert.ok(before - after > 20 * 2 ** 20, `heap used ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB`);
});
