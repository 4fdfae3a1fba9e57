import type { FastifyInstance } from 'fastify';
import type { NatsConnection } from 'nats';
import { closeNats, connectNats } from '../bus/connect';
import { Subjects } from '../bus/subjects';
import { ClusterStore } from '../cluster/store';
import type { ConnectionConfig } from '../core/config';
import { errorMessage } from '../core/errors';
import { createLogger } from '../core/logger';
import { settledWithin } from '../core/pause';
import type { Logger } from '../core/logger';
import { connectRedis, describeRedis, firstConnectTry } from '../core/redis';
import { ReplicationGuard, replicationOf } from '../core/replication';
import { QueueSet } from '../queue/queues';
import type { RouteRegistrar } from './deps';
import { parseSchedulerOptions } from './options';
import type { SchedulerOptionsInput } from './options';
import { LISTEN_BACKLOG, buildServer } from './server';
import { SharedSubscriptions } from '../bus/shared-subscriptions';
import { legacyReadsOf } from './legacy-route';
import type { LegacyReads } from './legacy-reads';

export interface StartSchedulerOptions extends SchedulerOptionsInput {
  /** Port to listen on. Default 3000 (lkp-tests' LKP_CGI_PORT default); 0 picks a free one. */
  port?: number;
  /** Address to listen on. Default 127.0.0.1. */
  host?: string;
  logger?: Logger;
  routes?: RouteRegistrar[];
  /** How long close() waits for Redis and NATS to say goodbye before it cuts the connections, ms. Default {@link SCHEDULER_CLOSE_GRACE_MS}. */
  closeGraceMs?: number;
}

/** Default of {@link StartSchedulerOptions.closeGraceMs}: well inside the CLI's 10 s stop deadline. */
export const SCHEDULER_CLOSE_GRACE_MS = 3000;

export interface SchedulerHandle {
  app: FastifyInstance;
  nc: NatsConnection;
  /** The shared subscriptions the legacy waits hold (how many subjects, deliveries so far). */
  shared: SharedSubscriptions;
  /** What legacy requests read before they wait (its counts: requests answered from a kept cluster identity, and read). */
  legacyReads: LegacyReads;
  /** `http://HOST:PORT`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Connects to Redis and NATS, builds the server and listens. It listens once
 * its Redis connection is ready, or once its first try failed (Redis down:
 * every request is then answered 503 until Redis is back, src/scheduler/redis-gate.ts);
 * never before, when a request would be answered 503 with Redis up.
 */
export async function startScheduler(config: ConnectionConfig, options: StartSchedulerOptions): Promise<SchedulerHandle> {
  const opts = parseSchedulerOptions(options);
  const logger = options.logger ?? createLogger('cluster-sync-scheduler');
  const redis = connectRedis(config, 'cs-scheduler');
  const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
  const queues = new QueueSet(redis, store.keys);
  let nc: NatsConnection;
  try {
    nc = await connectNats(config, 'cluster-sync-scheduler', {}, (line) => logger.error(line));
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const shared = new SharedSubscriptions(nc);
  const subjects = new Subjects(config.subjectPrefix);
  const legacyReads = legacyReadsOf({ store, subjects }, shared);
  const app = buildServer({
    store,
    queues,
    nc,
    replication: new ReplicationGuard(replicationOf(config)),
    subjects,
    options: opts,
    shared,
    legacyReads,
    logger,
    routes: options.routes,
    redisWhere: describeRedis(config),
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const graceful = (async () => {
        await app.close();
        await queues.close();
        await closeNats(nc);
        await redis.quit().catch(() => redis.disconnect());
      })();
      // With Redis or NATS gone, ioredis and nats.js retry for ever and a quit or drain never settles:
      // after the grace (or a failure), cut the connections. The HTTP server closed first, its open
      // connections with it (forceCloseConnections).
      try {
        if (await settledWithin(graceful, options.closeGraceMs ?? SCHEDULER_CLOSE_GRACE_MS)) return;
        logger.warn('scheduler did not stop in time (is Redis or NATS down?); closing connections');
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'scheduler could not stop cleanly; closing connections');
      }
      redis.disconnect();
      await nc.close().catch(() => undefined);
    })());
  try {
    await firstConnectTry(redis);
    await app.listen({ port: options.port ?? 3000, host: options.host ?? '127.0.0.1', backlog: LISTEN_BACKLOG });
  } catch (err) {
    await close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? 3000);
  return { app, nc, shared, legacyReads, url: `http://${options.host ?? '127.0.0.1'}:${port}`, close };
}
