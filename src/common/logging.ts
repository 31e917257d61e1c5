// One pino logger per process; services take child loggers named after themselves.
// On a terminal the lines are rendered by pino-pretty (time, level, service, method, path,
// status, ms — warnings and errors coloured); anywhere else, or with format 'json', they stay
// pino's JSON for log collectors.
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { requestLogFields } from './request-ids.ts';

export type { Logger };
export type LogFormat = 'auto' | 'json' | 'pretty';

/** Fields the pretty line already shows, or that only matter to machines. */
const SHOWN = 'pid,hostname,name,service,component,request_id,method,url,status,ms';

function prettyStream() {
  return pretty({
    destination: 2, colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: SHOWN,
    messageFormat: (log, key, _level, extras) => {
      const c = extras.colors;
      const who = log.service ?? log.component;
      const tag = who ? `${c.cyan(`[${String(who)}]`)} ` : '';
      if (log[key] !== 'access') return `${tag}${String(log[key] ?? '')}`;
      const status = Number(log.status);
      const s = status >= 500 ? c.red(String(status)) : status >= 400 ? c.yellow(String(status)) : c.green(String(status));
      return `${tag}${String(log.method)} ${String(log.url)} ${s} ${c.gray(`${String(log.ms)} ms`)}`;
    },
  });
}

export function createLogger(opts: { level?: string; file?: string; name?: string; format?: LogFormat } = {}): Logger {
  const level = opts.level ?? process.env.STRATUS_LOG_LEVEL ?? 'info';
  const format = opts.format ?? 'auto';
  const usePretty = !opts.file && (format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true));
  const dest = opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false })
    : usePretty ? prettyStream() : pino.destination({ fd: 2, sync: false });
  return pino({
    level, name: opts.name ?? 'stratus', base: { pid: process.pid },
    // Every line logged while a request or RPC message is handled names it (oslo.log's context);
    // a logger that already binds request_id (fastify's per-request one) keeps its own.
    mixin: (_obj, _level, lg) => {
      const f = requestLogFields();
      if (f.request_id && 'request_id' in lg.bindings()) delete f.request_id;
      return f;
    },
  }, dest);
}

/**
 * A `.catch` handler for work whose failure must not fail the caller (a cleanup, a best-effort
 * notice) but must not vanish either: the error is logged, with the request id the mixin adds, and
 * the promise settles to undefined.
 */
export function logFailure(logger: FailureLogger, what: string, fields: Record<string, unknown> = {}, level: 'warn' | 'debug' = 'warn'): (err: unknown) => undefined {
  return (err) => {
    (level === 'debug' && logger.debug ? logger.debug : logger.warn).call(logger, { ...fields, err: err instanceof Error ? err.message : String(err) }, `could not ${what}`);
    return undefined;
  };
}

/** What logFailure needs of a logger (pino's, or the RPC layer's narrower one). */
export interface FailureLogger { warn(o: object, m?: string): void; debug?(o: object, m?: string): void }
