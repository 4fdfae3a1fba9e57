import { Subjects } from '../../src/bus/subjects';
import { ClusterStore } from '../../src/cluster/store';
import { createLogger } from '../../src/core/logger';
import { deadReportId } from '../../src/fold/batch';
import { QueueSet } from '../../src/queue/queues';
import { WorkerEvents } from '../../workers/events';
import { Publisher } from '../../src/bus/publisher';
import { startTimers } from '../../workers/timers';
import { note } from '../faults/summary';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Issue 10, item 11: the sweep used to tell of a dead node on every pass
 * until its abort was folded (`dead` twice on a loaded machine). Here no
 * fold worker runs at all, so the abort is never folded and every sweep
 * sees the silent node: it must still be told of, and queued, once.
 */
const lab = useTestServers();
const { res } = lab;

test('a dead node is told of once however many sweeps see it before its abort is folded', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec, 100);
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const queues = res.add(new QueueSet(res.redis(lab.config), store.keys), (q) => q.close());
  const nc = await res.nats(lab.config);
  const events = new WorkerEvents();
  const dead: string[] = [];
  events.on('dead', (_c, j) => dead.push(j));
  // The node's heartbeat deadline is long past, as after a power loss.
  const silent = cluster!.jobs[1]!;
  await redis.zadd(store.keys.heartbeats, 1, `${cluster!.cluster} ${silent.job_id}`);
  let sweeps = 0;
  events.on('swept', () => sweeps++);
  res.add(startTimers(store, queues, new Publisher(nc, new Subjects(lab.config.subjectPrefix)), events, createLogger('test', 'silent'), { sweepEveryMs: 50 }), (s) => s.close());
  await eventually(() => sweeps >= 10, 'ten sweeps');
  expect(dead).toEqual([silent.job_id]);
  const queued = await queues.reports.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
  // One batch job, holding the one abort report (its id is the workers' own dead-node id).
  expect(queued).toHaveLength(1);
  expect(JSON.stringify(queued[0]!.data)).toContain(JSON.stringify(deadReportId(silent.job_id)));
  note('a silent node seen by 10 sweeps before its abort is folded (no fold worker running)', `told of ${dead.length} time, 1 abort report queued`);
});
