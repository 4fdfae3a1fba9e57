import { Queue } from 'bullmq';
import { ClusterStore } from '../../src/cluster/store';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
import { REPORTS_QUEUE, testboxQueueName } from '../../src/queue/queues';
import { expectAllFinished, clientsFor, life, reportsDrained } from '../faults/workload';
import { note } from '../faults/summary';
import { nodesJob, submitInline } from '../helpers/cluster';
import { startTestHaSet } from '../helpers/ha';
import type { TestHaSet } from '../helpers/ha';
import { CliProcess, envFor } from '../helpers/processes';
import { Resources, eventually } from '../helpers/servers';

/**
 * Redis behind Sentinel loses its primary while work is in flight. Two
 * worker processes, never restarted, find the promoted replica through the
 * sentinels by themselves; every report a node was told "accepted" had
 * reached a replica first (WAIT), so the new primary holds it; folds whose
 * completion was lost are re-run, deduplicated by report id.
 */
jest.setTimeout(120_000);

let ha: TestHaSet;
const res = new Resources();
const procs: CliProcess[] = [];

beforeAll(async () => {
  ha = await startTestHaSet();
});
afterEach(async () => {
  await res.closeAll();
  await Promise.all(procs.splice(0).map((p) => p.stop()));
});
afterAll(async () => {
  await ha?.stop();
});

async function workers(config: ConnectionConfig, n: number): Promise<void> {
  const started = Array.from({ length: n }, () => new CliProcess(['worker', '--lock-ms', '3000'], envFor(config, { CS_LOG_LEVEL: 'info' })));
  procs.push(...started);
  await Promise.all(started.map((w) => w.waitFor(/workers ready/)));
}

/** Jobs in any failed set: the reports queue and every testbox queue of the clusters. */
async function failedJobs(store: ClusterStore, clusters: SubmittedCluster[]): Promise<number> {
  const names = new Set([REPORTS_QUEUE, ...clusters.flatMap((c) => c.jobs.map((j) => testboxQueueName(j.queue)))]);
  let failed = 0;
  for (const name of names) {
    const q = new Queue(name, { connection: store.redis, prefix: store.keys.bullPrefix });
    failed += await q.getFailedCount();
    await q.close();
  }
  return failed;
}

test('SIGKILL of the Redis primary while 40 clusters x 4 nodes report: every node answered, every report folded once, nothing failed', async () => {
  const CLUSTERS = 40;
  const NODES = 4;
  const config = ha.config();
  await workers(config, 2);
  const store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
  const clusters: SubmittedCluster[] = [];
  for (let i = 0; i < CLUSTERS; i++) {
    const { job, spec } = nodesJob(NODES);
    clusters.push(...(await submitInline(res, config, job, spec)));
  }
  const nc = await res.nats(config);
  const clients = await Promise.all(clusters.map((c) => clientsFor(res, nc, config, c)));
  const lives = clients.flatMap((nodes) => nodes.map((n, i) => life(n, i)));
  // The primary dies once a quarter of the nodes have passed the start barrier: reports are in flight everywhere.
  await eventually(async () => {
    const views = await Promise.all(clusters.map((c) => store.readCluster(c.cluster)));
    return views.flatMap((v) => v.nodes).filter((n) => n.state === 'ready' || n.state === 'finish').length >= (CLUSTERS * NODES) / 4;
  }, 'a quarter of the nodes past start');
  const t0 = Date.now();
  const { old, next } = await ha.failPrimary('SIGKILL');
  const switchMs = Date.now() - t0;
  const told = await Promise.all(lives);
  expect(told.filter((r) => r.join(' ') !== 'start ready finish')).toEqual([]);
  await reportsDrained(store, 60_000);
  // Read on the new primary: what every node was told is there, each report folded exactly once.
  expect(await ha.set.primary()).toBe(next);
  const counts = await expectAllFinished(store, clusters, 4);
  expect(counts).toMatchObject({ moves: CLUSTERS * NODES * 3, resolutions: CLUSTERS * 3, folded: CLUSTERS * NODES * 4 });
  expect(await failedJobs(store, clusters)).toBe(0);
  note(
    `Redis primary SIGKILLed (Sentinel, 2 replicas, WAIT 1) while ${CLUSTERS} clusters x ${NODES} nodes report`,
    `+switch-master ${switchMs} ms after the kill (${old.port} -> ${next.port}); all ${CLUSTERS * NODES} nodes answered start/ready/finish; ${counts.folded} reports each folded once; 0 failed jobs`,
  );
  // The dead primary comes back as a replica of the new one: the set is whole again for the next test.
  await old.restart();
  await ha.set.ready();
});
