import type { Queue } from 'bullmq';
import { errorMessage, ClusterSyncError, ErrorCode } from '../core/errors';
import type { QueueSet } from '../queue/queues';
import { testboxQueueName } from '../queue/queues';
import type { NodeJob } from '../split/node-job';
import type { ClusterEvent } from '../fold/outcome';
import type { PreparedCluster } from './prepare';
import { clusterRoles } from './store';
import type { ClusterStore } from './store';

/** Told about each cluster once it is enqueued, with its "submitted" event (to publish it live). */
export type SubmittedListener = (cluster: string, event: ClusterEvent) => void;

export interface SubmittedCluster {
  cluster: string;
  index: number;
  spec: string;
  jobs: NodeJob[];
  /** What the split ignored (unused spec keys, job roles no host has). */
  warnings: string[];
}

/** BullMQ options of a node job: kept after it ends, so its result can be read. */
const NODE_JOB_OPTIONS = { removeOnComplete: { count: 10_000 }, removeOnFail: { count: 10_000 }, attempts: 1 } as const;

/**
 * Creates each prepared cluster: ids and token, the state in Redis (first),
 * then the node jobs on their testbox queues and the first barrier's
 * deadline. A cluster whose jobs cannot be enqueued is removed again, so no
 * node ever takes a job of a cluster that does not exist, and no cluster
 * waits for nodes that will never come.
 */
export async function submitClusters(
  store: ClusterStore,
  queues: QueueSet,
  prepared: PreparedCluster[],
  onSubmitted?: SubmittedListener,
): Promise<SubmittedCluster[]> {
  const out: SubmittedCluster[] = [];
  for (const p of prepared) {
    const jobs = await store.assignIds(p.nodes);
    const first = jobs[0] as NodeJob;
    const { created, event } = await store.createCluster(jobs);
    try {
      const byQueue = new Map<Queue, NodeJob[]>();
      for (const j of jobs) {
        const q = queues.get(testboxQueueName(j.queue));
        byQueue.set(q, [...(byQueue.get(q) ?? []), j]);
      }
      const deadline = created + first.cluster_timeout_ms;
      await store.setDeadline(first.cluster, 'start', deadline);
      for (const [q, js] of byQueue) {
        await q.addBulk(js.map((j) => ({ name: j.cluster, data: j, opts: { ...NODE_JOB_OPTIONS, jobId: j.job_id } })));
      }
    } catch (err) {
      await store.deleteCluster(first.cluster, jobs.map((j) => j.job_id), event).catch(() => undefined);
      throw new ClusterSyncError(ErrorCode.Internal, `could not enqueue the node jobs of cluster ${first.cluster}: ${errorMessage(err)}`, { cause: err, retryable: true });
    }
    out.push({ cluster: first.cluster, index: p.index, spec: p.spec.name, jobs, warnings: p.warnings });
    onSubmitted?.(first.cluster, {
      id: event,
      v: 1,
      type: 'submitted',
      cluster: first.cluster,
      nodes: jobs.length,
      roles: clusterRoles(jobs),
      spec: p.spec.name,
      at: created,
    });
  }
  return out;
}
