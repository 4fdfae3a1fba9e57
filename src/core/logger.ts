import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger };

/**
 * Structured logs (pino, JSON lines) for the long-running processes. Level
 * from `CS_LOG_LEVEL` (default `info`); `silent` in tests unless set.
 */
export function createLogger(name: string, level = process.env.CS_LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'info')): Logger {
  return pino({ name, level });
}
