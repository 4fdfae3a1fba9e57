import type { NatsConnection } from 'nats';
import type { Redis } from 'ioredis';
import { prepareClusters } from '../../src/cluster/prepare';
import { ClusterStore } from '../../src/cluster/store';
import { submitClusters } from '../../src/cluster/submit';
import type { SubmittedCluster } from '../../src/cluster/submit';
import { QueueSet } from '../../src/queue/queues';
import { nodesJob } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';
import { clientsFor, life, reportsDrained } from './workload';

/**
 * Issue 10, item 10: ended clusters are deleted whole after `--retention`
 * (here 2 s), so Redis returns to its baseline however many clusters ran.
 */
const CLUSTERS = Number(process.env.CS_RETENTION_CLUSTERS ?? 2000);
const NODES_PER_CONNECTION = 500;

const lab = useTestServers({ workerProcess: ['--retention', '2s'] });
const { res } = lab;

/**
 * Keys under the test's prefix, less the per-report dedupe keys `cs/report/*`
 * (a global key per report with a one-day TTL on this branch; they move into
 * the cluster's own `reports` hash, which retention deletes, with the
 * per-cluster dedupe of the fold).
 */
async function keys(redis: Redis): Promise<{ kept: string[]; reportKeys: string[] }> {
  const all = await redis.keys(`${lab.config.keyPrefix}*`);
  // The sweeps' leases (the workers' and admission's) come and go every second; they do not grow with the clusters.
  const kept = all.filter((k) => !k.includes('cs/report/') && !k.endsWith('cs/sweep/lease') && !k.endsWith('cs/admit/sweep-lease'));
  return { kept: [...new Set(kept)].sort(), reportKeys: all.filter((k) => k.includes('cs/report/')) };
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(String(await redis.call('INFO', 'memory')))?.[1]);
}

async function runClusters(store: ClusterStore, queues: QueueSet, n: number): Promise<SubmittedCluster[]> {
  const { job, spec } = nodesJob(2);
  const clusters: SubmittedCluster[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => submitClusters(store, queues, prepareClusters(job, 'retention.yaml', { inlineSpec: spec }))));
    clusters.push(...batch.flat());
  }
  const conns: NatsConnection[] = [];
  for (let i = 0; i < Math.ceil((n * 2) / NODES_PER_CONNECTION); i++) conns.push(await res.nats(lab.config));
  const nodes = (
    await Promise.all(clusters.map((c, i) => clientsFor(res, conns[Math.floor((i * 2) / NODES_PER_CONNECTION)]!, lab.config, c, { requestTimeoutMs: 10_000, giveUpAfterMs: 120_000 })))
  ).flat();
  const results = await Promise.all(nodes.map((node, i) => life(node, i % 2)));
  expect(results.filter((r) => r.join(' ') !== 'start ready finish')).toEqual([]);
  await Promise.all(nodes.map((node) => node.close()));
  await reportsDrained(store);
  return clusters;
}

test(`${CLUSTERS} finished 2-node clusters with --retention 2s: Redis returns to its baseline key count`, async () => {
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  // A removal deletes the cluster's state entry first and its entry in `cs/clusters/ended` last (so that
  // retention finds it again should it stop half-way): only both empty says every removal has finished.
  const gone = (what: string, timeoutMs: number) => eventually(async () => (await redis.hlen(store.keys.clusterState)) === 0 && (await redis.zcard(store.keys.endedClusters)) === 0, what, timeoutMs);

  // Warm-up: one cluster through its life and out again, so the queues' own keys exist in the baseline.
  await runClusters(store, queues, 1);
  await gone('the warm-up cluster to be deleted after the retention period', 30_000);
  const baseline = await keys(redis);
  const memBefore = await usedMemory(redis);

  const clusters = await runClusters(store, queues, CLUSTERS);
  const peak = await keys(redis);
  const memPeak = await usedMemory(redis);
  expect(peak.kept.length).toBeGreaterThan(baseline.kept.length);

  await gone(`all ${CLUSTERS} clusters to be deleted after the retention period`, 120_000);
  const after = await keys(redis);
  const memAfter = await usedMemory(redis);
  expect(after.kept).toEqual(baseline.kept);
  for (const c of clusters.slice(0, 5)) {
    expect(await redis.exists(...store.keys.clusterKeys(c.cluster))).toBe(0);
    expect(await redis.hget(store.keys.id2cluster, c.jobs[0]!.job_id)).toBeNull();
  }
  expect(await redis.zcard(store.keys.openClusters)).toBe(0);
  expect(await redis.zcard(store.keys.heartbeats)).toBe(0);
  // The dedupe records left on this branch all expire by themselves.
  const sample = after.reportKeys.slice(0, 20);
  for (const k of sample) expect(await redis.ttl(k)).toBeGreaterThan(0);
  note(
    `${CLUSTERS} finished 2-node clusters, worker --retention 2s`,
    `keys ${baseline.kept.length} before, ${peak.kept.length} at the end of the run, ${after.kept.length} after retention (identical names; plus ${after.reportKeys.length} cs/report/* dedupe keys with a TTL); used_memory ${(memBefore / 1e6).toFixed(1)} MB -> ${(memPeak / 1e6).toFixed(1)} MB -> ${(memAfter / 1e6).toFixed(1)} MB`,
  );
}, 300_000);
