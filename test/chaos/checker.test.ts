import { checkRetention, checkRound } from '../../chaos/checker';
import { reportsInFlight } from '../../chaos/history';
import type { HistoryLine } from '../../chaos/history';
import type { ClusterRecord } from '../../chaos/records';
import type { ClusterEvent } from '../../src/fold/outcome';

/**
 * The chaos checker on hand-written histories: it must see each kind of
 * violation it promises to see (so a clean campaign means something), and
 * must not see one in a history that is fine.
 */
const T0 = 1_000_000;
const OPTS = { boundMs: 1000, recoveryMs: 20_000, heartbeatMs: 500, timeoutMs: 6000, sweepMs: 1000, t0: T0 };
const JOBS = ['cs-1', 'cs-2'];

function lines(...ls: Omit<HistoryLine, 'n'>[]): HistoryLine[] {
  return ls.map((l, n) => ({ n, ...l }));
}

let evId = 0;
function report(job: string, state: string, from: string, at: number): ClusterEvent {
  return { id: `${evId++}-0`, v: 1, type: 'report', cluster: 'cs-1', job, roles: 'server', report: 'wait_start', state, from, at: T0 + at } as ClusterEvent;
}
function resolution(barrier: string, result: string, at: number): ClusterEvent {
  return { id: `${evId++}-0`, v: 1, type: 'resolution', cluster: 'cs-1', barrier, result, at: T0 + at } as ClusterEvent;
}

function record(events: ClusterEvent[], folded: string[], final: 'finish' | 'abort' | undefined = 'abort'): ClusterRecord {
  return {
    cid: 'cs-1',
    jobs: JOBS,
    events,
    folded: new Set(folded),
    view: {
      id: 'cs-1',
      spec: 'x',
      created: T0,
      pending: undefined,
      final,
      nodes: JOBS.map((job) => ({ job, state: 'start', roles: 'server', ip: '', direct_ips: '', direct_macs: '', entire_state: '' })),
      barriers: [],
      cluster_timeout_ms: 6000,
      heartbeat_interval_ms: 500,
    },
  };
}

const PLAN = { nodes: [], submitMs: 0 };

/** Both nodes send wait_start, both are acknowledged and folded, start resolves, then node 2 fails. */
function goodStart(): { h: HistoryLine[]; rec: ClusterRecord } {
  const h = lines(
    { t: 10, kind: 'send', cluster: 'cs-1', job: 'cs-1', what: 'wait_start', id: 'a' },
    { t: 12, kind: 'ack', cluster: 'cs-1', job: 'cs-1', what: 'wait_start', id: 'a' },
    { t: 20, kind: 'send', cluster: 'cs-1', job: 'cs-2', what: 'wait_start', id: 'b' },
    { t: 22, kind: 'ack', cluster: 'cs-1', job: 'cs-2', what: 'wait_start', id: 'b' },
    { t: 30, kind: 'broadcast', cluster: 'cs-1', barrier: 'start', result: 'start' },
    { t: 31, kind: 'answer', cluster: 'cs-1', job: 'cs-1', what: 'wait_start', barrier: 'start', result: 'start' },
    { t: 40, kind: 'send', cluster: 'cs-1', job: 'cs-2', what: 'failed', id: 'c' },
    { t: 42, kind: 'ack', cluster: 'cs-1', job: 'cs-2', what: 'failed', id: 'c' },
    { t: 50, kind: 'broadcast', cluster: 'cs-1', barrier: 'ready', result: 'abort' },
  );
  const rec = record(
    [
      report('cs-1', 'start', '', 15),
      report('cs-2', 'start', '', 25),
      resolution('start', 'start', 25),
      report('cs-2', 'abort', 'start', 45),
      resolution('ready', 'abort', 45),
      resolution('finish', 'abort', 45),
    ],
    ['a', 'b', 'c'],
  );
  return { h, rec };
}

function check(h: HistoryLine[], rec: ClusterRecord) {
  return checkRound(h, [{ record: rec, plan: PLAN }], OPTS).violations.map((v) => `${v.invariant}: ${v.message}`);
}

test('a history that keeps every invariant has no violation', () => {
  const { h, rec } = goodStart();
  expect(check(h, rec)).toEqual([]);
});

test('a node that hears a barrier before every node reported it is a safety violation', () => {
  const { h, rec } = goodStart();
  h[2]!.t = 35; // node 2 sends wait_start only after the broadcast at 30
  expect(check(h, rec)).toContainEqual(expect.stringMatching(/^safety: the observer heard start=start before node cs-2 had reported/));
});

test('two results for one barrier are a safety violation', () => {
  const { h, rec } = goodStart();
  h.push({ n: 99, t: 60, kind: 'answer', cluster: 'cs-1', job: 'cs-2', what: 'wait_start', barrier: 'start', result: 'abort' });
  expect(check(h, rec)).toContainEqual('safety: barrier start has two results: start and abort (recorded: start)');
});

test('an acknowledged report the fold never recorded is lost: an exactly-once violation', () => {
  const { h, rec } = goodStart();
  rec.folded.delete('b');
  expect(check(h, rec)).toContainEqual('exactly-once: report b (wait_start of cs-2) was acknowledged but never folded');
});

test('a move folded twice is an exactly-once violation', () => {
  const { h, rec } = goodStart();
  rec.events.splice(1, 0, report('cs-1', 'start', '', 16));
  expect(check(h, rec)).toContainEqual('exactly-once: node cs-1 has the moves start -> start (a move folded twice or backwards)');
});

test('a barrier every node reported that never resolves is a liveness violation', () => {
  const { h, rec } = goodStart();
  rec.events.splice(2, 1); // no start resolution
  const seen = check(
    h.filter((l) => l.kind !== 'broadcast' && l.kind !== 'answer'),
    rec,
  );
  expect(seen).toContainEqual('liveness: every node reported reaching start (the last at 0.022s) but start never resolved');
});

// seed 7, round 7: a legacy node waiting at start was answered `abort` after the cluster aborted at
// ready; the legacy endpoint answers any wait with abort once the cluster aborted, as Compass-CI did.
test('a legacy wait answered abort after its cluster aborted is no violation; before any abort it is', () => {
  const { h, rec } = goodStart();
  h.push({ n: 99, t: 60, kind: 'answer', cluster: 'cs-1', job: 'cs-2', what: 'wait_start', barrier: 'start', result: 'abort', legacy: true });
  expect(check(h, rec)).toEqual([]);
  const clean = record([report('cs-1', 'start', '', 15), report('cs-2', 'start', '', 25), resolution('start', 'start', 25)], ['a', 'b'], 'finish');
  expect(check(h.slice(0, 6).concat(h[h.length - 1]!), clean)).toContainEqual('safety: a legacy node was told abort, but the cluster never aborted');
});

// seed 2026, round 37: barriers took 2.6-5.9 s in a round without faults, right after a round that
// restarted NATS and killed the scheduler; alone, the round passes. A fault's recovery reaches into
// the next round, so its bound does too.
test('a slow barrier is held to the recovery bound when the previous round had a fault just before', () => {
  const { h, rec } = goodStart();
  rec.events[2] = resolution('start', 'start', 2500); // start resolves 2.5 s after the last wait_start
  h.splice(4, 2);
  expect(check(h, rec)).toContainEqual(expect.stringMatching(/^liveness: start resolved start 2478 ms after its last node reported \(bound 1000 ms\)/));
  const seen = checkRound(h, [{ record: rec, plan: PLAN }], { ...OPTS, priorFaultEnd: T0 - 500 }).violations;
  expect(seen).toEqual([]);
});

/** goodStart with both nodes taking their jobs from the dispatcher: cs-1 aborted (it heard ready=abort), cs-2 failed its test. */
function withRecords(): { h: HistoryLine[]; rec: ClusterRecord } {
  const { h, rec } = goodStart();
  h.unshift({ n: 0, t: 1, kind: 'take', cluster: 'cs-1', job: 'cs-1', detail: 'tb-a' }, { n: 0, t: 2, kind: 'take', cluster: 'cs-1', job: 'cs-2', detail: 'tb-b' });
  h.push(
    { n: 0, t: 60, kind: 'done', cluster: 'cs-1', job: 'cs-1', what: 'aborted', detail: 'cs-2 failed', result: 'ok' },
    { n: 0, t: 61, kind: 'done', cluster: 'cs-1', job: 'cs-2', what: 'test_failed', detail: 'chaos: the test failed', result: 'ok' },
  );
  h.forEach((l, n) => (l.n = n));
  rec.nodeJobs = new Map([
    ['cs-1', { state: 'failed', failedReason: 'aborted: cs-2 failed' }],
    ['cs-2', { state: 'failed', failedReason: 'test_failed: chaos: the test failed' }],
  ]);
  return { h, rec };
}

test('node job records that say how each node ended are no violation', () => {
  const { h, rec } = withRecords();
  expect(check(h, rec)).toEqual([]);
  expect(checkRound(h, [{ record: rec, plan: PLAN }], OPTS).recordsChecked).toBe(2);
});

test("a node job record that differs from the node's acknowledged done is a record violation", () => {
  const { h, rec } = withRecords();
  rec.nodeJobs!.set('cs-1', { state: 'completed', returnvalue: { outcome: 'passed' } });
  expect(check(h, rec)).toEqual(['record: node job cs-1: its node said done aborted (cs-2 failed), acknowledged, but the record is completed ({"outcome":"passed"})']);
});

test('a node job left active after its cluster ended is a record violation', () => {
  const { h, rec } = withRecords();
  rec.nodeJobs!.set('cs-2', { state: 'active' });
  expect(check(h, rec)).toEqual(['record: node job cs-2 is active after its cluster ended; its node said done test_failed (chaos: the test failed)']);
});

test("a dead node's job must be failed by the dispatcher (dead node or end grace), not completed", () => {
  const { h, rec } = withRecords();
  const dead = h.filter((l) => !(l.kind === 'done' && l.job === 'cs-2'));
  dead.push({ n: 98, t: 43, kind: 'die', cluster: 'cs-1', job: 'cs-2', barrier: 'ready' });
  rec.nodeJobs!.set('cs-2', { state: 'failed', failedReason: 'aborted: no heartbeat for 1.5s (dead node)' });
  expect(check(dead, rec)).toEqual([]);
  rec.nodeJobs!.set('cs-2', { state: 'failed', failedReason: "its cluster aborted 3000 ms ago and the node never reported the job's end" });
  expect(check(dead, rec)).toEqual([]);
  rec.nodeJobs!.set('cs-2', { state: 'completed', returnvalue: { outcome: 'passed' } });
  expect(check(dead, rec)).toEqual([
    'record: node job cs-2: its node never said done, but the record is completed ({"outcome":"passed"}), neither that nor a failure of the dispatcher\'s own (dead node, no done within the end grace)',
  ]);
});

test("legacy nodes (no take): the record check leaves their jobs alone; admission's reaper must not leave them waiting", () => {
  const { h, rec } = withRecords();
  const legacy = h.filter((l) => !(l.job === 'cs-2' && (l.kind === 'take' || l.kind === 'done')));
  rec.nodeJobs!.set('cs-2', { state: 'failed', failedReason: 'its cluster cs-1 aborted before any machine took this node job' });
  expect(check(legacy, rec)).toEqual([]);
  rec.nodeJobs!.set('cs-2', { state: 'waiting' });
  expect(check(legacy, rec)).toEqual(['admission: node job cs-2 is still waiting in its testbox queue after its cluster ended']);
});

test('a node job record read after retention removed it (a fault made the reads late) is not checked; read in time, unknown is a violation', () => {
  const { h, rec } = withRecords();
  rec.nodeJobs!.set('cs-2', { state: 'unknown' });
  expect(check(h, rec).filter((m) => m.startsWith('record: node job cs-2'))).toHaveLength(1);
  rec.nodeJobsLate = true;
  expect(check(h, rec)).toEqual([]);
});

test('an ended cluster with traces left past its retention is a retention violation; before then it is waited for', () => {
  const o = { retentionMs: 8000, sweepMs: 1000, recoveryMs: 20_000 };
  const c = { cid: 'cs-1', endedAt: T0, remaining: ['key cs/cluster/cs-1/meta', 'node job cs-2 (tb-b, failed)'] };
  expect(checkRetention(c, T0 + 10_000, o)).toBe('wait');
  expect(checkRetention({ ...c, remaining: [] }, T0 + 10_000, o)).toBe('gone');
  const v = checkRetention(c, T0 + 30_000, o);
  expect(v).toMatchObject({ invariant: 'retention', cluster: 'cs-1' });
  expect(v !== 'wait' && v !== 'gone' && v.message).toBe(
    'cluster cs-1 ended 30000 ms ago (retention 8000 ms, allowed until 30000 ms) but 2 of its traces remain: key cs/cluster/cs-1/meta; node job cs-2 (tb-b, failed)',
  );
  expect(checkRetention({ ...c, endedAt: undefined }, T0 + 1e9, o)).toBe('wait');
});

test('a node that asked for its job until its cluster ended and never got it: its job must not stay waiting', () => {
  const { h, rec } = withRecords();
  // cs-2's reports stay (the history's other invariants hold); its take and done are replaced by asking in vain.
  const lost = h.filter((l) => !(l.job === 'cs-2' && (l.kind === 'take' || l.kind === 'done')));
  lost.push({ n: 97, t: 5, kind: 'note', cluster: 'cs-1', job: 'cs-2', detail: 'take: no job; asking again' });
  lost.push({ n: 98, t: 70, kind: 'error', cluster: 'cs-1', job: 'cs-2', detail: 'never got its node job from the dispatcher (last: no job)' });
  rec.nodeJobs!.set('cs-2', { state: 'failed', failedReason: "its cluster aborted 3000 ms ago and the node never reported the job's end" });
  expect(check(lost, rec)).toEqual([]);
  // Never handed out, and failed with its cluster by admission's reaper (seed 2212 round 62 under --ha).
  rec.nodeJobs!.set('cs-2', { state: 'failed', failedReason: 'its cluster cs-1 ended (node cs-1 (server) reported abort: no heartbeat for 1.50s (dead node)) before any machine took this node job' });
  expect(check(lost, rec)).toEqual([]);
  rec.nodeJobs!.set('cs-2', { state: 'waiting' });
  expect(check(lost, rec)).toEqual([
    'record: node job cs-2: its node asked for it until its cluster ended and never got it, and the record is waiting (a job handed out whose reply was lost must be failed after the end grace; one still waiting was never handed out)',
  ]);
});

test("a report still being retried when its node's life ended is in flight until its acknowledgement, refusal or error", () => {
  const h = lines(
    { t: 100, kind: 'send', cluster: 'cs-1', job: 'cs-1', what: 'wait_start', id: 'a' },
    { t: 150, kind: 'answer', cluster: 'cs-1', job: 'cs-1', what: 'wait_start', barrier: 'start', result: 'abort' },
    { t: 160, kind: 'send', cluster: 'cs-1', job: 'cs-1', what: 'heartbeat', id: 'hb' },
    { t: 170, kind: 'send', cluster: 'cs-2', job: 'cs-9', what: 'wait_start', id: 'other' },
  );
  expect(reportsInFlight(h, 'cs-1')).toBe(true);
  const acked = [...h, { n: h.length, t: 400, kind: 'ack' as const, cluster: 'cs-1', job: 'cs-1', what: 'wait_start', id: 'a' }];
  expect(reportsInFlight(acked, 'cs-1')).toBe(false);
  // Sent again with the same id (a reordered copy): in flight until that copy is answered too.
  const again = [...acked, { n: acked.length, t: 500, kind: 'dup' as const, cluster: 'cs-1', job: 'cs-1', what: 'wait_start', id: 'a' }];
  expect(reportsInFlight(again, 'cs-1')).toBe(true);
  expect(reportsInFlight([...again, { n: again.length, t: 600, kind: 'reject' as const, cluster: 'cs-1', job: 'cs-1', what: 'wait_start', id: 'a' }], 'cs-1')).toBe(false);
});

test('a report held by its client pause is in flight until it is sent and answered (seed 2212 round 110 under --ha)', () => {
  // The node's wait was answered by the abort its own pause caused (a dead node) before its report went out.
  const held = lines({ t: 300, kind: 'held', cluster: 'cs-1', job: 'cs-1', what: 'wait_ready' });
  expect(reportsInFlight(held, 'cs-1')).toBe(true);
  const sent = [...held, { n: held.length, t: 2600, kind: 'send' as const, cluster: 'cs-1', job: 'cs-1', what: 'wait_ready', id: 'b' }];
  expect(reportsInFlight(sent, 'cs-1')).toBe(true);
  expect(reportsInFlight([...sent, { n: sent.length, t: 2610, kind: 'ack' as const, cluster: 'cs-1', job: 'cs-1', what: 'wait_ready', id: 'b' }], 'cs-1')).toBe(false);
});
