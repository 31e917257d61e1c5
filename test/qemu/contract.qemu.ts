// The driver contract suite (src/compute/virt/contract.ts) on the QEMU driver with real minimal
// guests under the host's accelerator. The guests are not waited for: the contract is about the
// driver's states, so a stop of a guest still in its firmware (which ignores ACPI) takes the
// short shutdown_timeout set here. A failed spawn is made real with a qemu binary that fails once
// (a wrapper script around qemu-system-x86_64); a guest stopping behind the agent's back is its
// qemu killed. No case is skipped. Where the contract lets a driver differ: set_admin_password
// answers NotSupported (no guest agent); powerOn and hard reboot of a guest the driver does not
// have make it again from its spec (recreatesMissingGuests), as libvirt's hard reboot does.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/common/config.ts';
import { createLogger } from '../../src/common/logging.ts';
import type { GuestSpec } from '../../src/compute/virt/driver.ts';
import { driverContractSuite } from '../../src/compute/virt/contract.ts';
import { QemuDriver } from '../../src/compute/virt/qemu/driver.ts';
import '../../src/compute/config.ts';
import '../../src/compute/virt/qemu/config.ts';
import { cacheDir, fileImage, FileImages, minimalImage } from './helpers.ts';

const MIN = 'img-minimal';
let dir: string;

function spec(): GuestSpec {
  const uuid = randomUUID();
  return {
    uuid, name: `instance-${uuid.slice(0, 8)}`, vcpus: 1, memoryMb: 256, rootGb: 1, imageId: MIN, imageProps: {},
    userData: null, keyData: null, hostname: 'contract', network: { mode: 'none', vifs: [] },
    flavor: { id: '1', name: 'contract', vcpus: 1, memoryMb: 256, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
  };
}

driverContractSuite('qemu', async () => {
  dir = await mkdtemp(join(tmpdir(), 'stratus-qemu-contract-'));
  // Fails (as a missing or broken hypervisor would) when the flag file exists, removing it.
  const wrapper = join(dir, 'qemu-fails-once');
  await writeFile(wrapper, `#!/bin/sh\nif [ -e '${dir}/fail-next' ]; then rm -f '${dir}/fail-next'; echo 'qemu: injected failure' >&2; exit 1; fi\nexec qemu-system-x86_64 "$@"\n`);
  await chmod(wrapper, 0o755);
  await writeFile(join(dir, 'stratus.conf'), [
    '[DEFAULT]', `state_path = ${dir}`, 'shutdown_timeout = 3',
    '[qemu]', `binary = ${wrapper}`, `guest_cache_dir = ${cacheDir}`, 'power_sync_interval = 1', '',
  ].join('\n'));
  const config = await loadConfig(join(dir, 'stratus.conf'));
  const images = new FileImages();
  images.add(await fileImage(MIN, await minimalImage(), 'qcow2'));
  const d = new QemuDriver({ config, logger: createLogger({ level: process.env.STRATUS_LOG_LEVEL ?? 'warn' }), images, hostname: 'qemu-contract', instancesPath: join(dir, 'instances') });
  await d.initHost([]);
  return d;
}, spec, {
  timeoutMs: 120_000,
  recreatesMissingGuests: true,
  failNextSpawn: () => { writeFileSync(join(dir, 'fail-next'), ''); },
  stopBehindTheAgentsBack: (_d, uuid) => { process.kill(Number(readFileSync(join(dir, 'instances', uuid, 'qemu.pid'), 'utf8').trim()), 'SIGKILL'); },
  teardown: async () => { await rm(dir, { recursive: true, force: true }); },
});
