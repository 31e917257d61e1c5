import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Workshop, images, pattern } from '../../../test/fixtures/image/craft.ts';
import { inspect } from './index.ts';

test('inspect() reads a file, a stream or a buffer and gives format, virtual size and the safety failures', async (t) => {
  const w = new Workshop();
  t.after(() => w.remove());
  const q = images.qcow2(w);
  writeFileSync(w.path('a.qcow2'), q);
  const fromFile = await inspect(w.path('a.qcow2'));
  assert.equal(fromFile.format, 'qcow2');
  assert.equal(fromFile.virtualSize, 16 * 1024 * 1024);
  assert.deepEqual(fromFile.safetyCheck(), []);

  const fromStream = await inspect(Readable.from([q.subarray(0, 100), q.subarray(100)]));
  assert.equal(fromStream.format, 'qcow2');

  const backed = await inspect(images.qcow2BackingPasswd(w));
  assert.equal(backed.format, 'qcow2');
  assert.match(backed.safetyCheck().join('\n'), /backing file/);

  // A declared format adds the content-match check.
  const raw = await inspect(pattern(4096), { declared: 'qcow2' });
  assert.equal(raw.format, 'raw');
  assert.equal(raw.safetyCheck().length, 1);
});
