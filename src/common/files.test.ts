import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, stat, symlink, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ifExists, ifMissing } from './files.ts';

test('ifMissing: absence is undefined, every other failure propagates', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-files-'));
  try {
    assert.equal(await stat(join(dir, 'nope')).catch(ifMissing), undefined);
    await writeFile(join(dir, 'f'), 'x');
    assert.equal(await readdir(join(dir, 'f', 'below')).catch(ifMissing), undefined); // ENOTDIR
    assert.ok((await stat(join(dir, 'f')).catch(ifMissing))?.isFile());
    await assert.rejects(Promise.reject(Object.assign(new Error('denied'), { code: 'EACCES' })).catch(ifMissing), { code: 'EACCES' });
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test('ifExists: EEXIST is ignored, other errors propagate', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stratus-files-'));
  try {
    await symlink('/x', join(dir, 'l'));
    assert.equal(await symlink('/x', join(dir, 'l')).catch(ifExists), undefined);
    await assert.rejects(symlink('/x', join(dir, 'no', 'l')).catch(ifExists), { code: 'ENOENT' });
  } finally { await rm(dir, { recursive: true, force: true }); }
});
