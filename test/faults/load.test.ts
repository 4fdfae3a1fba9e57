import type { NatsConnection } from 'nats';
import { prepareClusters } from '../../src/cluster/prepare';
import { ClusterStore } from '../../src/cluster/store';
import { submitClusters } from '../../src/cluster/submit';
import { QueueSet } from '../../src/queue/queues';
import { nodesJob } from '../helpers/cluster';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';
import { clientsFor, expectAllFinished, reportsDrained, life } from './workload';

/**
 * Fault 6, load: many 8-node clusters at once through all three barriers,
 * one worker process, with zero lost or wrong resolutions. CI runs 100
 * clusters; `CS_LOAD_CLUSTERS=1000 npx jest test/faults/load` runs the full
 * size (docs/testing.md has that run's numbers), `CS_LOAD_APPENDFSYNC=always`
 * with Redis writing its append-only file.
 */
const CLUSTERS = Number(process.env.CS_LOAD_CLUSTERS ?? 100);
const NODES = 8;
/** Redis persistence for the run: `CS_LOAD_APPENDFSYNC=always|everysec` (default none, as other tests). */
const APPENDFSYNC = (process.env.CS_LOAD_APPENDFSYNC ?? 'no') as 'no' | 'everysec' | 'always';
/** Nodes share NATS connections, as a lab's machines would not; a few hundred per connection is plenty. */
const NODES_PER_CONNECTION = 500;

const lab = useTestServers({ redis: { appendfsync: APPENDFSYNC }, workerProcess: true });
const { res } = lab;

test(`${CLUSTERS} clusters of ${NODES} nodes at once through start, ready and finish: every answer right, nothing lost`, async () => {
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  const { job, spec } = nodesJob(NODES);
  const t0 = Date.now();
  const clusters = (await Promise.all(Array.from({ length: CLUSTERS }, () => submitClusters(store, queues, prepareClusters(job, 'load.yaml', { inlineSpec: spec }))))).flat();
  const submitMs = Date.now() - t0;
  const conns: NatsConnection[] = [];
  for (let i = 0; i < Math.ceil((CLUSTERS * NODES) / NODES_PER_CONNECTION); i++) conns.push(await res.nats(lab.config));
  const nodes = (
    await Promise.all(clusters.map((c, i) => clientsFor(res, conns[Math.floor((i * NODES) / NODES_PER_CONNECTION)]!, lab.config, c, { requestTimeoutMs: 10_000, giveUpAfterMs: 120_000 })))
  ).flat();

  const t1 = Date.now();
  const results = await Promise.all(nodes.map((n, i) => life(n, i % NODES)));
  const runMs = Date.now() - t1;
  const wrong = results.filter((r) => r.join(' ') !== 'start ready finish');
  expect(wrong).toEqual([]);
  await reportsDrained(store);
  const counts = await expectAllFinished(store, clusters, 4);
  expect(counts).toMatchObject({ moves: CLUSTERS * NODES * 3, resolutions: CLUSTERS * 3, folded: CLUSTERS * NODES * 4 });
  const reports = CLUSTERS * NODES * 4;
  note(
    `load: ${CLUSTERS} clusters x ${NODES} nodes at once, 1 worker process${APPENDFSYNC === 'no' ? '' : `, appendfsync ${APPENDFSYNC}`}`,
    `${CLUSTERS * 3} barriers resolved right, 0 lost or wrong; ${reports} reports folded in ${(runMs / 1000).toFixed(1)} s (${Math.round(reports / (runMs / 1000))} reports/s; submit ${(submitMs / 1000).toFixed(1)} s)`,
  );
});
