import { Queue } from 'bullmq';
import { ClusterStore } from '../../src/cluster/store';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
import { REPORTS_QUEUE, testboxQueueName } from '../../src/queue/queues';
import { clientsFor, life } from '../faults/workload';
import { nodesJob, submitInline } from '../helpers/cluster';
import { CliProcess, envFor } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import type { Resources } from '../helpers/servers';

/**
 * The workload of the Redis failover tests: worker processes on an HA set,
 * `clusters` x `nodes` nodes living their life (test/faults/workload.ts),
 * returned once a quarter of the nodes have passed the start barrier, so
 * that a failure then finds reports in flight everywhere.
 */
export interface HaWorkload {
  store: ClusterStore;
  clusters: SubmittedCluster[];
  /** Each node's barrier answers, in order, once its life is over. */
  lives: Promise<string[]>[];
}

export async function startHaWorkload(res: Resources, procs: CliProcess[], config: ConnectionConfig, clusterCount: number, nodes: number): Promise<HaWorkload> {
  const started = Array.from({ length: 2 }, () => new CliProcess(['worker', '--lock-ms', '3000'], envFor(config, { CS_LOG_LEVEL: 'info' })));
  procs.push(...started);
  await Promise.all(started.map((w) => w.waitFor(/workers ready/)));
  const store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
  const clusters: SubmittedCluster[] = [];
  for (let i = 0; i < clusterCount; i++) {
    const { job, spec } = nodesJob(nodes);
    clusters.push(...(await submitInline(res, config, job, spec)));
  }
  const nc = await res.nats(config);
  const clients = await Promise.all(clusters.map((c) => clientsFor(res, nc, config, c)));
  const lives = clients.flatMap((n) => n.map((c, i) => life(c, i)));
  await eventually(async () => {
    const views = await Promise.all(clusters.map((c) => store.readCluster(c.cluster)));
    return views.flatMap((v) => v.nodes).filter((n) => n.state === 'ready' || n.state === 'finish').length >= (clusterCount * nodes) / 4;
  }, 'a quarter of the nodes past start');
  return { store, clusters, lives };
}

/** What the ended-cluster reaper fails a node job no machine took with (workers/admission.ts, docs/admission.md). */
const REAPED = /^its cluster \S+ (finished|ended \(.*\)) before any machine took this node job$/;

/**
 * Jobs in any failed set: the reports queue and every testbox queue of the
 * clusters. The nodes here are NATS clients, not agents: no machine ever takes
 * their node jobs, so once a cluster has ended the admission reaper fails them
 * ("its cluster ... finished before any machine took this node job"), as
 * documented. Those are not failures of the workload and are not counted; any
 * other failed job is.
 */
export async function failedJobs(store: ClusterStore, clusters: SubmittedCluster[]): Promise<number> {
  const names = new Set([REPORTS_QUEUE, ...clusters.flatMap((c) => c.jobs.map((j) => testboxQueueName(j.queue)))]);
  let failed = 0;
  for (const name of names) {
    const q = new Queue(name, { connection: store.redis, prefix: store.keys.bullPrefix });
    q.on('error', () => undefined); // connection errors: the store's own client reports them
    try {
      const jobs = await q.getFailed(0, -1);
      failed += jobs.filter((j) => !(name !== REPORTS_QUEUE && REAPED.test(j.failedReason))).length;
    } finally {
      await q.close();
    }
  }
  return failed;
}
