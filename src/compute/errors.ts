// Compute's own error classes. Every one crosses the bus: registered here so that RPC re-raises
// it at the caller by name, with its class and status (a remote InstanceNotFound arrives as
// InstanceNotFound, a driver's NotSupported as a 501).
import { Conflict, NotFound, registerError, StratusError } from '../common/errors.ts';

/** The scheduler found no host; the message explains which resources or filters ruled hosts out. */
export class NoValidHost extends StratusError { override readonly status = 400; }
/** A build failed on a host in a way another host may not (Nova's RescheduledException). */
export class RescheduledException extends StratusError { override readonly status = 500; }
/** No such instance (in a cell database, or on the hypervisor). A driver's destroy() of a missing guest is not an error. */
export class InstanceNotFound extends NotFound {}
/** A conditional update found the instance in another state than expected (Nova's UnexpectedTaskStateError). */
export class UnexpectedState extends Conflict {}
/** The driver cannot do this at all (rendered as Nova's 501). */
export class NotSupported extends StratusError { override readonly status = 501; }
/** The guest is in a state that does not allow the operation (Nova's InstanceInvalidState, 409). */
export class InvalidState extends StratusError { override readonly status = 409; }

for (const cls of [NoValidHost, RescheduledException, InstanceNotFound, UnexpectedState, NotSupported, InvalidState]) registerError(cls);
