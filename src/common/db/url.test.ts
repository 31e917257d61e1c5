import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDbUrl, redactDbUrl, DbUrlError } from './url.ts';

test('SQLAlchemy-style URLs of the three dialects', () => {
  assert.deepEqual(parseDbUrl('sqlite:////var/lib/stratus/x.db'), { dialect: 'sqlite', path: '/var/lib/stratus/x.db', params: {} });
  assert.equal(parseDbUrl('sqlite:///rel/x.db').path, 'rel/x.db');
  assert.equal(parseDbUrl('sqlite://').path, ':memory:');
  const m = parseDbUrl('mysql+pymysql://nova:s%40cret@db.example:3307/nova_api?charset=utf8');
  assert.equal(m.dialect, 'mysql');
  assert.equal(m.password, 's@cret');
  assert.equal(m.port, 3307);
  assert.equal(m.database, 'nova_api');
  assert.equal(m.params.charset, 'utf8');
  assert.equal(parseDbUrl('mysql://root@127.0.0.1/x').port, 3306);
  const p = parseDbUrl('postgresql+psycopg2://postgres@127.0.0.1/keystone');
  assert.equal(p.dialect, 'postgresql');
  assert.equal(p.port, 5432);
});

test('bad URLs are refused with a message', () => {
  assert.throws(() => parseDbUrl('oracle://x/y'), DbUrlError);
  assert.throws(() => parseDbUrl('not a url'), DbUrlError);
  assert.throws(() => parseDbUrl('mysql://host/'), /names no database/);
});

test('passwords are masked for logs', () => {
  assert.equal(redactDbUrl('mysql+pymysql://nova:pw@h/db'), 'mysql+pymysql://nova:***@h/db');
});
