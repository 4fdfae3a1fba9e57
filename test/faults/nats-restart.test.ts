import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import { ClusterStore } from '../../src/cluster/store';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';
import { FAST_CLIENT, expectAllFinished, ipOf } from './workload';

/**
 * Fault 2: the NATS server restarts while nodes wait at barriers. Each node
 * has its own connection, as real machines do. Nodes reconnect and re-send
 * their open wait; the worker process reconnects and its bridge takes
 * reports again; every node gets its answer, and nothing is folded twice.
 */
const lab = useTestServers({ workerProcess: true });
const { res } = lab;

test('NATS restarted twice during barrier waits: every node reconnects, re-sends, and gets every answer', async () => {
  const NODES = 8;
  const { job, spec } = nodesJob(NODES);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const store = new ClusterStore(res.redis(lab.config), { keyPrefix: lab.config.keyPrefix });
  const subjects = new Subjects(lab.config.subjectPrefix);
  const notices: string[] = [];
  const nodes = await Promise.all(
    cluster!.jobs.map(async (j) => {
      const nc = await res.nats(lab.config);
      const c = res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }, { ...FAST_CLIENT, onNotice: (l) => notices.push(l) }), (x) => x.close());
      await c.start();
      return c;
    }),
  );
  await Promise.all(nodes.map((n, i) => n.report('write_state', { info: { ip: ipOf(i), node_roles: i === 0 ? 'server' : 'client' } })));
  expect((await Promise.all(nodes.map((n) => n.wait('wait_start')))).map((a) => a.result)).toEqual(nodes.map(() => 'start'));

  // 1. Six nodes are waiting at ready (their reports folded) when NATS goes away; the last two report after it is back.
  const early = nodes.slice(0, 6).map((n) => n.wait('wait_ready'));
  await eventually(async () => (await store.readCluster(cluster!.cluster)).nodes.filter((n) => n.state === 'ready').length === 6, 'six nodes at ready');
  const t1 = Date.now();
  await lab.servers.nats.restart();
  const late = nodes.slice(6).map((n) => n.wait('wait_ready'));
  const ready = await Promise.all([...early, ...late]);
  const readyMs = Date.now() - t1;
  expect(ready.map((a) => a.result)).toEqual(nodes.map(() => 'ready'));
  const resent1 = notices.filter((l) => l.startsWith('reconnected to NATS; sending wait_ready again')).length;
  // The six early nodes at least (the two late ones may also be waiting when their connection comes back).
  expect(resent1).toBeGreaterThanOrEqual(6);

  // 2. Every node sends its last report and NATS restarts at once: some reports, or the resolution, are lost in flight.
  const t2 = Date.now();
  const finishing = nodes.map((n) => n.wait('finished'));
  await lab.servers.nats.restart();
  const finish = await Promise.all(finishing);
  const finishMs = Date.now() - t2;
  expect(finish.map((a) => a.result)).toEqual(nodes.map(() => 'finish'));

  // Re-sent waits have new ids, so folded reports are not counted here; each move still has exactly one event.
  const counts = await expectAllFinished(store, [cluster!]);
  expect(counts).toMatchObject({ moves: NODES * 3, resolutions: 3 });
  expect(lab.worker.child.exitCode).toBeNull();
  const retries = notices.filter((l) => /retrying|sending .* again/.test(l)).length;
  note(
    'NATS restarted while 6 of 8 nodes wait at ready',
    `${resent1} nodes re-sent wait_ready on reconnect (the 6 waiting, and late ones caught reconnecting); all 8 answered ready ${readyMs} ms after the restart began`,
  );
  note(
    'NATS restarted while all 8 nodes send their last report',
    `all 8 answered finish after ${finishMs} ms (${retries} retries and re-sends in all); 24 move events (one per node and barrier), 3 resolutions; worker process not restarted`,
  );
});
