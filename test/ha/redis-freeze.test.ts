import { Redis } from 'ioredis';
import { ClusterStore } from '../../src/cluster/store';
import type { SubmittedCluster } from '../../src/cluster/submit';
import { ReplicationGuard } from '../../src/core/replication';
import { note } from '../faults/summary';
import { clientsFor, expectAllFinished, life, reportsDrained } from '../faults/workload';
import { nodesJob, submitInline } from '../helpers/cluster';
import { startTestHaSet } from '../helpers/ha';
import type { TestHaSet } from '../helpers/ha';
import { CliProcess, envFor } from '../helpers/processes';
import { Resources, eventually } from '../helpers/servers';

/**
 * The primary is frozen (SIGSTOP) past the sentinels' down-after, a replica
 * is promoted, then the old primary wakes up (SIGCONT) still believing it
 * is the primary. It is configured here WITHOUT min-replicas-to-write, so
 * only the WAIT before every "accepted" protects: a write it takes alone
 * after waking is never confirmed, and it is gone once the old primary
 * rejoins as a replica of the new one.
 */
jest.setTimeout(240_000);

let ha: TestHaSet;
const res = new Resources();
const procs: CliProcess[] = [];

beforeAll(async () => {
  ha = await startTestHaSet({ minReplicasToWrite: 0 });
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all(procs.map((p) => p.stop()));
  await ha?.stop();
});

test('SIGSTOP of the primary past down-after, then SIGCONT: it rejoins as a replica, and nothing it accepted alone was reported accepted', async () => {
  const CLUSTERS = 20;
  const NODES = 4;
  const config = ha.config();
  for (let i = 0; i < 2; i++) {
    const w = new CliProcess(['worker', '--lock-ms', '3000'], envFor(config, { CS_LOG_LEVEL: 'info' }));
    procs.push(w);
    await w.waitFor(/workers ready/);
  }
  const store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
  const clusters: SubmittedCluster[] = [];
  for (let i = 0; i < CLUSTERS; i++) {
    const { job, spec } = nodesJob(NODES);
    clusters.push(...(await submitInline(res, config, job, spec)));
  }
  const nc = await res.nats(config);
  const clients = await Promise.all(clusters.map((c) => clientsFor(res, nc, config, c)));
  const lives = clients.flatMap((nodes) => nodes.map((n, i) => life(n, i)));
  await eventually(async () => {
    const views = await Promise.all(clusters.map((c) => store.readCluster(c.cluster)));
    return views.flatMap((v) => v.nodes).filter((n) => n.state === 'ready' || n.state === 'finish').length >= (CLUSTERS * NODES) / 4;
  }, 'a quarter of the nodes past start');

  // A client that still talks to the old primary directly (a stale connection, a partitioned process):
  // connected before the freeze; what it sends meanwhile runs when the old primary wakes.
  const before = await ha.set.primary();
  const stale = res.add(new Redis(before.port, '127.0.0.1', { maxRetriesPerRequest: 0 }), (r) => Promise.resolve(r.disconnect()));
  await stale.ping();
  const t0 = Date.now();
  const { old, next } = await ha.failPrimary('SIGSTOP');
  const switchMs = Date.now() - t0;
  expect(old).toBe(before);
  const probe = `${config.keyPrefix}probe`;
  const guard = new ReplicationGuard({ minReplicas: 1, timeoutMs: 1000 });
  const mark = guard.mark(stale);
  const write = stale.set(probe, 'accepted-alone?');
  const confirmed = write.then(() => guard.waitForReplicas(stale, mark));
  process.kill(old.pid, 'SIGCONT');
  // Either the old primary took the write and no replica acknowledged it, or it was already a replica (READONLY).
  await expect(confirmed).rejects.toThrow(/NOREPLICAS 0 of 1|READONLY/);

  // The old primary rejoins as a replica of the new one, and the write it took alone is not on the new primary.
  const oldConn = res.add(new Redis(old.port, '127.0.0.1', { maxRetriesPerRequest: 0 }), (r) => Promise.resolve(r.disconnect()));
  await eventually(async () => {
    const info = await oldConn.info('replication').catch(() => '');
    return /role:slave/.test(info) && new RegExp(`master_port:${next.port}\\b`).test(info) && /master_link_status:up/.test(info);
  }, 'the old primary to follow the new one');
  expect(await store.redis.get(probe)).toBeNull();

  const told = await Promise.all(lives);
  expect(told.filter((r) => r.join(' ') !== 'start ready finish')).toEqual([]);
  await reportsDrained(store, 60_000);
  expect(await ha.set.primary()).toBe(next);
  const counts = await expectAllFinished(store, clusters, 4);
  expect(counts).toMatchObject({ resolutions: CLUSTERS * 3, folded: CLUSTERS * NODES * 4 });
  note(
    `Redis primary frozen (SIGSTOP) past down-after 1000 ms while ${CLUSTERS} clusters x ${NODES} nodes report, then SIGCONT`,
    `+switch-master after ${switchMs} ms; a write the woken old primary took alone was not confirmed (WAIT: 0 replicas) and is absent from the new primary; the old one rejoined as its replica; ${counts.folded} reports each folded once`,
  );
});
