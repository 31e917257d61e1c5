// Allocation ratios as Nova's resource tracker reports them (since Stein): a configured
// *_allocation_ratio is written on every update, over what placement has; unset, a ratio the
// operator set through placement is kept; initial_*_allocation_ratio applies only when the
// agent creates the provider's inventory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { startWorkers, discoverNow, type Workers } from '../src/compute/workers.ts';
import { createLogger } from '../src/common/logging.ts';

let cloud: TestCloud;
let token: string;
let extra: Workers | undefined;
const PV = { 'OpenStack-API-Version': 'placement 1.28' };

const placement = (method: string, path: string, body?: unknown) => cloud.req(method, `/placement${path}`, { token, body, headers: PV });
const ratios = async (rp: string) => {
  const r = await placement('GET', `/resource_providers/${rp}/inventories`);
  assert.equal(r.status, 200, r.text);
  return { gen: r.body.resource_provider_generation as number, inv: r.body.inventories, VCPU: r.body.inventories.VCPU?.allocation_ratio, MEMORY_MB: r.body.inventories.MEMORY_MB?.allocation_ratio, DISK_GB: r.body.inventories.DISK_GB?.allocation_ratio };
};
/** The operator's `openstack resource provider inventory set … --resource VCPU:allocation_ratio=…`. */
const operatorSets = async (rp: string, set: Record<string, number>) => {
  const cur = await ratios(rp);
  const inventories = Object.fromEntries(Object.entries(cur.inv as Record<string, Record<string, number>>).map(([rc, i]) => [rc, { ...i, ...(set[rc] !== undefined ? { allocation_ratio: set[rc] } : {}) }]));
  const r = await placement('PUT', `/resource_providers/${rp}/inventories`, { resource_provider_generation: cur.gen, inventories });
  assert.equal(r.status, 200, r.text);
};
/** The provider of a host's compute node, once the agent has written its inventory. */
async function providerOf(host: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const h = await cloud.req('GET', `/compute/v2.1/os-hypervisors/detail`, { token, headers: { 'OpenStack-API-Version': 'compute 2.53' } });
    const hv = h.body?.hypervisors?.find((x: any) => x.service?.host === host);
    if (hv) {
      const inv = await placement('GET', `/resource_providers/${hv.id}/inventories`);
      if (inv.status === 200 && inv.body.inventories.VCPU) return hv.id;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no provider with inventory for host ${host}`);
}

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
});
after(async () => {
  await extra?.stop();
  await cloud?.stop();
});

test('no *_allocation_ratio configured: the new provider gets initial_*; a ratio the operator sets through placement survives the agent\'s updates', async () => {
  const agent = cloud.compute!.agents[0]!;
  const rp = await providerOf(agent.host);
  assert.deepEqual(await ratios(rp).then((r) => [r.VCPU, r.MEMORY_MB, r.DISK_GB]), [4, 1, 1], 'Nova\'s initial_* defaults');
  await operatorSets(rp, { VCPU: 8, MEMORY_MB: 1.5, DISK_GB: 2 });
  await agent.updateResources();
  await agent.updateResources();
  assert.deepEqual(await ratios(rp).then((r) => [r.VCPU, r.MEMORY_MB, r.DISK_GB]), [8, 1.5, 2], 'the operator\'s ratios are kept');
});

test('cpu_allocation_ratio configured: it overrides placement\'s on every update; the unset (or 0.0) ram/disk ratios start at initial_* and are kept', async () => {
  const config = cloud.config.with({
    // ram_allocation_ratio = 0.0 means unset, as in Nova (`if CONF.ram_allocation_ratio:`).
    DEFAULT: { host: 'ratios-host', cpu_allocation_ratio: '2.5', ram_allocation_ratio: '0.0', initial_ram_allocation_ratio: '1.25', initial_disk_allocation_ratio: '3' },
  });
  extra = await startWorkers({ config, logger: createLogger({ level: 'silent' }), kinds: ['compute'], authUrl: `${cloud.url}/identity` });
  await discoverNow(cloud.config);
  const agent = extra.agents[0]!;
  const rp = await providerOf('ratios-host');
  assert.deepEqual(await ratios(rp).then((r) => [r.VCPU, r.MEMORY_MB, r.DISK_GB]), [2.5, 1.25, 3]);
  await operatorSets(rp, { VCPU: 10, MEMORY_MB: 2, DISK_GB: 1 });
  await agent.updateResources();
  assert.deepEqual(await ratios(rp).then((r) => [r.VCPU, r.MEMORY_MB, r.DISK_GB]), [2.5, 2, 1], 'VCPU back to the configured ratio, the others as the operator set them');
});
