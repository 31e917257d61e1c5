// Placement's stable error codes (errors[].code, shown from microversion 1.23) and the typed
// errors that carry them. Handlers throw these; the router renders them in Placement's shape.
import { BadRequest, Conflict, NotFound } from '../common/errors.ts';

export const CODES = {
  DEFAULT: 'placement.undefined_code',
  INVENTORY_INUSE: 'placement.inventory.inuse',
  CONCURRENT_UPDATE: 'placement.concurrent_update',
  DUPLICATE_NAME: 'placement.duplicate_name',
  PROVIDER_IN_USE: 'placement.resource_provider.inuse',
  PROVIDER_CANNOT_DELETE_PARENT: 'placement.resource_provider.cannot_delete_parent',
  RESOURCE_PROVIDER_NOT_FOUND: 'placement.resource_provider.not_found',
  ILLEGAL_DUPLICATE_QUERYPARAM: 'placement.query.duplicate_key',
  QUERYPARAM_BAD_VALUE: 'placement.query.bad_value',
  QUERYPARAM_MISSING_VALUE: 'placement.query.missing_value',
} as const;

export const badRequest = (msg: string, code?: string) => new BadRequest(msg, code ? { code } : {});
export const notFound = (msg: string, code?: string) => new NotFound(msg, code ? { code } : {});
export const conflict = (msg: string, code?: string) => new Conflict(msg, code ? { code } : {});
export const concurrentUpdate = (msg: string) => new Conflict(msg, { code: CODES.CONCURRENT_UPDATE });

/** Raised inside a write transaction when a generation moved under us. */
export class ConcurrentUpdate extends Conflict {
  constructor(msg = 'Another thread concurrently updated the data. Please retry your update') {
    super(msg, { code: CODES.CONCURRENT_UPDATE });
  }
}
