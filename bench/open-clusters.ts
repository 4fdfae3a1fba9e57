import type { Environment } from './environment';
import { closeClusters, createClusters, timedWait } from './clusters';
import { sampleProcess } from './proc-stats';
import type { ProcSample } from './proc-stats';

export interface OpenClustersResult {
  clusters: number;
  nodes: number;
  /** Seconds to create them all and pass their `start` barrier. */
  seconds: number;
  /** Each worker process after the clusters are open (ready pending). */
  workers: ProcSample[];
  /** Clusters the workers' store lists as open afterwards. */
  openInRedis: number;
}

/**
 * Memory with many clusters open: creates `count` clusters in batches, takes
 * each through `start` (so every node has reported and the `ready` deadline
 * is scheduled), and leaves them open; then reads the workers' RSS.
 */
export async function openClusters(env: Environment, count: number, nodes: number, batch = 500): Promise<OpenClustersResult> {
  const t = performance.now();
  for (let done = 0; done < count; done += batch) {
    const cs = await createClusters(env, Math.min(batch, count - done), nodes);
    try {
      await Promise.all(cs.flatMap((c) => c.nodes.map((n) => timedWait(n, 'wait_start'))));
    } finally {
      await closeClusters(cs);
    }
  }
  const seconds = (performance.now() - t) / 1000;
  const open = await env.redis.zcard(env.store.keys.openClusters);
  return { clusters: count, nodes, seconds, workers: env.workers.map((w) => sampleProcess(w.pid)).filter((s): s is ProcSample => s !== undefined), openInRedis: open };
}
