import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Report } from '../src/bus/messages';
import type { ClusterStore } from '../src/cluster/store';
import { formatDuration } from '../src/core/duration';
import type { Publisher } from './publisher';
import { TIMERS_QUEUE } from '../src/queue/queues';
import type { QueueSet, TimerJob } from '../src/queue/queues';
import { reportJobOptions } from './bridge';
import type { WorkerEvents } from './events';
import { Housekeeping } from './housekeeping';
import type { HousekeepingOptions } from './housekeeping';

export interface TimerOptions extends HousekeepingOptions {
  /** How often silent nodes, half-written clusters and ended clusters past retention are looked for, ms. Default 1000. */
  sweepEveryMs?: number;
}

/** The report id of a dead-node abort: the same from every worker, so it is folded once. */
export function deadReportId(cluster: string, job: string): string {
  return `dead-${cluster}-${job}`;
}

/**
 * Barrier deadlines (one delayed job per cluster and barrier) and the sweep
 * for nodes whose heartbeats stopped. A silent node is aborted through the
 * reports queue like any other report, so its abort is folded exactly once.
 */
export async function startTimers(
  connection: Redis,
  store: ClusterStore,
  queues: QueueSet,
  publisher: Publisher,
  events: WorkerEvents,
  log: Logger,
  options: TimerOptions = {},
): Promise<Worker<TimerJob>> {
  const housekeeping = new Housekeeping(store, queues, log, options);
  const worker = new Worker<TimerJob>(
    TIMERS_QUEUE,
    async (job: Job<TimerJob>) => {
      const data = job.data;
      if (data.kind === 'deadline') {
        const outcome = await store.timeout(data.cluster, data.barrier);
        if (!outcome.ok) return { skipped: outcome.reason };
        if (outcome.resolutions.length > 0) log.info({ cluster: data.cluster, barrier: data.barrier }, 'barrier timed out');
        await publisher.apply(data.cluster, outcome);
        return { resolved: outcome.resolutions.length };
      }
      const silent = await store.silentNodes();
      for (const [cluster, node] of silent) {
        const settings = await store.heartbeatSettings(cluster);
        if (!settings) {
          // The cluster is gone (removed after a failed submit): nothing to abort.
          await store.forgetHeartbeat(cluster, node);
          continue;
        }
        const { token, heartbeatMs: hb } = settings;
        const report: Report = {
          v: 1,
          id: deadReportId(cluster, node),
          cluster,
          job: node,
          state: 'abort',
          at: Date.now(),
          token,
          reason: `no heartbeat for ${formatDuration(3 * hb)} (dead node)`,
        };
        // Queued first (the same job id from every worker), then taken off the watch: only the
        // sweep whose ZREM removed the node tells of it, so a node is counted dead once, however
        // many sweeps (of however many workers) see it before its abort is folded.
        await queues.reports.add('abort', report, reportJobOptions(report.id));
        if (!(await store.forgetHeartbeat(cluster, node))) continue;
        log.warn({ cluster, job: node }, 'node stopped sending heartbeats; aborting it');
        events.emit('dead', cluster, node);
      }
      const kept = await housekeeping.run();
      return { dead: silent.length, ...kept };
    },
    { connection, prefix: queues.keys.bullPrefix, concurrency: 16 },
  );
  worker.on('error', (err) => log.error({ err }, 'timer worker error'));
  await queues.timers.upsertJobScheduler('sweep', { every: options.sweepEveryMs ?? 1000 }, { name: 'sweep', data: { kind: 'sweep' }, opts: { removeOnComplete: true, removeOnFail: 100 } });
  return worker;
}
