import { Queue } from 'bullmq';
import { decodeText, encodeJson } from '../../src/bus/connect';
import type { ReportReply } from '../../src/bus/messages';
import { Subjects } from '../../src/bus/subjects';
import { ClusterStore } from '../../src/cluster/store';
import { REPORTS_QUEUE } from '../../src/queue/queues';
import { prepareClusters } from '../../src/cluster/prepare';
import { submitClusters } from '../../src/cluster/submit';
import { QueueSet } from '../../src/queue/queues';
import { nodesJob } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';
import { clientsFor, expectAllFinished, life, reportsDrained } from './workload';

/**
 * Issue 10 item 3: Redis runs out of memory (maxmemory, noeviction) while
 * nodes report. Before, a fold refused with OOM was retried five times by
 * BullMQ and then left in the failed set: the node had heard "accepted", its
 * report was lost, and its barrier never resolved. Now the bridge answers
 * "retry" while Redis refuses the add, a fold that Redis refuses is tried
 * again until memory returns, and the repeated error is logged once per
 * interval with a count.
 */
const lab = useTestServers({ workerProcess: ['--lock-ms', '2000'] });
const { res } = lab;

test('Redis out of memory while 40 clusters x 4 nodes report: nothing accepted is lost, every node gets its answer once memory returns', async () => {
  const CLUSTERS = 40;
  const NODES = 4;
  const redis = res.redis(lab.config);
  const store = new ClusterStore(redis, { keyPrefix: lab.config.keyPrefix });
  const { job, spec } = nodesJob(NODES);
  // One connection submits them all: forty connections' buffers would make used memory shrink for seconds afterwards.
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  const clusters = await submitClusters(store, queues, Array.from({ length: CLUSTERS }, () => prepareClusters(job, 'oom job', { inlineSpec: spec })).flat());
  const nc = await res.nats(lab.config);
  const nodes = (await Promise.all(clusters.map((c) => clientsFor(res, nc, lab.config, c)))).flat();
  // What maxmemory is compared with: used memory less the AOF and replication buffers.
  const usedMemory = async () => {
    const info = await redis.info('memory');
    const field = (f: string) => Number(new RegExp(`^${f}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    return field('used_memory') - field('mem_not_counted_for_evict');
  };
  await redis.config('SET', 'maxmemory-policy', 'noeviction');

  // While Redis refuses writes, the bridge says "retry", never "accepted".
  await redis.config('SET', 'maxmemory', '1');
  const j = clusters[0]!.jobs[0]!;
  const probe = { v: 1, id: `${j.job_id}.probe.oom`, cluster: j.cluster, job: j.job_id, state: 'write_state', at: Date.now(), token: j.token };
  const subjects = new Subjects(lab.config.subjectPrefix);
  const reply = JSON.parse(decodeText((await nc.request(subjects.report(j.cluster), encodeJson(probe), { timeout: 10_000 })).data)) as ReportReply;
  expect(reply).toMatchObject({ ok: false, code: 'UNAVAILABLE', retryable: true });
  expect(reply.ok ? '' : reply.reason).toContain('OOM');

  // A window of ~150 KB: the first reports fit, then Redis is full while the rest report. Used memory
  // also shrinks on its own (Redis trims the buffers of the clients that submitted), so the limit
  // follows it down until the worker meets the refusal.
  let limit = Infinity;
  const tighten = async () => {
    const want = (await usedMemory()) + 150_000;
    if (want < limit) {
      limit = want;
      await redis.config('SET', 'maxmemory', String(limit));
    }
  };
  await tighten();
  const seen = lab.worker.stdout.length + lab.worker.stderr.length;
  const lives = nodes.map((n, i) => life(n, i % NODES));
  // The window ends at an event: the worker meets Redis's refusal again while the nodes report (logged
  // at once for a fold, or in the bridge's count of repeats, once per interval, after the probe's line).
  const since = () => (lab.worker.stdout + lab.worker.stderr).slice(seen);
  await eventually(
    async () => {
      const met = since()
        .split('\n')
        .some((l) => /"msg":"(fold failed because of Redis|fold worker error|could not enqueue reports \(\d+ more)/.test(l) && l.includes('OOM'));
      if (met) return true;
      await tighten();
      return false;
    },
    'the worker to meet the OOM refusal while nodes report',
    40_000,
  );
  const fullAt = await usedMemory();
  await redis.config('SET', 'maxmemory', '0');

  const results = await Promise.all(lives);
  expect(results.every((r) => r.join(' ') === 'start ready finish')).toBe(true);
  await reportsDrained(store);
  const counts = await expectAllFinished(store, clusters, 4);
  const reports = res.add(new Queue(REPORTS_QUEUE, { connection: redis, prefix: store.keys.bullPrefix }), (q) => q.close());
  expect(await reports.getFailedCount()).toBe(0);
  await lab.worker.stop(); // its log is complete once it has exited
  const log = (lab.worker.stderr + lab.worker.stdout).split('\n');
  const errorLines = log.filter((l) => /"msg":"(fold failed because of Redis|could not enqueue reports|fold worker error)/.test(l));
  const repeats = errorLines.reduce((n, l) => n + Number(/"repeated":(\d+)/.exec(l)?.[1] ?? 0), 0);
  note(
    'Redis out of memory (maxmemory = used + 150 KB, noeviction) while 40 clusters x 4 nodes report',
    `a report sent while Redis refused writes was answered "retry" (${reply.ok ? '' : reply.reason.slice(0, 60)}...); used memory ${fullAt} B against a limit of ${limit} B, then maxmemory raised: all ${CLUSTERS * NODES} nodes answered start, ready, finish; ${counts.folded ?? 0} reports each folded once, one event per node move (${counts.moves}); 0 batches in the failed set; ${errorLines.length} error lines logged for ${errorLines.length + repeats} errors`,
  );
});
