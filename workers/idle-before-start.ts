import type { ClusterStore } from '../src/cluster/store';
import { errorMessage } from '../src/core/errors';
import type { Logger } from '../src/core/logger';
import type { WorkerEvents } from '../src/core/worker-events';
import type { ClusterEvent } from '../src/fold/outcome';
import { clusterEvents } from '../src/ops/cluster-summary';
import { testboxOfQueue } from '../src/queue/queues';

/** Start resolutions remembered, so that an event published again (a re-run fold) is counted once. */
const REMEMBER = 1000;

/**
 * Machine time held idle inside a node job before `start` (DESIGN §9), the
 * lab bench's definition (bench/lab.ts): for each node, from its `wait_start`
 * report to the `start` barrier's resolution (start or abort), both on the
 * Redis clock of the fold. When this process publishes a start resolution,
 * it reads the cluster's wait_start reports from its event log and emits
 * `idleBeforeStart` once per node that waited, with the node's testbox.
 */
export function watchIdleBeforeStart(store: ClusterStore, events: WorkerEvents, log: Logger): (ev: ClusterEvent) => void {
  const seen = new Set<string>();
  const measure = async (cluster: string, resolvedAt: number): Promise<void> => {
    const [history, queues] = await Promise.all([clusterEvents(store, cluster), store.nodeQueues(cluster)]);
    const waitStart = new Map<string, number>();
    for (const e of history) if (e.type === 'report' && e.report === 'wait_start' && !waitStart.has(e.job)) waitStart.set(e.job, e.at);
    for (const [job, at] of waitStart) {
      const queue = queues[job];
      const testbox = (queue && testboxOfQueue(queue)) ?? queue ?? '?';
      events.emit('idleBeforeStart', cluster, job, testbox, Math.max(0, resolvedAt - at));
    }
  };
  return (ev) => {
    if (ev.type !== 'resolution' || ev.barrier !== 'start' || seen.has(ev.id)) return;
    seen.add(ev.id);
    if (seen.size > REMEMBER) seen.delete(seen.values().next().value as string);
    measure(ev.cluster, ev.at).catch((err: unknown) => log.warn({ cluster: ev.cluster, err: errorMessage(err) }, 'could not measure idle time before start'));
  };
}
