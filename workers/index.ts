import type { Worker } from 'bullmq';
import type { NatsConnection } from 'nats';
import { closeNats, connectNats } from '../src/bus/connect';
import { Subjects } from '../src/bus/subjects';
import { ClusterStore } from '../src/cluster/store';
import type { ConnectionConfig } from '../src/core/config';
import { createLogger } from '../src/core/logger';
import { settledWithin } from '../src/core/pause';
import type { Logger } from '../src/core/logger';
import { connectRedis, describeRedis } from '../src/core/redis';
import { ReplicationGuard, replicationOf } from '../src/core/replication';
import { ReportBridge } from './bridge';
import { watchIdleBeforeStart } from './idle-before-start';
import type { BridgeOptions } from './bridge';
import { WorkerEvents } from './events';
import { startFoldWorker } from './fold-worker';
import { Publisher } from '../src/bus/publisher';
import { QueryResponder } from './query';
import { QueueSet } from '../src/queue/queues';
import { startTimers } from './timers';
import type { Sweeper } from './timers';
import { Dispatcher } from './dispatcher';
import type { DispatcherOptions } from './dispatcher';
import { AdmissionStore } from '../src/admission/admission-store';
import { AdmissionKeeper } from './admission';
import type { AdmissionKeeperOptions } from './admission';

export interface WorkersOptions {
  /** Batches of reports folded at once by this process. Default 8. */
  concurrency?: number;
  /** How often silent nodes, half-written clusters and ended clusters past retention are looked for, ms. Default 1000. */
  sweepEveryMs?: number;
  /** How long an ended cluster is kept before it is deleted whole, ms. Default 7 days. */
  retentionMs?: number;
  /** How long a half-submitted cluster may wait before the reaper finishes or removes it, ms. Default 60 000. */
  submitGraceMs?: number;
  /** How soon another worker takes over the batches a dead worker was folding, about twice this, ms. Default 30000. */
  lockDurationMs?: number;
  /** The wait before a cluster's first automatic retry (`cluster_retries`), ms, doubled for each later one. Default 10 000. */
  retryBackoffMs?: number;
  /** Group commit caps of the report bridge. */
  bridge?: BridgeOptions;
  /** Node job locks of the dispatcher (lockMs default 30 000 ms). */
  dispatcher?: DispatcherOptions;
  /** Admission (DESIGN §9): admit timeout, reservations. */
  admission?: AdmissionKeeperOptions & {
    /** A cluster waiting longer than this reserves idle machines of its testboxes, ms. Default 10 min. */
    reserveAfterMs?: number;
  };
  logger?: Logger;
  /** How long close() waits for in-flight work before it cuts the connections, ms. Default 5000. */
  closeGraceMs?: number;
}

export interface WorkersHandle {
  readonly events: WorkerEvents;
  readonly store: ClusterStore;
  readonly nc: NatsConnection;
  /** The per-second sweep of this process (deadlines, dead nodes, housekeeping). */
  readonly sweeper: Sweeper;
  /** Admission's machines and waiting clusters. */
  readonly admission: AdmissionStore;
  /** The admission sweep and ended-cluster reaper of this process. */
  readonly admissionKeeper: AdmissionKeeper;
  close(): Promise<void>;
}

/**
 * Starts everything `cluster-sync worker` runs in one process: the report
 * bridge, the fold worker, barrier deadlines and the dead-node sweep, the
 * cluster query responder, and the dispatcher of node jobs. Several
 * processes may run side by side.
 */
export async function startWorkers(config: ConnectionConfig, options: WorkersOptions = {}): Promise<WorkersHandle> {
  const log = options.logger ?? createLogger('cluster-sync-worker');
  const redis = connectRedis(config, 'cs-worker');
  const bullConn = connectRedis(config, 'cs-worker-bull');
  const replication = new ReplicationGuard(replicationOf(config));
  const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
  const queues = new QueueSet(bullConn, store.keys, (err) => log.debug({ err: err.message }, 'queue connection error'));
  const subjects = new Subjects(config.subjectPrefix);
  const events = new WorkerEvents();
  const nc = await connectNats(config, 'cluster-sync-worker', {}, (line) => log.error(line));
  const publisher = new Publisher(nc, subjects);
  const idleBeforeStart = watchIdleBeforeStart(store, events, log);
  publisher.onEvent((ev) => {
    events.emit('event', ev);
    idleBeforeStart(ev);
  });

  const workers: Worker[] = [];
  const fold = startFoldWorker(bullConn, store.keys.bullPrefix, store, publisher, events, log, { concurrency: options.concurrency, lockDurationMs: options.lockDurationMs, replication });
  workers.push(fold.worker);
  const bridge = new ReportBridge(nc, subjects, store, queues, events, log, { replication, ...options.bridge });
  bridge.start();
  const query = new QueryResponder(nc, subjects, store, log);
  query.start();
  const lockMs = options.dispatcher?.lockMs ?? 30_000;
  const admission = new AdmissionStore(redis, store.keys, { lockMs, reserveAfterMs: options.admission?.reserveAfterMs });
  const dispatcher = new Dispatcher(nc, subjects, bullConn, store.keys, log, { replication, ...options.dispatcher, admission, onHanded: (c, j, m, ms) => events.emit('handed', c, j, m, ms) });
  dispatcher.start();
  const keeper = new AdmissionKeeper(admission, { queues, publisher, events, log }, { sweepEveryMs: options.sweepEveryMs, ...options.admission });
  keeper.start(nc, subjects);
  await nc.flush();
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const sweeper = startTimers(store, queues, publisher, events, log, {
    sweepEveryMs: options.sweepEveryMs,
    retentionMs: options.retentionMs,
    submitGraceMs: options.submitGraceMs,
    retryBackoffMs: options.retryBackoffMs,
    replication,
  });
  log.info({ nats: config.natsUrl, redis: describeRedis(config), prefix: config.subjectPrefix }, 'workers ready');

  let closed = false;
  return {
    events,
    store,
    nc,
    sweeper,
    admission,
    admissionKeeper: keeper,
    async close() {
      if (closed) return;
      closed = true;
      const graceful = (async () => {
        await sweeper.close();
        await keeper.close();
        await bridge.close();
        await query.close();
        await dispatcher.close();
        await Promise.all(workers.map((w) => w.close()));
        await queues.close();
        await closeNats(nc);
        await Promise.all([redis.quit(), bullConn.quit()].map((p) => p.catch(() => undefined)));
      })();
      // With Redis gone, ioredis would retry for ever: after the grace period, cut the connections.
      if (!(await settledWithin(graceful, options.closeGraceMs ?? 5000))) {
        fold.stop();
        log.warn('workers did not stop in time (is Redis down?); closing connections');
        redis.disconnect();
        bullConn.disconnect();
        // Not awaited: with Redis gone, BullMQ's close never settles.
        for (const w of workers) w.close(true).catch(() => undefined);
        await nc.close().catch(() => undefined);
      }
    },
  };
}
