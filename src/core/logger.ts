import pino from 'pino';
import type { Logger } from 'pino';
import { InvalidInputError } from './errors';

export type { Logger };

/** The levels `CS_LOG_LEVEL` accepts: pino's, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/**
 * The level to log at: `level` if given, else `CS_LOG_LEVEL`, else `info`
 * (`silent` in tests). Empty or blank counts as unset (`CS_LOG_LEVEL=` in a
 * unit file or compose file); anything else that is not a level is an
 * InvalidInputError naming the variable and the levels it accepts.
 */
export function logLevel(level: string | undefined = process.env.CS_LOG_LEVEL): LogLevel {
  const wanted = level?.trim().toLowerCase();
  if (wanted === undefined || wanted === '') return process.env.JEST_WORKER_ID ? 'silent' : 'info';
  if (!isLogLevel(wanted)) throw new InvalidInputError('CS_LOG_LEVEL', `"${level}" is not a log level; use one of ${LOG_LEVELS.join(', ')} (or leave it unset for info)`);
  return wanted;
}

/**
 * Structured logs (pino, JSON lines) for the long-running processes. Level
 * from `level`, else `CS_LOG_LEVEL` (default `info`; `silent` in tests
 * unless set), checked by {@link logLevel}.
 */
export function createLogger(name: string, level?: string): Logger {
  return pino({ name, level: logLevel(level) });
}
