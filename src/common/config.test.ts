import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError, extractOsloConfigArgs, loadConfig, registerOpts, registerSectionGroup, sampleConfig } from './config.ts';

registerOpts([
  { section: 'testsec', name: 'count', type: 'int', default: 3, min: 1, help: 'A count.' },
  { section: 'testsec', name: 'ratio', type: 'float', default: 1.5, help: 'A ratio.' },
  { section: 'testsec', name: 'flag', type: 'bool', default: false, help: 'A flag.' },
  { section: 'testsec', name: 'names', type: 'list', default: ['a'], help: 'Names.' },
  { section: 'testsec', name: 'mode', type: 'string', default: 'x', choices: ['x', 'y'], help: 'A mode.' },
]);

test('INI values are typed; defaults apply', () => {
  const c = buildConfig('[testsec]\ncount = 7\nflag = True\nnames = b, c\n', {});
  assert.equal(c.get('testsec', 'count'), 7);
  assert.equal(c.get('testsec', 'flag'), true);
  assert.deepEqual(c.get('testsec', 'names'), ['b', 'c']);
  assert.equal(c.get('testsec', 'ratio'), 1.5);
  assert.equal(c.get('DEFAULT', 'transport_url'), 'memory://');
});

test('OS_<SECTION>__<OPTION> overrides the file', () => {
  const c = buildConfig('[testsec]\ncount = 7\n', { OS_TESTSEC__COUNT: '9', OS_DEFAULT__TRANSPORT_URL: 'rabbit://h/' });
  assert.equal(c.get('testsec', 'count'), 9);
  assert.equal(c.get('DEFAULT', 'transport_url'), 'rabbit://h/');
});

test('client OS_* variables are not mistaken for options', () => {
  const c = buildConfig('', { OS_AUTH_URL: 'http://x', OS_PASSWORD: 'p' });
  assert.equal(c.warnings.length, 0);
});

test('bad values stop start-up naming section, option and value', () => {
  assert.throws(() => buildConfig('[testsec]\ncount = lots\n', {}), (e: Error) =>
    e instanceof ConfigError && /\[testsec\] count/.test(e.message) && /"lots"/.test(e.message));
  assert.throws(() => buildConfig('[testsec]\ncount = 0\n', {}), /must be >= 1/);
  assert.throws(() => buildConfig('[testsec]\nflag = maybe\n', {}), /true or false/);
  assert.throws(() => buildConfig('[testsec]\nmode = z\n', {}), /one of x, y/);
  assert.throws(() => buildConfig('', { OS_TESTSEC__RATIO: 'fast' }), /environment OS_TESTSEC__RATIO/);
});

test('unknown options are warnings, not errors', () => {
  const c = buildConfig('[testsec]\ncolour = blue\n[nosuch]\nx = 1\n', {});
  assert.equal(c.warnings.length, 2);
  assert.match(c.warnings[0].message, /Unknown option \[testsec\] colour/);
});

test('keys before any section are [DEFAULT], as oslo.config reads them', () => {
  const c = buildConfig('my_ip = 10.0.0.5\n', {});
  assert.equal(c.get('DEFAULT', 'my_ip'), '10.0.0.5');
});

test('the sample lists every option with its help and default', () => {
  const s = sampleConfig();
  assert.match(s, /^\[DEFAULT\]/);
  assert.match(s, /# A count\.\n# \(type: int; min: 1\)\n#count = 3/);
  assert.match(s, /#transport_url = memory:\/\//);
});

test('options of sections named by another option (section groups) are typed, not unknown', () => {
  registerOpts([{ section: 'grouptest', name: 'members', type: 'list', default: [], help: 'Ids.' }]);
  registerSectionGroup({
    placeholder: '<member id>',
    sections: (get) => get('grouptest', 'members') as string[],
    options: [{ name: 'size', type: 'int', help: 'A size.' }, { name: 'label', type: 'string', help: 'A label.' }],
  });
  const c = buildConfig('[grouptest]\nmembers = a, b\n[a]\nsize = 3\n[b]\nlabel = x\n[c]\nsize = 4\n', { OS_B__SIZE: '9' });
  assert.equal(c.get<number>('a', 'size'), 3);
  assert.equal(c.get<number>('b', 'size'), 9, 'environment overrides reach group sections');
  assert.equal(c.get('b', 'label'), 'x');
  assert.equal(c.get('a', 'label'), undefined);
  assert.deepEqual(c.warnings.map((w) => `${w.section}.${w.name}`), ['c.size'], 'a section outside the group is still unknown');
  assert.throws(() => c.get('c', 'size'), /not registered/);
  assert.throws(() => buildConfig('[grouptest]\nmembers = a\n[a]\nsize = many\n', {}), (e: Error) => e instanceof ConfigError && /\[a\] size/.test(e.message));
  assert.match(sampleConfig(), /#\[<member id>\]\n\n# A size\.\n# \(type: int\)\n#size = <None>/);
});

test("oslo's --config-file/--config-dir are taken from anywhere in argv, in oslo's order", () => {
  const d = mkdtempSync(join(tmpdir(), 'stratus-conf-'));
  mkdirSync(join(d, 'conf.d'));
  writeFileSync(join(d, 'conf.d', '20-b.conf'), '');
  writeFileSync(join(d, 'conf.d', '10-a.conf'), '');
  writeFileSync(join(d, 'conf.d', 'README'), '');
  const r = extractOsloConfigArgs(['--config-file', '/x.conf', 'manage', 'cell_v2', `--config-dir=${join(d, 'conf.d')}`, 'list_cells', '--config-file=/y.conf', '--verbose']);
  assert.deepEqual(r.rest, ['manage', 'cell_v2', 'list_cells', '--verbose']);
  assert.deepEqual(r.files, ['/x.conf', '/y.conf', join(d, 'conf.d', '10-a.conf'), join(d, 'conf.d', '20-b.conf')]);
  assert.throws(() => extractOsloConfigArgs(['--config-file']), ConfigError);
  assert.throws(() => extractOsloConfigArgs(['--config-dir', join(d, 'nope')]), ConfigError);
});

test('several config files merge as oslo merges them: a later option wins, sections add up', async () => {
  const d = mkdtempSync(join(tmpdir(), 'stratus-conf-'));
  writeFileSync(join(d, 'a.conf'), '[testsec]\ncount = 4\nratio = 2.5\n');
  writeFileSync(join(d, 'b.conf'), '[testsec]\ncount = 8\n[DEFAULT]\ntransport_url = rabbit://h/\n');
  const c = await loadConfig([join(d, 'a.conf'), join(d, 'b.conf')], {});
  assert.equal(c.get('testsec', 'count'), 8);
  assert.equal(c.get('testsec', 'ratio'), 2.5);
  assert.equal(c.get('DEFAULT', 'transport_url'), 'rabbit://h/');
  await assert.rejects(loadConfig([join(d, 'a.conf'), join(d, 'missing.conf')], {}), ConfigError);
});
