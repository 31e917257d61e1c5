// The built-in virt drivers, registered under their `[DEFAULT] compute_driver` names. Import
// createDriver from here (not from registry.ts) so that every driver is registered.
import { registerDriver } from './registry.ts';
import { createFakeDriver } from './fake.ts';

registerDriver('fake', createFakeDriver);
// The QEMU driver is loaded only by an agent that runs it (a fake-driver process never needs its
// code); its options are registered always, so that a config naming them validates anywhere.
import './qemu/config.ts';
registerDriver('qemu', async (deps) => (await import('./qemu/index.ts')).createQemuDriver(deps));

export { createDriver, registeredDrivers, type DriverDeps } from './registry.ts';
