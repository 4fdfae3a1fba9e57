import type { NatsConnection } from 'nats';
import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import type { NodeClientOptions } from '../../src/client/node-client';
import type { ConnectionConfig } from '../../src/core/config';
import { ClusterStore } from '../../src/cluster/store';
import { prepareClusters } from '../../src/cluster/prepare';
import { submitClusters } from '../../src/cluster/submit';
import type { SubmittedCluster } from '../../src/cluster/submit';
import { QueueSet } from '../../src/queue/queues';
import type { Resources } from './servers';

/** A job with N nodes of alternating roles on an inline spec, for barrier tests. */
export function nodesJob(n: number, extra = ''): { job: string; spec: string } {
  const hosts = Array.from({ length: n }, (_, i) => `  node--${i + 1}: { roles: [${i === 0 ? 'server' : 'client'}] }`).join('\n');
  return {
    job: `suite: t\ncluster: cs-test\n${extra}\nif role server:\n  srv:\nif role client:\n  cli:\n`,
    spec: `nodes:\n${hosts}\n`,
  };
}

/** Submits a job straight through the store and queues (no HTTP), returning its clusters. */
export async function submitInline(res: Resources, config: ConnectionConfig, job: string, spec: string, heartbeatIntervalMs?: number): Promise<SubmittedCluster[]> {
  const redis = res.redis(config);
  const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  return submitClusters(store, queues, prepareClusters(job, 'test job', { inlineSpec: spec, heartbeatIntervalMs }));
}

/** A started NodeClient for every node job of `cluster`, on `nc` (a new connection when none is given), closed with the test's resources. */
export async function nodeClients(res: Resources, config: ConnectionConfig, cluster: SubmittedCluster, options: NodeClientOptions = {}, nc?: NatsConnection): Promise<NodeClient[]> {
  const conn = nc ?? (await res.nats(config));
  const subjects = new Subjects(config.subjectPrefix);
  return Promise.all(
    cluster.jobs.map(async (j) => {
      const c = res.add(new NodeClient(conn, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }, options), (x) => x.close());
      await c.start();
      return c;
    }),
  );
}
