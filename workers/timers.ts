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
import { NO_REPLICATION } from '../src/core/replication';
import type { ReplicationGuard } from '../src/core/replication';

export interface TimerOptions extends HousekeepingOptions, RetryOptions {
  /** How often silent nodes, half-written clusters and ended clusters past retention are looked for, ms. Default 1000. */
  sweepEveryMs?: number;
  /** Replicas a timeout's abort must reach before it is published (the fold worker's guard). Default: none. */
  replication?: ReplicationGuard;
}

/**
 * How long a fired deadline whose abort was not yet published waits before a
 * sweep fires it again, ms, at the least. It is also at least twice the WAIT
 * timeout (`--replica-timeout-ms`), so it is not due again while the sweep
 * that fired it still waits for a replica.
 */
export const TIMEOUT_PENDING_MS = 5000;

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
  private readonly replication: ReplicationGuard;
  /** How long a fired deadline stays pending before a sweep may fire it again, ms ({@link TIMEOUT_PENDING_MS}). */
  readonly pendingMs: number;
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
    this.replication = options.replication ?? NO_REPLICATION;
    this.pendingMs = Math.max(TIMEOUT_PENDING_MS, 2 * this.replication.timeoutMs);
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

  /**
   * Resolves a barrier abort if it is still open at its deadline, and tells
   * the nodes once a replica holds it, as the fold does (docs/high-availability.md):
   * timeout.lua keeps an abort's deadline due again {@link pendingMs} later
   * with its outcome, so a sweep that fails here (no replica in time,
   * Redis gone, this process killed) leaves it for a later sweep, which
   * publishes the same outcome. Once published, the deadline is dropped.
   */
  private async fireDeadline(cluster: string, barrier: Barrier): Promise<number> {
    const mark = this.replication.mark(this.store.redis);
    const outcome = await this.store.timeout(cluster, barrier, this.pendingMs);
    if (!outcome.ok || outcome.resolutions.length === 0) return 0;
    await this.replication.waitForReplicas(this.store.redis, mark);
    this.log.info({ cluster, barrier }, 'barrier timed out');
    this.publisher.apply(cluster, outcome);
    await this.store.confirmTimeout(cluster, barrier);
    return outcome.resolutions.length;
  }

  /** One sweep, without the lease (the periods take it first); public for tests that run sweeps side by side. */
  async sweep(): Promise<SweepResult> {
    let timedOut = 0;
    // A deadline whose abort is not yet published (no replica in time) does not hold up the rest of the sweep;
    // the sweep still fails, with its error, after the rest: the deadline is due again (timeout.lua). The later
    // deadlines wait for a later sweep: each would wait out its own WAIT timeout for a replica that is not there.
    let unpublished: unknown;
    for (const [cluster, barrier] of await this.store.dueDeadlines()) {
      try {
        timedOut += await this.fireDeadline(cluster, barrier);
      } catch (err) {
        unpublished = err;
        break;
      }
    }
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
    if (unpublished !== undefined) throw unpublished;
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
