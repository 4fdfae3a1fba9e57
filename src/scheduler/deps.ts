import type { FastifyInstance } from 'fastify';
import type { NatsConnection } from 'nats';
import type { SharedSubscriptions } from '../bus/shared-subscriptions';
import type { Subjects } from '../bus/subjects';
import type { ClusterStore } from '../cluster/store';
import type { Logger } from '../core/logger';
import type { ReplicationGuard } from '../core/replication';
import type { QueueSet } from '../queue/queues';
import type { LegacyReads } from './legacy-reads';
import type { SchedulerOptions } from './options';

/**
 * Registers more routes on the scheduler's server (the ops UI, /metrics).
 * Called once, after the scheduler's own routes; may add hooks and routes.
 */
export type RouteRegistrar = (app: FastifyInstance, deps: SchedulerDeps) => void;

/** What the scheduler's routes use; the caller owns every connection. */
export interface SchedulerDeps {
  store: ClusterStore;
  queues: QueueSet;
  nc: NatsConnection;
  /** Replicas that must hold a submit before it is answered. Default: no wait. */
  replication?: ReplicationGuard;
  subjects: Subjects;
  options: SchedulerOptions;
  /** The process's shared subscriptions, which every legacy wait uses (node-proxy.ts). Default: made by buildServer on `nc`. */
  shared?: SharedSubscriptions;
  /** What legacy requests read before they wait, coalesced and kept per held cluster (legacy-reads.ts). Default: made by buildServer. */
  legacyReads?: LegacyReads;
  logger?: Logger;
  /** Where Redis is (its URL, password hidden, or its primary and sentinels), named in the 503 answered while Redis is down. Default: not named. */
  redisWhere?: string;
  /** Extra routes registered after the scheduler's own. Default none. */
  routes?: RouteRegistrar[];
}
