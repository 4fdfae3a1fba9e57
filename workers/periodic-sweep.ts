import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { QueueSet } from '../src/queue/queues';
import type { WorkerEvents } from './events';
import type { Publisher } from '../src/bus/publisher';
import { RepeatLog } from './repeat-log';

/** What a worker process's sweeps act through. */
export interface SweepContext {
  queues: QueueSet;
  publisher: Publisher;
  events: WorkerEvents;
  log: Logger;
}

/**
 * A sweep of the workers (the barrier sweep, the admission sweep): `period`
 * runs every `every` ms, the first at once; each period the process whose
 * `SET NX PX` of `holder` takes the sweep's lease sweeps. A period that
 * outlasts its time: the next ones are skipped until it ends, never run
 * beside it. `period` must not throw (each catches and logs its failures).
 */
export abstract class PeriodicSweep {
  /** This process's name on the sweep's lease. */
  protected readonly holder = randomUUID();
  protected readonly every: number;
  protected readonly repeats: RepeatLog;
  protected readonly queues: QueueSet;
  protected readonly publisher: Publisher;
  protected readonly events: WorkerEvents;
  protected readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private closed = false;

  constructor(ctx: SweepContext, sweepEveryMs = 1000) {
    this.queues = ctx.queues;
    this.publisher = ctx.publisher;
    this.events = ctx.events;
    this.log = ctx.log;
    this.every = sweepEveryMs;
    this.repeats = new RepeatLog(ctx.log);
  }

  /** One period: take the lease, and sweep if this process got it. Never throws. */
  protected abstract period(): Promise<void>;

  /** True while a sweep of this process runs. */
  get running(): boolean {
    return this.current !== undefined;
  }

  /** Starts the timer; the first period begins at once. */
  protected startPeriods(): void {
    this.tick();
  }

  /** Stops the timer and waits for a period in flight. */
  protected async stopPeriods(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.current;
  }

  private tick(): void {
    if (this.closed) return;
    const started = Date.now();
    if (!this.current) this.current = this.period().finally(() => (this.current = undefined));
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.every - (Date.now() - started)));
  }
}
