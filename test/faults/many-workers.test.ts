import { Queue } from 'bullmq';
import { ClusterStore } from '../../src/cluster/store';
import type { ConnectionConfig } from '../../src/core/config';
import type { NodeClient } from '../../src/client/node-client';
import { REPORTS_QUEUE } from '../../src/queue/queues';
import { nodesJob, submitInline } from '../helpers/cluster';
import { CliProcess, envFor } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';
import { clientsFor } from './workload';

/**
 * Fault 4: one, two and four worker processes fold the reports of one
 * cluster at a time, all of its nodes reporting at once, round after round
 * (every other round one node fails after start). What ends up in Redis
 * (node states and info, barrier results and reasons, events per node)
 * must be the same whichever number of workers folded it.
 */
const lab = useTestServers();
const { res } = lab;

const ROUNDS = 10;
const NODES = 16;

/** Node i of round r: its address says which round wrote it. */
const ipFor = (r: number, i: number): string => `10.${r}.${i}.1`;

/**
 * Even rounds: every node waits at each barrier, so the last fold is done
 * when the finish answer comes. Odd rounds: node r fails after start and
 * the others send wait_ready at the same moment (accepted, then folded:
 * the round ends when the reports queue is empty).
 */
async function round(nodes: NodeClient[], r: number, reports: Queue): Promise<void> {
  const failing = r % 2 === 1 ? r % NODES : -1;
  await Promise.all(nodes.map((n, i) => n.report('write_state', { info: { ip: ipFor(r, i), node_roles: i === 0 ? 'server' : 'client' } })));
  await Promise.all(nodes.map((n) => n.wait('wait_start')));
  await Promise.all(
    nodes.map(async (n, i) => {
      if (i === failing) return n.report('failed', { reason: `round ${r}` });
      // A node's reports may be folded in any order by several workers; only one per node here keeps the events countable.
      if (failing >= 0) return n.report('wait_ready');
      expect((await n.wait('wait_ready')).result).toBe('ready');
      expect((await n.wait('finished')).result).toBe('finish');
    }),
  );
  await eventually(async () => {
    const c = await reports.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(c).every((v) => v === 0);
  }, 'the reports queue to drain');
}

/** What a cluster ended as, with job ids replaced by node numbers so that runs compare. */
async function outcome(store: ClusterStore, cid: string, jobIds: string[]): Promise<unknown> {
  const name = (s: string | undefined): string | undefined => s?.replace(/cs-\d+/g, (id) => (jobIds.includes(id) ? `node${jobIds.indexOf(id)}` : id));
  const view = await store.readCluster(cid);
  const events = (await store.redis.xrange(store.keys.events(cid), '-', '+')).map(([, f]) => JSON.parse(f[1]!) as { type: string; job?: string; report?: string });
  return {
    final: view.final,
    nodes: view.nodes.map((n) => ({ state: n.state, ip: n.ip, roles: n.roles, entire_state: n.entire_state })),
    barriers: view.barriers.map((b) => ({ barrier: b.barrier, result: b.result, reason: name(b.reason) })),
    // write_state is left out: a wait carries the same info, and with several workers it may be folded first.
    reportEvents: jobIds.map((j) => events.filter((e) => e.type === 'report' && e.job === j && e.report !== 'write_state').length),
    resolutionEvents: events.filter((e) => e.type === 'resolution').length,
  };
}

async function run(workers: number): Promise<{ outcomes: unknown[]; folds: number[]; ms: number }> {
  const config: ConnectionConfig = lab.servers.config();
  const mine = Array.from({ length: workers }, () => lab.track(new CliProcess(['worker', '--concurrency', '8'], envFor(config, { CS_LOG_LEVEL: 'debug' }))));
  await Promise.all(mine.map((w) => w.waitFor(/workers ready/)));
  const store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
  const nc = await res.nats(config);
  const reports = res.add(new Queue(REPORTS_QUEUE, { connection: store.redis, prefix: store.keys.bullPrefix }), (q) => q.close());
  const outcomes: unknown[] = [];
  const t0 = Date.now();
  for (let r = 0; r < ROUNDS; r++) {
    const { job, spec } = nodesJob(NODES);
    const [cluster] = await submitInline(res, config, job, spec);
    await round(await clientsFor(res, nc, config, cluster!), r, reports);
    outcomes.push(
      await outcome(
        store,
        cluster!.cluster,
        cluster!.jobs.map((j) => j.job_id),
      ),
    );
  }
  const ms = Date.now() - t0;
  // Counted once the processes have exited and their logs are all out.
  await Promise.all(mine.map((w) => w.stop()));
  const folds = mine.map((w) => (w.stderr + w.stdout).split('\n').filter((l) => l.includes('"msg":"folded"')).length);
  return { outcomes, folds, ms };
}

test('two and four worker processes folding one cluster at a time, ten rounds: the same end state as one worker', async () => {
  const one = await run(1);
  // Sanity of the reference run: odd rounds abort at ready with the failing node named, even rounds finish.
  expect(one.outcomes[1]).toMatchObject({ final: 'abort', barriers: [{ result: 'start' }, { result: 'abort', reason: 'node node1 (client) reported failed: round 1' }, { result: 'abort' }] });
  expect(one.outcomes[2]).toMatchObject({ final: 'finish', resolutionEvents: 3, reportEvents: Array(NODES).fill(3) });
  for (const n of [2, 4]) {
    const many = await run(n);
    expect(many.outcomes).toEqual(one.outcomes);
    expect(many.folds.reduce((a, b) => a + b, 0)).toBe(one.folds[0]);
    expect(many.folds.filter((f) => f > 0).length).toBeGreaterThanOrEqual(2);
    note(
      `${n} worker processes folding one 16-node cluster at a time, ${ROUNDS} rounds`,
      `end state of all ${ROUNDS} clusters equal to the 1-worker run (states, info, barrier results and reasons, move events per node); folds per process ${many.folds.join(' / ')} = ${one.folds[0]}; ${many.ms} ms (1 worker: ${one.ms} ms)`,
    );
  }
});
