import { Writable } from 'node:stream';
import pino from 'pino';
import { Subjects } from '../../src/bus/subjects';
import { decodeText } from '../../src/bus/connect';
import type { Report } from '../../src/bus/messages';
import type { ConnectionConfig } from '../../src/core/config';
import { enqueueReports } from '../../src/fold/batch';
import { QueueSet } from '../../src/queue/queues';
import { startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { startWorkers } from '../../workers';
import { attachWorkerMetrics } from '../../src/ops/metrics/worker-metrics';
import type { Redis } from 'ioredis';
import type { SubmittedCluster } from '../../src/cluster/submit';
import { ClusterStore } from '../../src/cluster/store';
import { Keys } from '../../src/core/keys';
import { nodesJob, submitInline } from '../helpers/cluster';
import { Resources, eventually, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';
import { TOKEN, startTestScheduler } from '../scheduler/scheduler-helpers';
import { note } from './summary';

/**
 * A fold's answers are published only once a replica holds the fold, as
 * every "accepted" is (docs/high-availability.md). A primary frozen past a
 * failover, when it wakes, runs the folds still in its socket buffers and
 * answers them before the sentinels make it a replica; its answers came
 * from state the new primary never had (test/ha/redis-freeze once saw
 * nodes answered "ready" that way, and their wait_ready never folded on the
 * new primary). Here the replica alone is frozen, so no replica holds
 * what the primary folds: the barrier must not be answered until one does.
 */
let servers: TestServers;
let replica: LocalServer;
const res = new Resources();

beforeAll(async () => {
  servers = await startTestServers();
  replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(servers.redis.port)] });
});
afterAll(async () => {
  process.kill(replica.pid, 'SIGCONT');
  await res.closeAll();
  await replica.dispose();
  await servers.stop();
});

/** A logger whose lines the test can read. */
function capturedLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines };
}

/**
 * `count` 2-node clusters written on the primary once its replica is in
 * sync, the connection settings (min replicas 1, 200 ms per WAIT unless
 * given), and what
 * each cluster's barrier subject hears from now on.
 */
async function clustersWithReplica(count: number, replicaTimeoutMs = 200): Promise<{ config: ConnectionConfig; admin: Redis; clusters: { cluster: SubmittedCluster; answers: string[] }[] }> {
  const config: ConnectionConfig = { ...servers.config(), minReplicas: 1, replicaTimeoutMs };
  const admin = res.redis(config);
  await eventually(async () => /connected_slaves:1\b/.test(await admin.info('replication')) && /state=online/.test(await admin.info('replication')), 'the replica to be in sync');
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  const clusters: { cluster: SubmittedCluster; answers: string[] }[] = [];
  for (let i = 0; i < count; i++) {
    const { job, spec } = nodesJob(2);
    const [cluster] = await submitInline(res, config, job, spec);
    if (!cluster) throw new Error('the submit created no cluster');
    const answers: string[] = [];
    nc.subscribe(subjects.barrier(cluster.cluster), { callback: (_e, m) => answers.push(decodeText(m.data)) });
    clusters.push({ cluster, answers });
  }
  await nc.flush();
  return { config, admin, clusters };
}

/** True once the replica has acknowledged everything the primary has written so far. */
async function replicaCaughtUp(admin: Redis): Promise<boolean> {
  const info = await admin.info('replication');
  const written = Number(/^master_repl_offset:(\d+)/m.exec(info)?.[1]);
  const acknowledged = Number(/^slave0:.*\boffset=(\d+)/m.exec(info)?.[1] ?? -1);
  return acknowledged >= written;
}

/** One such cluster. */
async function clusterWithReplica(replicaTimeoutMs?: number): Promise<{ config: ConnectionConfig; admin: Redis; cluster: SubmittedCluster; answers: string[] }> {
  const { config, admin, clusters } = await clustersWithReplica(1, replicaTimeoutMs);
  return { config, admin, ...clusters[0]! };
}

test('the last wait_start is folded while no replica acknowledges it: nobody is answered until a replica holds the fold', async () => {
  const { config, admin, cluster, answers } = await clusterWithReplica();
  const { logger, lines } = capturedLogger();
  const workers = res.add(await startWorkers(config, { logger }), (w) => w.close());

  const report = (i: number): Report => {
    const j = cluster.jobs[i]!;
    return { v: 1, id: `${j.job_id}.start-${i}`, cluster: j.cluster, job: j.job_id, state: 'wait_start', at: Date.now(), token: j.token };
  };
  // Node 1 at start, folded and replicated; then the replica freezes and node 2's wait_start, the last one, comes.
  const queues = res.add(new QueueSet(admin, workers.store.keys), (q) => q.close());
  await enqueueReports(queues, [report(0)]);
  await eventually(async () => (await workers.store.readCluster(cluster.cluster)).nodes.filter((n) => n.state === 'start').length === 1, 'node 1 folded');
  process.kill(replica.pid, 'SIGSTOP');
  await enqueueReports(queues, [report(1)]);
  // The primary folds it (the barrier is resolved there), no replica acknowledges it: the fold is tried again,
  // and nobody was answered.
  const retried = () => lines.some((l) => /fold failed because of Redis/.test(l) && /NOREPLICAS/.test(l));
  await eventually(() => retried() || answers.length > 0, 'a fold retried for want of a replica (or an answer)');
  expect(answers).toEqual([]);
  expect((await workers.store.readCluster(cluster.cluster)).barriers[0]?.result).toBe('start');

  process.kill(replica.pid, 'SIGCONT');
  await eventually(() => answers.length > 0, 'the start barrier answered once the replica holds the fold');
  expect(new Set(answers.map((a) => (JSON.parse(a) as { barrier: string; result: string }).result))).toEqual(new Set(['start']));
  note(
    'the last report of a barrier folded on a primary whose only replica is frozen (SIGSTOP), min replicas 1',
    'the fold was tried again for want of a replica (NOREPLICAS) and the barrier was not answered; answered start once the replica was continued',
  );
});

test("a barrier's deadline comes while no replica acknowledges: the timeout's abort is published only once a replica holds it", async () => {
  const { config, admin, cluster, answers } = await clusterWithReplica();
  const cid = cluster.cluster;
  const { logger, lines } = capturedLogger();
  const workers = res.add(await startWorkers(config, { logger, sweepEveryMs: 100 }), (w) => w.close());
  const failures: string[] = [];
  workers.events.on('sweepFailed', (err: unknown) => failures.push(String(err)));
  const metrics = res.add(attachWorkerMetrics(workers.events), (m) => Promise.resolve(m.detach()));

  process.kill(replica.pid, 'SIGSTOP');
  // The start deadline comes now: no node reported anything.
  await workers.store.setDeadline(cid, 'start', Date.now() - 1);
  // The sweep fires it on the primary (the cluster aborts there) and no replica acknowledges it: nobody is told.
  await eventually(() => failures.some((f) => /NOREPLICAS/.test(f)) || answers.length > 0, 'a sweep failed for want of a replica (or an answer)');
  expect(answers).toEqual([]);
  expect((await workers.store.readCluster(cid)).barriers[0]?.result).toBe('abort');
  expect(lines.filter((l) => /sweep failed/.test(l)).length).toBeGreaterThan(0);
  // What an operator alerts on: the failed sweeps counted.
  expect((await metrics.registry.getSingleMetric('cs_sweep_failures_total')?.get())?.values[0]?.value).toBeGreaterThan(0);

  process.kill(replica.pid, 'SIGCONT');
  await eventually(() => answers.length >= 3, 'the timeout abort published once the replica holds it');
  const told = answers.map((a) => JSON.parse(a) as { barrier: string; result: string; reason?: string });
  expect(told.map((t) => `${t.barrier} ${t.result}`).slice(0, 3)).toEqual(['start abort', 'ready abort', 'finish abort']);
  expect(told[0]?.reason).toMatch(/^barrier start timed out after .*; still missing: /);
  // Published, then taken off the deadlines: no later sweep publishes it again.
  await eventually(async () => (await admin.zscore(workers.store.keys.deadlines, `${cid} start`)) === null, 'the fired deadline taken off once published');
  const sweeps = workers.sweeper.sweeps;
  await eventually(() => workers.sweeper.sweeps >= sweeps + 3, 'three more sweeps');
  expect(answers.length).toBe(told.length);
  note(
    "a barrier's deadline comes on a primary whose only replica is frozen (SIGSTOP), min replicas 1",
    'the cluster aborted on the primary but no node was told while no replica held it (the sweep failed NOREPLICAS); the abort of every barrier was published once the replica was continued, and not again after',
  );
});

test('several deadlines come while no replica acknowledges: a sweep stops at the first, the rest wait for later sweeps, and each abort is told once a replica holds it', async () => {
  const { config, admin, clusters } = await clustersWithReplica(3);
  const ended = async () => (await Promise.all(clusters.map(async (c) => (await workers.store.readCluster(c.cluster.cluster)).final))).filter(Boolean).length;
  process.kill(replica.pid, 'SIGSTOP');
  const store = new ClusterStore(admin, { keyPrefix: config.keyPrefix });
  for (const { cluster } of clusters) await store.setDeadline(cluster.cluster, 'start', Date.now() - 1);
  // One sweep (the first period runs at once, the next a minute later) with all three due.
  let workers = res.add(await startWorkers(config, { logger: capturedLogger().logger, sweepEveryMs: 60_000 }), (w) => w.close());
  const failed = new Promise((resolve) => workers.events.once('sweepFailed', resolve));
  expect(String(await failed)).toMatch(/NOREPLICAS/);
  // It fired the first (the cluster aborted on the primary, nobody told) and left the others due: each would
  // have waited out its own WAIT timeout for the same missing replica.
  expect(await ended()).toBe(1);
  expect(clusters.map((c) => c.answers)).toEqual(clusters.map(() => []));
  await workers.close();

  process.kill(replica.pid, 'SIGCONT');
  // Sweeps every 100 ms from here (the minute-long lease of the first workers let go).
  await admin.del(store.keys.sweepLease);
  workers = res.add(await startWorkers(config, { logger: capturedLogger().logger, sweepEveryMs: 100 }), (w) => w.close());
  await eventually(() => clusters.every((c) => c.answers.length >= 3), 'every abort told once the replica holds it');
  expect(await ended()).toBe(3);
  const sweeps = workers.sweeper.sweeps;
  await eventually(() => workers.sweeper.sweeps >= sweeps + 2, 'two more sweeps');
  for (const { answers } of clusters) expect(answers.map((a) => (JSON.parse(a) as { barrier: string; result: string }).barrier)).toEqual(['start', 'ready', 'finish']);
  note(
    "three clusters' deadlines due at once on a primary whose only replica is frozen (SIGSTOP), min replicas 1",
    'the sweep fired the first (aborted on the primary, nobody told), failed NOREPLICAS and left the other two due instead of waiting out a WAIT timeout for each; once the replica was continued, each of the three was told its abort once',
  );
});

test("an operator's cancel and re-run while no replica acknowledges: nodes told at once, the operator answered 503 until a replica holds it", async () => {
  const { config, admin, cluster, answers } = await clusterWithReplica(2000);
  const cid = cluster.cluster;
  const { url } = await startTestScheduler(res, config);
  const call = async (method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> => {
    const r = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
    return { status: r.status, text: await r.text() };
  };
  const reruns = async () => Object.keys(await admin.hgetall(new Keys(config.keyPrefix).meta(cid))).filter((f) => f.startsWith('rerun:'));

  process.kill(replica.pid, 'SIGSTOP');
  // As `cluster-sync rerun` sends it: with a key of its own, the same on each of its retries.
  const rerun = await call('POST', `/clusters/${cid}/rerun`, { 'idempotency-key': 'rerun-once' });
  expect(rerun.status).toBe(503);
  expect(rerun.text).toMatch(/NOREPLICAS/);
  const cancel = await call('DELETE', `/clusters/${cid}?by=alice&reason=wrong+kernel`);
  expect(cancel.status).toBe(503);
  expect(cancel.text).toMatch(/NOREPLICAS/);
  // The nodes were told at once: the cluster has ended on the primary.
  await eventually(() => answers.length >= 3, 'the cancel published to the nodes');
  expect(answers.map((a) => (JSON.parse(a) as { result: string; reason: string }).reason)).toEqual(Array(3).fill('cancelled by alice: wrong kernel'));

  process.kill(replica.pid, 'SIGCONT');
  // Caught up, not only linked (a frozen replica's link stays "online"); each WAIT below then has 2 s to spare.
  await eventually(async () => replicaCaughtUp(admin), 'the replica to acknowledge all the primary wrote');
  // Sent again by alice, as the 503 says to: her cancel did end it, so she gets its answer. Someone else's is refused.
  const again = await call('DELETE', `/clusters/${cid}?by=alice`);
  expect(again.status).toBe(200);
  expect(JSON.parse(again.text)).toEqual({ cluster: cid, final: 'abort', end_cause: 'cancelled', reason: 'cancelled by alice: wrong kernel', barriers: ['start', 'ready', 'finish'] });
  const other = await call('DELETE', `/clusters/${cid}?by=bob`);
  expect(other.status).toBe(409);
  expect(other.text).toMatch(/ended already \(abort, cancelled\)/);
  // The re-run sent again with its key: the cluster the first made (it survived), not a second one.
  const made = await reruns();
  expect(made).toHaveLength(1);
  const rerunAgain = await call('POST', `/clusters/${cid}/rerun`, { 'idempotency-key': 'rerun-once' });
  expect(rerunAgain.status).toBe(200);
  expect((JSON.parse(rerunAgain.text) as { cluster: string }[])[0]?.cluster).toBe(made[0]?.slice('rerun:'.length));
  expect(await reruns()).toEqual(made);
  note(
    "an operator's cancel and re-run while the only Redis replica is frozen (SIGSTOP), min replicas 1",
    "the nodes were told of the cancel at once; the operator got 503 NOREPLICAS for both; once the replica was continued, the same operator's cancel sent again was answered 200 with the first's answer, another's 409 ended already (abort, cancelled), and the re-run sent again with its Idempotency-Key 200 with the cluster the first had made (no second re-run)",
  );
});
