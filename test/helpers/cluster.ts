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
