import { setTimeout as sleep } from 'node:timers/promises';
import { RefusalCode } from '../src/core/refusal-codes';
import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Report } from '../src/bus/messages';
import type { ClusterStore } from '../src/cluster/store';
import { parseBatch } from '../src/fold/batch';
import type { FoldOutcome } from '../src/fold/outcome';
import { isRedisUnavailable } from '../src/core/redis-errors';
import { NO_REPLICATION } from '../src/core/replication';
import type { ReplicationGuard } from '../src/core/replication';
import type { Publisher } from '../src/bus/publisher';
import { REPORTS_QUEUE } from '../src/queue/queues';
import type { WorkerEvents } from './events';
import { RepeatLog } from './repeat-log';

export interface FoldWorkerOptions {
  /** Batches folded at once by this process. Default 8. */
  concurrency?: number;
  /**
   * How long a batch being folded stays locked to this process, ms; when
   * the process dies, another worker takes the batch over after at most
   * about twice this (lock expiry, then the next stalled-job check).
   * Default 30000 (BullMQ's default).
   */
  lockDurationMs?: number;
  /** Longest pause between two tries of a fold that failed because of Redis, ms. Default 2000. */
  maxRetryDelayMs?: number;
  /**
   * Replicas that must hold a fold before what it decided (barrier answers,
   * events) is published. Default: no wait ({@link NO_REPLICATION}).
   */
  replication?: ReplicationGuard;
}

/** A started fold worker: the BullMQ Worker, and how to stop its retries. */
export interface FoldWorker {
  readonly worker: Worker;
  /** Stops retrying folds that wait for Redis to come back (their jobs stay in Redis for the next run). */
  stop(): void;
}

/**
 * Takes batches of reports off the BullMQ queue and folds each batch with
 * one atomic script call, every report on its own, then publishes what the
 * folds decided, once per cluster. A report the fold refuses (or a malformed
 * one) is logged and counted and spoils nothing else. A fold that fails
 * because of Redis (out of memory, loading, connection lost, timeout) is
 * tried again until Redis recovers: an accepted report is never given up.
 * A re-run (after a crash) folds nothing twice.
 *
 * What a fold decided is published only once `replication`'s replicas hold
 * it, as every "accepted" is (docs/high-availability.md): a primary that was
 * frozen past a failover runs, when it wakes, the folds still in its socket
 * buffers and answers them before the sentinels make it a replica. Its
 * answers come from state the new primary never had (a barrier answered
 * "ready" there, while the new primary may decide otherwise); no replica
 * acknowledges them, so the fold is tried again, on the new primary, which
 * folds the batch itself or, if it has it already, repeats what it decided.
 */
export function startFoldWorker(connection: Redis, bullPrefix: string, store: ClusterStore, publisher: Publisher, events: WorkerEvents, log: Logger, options: FoldWorkerOptions = {}): FoldWorker {
  const repeats = new RepeatLog(log);
  const stopping = new AbortController();
  const maxDelay = options.maxRetryDelayMs ?? 2000;
  const replication = options.replication ?? NO_REPLICATION;

  /** Folds, retrying while Redis is unavailable; throws only for anything else, or when the worker stops. */
  const foldUntilDone = async (job: Job, reports: Report[]): Promise<FoldOutcome[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const mark = replication.mark(store.redis);
        const outcomes = await store.foldBatch(reports);
        await replication.waitForReplicas(store.redis, mark);
        return outcomes;
      } catch (err) {
        if (!isRedisUnavailable(err) || stopping.signal.aborted) throw err;
        repeats.error('fold failed because of Redis; retrying until it recovers', err, { batch: job.id, reports: reports.length });
        await sleep(Math.min(maxDelay, 50 * 2 ** Math.min(attempt, 10)), undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  };

  const worker = new Worker(
    REPORTS_QUEUE,
    async (job: Job) => {
      const started = performance.now();
      const { reports, malformed } = parseBatch(job.data);
      for (const m of malformed) {
        log.warn({ batch: job.id, index: m.index, reason: m.reason }, 'malformed report in batch; skipped');
        events.emit('rejected', RefusalCode.Invalid, m.reason);
      }
      const outcomes = await foldUntilDone(job, reports);
      const ms = performance.now() - started;
      const byCluster = new Map<string, FoldOutcome[]>();
      let refused = 0;
      reports.forEach((report, i) => {
        const outcome = outcomes[i] ?? ({ ok: false, code: RefusalCode.Invalid, reason: 'no outcome from the fold' } as const);
        if (!outcome.ok) {
          refused++;
          log.warn({ code: outcome.code, reason: outcome.reason, report: report.id, batch: job.id }, 'fold refused report');
          events.emit('rejected', outcome.code, outcome.reason);
          return;
        }
        const list = byCluster.get(report.cluster);
        if (list) list.push(outcome);
        else byCluster.set(report.cluster, [outcome]);
      });
      for (const [cluster, list] of byCluster) publisher.apply(cluster, list);
      reports.forEach((report, i) => {
        const outcome = outcomes[i];
        if (!outcome?.ok) return;
        log.debug({ cluster: report.cluster, job: report.job, report: report.state, id: report.id, state: outcome.state, dup: outcome.dup, batch: job.id }, 'folded');
        events.emit('folded', report, outcome, ms, job.timestamp);
      });
      return { reports: reports.length, refused: refused + malformed.length };
    },
    {
      connection,
      prefix: bullPrefix,
      concurrency: options.concurrency ?? 8,
      drainDelay: 5,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.lockDurationMs ?? 30_000,
      // A re-run folds nothing twice, so a batch may outlive many dead workers (or Redis outages
      // that cost it its lock) before it is given up.
      maxStalledCount: 100,
      // A slot whose job completion Redis refused (out of memory, restarting) tries again after
      // runRetryDelay, 15 s by default, holding one of `concurrency` slots that long: an outage should
      // cost the fold no more than itself.
      runRetryDelay: 500,
    },
  );
  worker.on('error', (err) => repeats.error('fold worker error', err));
  worker.on('failed', (job, err) => log.warn({ batch: job?.id, err: err.message }, 'batch fold failed'));
  return {
    worker,
    stop() {
      stopping.abort();
      repeats.close();
    },
  };
}
