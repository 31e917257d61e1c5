// One pino logger per process; services take child loggers named after themselves.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; file?: string; name?: string } = {}): Logger {
  const level = opts.level ?? process.env.STRATUS_LOG_LEVEL ?? 'info';
  const dest = opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : pino.destination({ fd: 2, sync: false });
  return pino({ level, name: opts.name ?? 'stratus', base: { pid: process.pid } }, dest);
}
