// The typed failures of the driver contract (virt/driver.ts). They cross the bus by name (the
// compute error registry), so the API renders them with their own status.
import { StratusError } from '../../common/errors.ts';

/** The hypervisor has no such guest. destroy() of a missing guest is not an error. */
export class InstanceNotFound extends StratusError { override readonly status = 404; }
/** The driver cannot do this at all (rendered as Nova's 501). */
export class NotSupported extends StratusError { override readonly status = 501; }
/** The guest is in a state that does not allow the operation (Nova's InstanceInvalidState, 409). */
export class InvalidState extends StratusError { override readonly status = 409; }
