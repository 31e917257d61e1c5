// The ISO 9660 writer against the tools that read such images: isoinfo (genisoimage's package)
// through Rock Ridge, through Joliet and through the plain primary names, and against
// genisoimage's own image of the same tree with Nova's flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { IsoError, isoImage, type IsoFile } from './iso9660.ts';

const exec = promisify(execFile);
const isoinfo = async (...args: string[]) => (await exec('isoinfo', args, { encoding: 'buffer', maxBuffer: 1 << 26 })).stdout as Buffer;

// Names as a config drive has them (dashes, several dots, none, digits only) and the cases a
// writer gets wrong: an empty file, a file of several sectors, a directory whose records fill
// more than one sector, a name past ISO's 31 characters, two names alike once mangled.
const files: IsoFile[] = [
  { path: 'openstack/latest/meta_data.json', data: Buffer.from('{"uuid": "x"}') },
  { path: 'openstack/latest/user_data', data: Buffer.from('#!/bin/sh\necho hello\n') },
  { path: 'openstack/latest/vendor_data2.json', data: Buffer.from('{}') },
  { path: 'openstack/2012-08-10/meta_data.json', data: Buffer.from('{"v": 1}') },
  { path: 'openstack/content/0000', data: Buffer.from('hi\n') },
  { path: 'ec2/2009-04-04/meta-data.json', data: Buffer.from('{"ami-id": "ami-1"}') },
  { path: 'ec2/2009-04-04/user-data', data: Buffer.alloc(0) },
  { path: 'ec2/latest/meta-data.json', data: Buffer.alloc(5000, 'm') },
  { path: 'a.b.c.tar.gz', data: Buffer.from('multidot') },
  { path: 'a_b_c.tar.gz', data: Buffer.from('multidot too') },
  { path: 'x-y.txt', data: Buffer.from('alike') },
  { path: 'x_y.txt', data: Buffer.from('once mangled') },
  { path: 'a-name-longer-than-thirty-one-characters.json', data: Buffer.from('long') },
  ...Array.from({ length: 70 }, (_, i) => ({ path: `many/file-number-${String(i).padStart(3, '0')}.txt`, data: Buffer.from(`file ${i}\n`) })),
];
const date = new Date('2026-12-01T12:34:56Z');

function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-iso-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** `isoinfo -l` without what legitimately differs between two writers (extents, dates). */
const listing = async (iso: string, ...mode: string[]) => (await isoinfo('-l', ...mode, '-i', iso)).toString()
  .replace(/\[ *\d+ \d+\]/g, '[]').replace(/[A-Z][a-z]{2} +\d+ \d{4}/g, 'DATE');
/** The same, each directory's entries in name order (records follow the primary names, which clash differently). */
const entries = async (iso: string, ...mode: string[]) => (await listing(iso, ...mode)).split('\n\n').map((d) => d.split('\n').sort().join('\n')).join('\n\n');

test('the image reads back through Rock Ridge, Joliet and the primary names: volume config-2, every file with its bytes', async () => withDir(async (dir) => {
  const iso = join(dir, 'disk.config');
  writeFileSync(iso, isoImage(files, { volumeId: 'config-2', publisher: 'Stratus Compute', date }));
  const info = (await isoinfo('-d', '-i', iso)).toString();
  assert.match(info, /^Volume id: config-2$/m);
  assert.match(info, /^Publisher id: Stratus Compute$/m);
  assert.match(info, /Joliet with UCS level 3 found/);
  assert.match(info, /Rock Ridge signatures version 1 found/);
  for (const mode of ['-R', '-J']) {
    const paths = (await isoinfo(mode, '-f', '-i', iso)).toString().split('\n').filter(Boolean);
    const want = files.map((f) => `/${f.path}`);
    for (const p of want) assert.ok(paths.includes(p), `${mode}: ${p} in the listing`);
    for (const f of files) assert.deepEqual(await isoinfo(mode, '-i', iso, '-x', `/${f.path}`), f.data, `${mode} -x /${f.path}`);
  }
  // Rock Ridge's modes as genisoimage -r sets them; the primary names as -l -allow-lowercase.
  const rr = (await isoinfo('-l', '-R', '-i', iso)).toString();
  assert.match(rr, /^dr-xr-xr-x +\d+ +0 +0 +2048 .* openstack $/m);
  assert.match(rr, /^-r--r--r-- +1 +0 +0 +5000 .* meta-data\.json $/m);
  const plain = (await isoinfo('-l', '-i', iso)).toString();
  assert.match(plain, / user_data\.;1 $/m);
  assert.match(plain, / a_name_longer_than_thirty_\.json;1 $/m);
}));

test('the same tree as genisoimage writes it with Nova\'s flags: identical listings through Rock Ridge, Joliet and the primary names', async () => withDir(async (dir) => {
  const ours = join(dir, 'ours.iso');
  writeFileSync(ours, isoImage(files, { volumeId: 'config-2', publisher: 'Stratus Compute', date }));
  const tree = join(dir, 'tree');
  for (const f of files) { mkdirSync(dirname(join(tree, f.path)), { recursive: true }); writeFileSync(join(tree, f.path), f.data); }
  const theirs = join(dir, 'theirs.iso');
  await exec('genisoimage', ['-o', theirs, '-ldots', '-allow-lowercase', '-allow-multidot', '-l', '-publisher', 'Stratus Compute', '-quiet', '-J', '-r', '-V', 'config-2', tree]);
  for (const mode of [['-R'], ['-J'], ['-R', '-J']]) assert.equal(await entries(ours, ...mode), await entries(theirs, ...mode), `isoinfo -l ${mode.join(' ')}`);
  // Primary names: a clash once mangled gets a counter (genisoimage numbers its own way).
  assert.match(await listing(ours), / x_y\.txt;1 \n.* x_y000\.txt;1 \n/);
}));

test('the same input and date give the same bytes; a tree ISO 9660 cannot hold is refused with the reason', () => {
  assert.deepEqual(isoImage(files, { volumeId: 'config-2', date }), isoImage(files, { volumeId: 'config-2', date }));
  const bad: [IsoFile[], RegExp][] = [
    [[{ path: 'a/b', data: Buffer.alloc(1) }, { path: 'a/b', data: Buffer.alloc(1) }], /twice/],
    [[{ path: 'a', data: Buffer.alloc(1) }, { path: 'a/b', data: Buffer.alloc(1) }], /a is a file/],
    [[{ path: `${'x'.repeat(65)}`, data: Buffer.alloc(1) }], /64 characters/],
    [[{ path: '1/2/3/4/5/6/7/8', data: Buffer.alloc(1) }], /8 levels/],
    [[{ path: 'a:b', data: Buffer.alloc(1) }], /Joliet does not allow/],
    [[{ path: '/', data: Buffer.alloc(1) }], /empty path/],
  ];
  for (const [tree, why] of bad) assert.throws(() => isoImage(tree, { volumeId: 'config-2' }), (e: Error) => e instanceof IsoError && why.test(e.message), why.source);
});
