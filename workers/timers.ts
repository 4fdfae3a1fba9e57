import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Report } from '../src/bus/messages';
import type { Barrier } from '../src/core/states';
import type { ClusterStore } from '../src/cluster/store';
import { formatDuration } from '../src/core/duration';
import type { Publisher } from './publisher';
import { TIMERS_QUEUE } from '../src/queue/queues';
import type { QueueSet, TimerJob } from '../src/queue/queues';
import { enqueueReports } from './bridge';
import { deadReportId } from '../src/fold/batch';
import type { WorkerEvents } from './events';
import { Housekeeping } from './housekeeping';
import type { HousekeepingOptions } from './housekeeping';

export interface TimerOptions extends HousekeepingOptions {
  /** How often silent nodes, half-written clusters and ended clusters past retention are looked for, ms. Default 1000. */
  sweepEveryMs?: number;
}

/**
 * The per-second sweep (one BullMQ job scheduler, run by one worker process
 * at a time): barrier deadlines that have come (the fold keeps them in the
 * `cs/deadlines` zset) are fired through timeout.lua, and nodes whose
 * heartbeats stopped are aborted through the reports queue like any other
 * report, so a dead node's abort is folded exactly once.
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
  /** Resolves a barrier abort if it is still open at its deadline (timeout.lua drops the deadline either way). */
  const fireDeadline = async (cluster: string, barrier: Barrier): Promise<number> => {
    const outcome = await store.timeout(cluster, barrier);
    if (!outcome.ok) return 0;
    if (outcome.resolutions.length > 0) log.info({ cluster, barrier }, 'barrier timed out');
    publisher.apply(cluster, outcome);
    return outcome.resolutions.length;
  };
  const worker = new Worker<TimerJob>(
    TIMERS_QUEUE,
    async (job: Job<TimerJob>) => {
      const data = job.data;
      if (data.kind === 'deadline') {
        // A delayed deadline job left by an older version.
        return { resolved: await fireDeadline(data.cluster, data.barrier) };
      }
      let timedOut = 0;
      for (const [cluster, barrier] of await store.dueDeadlines()) timedOut += await fireDeadline(cluster, barrier);
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
          id: deadReportId(node),
          cluster,
          job: node,
          state: 'abort',
          at: Date.now(),
          token,
          reason: `no heartbeat for ${formatDuration(3 * hb)} (dead node)`,
        };
        // Queued first (the same report id from every worker: folded once), then taken off the watch: only the
        // sweep whose ZREM removed the node tells of it, so a node is counted dead once, however
        // many sweeps (of however many workers) see it before its abort is folded.
        await enqueueReports(queues, [report]);
        if (!(await store.forgetHeartbeat(cluster, node))) continue;
        log.warn({ cluster, job: node }, 'node stopped sending heartbeats; aborting it');
        events.emit('dead', cluster, node);
      }
      const kept = await housekeeping.run();
      return { dead: silent.length, timedOut, ...kept };
    },
    { connection, prefix: queues.keys.bullPrefix, concurrency: 16 },
  );
  worker.on('error', (err) => log.error({ err }, 'timer worker error'));
  await queues.timers.upsertJobScheduler('sweep', { every: options.sweepEveryMs ?? 1000 }, { name: 'sweep', data: { kind: 'sweep' }, opts: { removeOnComplete: true, removeOnFail: 100 } });
  return worker;
}
