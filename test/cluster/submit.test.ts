import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ClusterStore } from '../../src/cluster/store';
import { prepareClusters } from '../../src/cluster/prepare';
import { submitClusters } from '../../src/cluster/submit';
import { QueueSet, testboxQueueName } from '../../src/queue/queues';
import type { NodeJob } from '../../src/split/node-job';
import { createLogger } from '../../src/core/logger';
import { Housekeeping } from '../../workers/housekeeping';
import { CLUSTER_DIR } from '../helpers/fixtures';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

const lab = useTestServers({ per: 'test' });
const { res } = lab;

const JOB = 'suite: t\ncluster: cs-vm-2p16g\nif role server:\n  srv:\nif role client:\n  cli:\n';

test('submit writes the cluster state before the node jobs, which carry its id and token', async () => {
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  const [c] = await submitClusters(store, queues, prepareClusters(JOB, 'job', { clusterDir: CLUSTER_DIR }));
  const q = res.add(new Queue(testboxQueueName('vm-2p16g-multi-node'), { connection: redis, prefix: store.keys.bullPrefix }), (x) => x.close());
  const waiting = await q.getWaiting();
  expect(waiting.map((j) => j.id).sort()).toEqual(c!.jobs.map((j) => j.job_id).sort());
  for (const j of waiting) {
    const data = j.data as NodeJob;
    expect(data.cluster).toBe(c!.cluster);
    expect(data.token).toBe(await store.token(c!.cluster));
    // Compass-CI's keys, as its tools read them.
    expect(await redis.hget(`${lab.config.keyPrefix}sched/id2cluster`, data.job_id)).toBe(c!.cluster);
  }
  const state = JSON.parse((await redis.hget(`${lab.config.keyPrefix}sched/cluster_state`, c!.cluster))!) as Record<string, Record<string, string>>;
  expect(state).toEqual({
    [c!.jobs[0]!.job_id]: { state: '', roles: 'server', ip: '', direct_ips: '', direct_macs: '', entire_state: '' },
    [c!.jobs[1]!.job_id]: { state: '', roles: 'client', ip: '', direct_ips: '', direct_macs: '', entire_state: '' },
  });
  expect(c!.cluster).toBe(c!.jobs[0]!.job_id);
  const view = await store.readCluster(c!.cluster);
  expect(view.pending).toBe('start');
  // Its 8 h start deadline counts from admission (test/admission/admission-take.test.ts): none yet.
  expect(view.barriers[0]!.deadline).toBeUndefined();
  expect(view.cluster_timeout_ms).toBe(8 * 3_600_000);
});

test('a cluster whose node jobs cannot be enqueued leaves nothing behind (at once, or after the reaper when the queues cannot even be reached)', async () => {
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const broken = new Redis(lab.config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
  broken.disconnect();
  const queues = new QueueSet(broken, store.keys);
  const before = (await redis.keys(`${lab.config.keyPrefix}*`)).sort();
  await expect(submitClusters(store, queues, prepareClusters(JOB, 'job', { clusterDir: CLUSTER_DIR }))).rejects.toThrow(/could not enqueue the node jobs of cluster cs-1/);
  // Whether the node jobs were queued cannot be known without the queues: the cluster waits for the reaper.
  expect(await store.unfinishedSubmits(Number.MAX_SAFE_INTEGER)).toEqual(['cs-1']);
  const working = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  const kept = await new Housekeeping(store, working, createLogger('test', 'silent'), { submitGraceMs: 0 }).run();
  expect(kept).toEqual({ reaped: 1, completed: 0, deleted: 0 });
  const after = (await redis.keys(`${lab.config.keyPrefix}*`)).filter((k) => !k.endsWith('cs/retention/cursor') && !/cs-bull:[^:]+:meta$/.test(k)).sort();
  // (What is left besides: the reaper's HSCAN cursor and BullMQ's per-queue meta key, neither of them the cluster's.)
  // Only the id counter moved on (ids are never reused); the all-clusters log may exist, but holds nothing of this cluster.
  expect(after.filter((k) => !before.includes(k) && k !== `${lab.config.keyPrefix}cs/events`)).toEqual([`${lab.config.keyPrefix}cs/seq/job`]);
  expect(await redis.xlen(`${lab.config.keyPrefix}cs/events`)).toBe(0);
  expect(await redis.hlen(`${lab.config.keyPrefix}sched/cluster_state`)).toBe(0);
  expect(await redis.hlen(`${lab.config.keyPrefix}sched/id2cluster`)).toBe(0);
  await queues.close().catch(() => undefined);
});

test('a submit slower than --submit-grace: the reaper, seeing no node job queued, removes the cluster, and the submit then fails leaving nothing', async () => {
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  const before = (await redis.keys(`${lab.config.keyPrefix}*`)).sort();
  // The submit stalls between writing the cluster and queueing its node jobs, as a scheduler on a loaded machine does.
  let release = (): void => undefined;
  const stalled = new Promise<void>((resolve) => (release = resolve));
  const enqueue = queues.flows.addBulk.bind(queues.flows);
  queues.flows.addBulk = async (flows) => {
    await stalled;
    return enqueue(flows);
  };
  const submitting = submitClusters(store, queues, prepareClusters(JOB, 'job', { clusterDir: CLUSTER_DIR }));
  const [cid] = await eventually(
    async () => {
      const u = await store.unfinishedSubmits(Number.MAX_SAFE_INTEGER);
      return u.length > 0 ? u : undefined;
    },
    'the cluster to be written',
    10_000,
  );
  const reaper = new Housekeeping(store, queues, createLogger('test', 'silent'), { submitGraceMs: 0 });
  expect(await reaper.run()).toEqual({ reaped: 1, completed: 0, deleted: 0 });
  release();
  await expect(submitting).rejects.toThrow(`cluster ${cid} was removed as half-written while its submit was still queueing its node jobs`);
  // Its node jobs, queued after the reaper's removal, went too: no node can take a job of a cluster that does not exist.
  const q = res.add(new Queue(testboxQueueName('vm-2p16g-multi-node'), { connection: redis, prefix: store.keys.bullPrefix }), (x) => x.close());
  expect(await q.getJobCounts()).toEqual(expect.objectContaining({ waiting: 0, active: 0, delayed: 0, prioritized: 0 }));
  // (BullMQ's own keys of the queue stay, as after any job; none is the cluster's.)
  const after = (await redis.keys(`${lab.config.keyPrefix}*`)).filter((k) => !k.endsWith('cs/retention/cursor') && !/cs-bull:[^:]+:(meta|id|events|marker)$/.test(k)).sort();
  expect(after.filter((k) => !before.includes(k) && k !== `${lab.config.keyPrefix}cs/events`)).toEqual([`${lab.config.keyPrefix}cs/seq/job`]);
  expect(await store.unfinishedSubmits(Number.MAX_SAFE_INTEGER)).toEqual([]);
  expect(await reaper.run()).toEqual({ reaped: 0, completed: 0, deleted: 0 });
});
