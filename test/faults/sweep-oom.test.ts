import { ClusterStore } from '../../src/cluster/store';
import { createLogger } from '../../src/core/logger';
import { startWorkers } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';

/**
 * Issue 14, chaos seed 5 (`--faults redis-oom`): the sweep that fires
 * deadlines and finds dead nodes used to be a repeating BullMQ job. During a
 * Redis out-of-memory window its completion was refused, the job stayed
 * active, and no sweep ran until its 30 s lock lapsed: dead nodes and
 * deadlines waited. The sweep is now a timer in every worker process with a
 * lapsing lease, so the first period after the window sweeps again.
 */
const lab = useTestServers();
const { res } = lab;

test('after a Redis out-of-memory window the sweep runs again: a silent node is aborted, a due deadline fires', async () => {
  const workers = res.add(await startWorkers(lab.config, { sweepEveryMs: 100, logger: createLogger('test', 'silent') }), (w) => w.close());
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  let sweeps = 0;
  let failed = 0;
  workers.events.on('swept', () => sweeps++);
  workers.events.on('sweepFailed', () => failed++);
  const { job, spec } = nodesJob(2);
  const [silentCluster] = await submitInline(res, lab.config, job, spec, 100);
  const [lateCluster] = await submitInline(res, lab.config, job, spec, 100);
  await eventually(() => sweeps >= 2, 'two sweeps before the window');

  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.config('SET', 'maxmemory', '1');
  // Several periods meet the refusal (the lease's SET NX, or a write in the middle of a sweep).
  await eventually(() => failed >= 3, 'three sweep periods refused while Redis is out of memory');
  await redis.config('SET', 'maxmemory', '0');
  const after = sweeps;
  // Right after the window: a node whose heartbeats stopped long ago, and a deadline that has come.
  const silent = silentCluster!.jobs[1]!;
  const dead: string[] = [];
  workers.events.on('dead', (_c, j) => dead.push(j));
  await redis.zadd(store.keys.heartbeats, 1, `${silentCluster!.cluster} ${silent.job_id}`);
  await redis.zadd(store.keys.deadlines, 1, `${lateCluster!.cluster} start`);

  await eventually(() => sweeps > after, 'a sweep after the window');
  await eventually(() => dead.includes(silent.job_id), 'the silent node found dead after the window');
  await eventually(async () => (await store.readCluster(silentCluster!.cluster)).final === 'abort', "the silent node's cluster aborted");
  await eventually(async () => (await store.readCluster(lateCluster!.cluster)).barriers[0]?.result === 'abort', 'the due start deadline fired');
  const late = await store.readCluster(lateCluster!.cluster);
  expect(late.final).toBe('abort');
  expect(late.barriers[0]?.reason).toMatch(/deadline|timed out|timeout/i);
  note(
    'Redis out of memory (maxmemory 1 B) for several sweep periods, then memory back',
    `${failed} sweep periods refused; the next sweep aborted the silent node's cluster and fired the due start deadline`,
  );
});
