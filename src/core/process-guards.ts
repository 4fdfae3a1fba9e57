import type { Logger } from 'pino';
import { errorMessage } from './errors';

let installed = false;

/**
 * Last-resort handlers of a long-running process (worker, scheduler, node
 * agent). A promise rejected with nobody listening is a bug, but one bad
 * request must not take the process down: it is logged with its stack and
 * the process lives on. An uncaught exception leaves the process in an
 * unknown state: it is logged and the process exits non-zero, so that a
 * supervisor (systemd, compose) starts it again.
 */
/** Plain lines on stderr, for a process whose stdout is its output (the node agent). */
const stderrLog: Pick<Logger, 'error' | 'fatal'> = {
  error: (_obj: unknown, msg?: string) => void process.stderr.write(`${msg ?? ''}\n`),
  fatal: () => undefined,
} as unknown as Pick<Logger, 'error' | 'fatal'>;

export function installProcessGuards(processName: string, log: Pick<Logger, 'error' | 'fatal'> = stderrLog): void {
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason) => {
    log.error(
      { process: processName, err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) },
      `unhandled promise rejection (living on): ${errorMessage(reason)}`,
    );
  });
  process.on('uncaughtException', (err, origin) => {
    log.fatal({ process: processName, origin, err: { message: err.message, stack: err.stack } }, `uncaught exception, exiting: ${err.message}`);
    process.stderr.write(`cluster-sync ${processName}: uncaught exception, exiting: ${err.stack ?? err.message}\n`);
    process.exit(70);
  });
}
