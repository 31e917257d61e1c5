// Compute's own error classes that cross the bus (registered so RPC re-raises them by name).
import { registerError, StratusError } from '../common/errors.ts';

/** The scheduler found no host; the message explains which resources or filters ruled hosts out. */
export class NoValidHost extends StratusError { override readonly status = 400; }
/** A build failed on a host in a way another host may not (Nova's RescheduledException). */
export class RescheduledException extends StratusError { override readonly status = 500; }

registerError(NoValidHost);
registerError(RescheduledException);
