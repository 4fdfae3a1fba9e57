import { Queue } from 'bullmq';
import type { Report } from '../../src/bus/messages';
import { Subjects } from '../../src/bus/subjects';
import { TIMERS_QUEUE } from '../../src/queue/queues';
import { NodeClient } from '../../src/client/node-client';
import type { BarrierAnswer } from '../../src/client/node-client';
import type { SubmittedCluster } from '../../src/cluster/submit';
import { nodeClients, nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

const lab = useTestServers({ per: 'test', workers: true });
const { res } = lab;

function clients(cluster: SubmittedCluster): Promise<NodeClient[]> {
  return nodeClients(res, lab.config, cluster);
}

async function state(cluster: string): Promise<Record<string, string>> {
  const view = await lab.workers.store.readCluster(cluster);
  return Object.fromEntries(view.nodes.map((n) => [n.job, n.state]));
}

describe.each([2, 8])('a %i-node cluster', (n) => {
  test('passes start, ready and finish; every node gets every answer', async () => {
    const { job, spec } = nodesJob(n);
    const [cluster] = await submitInline(res, lab.config, job, spec);
    const nodes = await clients(cluster!);
    for (const [kind, barrier] of [
      ['wait_start', 'start'],
      ['wait_ready', 'ready'],
      ['finished', 'finish'],
    ] as const) {
      const answers = await Promise.all(nodes.map((c) => c.wait(kind)));
      expect(answers.map((a) => [a.barrier, a.result])).toEqual(nodes.map(() => [barrier, barrier]));
    }
    const view = await lab.workers.store.readCluster(cluster!.cluster);
    expect(view.final).toBe('finish');
    expect(view.nodes.every((x) => x.state === 'finish' && x.entire_state === 'finish')).toBe(true);
    expect(await lab.workers.store.openClusters()).not.toContain(cluster!.cluster);
    // No deadline job stays behind to fire hours later.
    const timers = res.add(new Queue(TIMERS_QUEUE, { connection: lab.workers.store.redis, prefix: lab.workers.store.keys.bullPrefix }), (q) => q.close());
    await eventually(async () => (await timers.getDelayed()).every((j) => (j.data as { cluster?: string }).cluster !== cluster!.cluster), 'no deadline job of the cluster left');
  });
});

test('a barrier waits for the last node, and answers no one early', async () => {
  const { job, spec } = nodesJob(3);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const [a, b, c] = await clients(cluster!);
  let early: BarrierAnswer | undefined;
  const pa = a!.wait('wait_start').then((x) => (early = x));
  await b!.wait('wait_start', { timeoutMs: 300 }).catch(() => undefined);
  expect(early).toBeUndefined();
  const expected = { [cluster!.jobs[0]!.job_id]: 'start', [cluster!.jobs[1]!.job_id]: 'start', [cluster!.jobs[2]!.job_id]: '' };
  await eventually(async () => JSON.stringify(await state(cluster!.cluster)) === JSON.stringify(expected), 'two nodes at start');
  expect(early).toBeUndefined();
  const last = await c!.wait('wait_start');
  expect(last.result).toBe('start');
  expect((await pa).result).toBe('start');
});

test('a node reporting failed aborts the nodes waiting at the next barrier, with its reason', async () => {
  const { job, spec } = nodesJob(3);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const nodes = await clients(cluster!);
  await Promise.all(nodes.map((c) => c.wait('wait_start')));
  const waiting = [nodes[0]!.wait('wait_ready'), nodes[1]!.wait('wait_ready')];
  await nodes[2]!.report('failed', { reason: 'iperf exited 1' });
  const answers = await Promise.all(waiting);
  for (const a of answers) {
    expect(a.result).toBe('abort');
    expect(a.reason).toContain(`${cluster!.jobs[2]!.job_id} (client) reported failed: iperf exited 1`);
  }
  // Abort is final: a later wait at any barrier answers abort.
  expect((await nodes[0]!.wait('wait_finish')).result).toBe('abort');
  const view = await lab.workers.store.readCluster(cluster!.cluster);
  expect(view.final).toBe('abort');
  expect(view.barriers.map((b) => b.result)).toEqual(['start', 'abort', 'abort']);
});

test('duplicate and out-of-order reports change nothing; a late wait gets the stored answer', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const [a, b] = await clients(cluster!);
  await Promise.all([a!.wait('wait_start'), b!.wait('wait_start')]);
  // Each report is acknowledged once durable, then folded: wait for its fold before looking.
  // Count folds per report kind of node a: heartbeats (and b's reports) are folded too, so a plain
  // count of folds could be reached by another report before this one (a flake seen in CI).
  const folded = new Map<string, number>();
  lab.workers.events.on('folded', (r: Report) => {
    if (r.job === a!.id.job) folded.set(r.state, (folded.get(r.state) ?? 0) + 1);
  });
  const foldedReport = async (kind: 'wait_ready' | 'wait_start') => {
    const target = (folded.get(kind) ?? 0) + 1;
    await a!.report(kind);
    await eventually(() => (folded.get(kind) ?? 0) >= target, `node a's ${kind} to be folded`);
  };
  await foldedReport('wait_ready');
  const before = await state(cluster!.cluster);
  expect(before[a!.id.job]).toBe('ready');
  await foldedReport('wait_start'); // late: states only move forward
  await foldedReport('wait_ready'); // repeated
  expect(await state(cluster!.cluster)).toEqual(before);
  // A fresh client of node b (as after a restart) asks again at start: the stored answer is pushed to it.
  const nc = await res.nats(lab.config);
  const again = res.add(new NodeClient(nc, new Subjects(lab.config.subjectPrefix), { cluster: cluster!.cluster, job: b!.id.job, token: b!.id.token }), (x) => x.close());
  expect((await again.wait('wait_start')).result).toBe('start');
  expect(await state(cluster!.cluster)).toEqual(before);
});

test('a report id sent twice is folded once', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const j = cluster!.jobs[0]!;
  const report = { v: 1, id: 'same-report-id-1', cluster: j.cluster, job: j.job_id, state: 'wait_start', at: Date.now(), token: j.token } as const;
  const first = await lab.workers.store.fold(report);
  const second = await lab.workers.store.fold(report);
  expect(first.ok && first.changed).toBe(true);
  expect(second.ok && second.dup).toBe(true);
  const events = await lab.workers.store.redis.xlen(lab.workers.store.keys.events(j.cluster));
  expect(events).toBe(2); // submitted + one report
});

test('a barrier that times out aborts with the names of the missing nodes', async () => {
  const { job, spec } = nodesJob(3, 'cluster_timeout: 1s');
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const [a, b, c] = await clients(cluster!);
  await Promise.all([a!.wait('wait_start'), b!.wait('wait_start'), c!.wait('wait_start')]);
  const waiting = [a!.wait('wait_ready'), b!.wait('wait_ready')];
  const answers = await Promise.all(waiting);
  for (const x of answers) {
    expect(x.result).toBe('abort');
    expect(x.reason).toMatch(/^barrier ready timed out after 1\.00s; still missing: /);
    expect(x.reason).toContain(`${cluster!.jobs[2]!.job_id} (client)`);
    expect(x.reason).not.toContain(cluster!.jobs[0]!.job_id);
  }
});

test('a timeout decided by a sweep that died before telling anyone is told by a later sweep, once', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const cid = cluster!.cluster;
  const store = lab.workers.store;
  // The nodes' subject, heard without sending a report (a node's wait would be answered by the fold itself).
  const told: { barrier: string; result: string; reason: string }[] = [];
  const nc = await res.nats(lab.config);
  nc.subscribe(new Subjects(lab.config.subjectPrefix).barrier(cid), { callback: (_e, m) => told.push(m.json<{ barrier: string; result: string; reason: string }>()) });
  await nc.flush();
  // What a sweep killed between timeout.lua and its publish leaves: the cluster aborted, nobody told,
  // the deadline due again when its pending time (60 s here) has passed.
  const decided = await store.timeout(cid, 'start', 60_000);
  if (!decided.ok) throw new Error(decided.reason);
  expect(decided.resolutions.map((r) => `${r.barrier} ${r.result}`)).toEqual(['start abort', 'ready abort', 'finish abort']);
  expect((await store.readCluster(cid)).final).toBe('abort');
  // The pending time passes: the workers' sweep tells the nodes the same abort, then drops the deadline.
  await store.redis.zadd(store.keys.deadlines, 0, `${cid} start`);
  await eventually(() => told.length >= 3, 'the abort told by a later sweep');
  expect(told.map((t) => [t.barrier, t.result, t.reason])).toEqual(decided.resolutions.map((r) => [r.barrier, 'abort', r.reason]));
  await eventually(async () => (await store.redis.zscore(store.keys.deadlines, `${cid} start`)) === null, 'the deadline dropped once told');
  expect(await store.redis.hexists(store.keys.meta(cid), 'timeout_outcome:start')).toBe(0);
  const sweeps = lab.workers.sweeper.sweeps;
  await eventually(() => lab.workers.sweeper.sweeps >= sweeps + 2, 'two more sweeps');
  expect(told).toHaveLength(3);
});

test('wait reports carry the info of write_state, so roles_ip after start has every ip whatever order the folds ran in', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const nodes = await clients(cluster!);
  const observer = await res.nats(lab.config);
  const seen: Record<string, unknown>[] = [];
  const sub = observer.subscribe(new Subjects(lab.config.subjectPrefix).report(cluster!.cluster), {
    callback: (_e, m) => seen.push(JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>),
  });
  await observer.flush();
  await Promise.all(nodes.map((n, i) => n.report('write_state', { info: { ip: `10.1.0.${i + 1}` } })));
  await Promise.all(nodes.map((n) => n.wait('wait_start')));
  sub.unsubscribe();
  const waits = seen.filter((r) => r.state === 'wait_start');
  expect(waits.map((r) => (r.info as { ip: string }).ip).sort()).toEqual(['10.1.0.1', '10.1.0.2']);
  expect(await nodes[0]!.rolesIp()).toEqual(['direct_server_ips=', 'server=10.1.0.1', 'direct_client_ips=', 'client=10.1.0.2']);
});

test('a failure reason reaches the other nodes without control characters', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const [a, b] = await clients(cluster!);
  const waiting = a!.wait('wait_start');
  await b!.report('failed', { reason: 'line one\nline two\u001b[31m red' });
  const answer = await waiting;
  expect(answer.result).toBe('abort');
  expect(answer.reason).toMatch(/reported failed: line one line two \[31m red$/);
});
