import type { Logger } from 'pino';

/** How often a repeated error is logged again, with its count, ms. */
export const REPEAT_LOG_INTERVAL_MS = 10_000;

interface Window {
  count: number;
  timer: NodeJS.Timeout;
}

/** An error's name and message only: an ioredis error carries its command, a whole Lua script and its arguments. */
function describe(err: unknown): { type: string; message: string } {
  return err instanceof Error ? { type: err.name, message: err.message } : { type: typeof err, message: String(err) };
}

/**
 * Logs an error the first time it happens, then counts its repeats and logs
 * the count once per interval while it keeps happening: a Redis outage makes
 * every report fail the same way, and one line per report buries the cause.
 */
export class RepeatLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = REPEAT_LOG_INTERVAL_MS,
  ) {}

  /** Logs `msg` with `err` at error level, or counts it when the same message and error were logged within the interval. */
  error(msg: string, err: unknown, fields: Record<string, unknown> = {}): void {
    const key = `${msg}\n${err instanceof Error ? err.message : String(err)}`;
    const open = this.windows.get(key);
    if (open) {
      open.count++;
      return;
    }
    this.log.error({ ...fields, err: describe(err) }, msg);
    this.openWindow(key, msg, err);
  }

  private openWindow(key: string, msg: string, err: unknown): void {
    const w: Window = {
      count: 0,
      timer: setTimeout(() => {
        this.windows.delete(key);
        if (w.count === 0) return;
        this.log.error({ err: describe(err), repeated: w.count, intervalMs: this.intervalMs }, `${msg} (${w.count} more times in the last ${this.intervalMs / 1000}s)`);
        this.openWindow(key, msg, err);
      }, this.intervalMs),
    };
    w.timer.unref();
    this.windows.set(key, w);
  }

  /** Stops the timers (repeats not logged yet are dropped). */
  close(): void {
    for (const w of this.windows.values()) clearTimeout(w.timer);
    this.windows.clear();
  }
}
