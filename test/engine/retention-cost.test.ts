import { ClusterStore } from '../../src/cluster/store';
import { createLogger } from '../../src/core/logger';
import { startWorkers } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import type { Resources } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Issue 13 bench finding: retention walked every cluster's meta each second
 * (an HMGET per cluster per sweep), so Redis commands per barrier grew with
 * how long barriers waited, faster than Compass-CI's polling. Now the call
 * that ends a cluster records it in `cs/clusters/ended`, and a sweep reads
 * only the ended clusters that are due. Counted in commands, not time.
 */
const lab = useTestServers({ per: 'test' });
const { res } = lab;

async function commandCalls(redis: ReturnType<Resources['redis']>, command: string): Promise<number> {
  const info = String(await redis.info('commandstats'));
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

test('sweeps read nothing per open cluster: 10 sweeps over 200 waiting clusters cost fewer HMGETs than one per cluster', async () => {
  const OPEN = 200;
  const { job, spec } = nodesJob(2);
  for (let i = 0; i < OPEN; i++) await submitInline(res, lab.config, job, spec);
  const redis = res.redis(lab.config);
  const workers = res.add(await startWorkers(lab.config, { sweepEveryMs: 50, logger: createLogger('test', 'silent') }), (w) => w.close());
  let sweeps = 0;
  workers.events.on('swept', () => sweeps++);
  // The first sweeps walk the clusters once, for those that ended before the index existed.
  await eventually(() => sweeps >= 3, 'the backfill walk');
  // Admission reads each waiting cluster's admit deadline once, when it first sees it (the 'swept' event
  // may come from the other sweep first): let that one-time read land before counting.
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  await eventually(async () => (await redis.zcard(store.keys.admitDue)) >= OPEN, 'admission to index every waiting cluster once');
  // Two windows of ten sweeps each. A read made once per cluster (the backfill walk, admission's
  // index) that a loaded machine delays past the waits above lands in one window only; a read per
  // cluster per sweep (the old retention) costs ten per cluster in both.
  const windows: number[] = [];
  for (let w = 0; w < 2; w++) {
    await redis.config('RESETSTAT');
    const from = sweeps;
    await eventually(() => sweeps >= from + 10, 'ten more sweeps');
    windows.push(await commandCalls(redis, 'hmget'));
  }
  expect(Math.min(...windows)).toBeLessThan(OPEN);
});

test('a cluster that ended before the index existed is found by the backfill walk and deleted after retention', async () => {
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const { job, spec } = nodesJob(2);
  const [old] = await submitInline(res, lab.config, job, spec);
  // Ended long ago, as an older version left it: final in its meta, not in cs/clusters/ended.
  await redis.hset(store.keys.meta(old!.cluster), 'final', 'abort', 'pending', '', 'res:start', 'abort', 'at:start', 1000);
  await redis.zrem(store.keys.openClusters, old!.cluster);
  expect(await redis.zscore(store.keys.endedClusters, old!.cluster)).toBeNull();
  res.add(await startWorkers(lab.config, { sweepEveryMs: 50, retentionMs: 1000, logger: createLogger('test', 'silent') }), (w) => w.close());
  // The deletion removes the cluster's state first and its meta last but one (src/cluster/sweep-store.ts): wait for
  // the whole of it, not only its first step (on a loaded machine the meta was read between the two).
  await eventually(
    async () => (await redis.hexists(store.keys.clusterState, old!.cluster)) === 0 && (await redis.exists(store.keys.meta(old!.cluster))) === 0,
    'the old cluster deleted, its state and its meta',
  );
  expect(await redis.zscore(store.keys.endedClusters, old!.cluster)).toBeNull();
});
