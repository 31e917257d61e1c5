// The built-in virt drivers, registered under their `[DEFAULT] compute_driver` names. Import
// createDriver from here (not from registry.ts) so that every driver is registered.
import { registerDriver } from './registry.ts';
import { createFakeDriver } from './fake.ts';

registerDriver('fake', createFakeDriver);
// qemu: the QEMU driver registers itself (registerDriver('qemu', …)) from ./qemu/index.ts:
// import './qemu/index.ts';

export { createDriver, registeredDrivers, type DriverDeps } from './registry.ts';
