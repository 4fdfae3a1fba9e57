import { Queue, QueueEvents } from 'bullmq';
import type { Report } from '../../src/bus/messages';
import type { BatchJob } from '../../src/fold/batch';
import { ClusterStore } from '../../src/cluster/store';
import { REPORTS_QUEUE } from '../../src/queue/queues';
import { nodesJob, submitInline } from '../helpers/cluster';
import { CliProcess, envFor } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';
import { clientsFor, expectAllFinished, life, reportsDrained } from './workload';

/**
 * Fault 1: a worker process is SIGKILLed while it folds a batch of reports.
 * The batches it held are BullMQ jobs whose lock expires; a second worker's
 * stalled-job check puts them back and folds them again, and each cluster's
 * record of folded report ids makes a re-run of an already folded report
 * change nothing. Every barrier must still resolve, every node get every
 * answer, and each cluster's event log hold exactly one event per state change.
 */
const lab = useTestServers();
const { res } = lab;

/** 1 s locks: a dead worker's reports are taken over within about 2 s (default 30 s). */
function worker(level = 'info'): CliProcess {
  return lab.track(new CliProcess(['worker', '--lock-ms', '1000', '--concurrency', '8'], envFor(lab.config, { CS_LOG_LEVEL: level })));
}

test('a worker SIGKILLed while it folds a batch: the second worker re-folds the batches it held, nothing lost or folded twice', async () => {
  const CLUSTERS = 60;
  const NODES = 8;
  const w1 = worker();
  await w1.waitFor(/workers ready/);
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const reports = res.add(new Queue(REPORTS_QUEUE, { connection: redis, prefix: store.keys.bullPrefix }), (q) => q.close());
  const queueEvents = res.add(new QueueEvents(REPORTS_QUEUE, { connection: res.redis(lab.config), prefix: store.keys.bullPrefix }), (q) => q.close());
  await queueEvents.waitUntilReady();
  const stalled = new Set<string>();
  queueEvents.on('stalled', ({ jobId }) => stalled.add(jobId));

  const { job, spec } = nodesJob(NODES);
  const clusters = (await Promise.all(Array.from({ length: CLUSTERS }, () => submitInline(res, lab.config, job, spec)))).flat();
  const nc = await res.nats(lab.config);
  const nodes = (await Promise.all(clusters.map((c) => clientsFor(res, nc, lab.config, c)))).flat();
  const lives = nodes.map((n, i) => life(n, i % NODES));

  // Kill at an event, not a time: Redis holds every write (CLIENT PAUSE WRITE; reads go on), which
  // freezes worker 1 wherever it is, before or after a batch's fold and before BullMQ marks the batch
  // done. While frozen, its active batches are read; once it holds a batch of several reports, it is
  // killed, then Redis is let go. Otherwise Redis is let go and the look is repeated.
  const active = `${store.keys.bullPrefix}:${REPORTS_QUEUE}:active`;
  const jobKey = (id: string) => `${store.keys.bullPrefix}:${REPORTS_QUEUE}:${id}`;
  let heldJobs: { id: string; reports: Report[] }[] = [];
  await eventually(
    async () => {
      if ((await redis.xlen(store.keys.allEvents)) < CLUSTERS + 100) return false;
      await redis.call('CLIENT', 'PAUSE', '10000', 'WRITE');
      const ids = await redis.lrange(active, 0, -1);
      heldJobs = await Promise.all(ids.map(async (id) => ({ id, reports: (JSON.parse((await redis.hget(jobKey(id), 'data')) ?? '{"reports":[]}') as BatchJob).reports })));
      if (heldJobs.some((j) => j.reports.length >= 2)) return true;
      await redis.call('CLIENT', 'UNPAUSE');
      return false;
    },
    'worker 1 to hold a batch of several reports',
    20_000,
  );
  w1.kill('SIGKILL');
  await w1.exited;
  const held = heldJobs.map((j) => j.id);
  const heldReports = heldJobs.flatMap((j) => j.reports);
  // Reports of the held batches that worker 1 folded before it froze: their re-run must change nothing.
  const foldedBeforeKill = (await Promise.all(heldReports.map((r) => redis.hexists(store.keys.reports(r.cluster), r.id)))).filter((x) => x === 1).length;
  await redis.call('CLIENT', 'UNPAUSE');
  const backlog = await reports.getWaitingCount();
  const foldedAtKill = (await redis.xlen(store.keys.allEvents)) - CLUSTERS;
  expect(held.length).toBeGreaterThan(0);
  const killedAt = Date.now();
  const w2 = worker('debug');
  await w2.waitFor(/workers ready/);
  const results = await Promise.all(lives);
  const recoveredMs = Date.now() - killedAt;
  expect(results.every((r) => r.join(' ') === 'start ready finish')).toBe(true);
  // BullMQ saw every batch the dead worker held as stalled, and worker 2 ran it again. A held
  // write_state may come last: the nodes' waits carry the same info, so no barrier waited for it.
  await eventually(() => held.every((id) => stalled.has(id)), 'every held report to be reported stalled');
  await reportsDrained(store);
  const counts = await expectAllFinished(store, clusters, 4);
  expect(counts).toMatchObject({ moves: CLUSTERS * NODES * 3, resolutions: CLUSTERS * 3, folded: CLUSTERS * NODES * 4 });
  await w2.stop(); // its log is complete once it has exited
  const dups = (w2.stderr + w2.stdout).split('\n').filter((l) => l.includes('"msg":"folded"') && l.includes('"dup":true')).length;
  expect(await reports.getFailedCount()).toBe(0);
  // Every report of the held batches that was folded before the kill came back as a duplicate.
  expect(dups).toBeGreaterThanOrEqual(foldedBeforeKill);
  note(
    'worker process SIGKILLed mid-batch (60 clusters x 8 nodes, 2 workers)',
    `killed after ${foldedAtKill} events, holding ${held.length} batches of ${heldReports.length} reports (${foldedBeforeKill} of them already folded) with ${backlog} batches waiting; worker 2 re-ran all ${held.length} (stalled), ${dups} folds were duplicates; all ${CLUSTERS * 3} barriers resolved right; ${counts.folded} reports each folded once, one event per node move (${counts.moves}), 0 failed jobs; done ${recoveredMs} ms after the kill`,
  );
});
