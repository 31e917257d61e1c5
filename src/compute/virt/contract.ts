// The driver contract suite (Nova's _VirtDriverTestCase): what every ComputeDriver must do, run
// against each driver (fake.test.ts, and test/qemu/contract.qemu.ts on real guests). The contract is the
// one written in driver.ts; a driver that lacks an optional capability (snapshot, consoles)
// must leave the method undefined so that the agent answers NotSupported (the tests of it are
// then skipped, and say so).
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { connect } from 'node:net';
import type { ComputeDriver, GuestSpec, LifecycleEvent } from './driver.ts';
import { InstanceNotFound, InvalidState } from './errors.ts';
import { POWER } from '../objects.ts';

export interface ContractHooks {
  /** Per-test timeout (a real hypervisor takes seconds to boot). */
  timeoutMs?: number;
  /** Makes the driver's next spawn fail (as a hypervisor error would), to check spawn cleans up. */
  failNextSpawn?(d: ComputeDriver): void;
  /** Makes a running guest stop on its own (poweroff inside it, the process killed). */
  stopBehindTheAgentsBack?(d: ComputeDriver, uuid: string): Promise<void> | void;
  /**
   * The driver makes a guest it does not have again from its spec on powerOn and hard reboot
   * (the QEMU driver, as Nova's libvirt driver's hard reboot); otherwise both are InstanceNotFound.
   */
  recreatesMissingGuests?: boolean;
  /** Called once after the suite (stop timers, remove directories). */
  teardown?(d: ComputeDriver): Promise<void> | void;
}

const isNotFound = (e: unknown) => e instanceof InstanceNotFound;

async function power(d: ComputeDriver, uuid: string): Promise<number> {
  return (await d.info(uuid)).powerState;
}

async function drain(s: NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  for await (const chunk of s as Readable) n += (chunk as Buffer).length;
  return n;
}

/** Connects to a console endpoint and reads its first n bytes (none: just connects). */
function firstBytes(to: { path: string } | { host: string; port: number }, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(to as never);
    let got = Buffer.alloc(0);
    const done = (e?: Error) => { sock.destroy(); if (e) reject(new assert.AssertionError({ message: `console endpoint: ${e.message}` })); else resolve(got.toString('latin1')); };
    sock.setTimeout(5000, () => done(new Error('no greeting within 5 s')));
    sock.on('error', done);
    sock.on('connect', () => { if (n === 0) done(); });
    sock.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); if (got.length >= n) { got = got.subarray(0, n); done(); } });
  });
}

export function driverContractSuite(name: string, makeDriver: () => Promise<ComputeDriver>, makeSpec: () => GuestSpec | Promise<GuestSpec>, hooks: ContractHooks = {}): void {
  describe(`driver contract: ${name}`, { timeout: (hooks.timeoutMs ?? 30_000) * 20 }, () => {
    let d: ComputeDriver;
    const spawned = new Set<string>();
    const opts = { timeout: hooks.timeoutMs ?? 30_000 };
    const spawn = async () => {
      const g = await makeSpec();
      await d.spawn(g);
      spawned.add(g.uuid);
      return g;
    };

    before(async () => { d = await makeDriver(); });
    // Each test's guests go when it ends: a real hypervisor's guests cost CPU and memory while they run.
    afterEach(async () => {
      for (const u of spawned) await d.destroy(u);
      spawned.clear();
    });
    after(async () => {
      for (const u of spawned) await d.destroy(u); // destroy of an already missing guest succeeds (the contract)
      await d.cleanupHost?.();
      await hooks.teardown?.(d);
    });

    test('host resources are async and describe a usable host; capabilities are os-traits names', opts, async () => {
      const r = await d.hostResources();
      assert.ok(r.vcpus > 0 && r.memoryMb > 0 && r.localGb > 0, JSON.stringify(r));
      assert.ok(r.hypervisorType && r.hypervisorHostname);
      assert.ok(r.supportedInstances.length > 0);
      const caps = d.capabilities();
      assert.ok(Array.isArray(caps));
      for (const t of caps) assert.match(t, /^(COMPUTE|CUSTOM)_[A-Z0-9_]+$/);
    });

    test('spawn: the guest runs and is listed; spawning the same uuid again is refused', opts, async () => {
      const g = await spawn();
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
      assert.ok(d.listGuests().includes(g.uuid));
      await assert.rejects(d.spawn(g));
      assert.equal(await power(d, g.uuid), POWER.RUNNING, 'a refused second spawn leaves the first guest alone');
    });

    test('power cycle: off, then on from the spec', opts, async () => {
      const g = await spawn();
      await d.powerOff(g.uuid);
      assert.equal(await power(d, g.uuid), POWER.SHUTDOWN);
      await d.powerOn(g);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
    });

    test('reboot soft and hard leave the guest running; hard reboot starts a stopped guest', opts, async () => {
      const g = await spawn();
      await d.reboot(g, false);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
      await d.reboot(g, true);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
      await d.powerOff(g.uuid);
      await d.reboot(g, true);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
    });

    test('pause / unpause, suspend / resume', opts, async () => {
      const g = await spawn();
      await d.pause(g.uuid);
      assert.equal(await power(d, g.uuid), POWER.PAUSED);
      await d.unpause(g.uuid);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
      await d.suspend(g.uuid);
      assert.equal(await power(d, g.uuid), POWER.SUSPENDED);
      await d.resume(g);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
    });

    test('pausing or suspending a stopped guest is InvalidState', opts, async () => {
      const g = await spawn();
      await d.powerOff(g.uuid);
      await assert.rejects(d.pause(g.uuid), (e) => e instanceof InvalidState);
      await assert.rejects(d.suspend(g.uuid), (e) => e instanceof InvalidState);
      assert.equal(await power(d, g.uuid), POWER.SHUTDOWN);
    });

    test('rescue boots the guest from the rescue image; unrescue brings its own disk back', opts, async () => {
      const g = await spawn();
      await d.rescue(g, { imageId: g.imageId, password: 'rescue-pw' });
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
      await d.unrescue(g);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
    });

    test('rebuild gives a running guest again', opts, async () => {
      const g = await spawn();
      await d.rebuild(g);
      assert.equal(await power(d, g.uuid), POWER.RUNNING);
    });

    test('console output is text; diagnostics of a running guest', opts, async () => {
      const g = await spawn();
      assert.equal(typeof (await d.consoleOutput(g.uuid)), 'string');
      const diag = await d.diagnostics(g);
      assert.ok(Object.values(diag).every((v) => typeof v === 'number'));
      const id = await d.instanceDiagnostics(g);
      assert.ok(id.num_cpus >= 1);
      assert.equal(id.num_disks, id.disk_details.length);
    });

    test('set admin password on a running guest', opts, async () => {
      const g = await spawn();
      await d.setAdminPassword(g.uuid, 'new-pw').catch((e) => { if (!(e instanceof Error && e.name === 'NotSupported')) throw e; });
    });

    test('destroy, twice: the second destroy of a missing guest succeeds; the guest is gone', opts, async () => {
      const g = await spawn();
      await d.destroy(g.uuid);
      await d.destroy(g.uuid);
      spawned.delete(g.uuid);
      assert.ok(!d.listGuests().includes(g.uuid));
      await assert.rejects(d.info(g.uuid), isNotFound);
    });

    test('a guest the driver does not have: InstanceNotFound from every method but destroy (powerOn/hard reboot may recreate it)', opts, async () => {
      const g = await makeSpec();
      await d.destroy(g.uuid);
      await assert.rejects(d.info(g.uuid), isNotFound);
      await assert.rejects(d.powerOff(g.uuid), isNotFound);
      if (hooks.recreatesMissingGuests) {
        // As libvirt's hard reboot recreates the domain and its missing disks from the image.
        spawned.add(g.uuid); // destroyed after the test whatever happens
        await d.powerOn(g);
        assert.equal(await power(d, g.uuid), POWER.RUNNING);
        await d.destroy(g.uuid);
        await d.reboot(g, true);
        assert.equal(await power(d, g.uuid), POWER.RUNNING);
        await d.destroy(g.uuid);
      } else {
        await assert.rejects(d.powerOn(g), isNotFound);
        await assert.rejects(d.reboot(g, true), isNotFound);
      }
      await assert.rejects(d.pause(g.uuid), isNotFound);
      await assert.rejects(d.unpause(g.uuid), isNotFound);
      await assert.rejects(d.suspend(g.uuid), isNotFound);
      await assert.rejects(d.resume(g), isNotFound);
      await assert.rejects(d.unrescue(g), isNotFound);
      await assert.rejects(d.rescue(g, { imageId: g.imageId, password: null }), isNotFound);
      await assert.rejects(d.consoleOutput(g.uuid), isNotFound);
      await assert.rejects(d.setAdminPassword(g.uuid, 'x'), isNotFound);
    });

    test('a failed spawn cleans up after itself', { ...opts, skip: hooks.failNextSpawn ? false : 'the driver offers no way to make a spawn fail' }, async () => {
      const g = await makeSpec();
      hooks.failNextSpawn!(d);
      await assert.rejects(d.spawn(g));
      assert.ok(!d.listGuests().includes(g.uuid));
      await assert.rejects(d.info(g.uuid), isNotFound);
      await d.destroy(g.uuid);
    });

    test('snapshot streams the root disk to the target', { ...opts, skip: false }, async (t) => {
      if (!d.snapshot) { t.skip(`${name} has no snapshot: the agent answers NotSupported`); return; }
      const g = await spawn();
      let bytes = 0; let fmt = '';
      await d.snapshot(g, { imageId: 'snap-1', upload: async (data, diskFormat) => { fmt = diskFormat; bytes = await drain(data); } });
      assert.ok(bytes > 0);
      assert.ok(['raw', 'qcow2'].includes(fmt), fmt);
      await assert.rejects(d.snapshot({ ...(await makeSpec()) }, { imageId: 'snap-2', upload: async (s) => { await drain(s); } }), isNotFound);
    });

    test('consoles: each kind an endpoint, or NotSupported', opts, async (t) => {
      if (!d.getConsole) { t.skip(`${name} has no consoles: the agent answers NotSupported`); return; }
      const g = await spawn();
      for (const kind of ['serial', 'vnc', 'spice'] as const) {
        try {
          const ep = await d.getConsole(g, kind);
          assert.equal(ep.kind, kind);
          assert.ok(ep.path || (ep.host && ep.port), JSON.stringify(ep));
          // Something listens there; a VNC server greets with its RFB version first.
          const greeting = await firstBytes(ep.path ? { path: ep.path } : { host: ep.host!, port: ep.port! }, kind === 'vnc' ? 12 : 0);
          if (kind === 'vnc') assert.match(greeting, /^RFB 003\.00[378]\n$/);
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          assert.equal((e as Error).name, 'NotSupported', `${kind}: ${(e as Error).message}`);
        }
      }
    });

    test('a guest that stops on its own says so through the lifecycle callback', { ...opts, skip: hooks.stopBehindTheAgentsBack ? false : 'the driver offers no way to stop a guest behind the agent\'s back' }, async () => {
      assert.ok(d.onLifecycleEvent, 'a driver with guests that can stop on their own reports lifecycle events');
      const g = await spawn();
      const seen = new Promise<LifecycleEvent>((resolve) => d.onLifecycleEvent!((e) => { if (e.uuid === g.uuid && e.event === 'stopped') resolve(e); }));
      await hooks.stopBehindTheAgentsBack!(d, g.uuid);
      const e = await seen;
      assert.equal(e.powerState, POWER.SHUTDOWN);
      assert.equal(await power(d, g.uuid), POWER.SHUTDOWN);
    });
  });
}
