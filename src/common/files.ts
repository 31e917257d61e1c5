// File-system answers that mean "it is not there" — the only errors callers may treat as absence.
// Anything else (EACCES, EIO, EMFILE) is a real failure and propagates.

const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

/** A `.catch` handler: undefined when the path does not exist, the error otherwise. */
export function ifMissing(err: unknown): undefined {
  if (ABSENT.has((err as NodeJS.ErrnoException)?.code ?? '')) return undefined;
  throw err;
}

/** A `.catch` handler: ignores EEXIST (the thing is already there), rethrows anything else. */
export function ifExists(err: unknown): undefined {
  if ((err as NodeJS.ErrnoException)?.code === 'EEXIST') return undefined;
  throw err;
}
