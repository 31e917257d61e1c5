// The driver contract suite on the fake driver.
import { randomUUID } from 'node:crypto';
import { driverContractSuite } from './contract.ts';
import { FakeDriver } from './fake.ts';
import type { GuestSpec } from './driver.ts';

function spec(): GuestSpec {
  const uuid = randomUUID();
  return {
    uuid, name: `instance-${uuid.slice(0, 8)}`, vcpus: 1, memoryMb: 64, rootGb: 1, imageId: randomUUID(), imageProps: {},
    userData: null, keyData: null, hostname: 'vm', network: { mode: 'none', vifs: [] },
  };
}

driverContractSuite('fake', async () => new FakeDriver({ hostname: 'fake-host', vcpus: 8, memoryMb: 8192, localGb: 100, spawnDelayMs: 0, hypervisorType: 'fake', architecture: 'x86_64' }), spec, {
  timeoutMs: 5000,
  failNextSpawn: (d) => { (d as FakeDriver).failSpawns = 1; },
  stopBehindTheAgentsBack: (d, uuid) => (d as FakeDriver).guestShutsDown(uuid),
});

// The moves half of the contract on two fake hosts (the integration tests run it through the agents).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POWER } from '../objects.ts';
import { MigrationAborted } from './errors.ts';

const host = (name: string, liveMigrationMs = 0) => new FakeDriver({ hostname: name, vcpus: 8, memoryMb: 8192, localGb: 100, spawnDelayMs: 0, hypervisorType: 'fake', architecture: 'x86_64', liveMigrationMs });
const flavor = { id: '2', name: 'm1.small', vcpus: 1, memoryMb: 2048, rootGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };

test('fake cold move: off the source, on the destination with the new flavor; revert brings the kept guest back, confirm forgets it', async () => {
  const [a, b] = [host('a'), host('b')];
  const g = spec();
  await a.spawn(g);
  const disks = await a.migrateDiskAndPowerOff(g, { host: 'b', address: '127.0.0.1' }, flavor);
  // No disks, but the console log so far: it goes on on the destination.
  assert.deepEqual(disks, { console: ['FAKE CONSOLE OUTPUT', 'ANOTHER', 'LAST LINE'] });
  assert.equal(a.listGuests().includes(g.uuid), false);
  await b.finishMigration({ ...g, flavor }, disks, { resize: true, powerOn: true });
  assert.equal((await b.info(g.uuid)).powerState, POWER.RUNNING);
  assert.equal(await b.consoleOutput(g.uuid), 'FAKE CONSOLE OUTPUT\nANOTHER\nLAST LINE\nresize: m1.small\n');
  await b.destroy(g.uuid);
  await a.finishRevertMigration(g, { powerOn: false });
  assert.equal((await a.info(g.uuid)).powerState, POWER.SHUTDOWN);
  await assert.rejects(a.finishRevertMigration(g, { powerOn: true }), /no kept disks/);
  await a.confirmMigration(g.uuid); // idempotent
});

test('fake live migration: progress, the guest on the destination; an abort keeps it on the source', async () => {
  const [a, b] = [host('a', 200), host('b')];
  const g = spec();
  await a.spawn(g);
  const seen: number[] = [];
  const target = await b.preLiveMigration(g, { host: 'a', address: '127.0.0.1' }, { block: true });
  const r = await a.liveMigrate(g, { host: 'b', address: '127.0.0.1' }, target, { block: true, onProgress: (p) => seen.push(p.remainingBytes) });
  assert.ok(r.totalTimeMs >= 0);
  assert.equal(seen.length, 10);
  assert.equal(seen.at(-1), 0);
  await b.postLiveMigrationAtDestination(g);
  assert.equal((await b.info(g.uuid)).powerState, POWER.RUNNING);
  assert.equal(a.listGuests().includes(g.uuid), false);

  const t2 = await a.preLiveMigration(g, { host: 'b', address: '127.0.0.1' }, { block: true });
  const back = host('b2', 200);
  await back.spawn(g);
  const running = back.liveMigrate(g, { host: 'a', address: '127.0.0.1' }, t2, { block: true });
  await new Promise((res) => setTimeout(res, 50));
  await back.liveMigrationAbort(g.uuid);
  await assert.rejects(running, MigrationAborted);
  assert.equal((await back.info(g.uuid)).powerState, POWER.RUNNING);
  await a.rollbackLiveMigrationAtDestination(g.uuid);
  assert.equal(a.listGuests().includes(g.uuid), false);
  await assert.rejects(back.liveMigrationAbort(g.uuid), /not live-migrating/);
});
