import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyEngine, parseRule } from './policy.ts';
import { Forbidden } from '../errors.ts';

const defaults = {
  admin: 'role:admin',
  owner: 'project_id:%(project_id)s',
  admin_or_owner: 'rule:admin or rule:owner',
  'x:get': 'rule:admin_or_owner',
  'x:create': 'rule:admin',
  'x:public': "'public':%(visibility)s or rule:admin",
  'x:complex': '(role:reader and system_scope:all) or not role:banned and @',
  'x:never': '!',
};

test('roles, rules, target substitution', () => {
  const p = new PolicyEngine(defaults);
  const member = { roles: ['member'], project_id: 'p1' };
  assert.equal(p.check('x:get', member, { project_id: 'p1' }), true);
  assert.equal(p.check('x:get', member, { project_id: 'p2' }), false);
  assert.equal(p.check('x:get', { roles: ['ADMIN'] }, { project_id: 'p2' }), true);
  assert.equal(p.check('x:public', member, { visibility: 'public' }), true);
  assert.equal(p.check('x:public', member, { visibility: 'private' }), false);
  assert.equal(p.check('x:complex', { roles: ['reader'], system_scope: 'all' }), true);
  assert.equal(p.check('x:never', { roles: ['admin'] }), false);
  assert.throws(() => p.enforce('x:create', member), (e: Error) => e instanceof Forbidden && /x:create/.test(e.message));
});

test('a policy.yaml overrides defaults', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pol-'));
  const f = join(dir, 'policy.yaml');
  writeFileSync(f, '"x:create": "role:member"\n');
  const p = await PolicyEngine.load(defaults, f);
  assert.equal(p.check('x:create', { roles: ['member'] }), true);
});

test('malformed rules are refused', () => {
  assert.throws(() => parseRule('role:a and (role:b'));
  assert.throws(() => parseRule('nonsense'));
});
