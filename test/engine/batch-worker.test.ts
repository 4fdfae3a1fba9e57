import { Queue, QueueEvents } from 'bullmq';
import { encodeJson } from '../../src/bus/connect';
import type { Report } from '../../src/bus/messages';
import { Subjects } from '../../src/bus/subjects';
import { BATCH_JOB } from '../../src/fold/batch';
import { REPORTS_QUEUE } from '../../src/queue/queues';
import { nodeClients, nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Group commit through the real bridge and fold worker: reports that arrive
 * together share BullMQ jobs, a lone report is a job of its own, and a job
 * holding a malformed or refused report folds the rest and completes.
 */
const lab = useTestServers({ workers: { sweepEveryMs: 3_600_000 } });
const { res } = lab;
let queue: Queue;
let queueEvents: QueueEvents;
const completed: { id: string; reports: number; refused: number }[] = [];

beforeAll(async () => {
  const prefix = lab.workers.store.keys.bullPrefix;
  queue = res.add(new Queue(REPORTS_QUEUE, { connection: res.redis(lab.config), prefix }), (q) => q.close());
  queueEvents = res.add(new QueueEvents(REPORTS_QUEUE, { connection: res.redis(lab.config), prefix }), (q) => q.close());
  await queueEvents.waitUntilReady();
  queueEvents.on('completed', ({ jobId, returnvalue }) => {
    const v = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as { reports: number; refused: number };
    completed.push({ id: jobId, ...v });
  });
});

test('reports sent together share BullMQ jobs; a lone report is a job of its own', async () => {
  const { job, spec } = nodesJob(4);
  const clusters = (await Promise.all(Array.from({ length: 30 }, () => submitInline(res, lab.config, job, spec)))).flat();
  const nc = await res.nats(lab.config);
  const nodes = (await Promise.all(clusters.map((c) => nodeClients(res, lab.config, c, {}, nc)))).flat();
  completed.length = 0;
  const answers = await Promise.all(nodes.map((n) => n.wait('wait_start')));
  expect(answers.every((a) => a.result === 'start')).toBe(true);
  await eventually(() => completed.reduce((n, c) => n + c.reports, 0) >= nodes.length, 'every report to be folded');
  expect(completed.reduce((n, c) => n + c.reports, 0)).toBe(nodes.length);
  expect(completed.length).toBeLessThan(nodes.length);

  completed.length = 0;
  expect(await nodes[0]!.wait('wait_ready', { timeoutMs: 100 }).catch(() => 'waiting')).toBe('waiting');
  await eventually(() => completed.length === 1, 'the lone report to be folded');
  expect(completed[0]).toMatchObject({ reports: 1, refused: 0 });
});

test('a malformed or refused report inside a batch is counted and logged, the others fold, the job completes', async () => {
  const { job, spec } = nodesJob(2);
  const [c] = await submitInline(res, lab.config, job, spec);
  const [a, b] = c!.jobs;
  const good = (j: typeof a, id: string): Report => ({ v: 1, id, cluster: j!.cluster, job: j!.job_id, state: 'wait_start', at: Date.now(), token: j!.token });
  const rejected: string[] = [];
  const folded: string[] = [];
  lab.workers.events.on('rejected', (code) => rejected.push(code));
  lab.workers.events.on('folded', (r) => folded.push(r.id));
  const data = { reports: [good(a, 'batch-good-a'), { v: 1, id: 'x', state: 'dance' }, { ...good(b, 'batch-bad-token'), token: 'nope' }, good(b, 'batch-good-b')] };
  const injected = await queue.add(BATCH_JOB, data, { removeOnComplete: false });
  await eventually(async () => (await queue.getJobState(injected.id!)) === 'completed', 'the batch job to complete');
  expect(folded).toEqual(['batch-good-a', 'batch-good-b']);
  expect(rejected.sort()).toEqual(['BAD_TOKEN', 'INVALID']);
  const view = await lab.workers.store.readCluster(c!.cluster);
  expect(view.barriers[0]!.result).toBe('start');
  expect(await queue.getFailedCount()).toBe(0);
});

test("heartbeats are folded by the bridge, never queued: each moves its node's deadline; one of an ended node or with a wrong token changes nothing", async () => {
  const { job, spec } = nodesJob(2);
  const [c] = await submitInline(res, lab.config, job, spec, 60_000);
  const [a, b] = await nodeClients(res, lab.config, c!);
  const keys = lab.workers.store.keys;
  const member = (n: typeof a) => `${c!.cluster} ${n!.id.job}`;
  const jobsBefore = Number((await lab.workers.store.redis.get(`${keys.bullPrefix}:${REPORTS_QUEUE}:id`)) ?? 0);
  const folded: string[] = [];
  lab.workers.events.on('folded', (r) => r.state === 'heartbeat' && folded.push(r.job));
  const before = Number(await lab.workers.store.redis.zscore(keys.heartbeats, member(a)));
  await Promise.all(Array.from({ length: 20 }, () => a!.report('heartbeat')));
  // Accepted means folded: the deadline moved before the answers came (3 intervals from the fold's clock).
  const after = Number(await lab.workers.store.redis.zscore(keys.heartbeats, member(a)));
  expect(after).toBeGreaterThan(before);
  expect(after).toBeGreaterThanOrEqual(Date.now() - 60_000 + 3 * 60_000);
  expect(folded.filter((j) => j === a!.id.job)).toHaveLength(20);
  // Not one BullMQ job for the twenty.
  expect(Number((await lab.workers.store.redis.get(`${keys.bullPrefix}:${REPORTS_QUEUE}:id`)) ?? 0)).toBe(jobsBefore);

  // A wrong token is refused by the bridge, as any report.
  const nc = await res.nats(lab.config);
  const bad = await nc.request(
    new Subjects(lab.config.subjectPrefix).report(c!.cluster),
    encodeJson({ v: 1, id: 'heartbeat-bad-token', cluster: c!.cluster, job: b!.id.job, state: 'heartbeat', at: Date.now(), token: 'x'.repeat(32) }),
  );
  expect(bad.json()).toMatchObject({ ok: false, code: 'BAD_TOKEN' });

  // Once the node is finished it leaves the watch, and a late heartbeat does not put it back.
  await Promise.all([a!.wait('wait_start'), b!.wait('wait_start')]);
  await b!.report('heartbeat');
  await a!.report('finished');
  await eventually(async () => (await lab.workers.store.redis.zscore(keys.heartbeats, member(a))) === null, 'the finished node off the heartbeat watch');
  await a!.report('heartbeat');
  expect(await lab.workers.store.redis.zscore(keys.heartbeats, member(a))).toBeNull();
  expect(await lab.workers.store.redis.zscore(keys.heartbeats, member(b))).not.toBeNull();
});
