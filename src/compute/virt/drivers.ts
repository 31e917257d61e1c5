// The built-in virt drivers, registered under their `[DEFAULT] compute_driver` names. Import
// createDriver from here (not from registry.ts) so that every driver is registered.
import { registerDriver } from './registry.ts';
import { createFakeDriver } from './fake.ts';

registerDriver('fake', createFakeDriver);
import './qemu/index.ts'; // registers 'qemu'

export { createDriver, registeredDrivers, type DriverDeps } from './registry.ts';
