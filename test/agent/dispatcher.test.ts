import { Worker } from 'bullmq';
import type { NatsConnection } from 'nats';
import { decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import { Keys } from '../../src/core/keys';
import { createLogger } from '../../src/core/logger';
import { ReplicationGuard } from '../../src/core/replication';
import { NodeClient } from '../../src/client/node-client';
import { testboxQueueName } from '../../src/queue/queues';
import { startWorkers } from '../../workers';
import { Dispatcher } from '../../workers/dispatcher';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { bullJob } from './agent-helpers';

const lab = useTestServers({ per: 'test' });
const { res } = lab;
let nc: NatsConnection;
let subjects: Subjects;
beforeEach(async () => {
  nc = await res.nats(lab.config);
  subjects = new Subjects(lab.config.subjectPrefix);
});

function dispatcher(lockMs: number, maxOpenQueues?: number): Dispatcher {
  const d = new Dispatcher(nc, subjects, res.redis(lab.config), new Keys(lab.config.keyPrefix), createLogger('test', 'silent'), { lockMs, maxOpenQueues });
  d.start();
  return res.add(d, (x) => x.close());
}

async function ask(subject: string, body: unknown): Promise<Record<string, unknown>> {
  const data = typeof body === 'string' ? new TextEncoder().encode(body) : encodeJson(body);
  return JSON.parse(decodeText((await nc.request(subject, data, { timeout: 3000 })).data)) as Record<string, unknown>;
}

test('take hands out each node job once, with its lock; an empty queue answers no job', async () => {
  dispatcher(30_000);
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const a = await ask(subjects.take('node'), { v: 1, agent: 'test' });
  const b = await ask(subjects.take('node'), { v: 1 });
  expect([a, b].map((r) => (r.job as { job_id: string }).job_id)).toEqual(cluster!.jobs.map((j) => j.job_id));
  expect(typeof a.lock).toBe('string');
  expect((a.job as { token: string }).token).toBe(cluster!.jobs[0]!.token);
  expect(await ask(subjects.take('node'), { v: 1 })).toEqual({ ok: true, job: null });
  expect(await ask(subjects.take('other-box'), { v: 1 })).toEqual({ ok: true, job: null });
});

test('done ends the job completed or failed with the reason; a wrong lock or an unknown job is refused, naming it', async () => {
  dispatcher(30_000);
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const [j1, j2] = cluster!.jobs;
  const a = await ask(subjects.take('node'), { v: 1 });
  const b = await ask(subjects.take('node'), { v: 1 });
  expect(await ask(subjects.done('node'), { v: 1, job: j2!.job_id, lock: 'not-the-lock', ok: true, outcome: 'passed' })).toEqual({
    ok: false,
    reason: expect.stringContaining(`could not end node job ${j2!.job_id}`),
  });
  expect(await ask(subjects.done('node'), { v: 1, job: j1!.job_id, lock: a.lock, ok: true, outcome: 'passed' })).toEqual({ ok: true });
  expect(await ask(subjects.done('node'), { v: 1, job: j2!.job_id, lock: b.lock, ok: false, outcome: 'test_failed', reason: 'test t exited with code 1' })).toEqual({ ok: true });
  expect(await bullJob(res, lab.config, 'node', j1!.job_id)).toMatchObject({ state: 'completed' });
  expect(await bullJob(res, lab.config, 'node', j2!.job_id)).toEqual({ state: 'failed', failedReason: 'test_failed: test t exited with code 1' });
  expect(await ask(subjects.done('node'), { v: 1, job: 'cs-999', lock: 'x', ok: true, outcome: 'passed' })).toEqual({ ok: false, reason: `no node job cs-999 in queue tb-node` });
});

test('bad take and done requests get a clear reason', async () => {
  dispatcher(30_000);
  expect(await ask(subjects.take('node'), 'not json')).toEqual({ ok: false, reason: 'request is not JSON' });
  expect(await ask(subjects.take('node'), { v: 2 })).toEqual({ ok: false, reason: expect.stringMatching(/^v: /) });
  expect(await ask(subjects.done('node'), { v: 1, job: 'cs-1', ok: true, outcome: 'passed' })).toEqual({ ok: false, reason: expect.stringMatching(/^lock: /) });
  expect(await ask(subjects.done('node'), { v: 1, job: 'cs-1', lock: 'l', ok: true, outcome: 'passed', extra: 1 })).toEqual({ ok: false, reason: 'message: unknown field extra' });
});

test("the holder extends the lock while the node runs; if the holder dies, the job is never handed out again, and the node's done still records how it ended", async () => {
  // Long enough that a busy machine never delays an extension (every LOCK / 2) past the lock itself.
  const LOCK = 2000;
  const holder = dispatcher(LOCK);
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const [j1, j2] = cluster!.jobs;
  const a = await ask(subjects.take('node'), { v: 1 });
  const b = await ask(subjects.take('node'), { v: 1 });
  await eventually(() => holder.extensions >= 8, 'eight lock extensions (two locks, four lock periods)');
  expect((await bullJob(res, lab.config, 'node', j1!.job_id)).state).toBe('active');
  expect((await bullJob(res, lab.config, 'node', j2!.job_id)).state).toBe('active');
  expect(await ask(subjects.done('node'), { v: 1, job: j1!.job_id, lock: a.lock, ok: true, outcome: 'passed' })).toEqual({ ok: true });

  // The holder's process dies: nobody extends j2's lock any more, and it lapses.
  await holder.close();
  dispatcher(LOCK);
  const redis = res.redis(lab.config);
  await eventually(async () => (await redis.exists(`${lab.config.keyPrefix}cs-bull:tb-node:${j2!.job_id}:lock`)) === 0, "j2's lock to lapse", 10_000);
  // An agent asking for work meanwhile never gets j2 again.
  expect(await ask(subjects.take('node'), { v: 1 })).toEqual({ ok: true, job: null });
  expect((await bullJob(res, lab.config, 'node', j2!.job_id)).state).toBe('active');
  // j2's node, still running, ends it through the other dispatcher: recorded as it really ended.
  expect(await ask(subjects.done('node'), { v: 1, job: j2!.job_id, lock: b.lock, ok: true, outcome: 'passed' })).toEqual({ ok: true });
  expect((await bullJob(res, lab.config, 'node', j2!.job_id)).state).toBe('completed');
  expect((await bullJob(res, lab.config, 'node', j1!.job_id)).state).toBe('completed');
  // Someone else's lock token is still refused.
  expect(await ask(subjects.done('node'), { v: 1, job: j2!.job_id, lock: 'not-the-lock', ok: false, outcome: 'test_failed' })).toMatchObject({ ok: false });
});

test('a job whose node never reports its end is failed once its cluster has ended and the grace period passed', async () => {
  const workers = res.add(await startWorkers(lab.config, { dispatcher: { endGraceMs: 200 } }), (w) => w.close());
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const [j1, j2] = cluster!.jobs;
  // j1's node takes its job and vanishes without a word; j2's node fails.
  expect(((await ask(subjects.take('node'), { v: 1 })).job as { job_id: string }).job_id).toBe(j1!.job_id);
  const other = res.add(new NodeClient(nc, subjects, { cluster: j2!.cluster, job: j2!.job_id, token: j2!.token }), (c) => c.close());
  await other.report('failed', { reason: 'broke' });
  await eventually(async () => (await bullJob(res, lab.config, 'node', j1!.job_id)).state === 'failed', 'the silent job to fail');
  expect((await bullJob(res, lab.config, 'node', j1!.job_id)).failedReason).toBe(`its cluster aborted 200 ms ago and the node never reported the job's end`);
  expect((await workers.store.readCluster(cluster!.cluster)).final).toBe('abort');
});

test('open testbox queues are bounded: past the bound the least recently used idle one is closed, one holding a job never', async () => {
  const d = dispatcher(30_000, 3);
  const spec = Array.from({ length: 6 }, (_, i) => `  box${i}--1: { roles: [r${i}] }`).join('\n');
  const job = `suite: t\ncluster: cs-test\n${Array.from({ length: 6 }, (_, i) => `if role r${i}:\n  p${i}:\n`).join('')}`;
  await submitInline(res, lab.config, job, `nodes:\n${spec}\n`);
  // box0's job is taken and held; the others are taken and ended at once.
  const held = await ask(subjects.take('box0'), { v: 1 });
  expect(held.job).not.toBeNull();
  for (let i = 1; i < 6; i++) {
    const t = await ask(subjects.take(`box${i}`), { v: 1 });
    const j = t.job as { job_id: string };
    expect(await ask(subjects.done(`box${i}`), { v: 1, job: j.job_id, lock: t.lock, ok: true, outcome: 'passed' })).toEqual({ ok: true });
    expect(d.openQueues.length).toBeLessThanOrEqual(3);
  }
  expect(d.openQueues).toContain('box0');
  expect(d.openQueues).toHaveLength(3);
  const h = held.job as { job_id: string };
  expect(await ask(subjects.done('box0'), { v: 1, job: h.job_id, lock: held.lock, ok: true, outcome: 'passed' })).toEqual({ ok: true });
});

test('Redis out of memory: a take is refused as retryable (the agent asks again), and the job is still there, whole, once memory returns', async () => {
  dispatcher(30_000);
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  // The queue is known to this dispatcher before Redis fills up.
  const first = await ask(subjects.take('node'), { v: 1 });
  expect((first.job as { job_id: string }).job_id).toBe(cluster!.jobs[0]!.job_id);
  const redis = res.redis(lab.config);
  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.config('SET', 'maxmemory', '1');
  let refused: Record<string, unknown>;
  try {
    refused = await ask(subjects.take('node'), { v: 1 });
  } finally {
    await redis.config('SET', 'maxmemory', '0');
  }
  expect(refused).toMatchObject({ ok: false, retryable: true, reason: expect.stringContaining('OOM') });
  // Nothing was half taken: the second job is handed out now, and nothing is left for a third take.
  const second = await ask(subjects.take('node'), { v: 1 });
  expect((second.job as { job_id: string }).job_id).toBe(cluster!.jobs[1]!.job_id);
  expect(await ask(subjects.take('node'), { v: 1 })).toEqual({ ok: true, job: null });
  expect(await bullJob(res, lab.config, 'node', cluster!.jobs[1]!.job_id)).toMatchObject({ state: 'active' });
});

test('Redis refusing writes when the node says done: the done is refused as retryable, the job stays held, and the done asked again ends it as the node said', async () => {
  // A failover or an out-of-memory Redis refused the end: dropped then, the job stayed active for ever
  // once its node gave up (a chaos --ha run). The lock outlives the refusal window; its extensions go on after.
  const holder = dispatcher(2000);
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const j1 = cluster!.jobs[0]!;
  const a = await ask(subjects.take('node'), { v: 1 });
  const done = { v: 1, job: j1.job_id, lock: a.lock, ok: false, outcome: 'test_failed', reason: 'test t exited with code 1' };
  // What a promoted replica answers until its replicas are back (min-replicas-to-write): NOREPLICAS for every write.
  const redis = res.redis(lab.config);
  await redis.config('SET', 'min-replicas-to-write', '1');
  let refused: Record<string, unknown>;
  try {
    refused = await ask(subjects.done('node'), done);
  } finally {
    await redis.config('SET', 'min-replicas-to-write', '0');
  }
  expect(refused).toMatchObject({ ok: false, retryable: true, reason: expect.stringContaining('NOREPLICAS') });
  expect(holder.holding).toEqual([j1.job_id]);
  expect(await bullJob(res, lab.config, 'node', j1.job_id)).toMatchObject({ state: 'active' });
  expect(await ask(subjects.done('node'), done)).toEqual({ ok: true });
  expect(await bullJob(res, lab.config, 'node', j1.job_id)).toEqual({ state: 'failed', failedReason: 'test_failed: test t exited with code 1' });
  expect(holder.holding).toEqual([]);
});

test('a take that fails after BullMQ moved the job to active puts it back, also when Redis refuses for longer than its lock', async () => {
  // A failover: the take's WAIT fails, and the promoted primary refuses writes (NOREPLICAS) for longer than the
  // 300 ms lock. Left active (node jobs have no stalled check), the job was never handed out and its cluster,
  // never admitted, never started nor ended (a chaos --ha run).
  const failing = new Dispatcher(nc, subjects, res.redis(lab.config), new Keys(lab.config.keyPrefix), createLogger('test', 'silent'), {
    lockMs: 300,
    replication: new ReplicationGuard({ minReplicas: 1, timeoutMs: 1000 }),
  });
  failing.start();
  res.add(failing, (x) => x.close());
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const j1 = cluster!.jobs[0]!;
  const redis = res.redis(lab.config);
  const taking = ask(subjects.take('node'), { v: 1 });
  // While the take waits for a replica that does not exist, Redis starts refusing writes.
  await eventually(async () => (await bullJob(res, lab.config, 'node', j1.job_id)).state === 'active', 'the take to move the job to active');
  await redis.config('SET', 'min-replicas-to-write', '1');
  try {
    // Refused either by the take's own WAIT (NOREPLICAS 0 of 1) or by Redis at the take's next write (NOREPLICAS Not enough
    // good replicas), whichever the take reached first: both are retryable, and neither hands the job out.
    expect(await taking).toMatchObject({ ok: false, retryable: true, reason: expect.stringMatching(/^NOREPLICAS /) });
    await new Promise((r) => setTimeout(r, 1000)); // the lock lapses meanwhile
    expect(await bullJob(res, lab.config, 'node', j1.job_id)).toMatchObject({ state: 'active' });
  } finally {
    await redis.config('SET', 'min-replicas-to-write', '0');
  }
  await eventually(async () => (await bullJob(res, lab.config, 'node', j1.job_id)).state === 'waiting', 'the job to be put back', 20_000);
  await failing.close();
  dispatcher(30_000);
  expect(((await ask(subjects.take('node'), { v: 1 })).job as { job_id: string }).job_id).toBe(j1.job_id);
});

test('a job moved to active by a dispatcher that died before recording its lock (or replying) is failed once its cluster ended and the grace passed', async () => {
  const workers = res.add(await startWorkers(lab.config, { dispatcher: { endGraceMs: 200 } }), (w) => w.close());
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const [j1, j2] = cluster!.jobs;
  // A dispatcher takes j1 (BullMQ moves it to active under its lock) and is killed at once: no lock record,
  // no reply, no lock extension. Its node never gets the job.
  const dead = new Worker(testboxQueueName('node'), null, { connection: res.redis(lab.config), prefix: new Keys(lab.config.keyPrefix).bullPrefix, lockDuration: 200 });
  const taken = await dead.getNextJob('dead-dispatcher-token');
  expect(taken?.id).toBe(j1!.job_id);
  await dead.close(true);
  expect(await res.redis(lab.config).hget(new Keys(lab.config.keyPrefix).nodeLocks(cluster!.cluster), j1!.job_id)).toBeNull();
  const other = res.add(new NodeClient(nc, subjects, { cluster: j2!.cluster, job: j2!.job_id, token: j2!.token }), (c) => c.close());
  await other.report('failed', { reason: 'broke' });
  await eventually(async () => (await bullJob(res, lab.config, 'node', j1!.job_id)).state === 'failed', 'the orphaned job to fail');
  // No take was recorded, so no node was handed it: the reason says so (as admission's reaper would), not that a node went quiet.
  expect((await bullJob(res, lab.config, 'node', j1!.job_id)).failedReason).toBe(`its cluster ${cluster!.cluster} aborted before any machine took this node job`);
  expect((await workers.store.readCluster(cluster!.cluster)).final).toBe('abort');
});

test('a held job whose cluster ended while the event was lost (NATS restarted) is failed by its holder once the grace passed', async () => {
  // A dispatcher alone: no worker publishes events, as if NATS had lost the cluster's end.
  dispatcher(200);
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const j1 = cluster!.jobs[0]!;
  expect(((await ask(subjects.take('node'), { v: 1 })).job as { job_id: string }).job_id).toBe(j1.job_id);
  // The cluster aborted a while ago (the fold recorded its end); its node never says done.
  const keys = new Keys(lab.config.keyPrefix);
  const redis = res.redis(lab.config);
  await redis.hset(keys.meta(cluster!.cluster), 'final', 'abort');
  await redis.zadd(keys.endedClusters, Date.now() - 120_000, cluster!.cluster);
  await eventually(async () => (await bullJob(res, lab.config, 'node', j1.job_id)).state === 'failed', 'the held job to fail');
  expect((await bullJob(res, lab.config, 'node', j1.job_id)).failedReason).toBe(`its cluster aborted 60000 ms ago and the node never reported the job's end`);
});

test('a take whose admission record is refused after BullMQ moved the job to active puts the job back (chaos seed 5, round 1)', async () => {
  // Redis ran out of memory between the take's lock record and admission's record of it: the take failed, the job
  // stayed active with nobody to run it, and its cluster, never admitted, waited with no start deadline for ever.
  // Made certain here: admission's waiting set is made a string, so its script fails (WRONGTYPE) where OOM did.
  const workers = res.add(await startWorkers(lab.config, { logger: createLogger('test', 'silent') }), (w) => w.close());
  const [cluster] = await submitInline(res, lab.config, nodesJob(2).job, nodesJob(2).spec);
  const j1 = cluster!.jobs[0]!;
  const redis = res.redis(lab.config);
  const waiting = workers.store.keys.admitWaiting;
  const kept = await redis.zrange(waiting, 0, -1, 'WITHSCORES');
  await redis.del(waiting);
  await redis.set(waiting, 'not a zset');
  try {
    expect(await ask(subjects.take('node'), { v: 1 })).toMatchObject({ ok: false, reason: expect.stringMatching(/WRONGTYPE/) });
    await eventually(async () => (await bullJob(res, lab.config, 'node', j1.job_id)).state === 'waiting', 'the job to be put back');
  } finally {
    await redis.del(waiting);
    // WITHSCORES gives member, score; ZADD takes score, member.
    for (let i = 0; i < kept.length; i += 2) await redis.zadd(waiting, kept[i + 1]!, kept[i]!);
  }
  expect(((await ask(subjects.take('node'), { v: 1 })).job as { job_id: string }).job_id).toBe(j1.job_id);
});
