// The typed failures of the driver contract (virt/driver.ts):
// - InstanceNotFound: the hypervisor has no such guest (destroy() of a missing guest succeeds instead);
// - NotSupported: the driver cannot do this at all (Nova's 501 at the API);
// - InvalidState: the guest's state does not allow the operation (409).
// They are compute's error classes (../errors.ts), registered there so they cross the bus by name.
export { InstanceNotFound, NotSupported, InvalidState } from '../errors.ts';
