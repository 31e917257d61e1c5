// A QEMU driver in its own process (for a test "host" inside a network namespace): made from
// argv (config file, host name, instances_path, the minimal image), driven over the IPC channel
// with { id, method, args } messages, answering { id, result } or { id, error }. Guests it runs
// are destroyed when it is told to stop (SIGTERM or the 'shutdown' method).
import { loadConfig } from '../../src/common/config.ts';
import { createLogger } from '../../src/common/logging.ts';
import { QemuDriver } from '../../src/compute/virt/qemu/driver.ts';
import '../../src/compute/config.ts';
import '../../src/compute/virt/qemu/config.ts';
import { fileImage, FileImages } from './helpers.ts';

const [conf, host, instancesPath, imageId, imagePath] = process.argv.slice(2) as [string, string, string, string, string];
const images = new FileImages();
images.add(await fileImage(imageId, imagePath, 'qcow2'));
const driver = new QemuDriver({ config: await loadConfig(conf), logger: createLogger({ level: process.env.STRATUS_LOG_LEVEL ?? 'warn' }), images, hostname: host, instancesPath });
await driver.initHost([]);

async function shutdown(): Promise<void> {
  for (const u of driver.listGuests()) await driver.destroy(u).catch(() => undefined);
  await driver.cleanupHost();
}
process.once('SIGTERM', () => { void shutdown().finally(() => process.exit(0)); });

process.on('message', (m: { id: number; method: string; args: unknown[] }) => {
  const call = m.method === 'shutdown' ? shutdown() : (driver as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m.method]!.apply(driver, m.args);
  void Promise.resolve(call).then(
    (result) => process.send!({ id: m.id, result: result ?? null }),
    (e: Error) => process.send!({ id: m.id, error: { name: e.name, message: e.message } }),
  );
});
process.send!({ ready: true });
