import { UnrecoverableError, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Report } from '../src/bus/messages';
import type { ClusterStore } from '../src/cluster/store';
import type { Publisher } from './publisher';
import { REPORTS_QUEUE } from '../src/queue/queues';
import type { WorkerEvents } from './events';

export interface FoldWorkerOptions {
  /** Reports folded at once by this process. Default 64. */
  concurrency?: number;
  /**
   * How long a report being folded stays locked to this process, ms; when
   * the process dies, another worker takes the report over after at most
   * about twice this (lock expiry, then the next stalled-job check).
   * Default 30000 (BullMQ's default).
   */
  lockDurationMs?: number;
}

/**
 * Takes reports off the BullMQ queue and folds each with the atomic script,
 * then publishes what the fold decided. A report the fold refuses (its
 * cluster vanished between the bridge's check and the fold) fails for good;
 * anything else is retried by BullMQ, and a re-run folds nothing twice.
 */
export function startFoldWorker(
  connection: Redis,
  bullPrefix: string,
  store: ClusterStore,
  publisher: Publisher,
  events: WorkerEvents,
  log: Logger,
  options: FoldWorkerOptions = {},
): Worker<Report> {
  const worker = new Worker<Report>(
    REPORTS_QUEUE,
    async (job: Job<Report>) => {
      const started = performance.now();
      const report = job.data;
      const outcome = await store.fold(report);
      if (!outcome.ok) {
        log.warn({ code: outcome.code, reason: outcome.reason, report: report.id }, 'fold refused report');
        events.emit('rejected', outcome.code, outcome.reason);
        throw new UnrecoverableError(`${outcome.code}: ${outcome.reason}`);
      }
      await publisher.apply(report.cluster, outcome);
      log.debug({ cluster: report.cluster, job: report.job, report: report.state, state: outcome.state, dup: outcome.dup }, 'folded');
      events.emit('folded', report, outcome, performance.now() - started, job.timestamp);
      return { state: outcome.state, dup: outcome.dup };
    },
    {
      connection,
      prefix: bullPrefix,
      concurrency: options.concurrency ?? 64,
      drainDelay: 5,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.lockDurationMs ?? 30_000,
      // A re-run folds nothing twice, so a report may outlive several dead workers before it is given up.
      maxStalledCount: 5,
    },
  );
  worker.on('error', (err) => log.error({ err }, 'fold worker error'));
  worker.on('failed', (job, err) => log.warn({ report: job?.id, err: err.message }, 'report fold failed'));
  return worker;
}
