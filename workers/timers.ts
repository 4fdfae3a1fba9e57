import type { Logger } from 'pino';
import type { Report } from '../src/bus/messages';
import type { Barrier } from '../src/core/states';
import type { ClusterStore } from '../src/cluster/store';
import { formatDuration } from '../src/core/duration';
import type { Publisher } from '../src/bus/publisher';
import type { QueueSet } from '../src/queue/queues';
import { deadReportId, enqueueReports } from '../src/fold/batch';
import type { SweepResult, WorkerEvents } from './events';
import { PeriodicSweep } from './periodic-sweep';
import type { SweepContext } from './periodic-sweep';
import { Housekeeping } from './housekeeping';
import type { HousekeepingOptions } from './housekeeping';
import { Retrier } from '../src/results/retries';
import type { RetryOptions } from '../src/results/retries';

export interface TimerOptions extends HousekeepingOptions, RetryOptions {
  /** How often silent nodes, half-written clusters and ended clusters past retention are looked for, ms. Default 1000. */
  sweepEveryMs?: number;
}

/**
 * The per-second sweep: barrier deadlines that have come (the fold keeps them
 * in the `cs/deadlines` zset) are fired through timeout.lua; nodes whose
 * heartbeats stopped are aborted through the reports queue like any other
 * report, so a dead node's abort is folded exactly once; then housekeeping
 * (the reaper of half-written clusters, retention).
 *
 * Every worker process runs a timer; each period the one whose `SET NX PX`
 * takes the lease (`cs/sweep/lease`, lapsing after one period) sweeps. Nothing
 * stays claimed by a process that died or stalled, and nothing is left
 * half-done when Redis refuses a write (out of memory, restarting): that
 * period's sweep is skipped or stops where it was, and the next period's
 * starts over. (An earlier version ran the sweep as a repeating BullMQ job:
 * after an out-of-memory window its completion was refused, the job stayed
 * active and no sweep ran until its 30 s lock lapsed — chaos seed 5,
 * `--faults redis-oom`.) Two sweeps that overlap (one outlasting its period)
 * do no harm: firing a deadline, queueing a dead node's abort (one report id)
 * and removing a cluster are each idempotent.
 */
export class Sweeper extends PeriodicSweep {
  private readonly housekeeping: Housekeeping;
  private readonly retrier: Retrier;
  /** Sweeps this process ran to their end. */
  sweeps = 0;

  constructor(
    private readonly store: ClusterStore,
    ctx: SweepContext,
    options: TimerOptions = {},
  ) {
    super(ctx, options.sweepEveryMs);
    this.housekeeping = new Housekeeping(store, ctx.queues, ctx.log, options);
    this.retrier = new Retrier(store, ctx.queues, ctx.log, options);
  }

  /** Starts the timer; the first period begins at once. */
  start(): void {
    this.startPeriods();
  }

  /** One period: take the lease, and sweep if this process got it. Never throws. */
  protected async period(): Promise<void> {
    try {
      if (!(await this.store.claimSweep(this.holder, this.every))) return;
      const result = await this.sweep();
      this.sweeps++;
      this.events.emit('swept', result);
    } catch (err) {
      this.events.emit('sweepFailed', err);
      this.repeats.error('sweep failed (deadlines, dead nodes, housekeeping); trying again next period', err);
    }
  }

  /** Resolves a barrier abort if it is still open at its deadline (timeout.lua drops the deadline either way). */
  private async fireDeadline(cluster: string, barrier: Barrier): Promise<number> {
    const outcome = await this.store.timeout(cluster, barrier);
    if (!outcome.ok) return 0;
    if (outcome.resolutions.length > 0) this.log.info({ cluster, barrier }, 'barrier timed out');
    this.publisher.apply(cluster, outcome);
    return outcome.resolutions.length;
  }

  private async sweep(): Promise<SweepResult> {
    let timedOut = 0;
    for (const [cluster, barrier] of await this.store.dueDeadlines()) timedOut += await this.fireDeadline(cluster, barrier);
    const silent = await this.store.silentNodes();
    for (const [cluster, node] of silent) {
      const settings = await this.store.heartbeatSettings(cluster);
      if (!settings) {
        // The cluster is gone (removed after a failed submit): nothing to abort.
        await this.store.forgetHeartbeat(cluster, node);
        continue;
      }
      const { token, heartbeatMs: hb } = settings;
      const report: Report = {
        v: 1,
        id: deadReportId(node),
        cluster,
        job: node,
        state: 'abort',
        at: Date.now(),
        token,
        reason: `no heartbeat for ${formatDuration(3 * hb)} (dead node)`,
      };
      // Queued first (the same report id from every sweep: folded once), then taken off the watch: only the
      // sweep whose ZREM removed the node tells of it, so a node is counted dead once, however
      // many sweeps (of however many workers) see it before its abort is folded.
      await enqueueReports(this.queues, [report]);
      if (!(await this.store.forgetHeartbeat(cluster, node))) continue;
      this.log.warn({ cluster, job: node }, 'node stopped sending heartbeats; aborting it');
      this.events.emit('dead', cluster, node);
    }
    const kept = await this.housekeeping.run();
    const retried = await this.retrier.run(await this.store.now());
    return { dead: silent.length, timedOut, ...kept, retried };
  }

  /** Stops the timer and waits for a sweep in flight. */
  async close(): Promise<void> {
    await this.stopPeriods();
    this.repeats.close();
  }
}

/**
 * Starts the sweep of this worker process. Also removes the repeating BullMQ
 * `sweep` job of earlier versions, if one is left in Redis.
 */
export function startTimers(store: ClusterStore, queues: QueueSet, publisher: Publisher, events: WorkerEvents, log: Logger, options: TimerOptions = {}): Sweeper {
  const sweeper = new Sweeper(store, { queues, publisher, events, log }, options);
  sweeper.start();
  queues.timers.removeJobScheduler('sweep').catch((err: unknown) => log.debug({ err }, 'could not remove the old sweep job scheduler'));
  return sweeper;
}
