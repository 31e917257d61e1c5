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
