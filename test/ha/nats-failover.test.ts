import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import { ClusterStore } from '../../src/cluster/store';
import { note } from '../faults/summary';
import { FAST_CLIENT, expectAllFinished, ipOf } from '../faults/workload';
import { nodesJob, submitInline } from '../helpers/cluster';
import { startTestHaSet } from '../helpers/ha';
import type { TestHaSet } from '../helpers/ha';
import { CliProcess, envFor } from '../helpers/processes';
import { Resources, eventually } from '../helpers/servers';

/**
 * One NATS server of the three dies (SIGKILL) while agents wait at a
 * barrier. Its clients (nodes and a worker) move to the other two by
 * themselves; the nodes re-send their open wait; the barrier is answered to
 * every node, and each move is folded once.
 */
let ha: TestHaSet;
const res = new Resources();
const procs: CliProcess[] = [];

beforeAll(async () => {
  ha = await startTestHaSet();
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all(procs.map((p) => p.stop()));
  await ha?.stop();
});

/** A connection that prefers server `first` of the cluster (so a known third of the nodes sit on the server that dies). */
async function natsPreferring(first: number): Promise<NatsConnection> {
  const urls = ha.set.nats.map((n) => n.url);
  const ordered = [...urls.slice(first), ...urls.slice(0, first)];
  const nc = await connect({ servers: ordered, noRandomize: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  return res.add(nc, (c) => c.close());
}

test('SIGKILL of one NATS server of three while nodes wait at a barrier: its clients move to the others and the barrier is answered', async () => {
  const NODES = 9;
  const config = ha.config();
  const { job, spec } = nodesJob(NODES);
  const [cluster] = await submitInline(res, config, job, spec);
  const store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
  const subjects = new Subjects(config.subjectPrefix);
  // Two workers, one of them on the server that dies.
  for (const first of [0, 1]) {
    const urls = ha.set.nats.map((n) => n.url);
    const w = new CliProcess(['worker'], envFor({ ...config, natsUrl: [...urls.slice(first), ...urls.slice(0, first)].join(',') }, { CS_LOG_LEVEL: 'info' }));
    procs.push(w);
    await w.waitFor(/workers ready/);
  }
  const notices: string[] = [];
  const conns = await Promise.all(cluster!.jobs.map((_, i) => natsPreferring(i % 3)));
  const nodes = await Promise.all(
    cluster!.jobs.map(async (j, i) => {
      const c = res.add(new NodeClient(conns[i]!, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }, { ...FAST_CLIENT, onNotice: (l) => notices.push(l) }), (x) => x.close());
      await c.start();
      return c;
    }),
  );
  await Promise.all(nodes.map((n, i) => n.report('write_state', { info: { ip: ipOf(i), node_roles: i === 0 ? 'server' : 'client' } })));
  expect((await Promise.all(nodes.map((n) => n.wait('wait_start')))).map((a) => a.result)).toEqual(nodes.map(() => 'start'));

  // All but the last node wait at ready; then server 0 dies.
  const early = nodes.slice(0, -1).map((n) => n.wait('wait_ready'));
  await eventually(async () => (await store.readCluster(cluster!.cluster)).nodes.filter((n) => n.state === 'ready').length === NODES - 1, 'all but one node at ready');
  const victim = ha.set.nats[0]!;
  const onVictim = conns.filter((c) => c.getServer() === victim.url.replace('nats://', ''));
  expect(onVictim.length).toBe(NODES / 3);
  // Each moved connection says so with a status event: wait on those, not on time.
  const moved = onVictim.map(async (c) => {
    for await (const s of c.status()) if (s.type === 'reconnect') return String(s.data);
    return '';
  });
  const t0 = Date.now();
  process.kill(victim.pid, 'SIGKILL');
  const movedTo = await Promise.all(moved);
  expect(movedTo.every((to) => to !== '' && !to.endsWith(`:${victim.port}`))).toBe(true);
  const late = nodes[NODES - 1]!.wait('wait_ready');
  const ready = await Promise.all([...early, late]);
  const readyMs = Date.now() - t0;
  expect(ready.map((a) => a.result)).toEqual(nodes.map(() => 'ready'));
  expect((await Promise.all(nodes.map((n) => n.wait('finished')))).map((a) => a.result)).toEqual(nodes.map(() => 'finish'));
  const counts = await expectAllFinished(store, [cluster!]);
  expect(counts).toMatchObject({ moves: NODES * 3, resolutions: 3 });
  expect(procs.every((p) => p.child.exitCode === null)).toBe(true);
  note(
    'one NATS server of three SIGKILLed while 8 of 9 nodes wait at ready',
    `its ${onVictim.length} node connections moved to ${[...new Set(movedTo)].join(', ')}; all ${NODES} answered ready ${readyMs} ms after the kill, then finish; ${counts.moves} move events, ${counts.resolutions} resolutions; both workers kept running`,
  );
  await victim.restart();
});
