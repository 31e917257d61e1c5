import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { IdentityStore } from './store.ts';
import type { Database } from '../../common/db/database.ts';

test('cached entries past their TTL are dropped, not kept until the size cap (the soak\'s token bodies)', async () => {
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  try {
    const store = new IdentityStore({} as Database);
    let loads = 0;
    const load = async () => ++loads;
    for (let i = 0; i < 100; i++) await store.cached(`tok:${i}`, load);
    assert.equal(store.cacheSize, 100);
    assert.equal(await store.cached('tok:5', load), 6, 'a hit within the TTL is not loaded again');
    mock.timers.tick(5_000);
    assert.equal(await store.cached('tok:5', load), 101, 'past the TTL it is loaded again');
    assert.equal(store.cacheSize, 1, 'and every other stale entry went with the sweep');
    store.touch();
    assert.equal(await store.cached('tok:5', load), 102, 'a write (a new generation) invalidates at once');
    for (let i = 0; i < 10; i++) { mock.timers.tick(1_000); await store.cached(`tok:new${i}`, load); }
    assert.ok(store.cacheSize <= 6, `once per TTL, what is older goes (${store.cacheSize} left)`);
  } finally {
    mock.timers.reset();
  }
});
