// The typed failures of the driver contract (virt/driver.ts):
// - InstanceNotFound: the hypervisor has no such guest (destroy() of a missing guest succeeds instead);
// - NotSupported: the driver cannot do this at all (Nova's 501 at the API);
// - InvalidState: the guest's state does not allow the operation (409).
// They are compute's error classes (../errors.ts), registered there so they cross the bus by name.
import { registerError, StratusError } from '../../common/errors.ts';

export { InstanceNotFound, NotSupported, InvalidState } from '../errors.ts';

/** A live migration was cancelled (abort) — the guest still runs on the source. */
export class MigrationAborted extends StratusError { override readonly status = 409; }
/** A move failed before the guest left the source (precheck, disk copy, destination refused). */
export class MigrationPreCheckError extends StratusError { override readonly status = 400; }

for (const cls of [MigrationAborted, MigrationPreCheckError]) registerError(cls);
