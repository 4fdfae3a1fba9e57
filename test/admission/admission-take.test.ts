import type { NatsConnection } from 'nats';
import { decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import type { TakeReply, TakeRequest } from '../../src/bus/queue-messages';
import { bullJob } from '../agent/agent-helpers';
import { explainWaiting } from '../../src/admission/explain';
import { nodeClients, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/** Admission through the take subject, as agents use it; machines are played by the test with real NATS requests. */

const lab = useTestServers({ per: 'test', workers: { sweepEveryMs: 100 } });
const { res } = lab;
let nc: NatsConnection;

beforeEach(async () => {
  nc = await res.nats(lab.config);
});

type Got = Extract<TakeReply, { job: object }>;
async function take(testbox: string, machine: string, extra: Partial<TakeRequest> = {}): Promise<TakeReply> {
  const req: TakeRequest = { v: 1, machine, session: `s-${machine}`, lease_ms: 60_000, ...extra };
  const msg = await nc.request(new Subjects(lab.config.subjectPrefix).take(testbox), encodeJson(req), { timeout: 10_000 });
  return JSON.parse(decodeText(msg.data)) as TakeReply;
}
const jobOf = (r: TakeReply): string | null => (r.ok && r.job ? r.job.job_id : null);

const PAIR = 'nodes:\n  ta--1: { roles: [server] }\n  tb--1: { roles: [client] }\n';
const ONE = 'nodes:\n  ta--1: { roles: [server] }\n';
const job = (extra = ''): string => `suite: t\ncluster: cs-test\n${extra}\nif role server:\n  srv:\nif role client:\n  cli:\n`;

test('a two-node cluster is not handed out while its partner testbox has no machine; a one-node job behind it is (backfill)', async () => {
  const [x] = await submitInline(res, lab.config, job(), PAIR);
  const [s] = await submitInline(res, lab.config, job(), ONE);
  // Machine a1 asks: X cannot be admitted (no machine of tb), so a1 runs S instead of idling in X.
  expect(jobOf(await take('ta', 'a1'))).toBe(s!.jobs[0]!.job_id);
  // No partial admission: X's node job of ta is still waiting in its queue, assigned to nobody.
  expect((await bullJob(res, lab.config, 'ta', x!.jobs[0]!.job_id)).state).toBe('waiting');
  // b1 and a2 arrive: X is admitted whole, each node job to a named machine.
  expect(jobOf(await take('tb', 'b1'))).toBeNull();
  const a2 = await take('ta', 'a2');
  expect(jobOf(a2)).toBe(x!.jobs[0]!.job_id);
  expect(jobOf(await take('tb', 'b1'))).toBe(x!.jobs[1]!.job_id);
  // A retried take (its answer was lost) gets the same job and lock back; another machine gets nothing of it.
  const again = await take('ta', 'a2');
  expect(jobOf(again)).toBe(x!.jobs[0]!.job_id);
  expect((again as Got).lock).toBe((a2 as Got).lock);
  expect(jobOf(await take('ta', 'a3'))).toBeNull();
  const machines = await lab.workers.admission.machines();
  expect(machines.map((m) => [m.id, m.state, m.job ?? null])).toEqual([
    ['a1', 'running', s!.jobs[0]!.job_id],
    ['a2', 'running', x!.jobs[0]!.job_id],
    ['a3', 'idle', null],
    ['b1', 'running', x!.jobs[1]!.job_id],
  ]);
});

test("a machine that says it ran its job is idle again; a new agent process on a machine does not get the old process's job", async () => {
  const [s1] = await submitInline(res, lab.config, job(), ONE);
  const first = await take('ta', 'a1', { session: 'p1', lease_ms: 1000 });
  expect(jobOf(first)).toBe(s1!.jobs[0]!.job_id);
  // A new agent process while the old one's lease lives is refused (it may be a second agent with the same id) ...
  expect(await take('ta', 'a1', { session: 'p2' })).toEqual({ ok: false, retryable: true, in_use: true, reason: expect.stringMatching(/^machine id a1 is in use by another agent/) });
  // ... and once that lease lapsed, it is the machine again, without the old process's job.
  const seen = (await lab.workers.admission.machines())[0]!.seen;
  await eventually(async () => (await lab.workers.store.now()) > seen + 1100, "p1's lease to lapse");
  expect(jobOf(await take('ta', 'a1', { session: 'p2' }))).toBeNull();
  const [s2] = await submitInline(res, lab.config, job(), ONE);
  expect(jobOf(await take('ta', 'a1', { session: 'p2', last: '' }))).toBe(s2!.jobs[0]!.job_id);
  expect(jobOf(await take('ta', 'a1', { session: 'p2', last: s2!.jobs[0]!.job_id }))).toBeNull();
  expect((await lab.workers.admission.machines())[0]?.state).toBe('idle');
});

test('a cluster not admitted within its admit_timeout ends not_admitted, naming what it waited for; its node jobs are failed, never handed out', async () => {
  const [y] = await submitInline(res, lab.config, job('admit_timeout: 1s'), PAIR);
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
  const cid = y!.cluster;
  const meta = res.redis(lab.config);
  await eventually(async () => (await meta.hget(lab.workers.store.keys.meta(cid), 'final')) === 'abort', 'the cluster to end');
  const view = await lab.workers.store.readCluster(cid);
  expect(view.barriers[0]!.reason).toMatch(/^not admitted within 1(\.00)?s: waited for testbox ta: 1 idle \(needs 1\); testbox tb: no live machine for \S+ \(needs 1\)$/);
  expect(await meta.hget(lab.workers.store.keys.meta(cid), 'end_cause')).toBe('not_admitted');
  for (const [tb, j] of [
    ['ta', y!.jobs[0]!],
    ['tb', y!.jobs[1]!],
  ] as const) {
    await eventually(async () => (await bullJob(res, lab.config, tb, j.job_id)).state === 'failed', `node job ${j.job_id} to fail`);
    expect((await bullJob(res, lab.config, tb, j.job_id)).failedReason).toMatch(new RegExp(`^its cluster ${cid} ended \\(not admitted within 1`));
  }
  expect(jobOf(await take('tb', 'b1'))).toBeNull();
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
});

test('a waiting cluster reserves idle machines after --reserve-after only while every testbox it needs has a live machine', async () => {
  await lab.workers.close();
  const { startWorkers } = await import('../../workers');
  const w = res.add(await startWorkers(lab.config, { sweepEveryMs: 100, admission: { reserveAfterMs: 1 } }), (x) => x.close());
  const state = async (id: string): Promise<unknown> => (await w.admission.machines()).find((m) => m.id === id);
  // b1 is busy with a one-node job of its testbox.
  const [s2] = await submitInline(res, lab.config, job(), 'nodes:\n  tb--1: { roles: [client] }\n');
  expect(jobOf(await take('tb', 'b1'))).toBe(s2!.jobs[0]!.job_id);
  // Y needs tc, which has no live machine: it reserves nothing. X needs tb, whose machine lives (busy): it holds a1.
  const [y] = await submitInline(res, lab.config, job(), 'nodes:\n  ta--1: { roles: [server] }\n  tc--1: { roles: [client] }\n');
  const [x] = await submitInline(res, lab.config, job(), PAIR);
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
  expect(await state('a1')).toMatchObject({ state: 'reserved', reserved_for: x!.cluster });
  // A reserved machine takes no other work.
  await submitInline(res, lab.config, job(), ONE);
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
  // b1 ends S2 and asks again: X is admitted on a1 and b1 at once; Y still waits.
  expect(jobOf(await take('tb', 'b1', { last: s2!.jobs[0]!.job_id }))).toBe(x!.jobs[1]!.job_id);
  expect(jobOf(await take('ta', 'a1'))).toBe(x!.jobs[0]!.job_id);
  expect(await w.admission.waiting()).toContain(y!.cluster);
});

test("a reservation is released in the same call that leaves its cluster's testbox without a live machine: a leave, or a renew that finds a lease lapsed", async () => {
  await lab.workers.close();
  const { startWorkers } = await import('../../workers');
  // No sweep pass during the test: only the calls below act.
  const w = res.add(await startWorkers(lab.config, { sweepEveryMs: 600_000, admission: { reserveAfterMs: 1 } }), (x) => x.close());
  const state = async (id: string): Promise<unknown> => (await w.admission.machines()).find((m) => m.id === id);
  const busyOn = async (tb: string, machine: string, leaseMs: number): Promise<string> => {
    const [s] = await submitInline(res, lab.config, job(), `nodes:\n  ${tb}--1: { roles: [client] }\n`);
    expect(jobOf(await take(tb, machine, { lease_ms: leaseMs }))).toBe(s!.jobs[0]!.job_id);
    return s!.jobs[0]!.job_id;
  };
  // b1 is busy; X (ta + tb) reserves a1.
  const s2 = await busyOn('tb', 'b1', 60_000);
  const [x] = await submitInline(res, lab.config, job(), PAIR);
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
  expect(await state('a1')).toMatchObject({ state: 'reserved', reserved_for: x!.cluster });
  // b1, tb's only machine, leaves: a1 is idle when the leave is answered.
  expect(await take('tb', 'b1', { leave: true, last: s2 })).toEqual({ ok: true, job: null });
  expect(await state('a1')).toMatchObject({ state: 'idle' });
  // X waits for tb, which has no live machine now. d1 is busy (1 s lease); X2 (ta + td) reserves a1.
  // d1's lease lapses; the first call after that is c1's renew (another testbox): it finds the lapse and
  // releases a1 in the same call.
  const s4 = await busyOn('td', 'd1', 1000);
  const c1 = await busyOn('tc', 'c1', 60_000);
  const [x2] = await submitInline(res, lab.config, job(), 'nodes:\n  ta--1: { roles: [server] }\n  td--1: { roles: [client] }\n');
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
  expect(await state('a1')).toMatchObject({ state: 'reserved', reserved_for: x2!.cluster });
  await eventually(async () => (await w.store.now()) > ((await state('d1')) as { seen: number }).seen + 1100, "d1's lease to lapse");
  expect(await take('tc', 'c1', { renew: true, last: c1 })).toEqual({ ok: true, job: null });
  expect(await state('d1')).toMatchObject({ state: 'gone', job: s4 });
  expect(await state('a1')).toMatchObject({ state: 'idle' });
});

test('barrier deadlines count from admission: a cluster that waited longer than its cluster_timeout still has all of it at start', async () => {
  const [x] = await submitInline(res, lab.config, job('cluster_timeout: 2s'), PAIR);
  const cid = x!.cluster;
  const redis = res.redis(lab.config);
  const meta = lab.workers.store.keys.meta(cid);
  // Before admission the start barrier has no deadline; wait (on Redis's clock) past the cluster_timeout.
  expect(await redis.hget(meta, 'deadline:start')).toBeNull();
  const created = Number(await redis.hget(meta, 'created'));
  await eventually(async () => (await lab.workers.store.now()) > created + 3000 && true, 'Redis time to pass the cluster_timeout');
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
  expect(jobOf(await take('tb', 'b1'))).toBe(x!.jobs[1]!.job_id);
  expect(jobOf(await take('ta', 'a1'))).toBe(x!.jobs[0]!.job_id);
  const [admitted, deadline] = (await redis.hmget(meta, 'admitted', 'deadline:start')).map(Number);
  expect(deadline! - admitted!).toBe(2000);
  expect((await lab.workers.store.readCluster(cid)).final).toBeUndefined();
  // Both nodes reach start within the deadline counted from admission: start resolves, not abort.
  const clients = await nodeClients(res, lab.config, x!);
  const answers = await Promise.all(clients.map((c) => c.wait('wait_start')));
  expect(answers.map((a) => a.result)).toEqual(['start', 'start']);
});

test('status explains a waiting cluster: a partner testbox busy in another cluster, or with no live machine', async () => {
  const [busy] = await submitInline(res, lab.config, job(), 'nodes:\n  tb--1: { roles: [client] }\n');
  expect(jobOf(await take('tb', 'b1'))).toBe(busy!.jobs[0]!.job_id);
  const [x] = await submitInline(res, lab.config, job(), 'nodes:\n  ta--1: { roles: [server] }\n  tb--1: { roles: [client] }\n  tc--1: { roles: [client] }\n');
  expect(jobOf(await take('ta', 'a1'))).toBeNull();
  const [w] = await explainWaiting(lab.workers.admission);
  expect(w).toMatchObject({ cluster: x!.cluster });
  expect(w!.waitsFor).toEqual([
    'testbox ta: 1 idle (needs 1)',
    `testbox tb: 1 machine busy in ${busy!.cluster} (b1) (needs 1)`,
    expect.stringMatching(/^testbox tc: no live machine for \S+ \(needs 1\)$/),
  ]);
});

test("status and the web page give a waiting cluster the workers' --admit-timeout, not their own default", async () => {
  await lab.workers.close();
  const { startWorkers } = await import('../../workers');
  const w = res.add(await startWorkers(lab.config, { sweepEveryMs: 100, admission: { admitTimeoutMs: 20_000 } }), (x) => x.close());
  const [y] = await submitInline(res, lab.config, job(), PAIR);
  const redis = res.redis(lab.config);
  await eventually(async () => (await redis.zscore(w.store.keys.admitDue, y!.cluster)) !== null, "the sweep to index Y's admit deadline");
  // explainWaiting's own default (1 h) is what `cluster-sync status` has: the workers' 20 s holds.
  const [explained] = await explainWaiting(w.admission);
  const created = Number(await redis.hget(w.store.keys.meta(y!.cluster), 'created'));
  expect(explained).toMatchObject({ cluster: y!.cluster, admitTimeoutMs: 20_000, admitDeadline: created + 20_000 });
});
