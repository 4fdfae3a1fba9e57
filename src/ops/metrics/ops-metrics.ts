import { Gauge, Registry } from 'prom-client';
import type { ClusterStore } from '../../cluster/store';
import type { QueueSet } from '../../queue/queues';

/** Job states whose counts `cs_queue_jobs` reports. */
const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

/** How late a deadline is before it counts as overdue: the sweep fires it within about a second. */
const OVERDUE_MS = 10_000;

/** Names of every BullMQ queue under the install's prefix (`tb-<testbox>`, `cs-reports`; `cs-timers` of earlier versions). */
export async function queueNames(store: ClusterStore): Promise<string[]> {
  const prefix = `${store.keys.bullPrefix}:`;
  const names = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await store.redis.scan(cursor, 'MATCH', store.keys.bullQueueMeta('*'), 'COUNT', 1000);
    cursor = next;
    for (const k of keys) names.add(k.slice(prefix.length, -':meta'.length));
  } while (cursor !== '0');
  return [...names].sort();
}

/**
 * Gauges read from Redis at scrape time, for the process that serves the
 * web page (the scheduler): open clusters and BullMQ queue depths. They are
 * the same whichever process reads them, so only one process exports them.
 */
export function registerOpsGauges(store: ClusterStore, queues: QueueSet, registry: Registry = new Registry()): Registry {
  new Gauge({
    name: 'cs_clusters_open',
    help: 'Clusters submitted and not yet finished or aborted',
    registers: [registry],
    async collect() {
      this.set(await store.redis.zcard(store.keys.openClusters));
    },
  });
  new Gauge({
    name: 'cs_barrier_deadlines',
    help: 'Barrier deadlines waiting to fire (one per open cluster: its pending barrier)',
    registers: [registry],
    async collect() {
      this.set(await store.redis.zcard(store.keys.deadlines));
    },
  });
  new Gauge({
    name: 'cs_barrier_deadlines_overdue',
    help: 'Barrier deadlines more than 10 s past their time and not fired: above 0, no worker process is sweeping',
    registers: [registry],
    async collect() {
      this.set(await store.redis.zcount(store.keys.deadlines, '-inf', (await store.now()) - OVERDUE_MS));
    },
  });
  new Gauge({
    name: 'cs_queue_jobs',
    help: 'BullMQ jobs per queue and state: node jobs (tb-<testbox>), reports waiting to be folded (cs-reports)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const name of await queueNames(store)) {
        const counts = await queues.get(name).getJobCounts(...JOB_STATES);
        for (const state of JOB_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
      }
    },
  });
  return registry;
}
