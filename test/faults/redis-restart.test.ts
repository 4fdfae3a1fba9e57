import { Queue } from 'bullmq';
import { ClusterStore } from '../../src/cluster/store';
import { testboxQueueName } from '../../src/queue/queues';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { diffSnapshots, snapshotKeys } from '../helpers/snapshot';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';
import { clientsFor, expectAllFinished, reportsDrained, ipOf } from './workload';

/**
 * Fault 3: the Redis server dies (SIGKILL, no chance to flush) and comes
 * back from its append-only file (`appendfsync always`). Cluster state, id
 * map, events and the testbox queues are all there afterwards; the worker
 * process, never restarted, reconnects by itself; reports sent while Redis
 * was down wait in the clients' retries and the workers' offline queues and
 * are folded once it is back.
 */
const lab = useTestServers({ redis: { appendfsync: 'always' }, workerProcess: true });
const { res } = lab;

/** SIGKILL, as a crash or the OOM killer would, then start it again on the same port and folder. */
async function crashAndRestartRedis(): Promise<void> {
  process.kill(lab.servers.redis.pid, 'SIGKILL');
  await lab.servers.redis.restart();
}

/** Everything but BullMQ's own moving parts (the repeating sweep job, the reports queue's log, lock keys). */
const DURABLE = { ignore: /cs-bull:cs-(timers|reports):|:stalled-check$|:lock$/ };

test('Redis SIGKILLed and restarted from its AOF: state and queues intact, the worker reconnects without a restart, every barrier resolves', async () => {
  const NODES = 4;
  const { job, spec } = nodesJob(NODES);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const testbox = res.add(new Queue(testboxQueueName(cluster!.jobs[0]!.queue), { connection: redis, prefix: store.keys.bullPrefix }), (q) => q.close());
  testbox.on('error', () => undefined); // connection errors while Redis is down are expected here
  const nc = await res.nats(lab.config);
  const notices: string[] = [];
  const nodes = await clientsFor(res, nc, lab.config, cluster!, { requestTimeoutMs: 1000, maxBackoffMs: 250, giveUpAfterMs: 60_000, onNotice: (l) => notices.push(l) });
  await Promise.all(nodes.map((n, i) => n.report('write_state', { info: { ip: ipOf(i), node_roles: i === 0 ? 'server' : 'client' } })));
  await Promise.all(nodes.map((n) => n.wait('wait_start')));
  const early = nodes.slice(0, 2).map((n) => n.wait('wait_ready'));
  await eventually(async () => (await store.readCluster(cluster!.cluster)).nodes.filter((n) => n.state === 'ready').length === 2, 'two nodes at ready');
  // A cluster driven by reports alone is marked admitted by the workers' next sweep: let that write land before the snapshot.
  await eventually(async () => (await redis.zscore(store.keys.admitWaiting, cluster!.cluster)) === null, 'the sweep to mark the report-driven cluster admitted');

  // 1. Crash with two nodes waiting: everything durable is back as it was.
  const before = await snapshotKeys(redis, lab.config.keyPrefix, DURABLE);
  const jobsBefore = (await testbox.getJobs(['waiting', 'prioritized'])).map((j) => j.id).sort();
  expect(jobsBefore).toHaveLength(NODES);
  const workerPid = lab.worker.pid;
  await crashAndRestartRedis();
  const after = await snapshotKeys(redis, lab.config.keyPrefix, DURABLE);
  expect(diffSnapshots(before, after)).toEqual([]);
  expect((await testbox.getJobs(['waiting', 'prioritized'])).map((j) => j.id).sort()).toEqual(jobsBefore);

  // The worker, not restarted, folds the last two nodes' reports and answers all four.
  const late = nodes.slice(2).map((n) => n.wait('wait_ready'));
  expect((await Promise.all([...early, ...late])).map((a) => a.result)).toEqual(nodes.map(() => 'ready'));

  // 2. Redis is down while every node sends its last report; it comes back only after the clients have had to retry.
  const t0 = Date.now();
  process.kill(lab.servers.redis.pid, 'SIGKILL');
  const finishing = nodes.map((n) => n.wait('finished'));
  await eventually(() => notices.some((l) => l.startsWith('finished: no reply within')), 'a client to retry its report while Redis is down');
  const downMs = Date.now() - t0;
  await lab.servers.redis.restart();
  expect((await Promise.all(finishing)).map((a) => a.result)).toEqual(nodes.map(() => 'finish'));
  const finishMs = Date.now() - t0;

  await reportsDrained(store);
  const counts = await expectAllFinished(store, [cluster!], 4);
  expect(counts).toMatchObject({ moves: NODES * 3, resolutions: 3, folded: NODES * 4 });
  expect(lab.worker.pid).toBe(workerPid);
  expect(lab.worker.child.exitCode).toBeNull();
  note(
    'Redis SIGKILLed with 2 of 4 nodes waiting (appendfsync always)',
    `restarted from its AOF: ${Object.keys(before).length} cluster and queue keys identical, ${jobsBefore.length} node jobs still queued; the same worker process (pid unchanged) answered all 4 ready`,
  );
  note(
    'Redis down (SIGKILL) while all 4 nodes send their last report',
    `down ${downMs} ms, ${notices.length} client retries; all 4 answered finish ${finishMs} ms after the crash; 16 reports each folded once, 12 move events, 3 resolutions`,
  );
});
