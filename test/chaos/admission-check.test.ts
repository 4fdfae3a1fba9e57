import { checkAdmission, checkReleased } from '../../chaos/admission-check';
import type { AdmissionUnderCheck } from '../../chaos/admission-check';
import { checkSnapshot } from '../../chaos/admission-snapshot';
import type { AdmissionSnapshot } from '../../chaos/admission-snapshot';
import type { HistoryLine } from '../../chaos/history';
import type { MachinesPlan } from '../../chaos/plan';
import type { AdmissionRecord, ClusterRecord, NodeJobRecord } from '../../chaos/records';
import type { MachineRecord } from '../../src/admission/admission-store';

/**
 * The chaos campaign's admission checks on hand-written records and
 * snapshots: each violation they promise to see is seen, and a round that
 * is fine shows none.
 */
const T0 = 1_000_000;
const MACHINES: MachinesPlan = {
  testboxes: ['ma', 'mb', 'mc'],
  machines: [
    { id: 'a1', testbox: 0, events: [{ atMs: 0, kind: 'come' }] },
    { id: 'b1', testbox: 1, events: [{ atMs: 0, kind: 'come' }] },
  ],
  admitTimeoutMs: 5000,
};
const OPTS = { sweepMs: 1000, boundMs: 1000, recoveryMs: 20_000, t0: T0, faultNear: () => false, machines: MACHINES };
const PLAN = { nodes: [], submitMs: 0, machineTestboxes: [0, 1] };

function lines(...ls: Omit<HistoryLine, 'n'>[]): HistoryLine[] {
  return ls.map((l, n) => ({ n, ...l }));
}

function cluster(admission: Partial<AdmissionRecord>, final: 'finish' | 'abort', reason = '', jobs: Record<string, NodeJobRecord> = {}): ClusterRecord {
  return {
    cid: 'cs-1',
    jobs: ['cs-2', 'cs-3'],
    events: [],
    folded: new Set(),
    nodeJobs: new Map(Object.entries(jobs)),
    admission: { assign: {}, needs: { ma: ['cs-2'], mb: ['cs-3'] }, created: T0, admitTimeoutMs: 5000, ...admission },
    view: {
      id: 'cs-1',
      spec: 'x',
      created: T0,
      pending: undefined,
      final,
      nodes: [],
      barriers: final === 'abort' ? [{ barrier: 'start', result: 'abort', at: T0, reason }] : [],
      cluster_timeout_ms: 6000,
      heartbeat_interval_ms: 500,
    } as unknown as ClusterRecord['view'],
  };
}

const took = (job: string, machine: string, t = 100): Omit<HistoryLine, 'n'> => ({ t, kind: 'take', cluster: 'cs-1', job, machine });
const done = (at: number): NodeJobRecord => ({ state: 'completed', processedOn: at, returnvalue: { outcome: 'passed' } });
const check = (c: AdmissionUnderCheck, h: HistoryLine[] = []): string[] => checkAdmission(h, [c], OPTS).map((v) => v.message);

test('a cluster admitted whole, each job taken once by its machine, shows nothing', () => {
  const rec = cluster({ admitted: T0 + 50, assign: { 'cs-2': 'a1', 'cs-3': 'b1' }, endCause: 'finished' }, 'finish', '', { 'cs-2': done(T0 + 60), 'cs-3': done(T0 + 70) });
  expect(check({ record: rec, plan: PLAN, endedAt: T0 + 500 }, lines(took('cs-2', 'a1'), took('cs-3', 'b1')))).toEqual([]);
});

test('partial admission, a job taken by another machine or twice, a job handed after the end', () => {
  const rec = cluster({ admitted: T0 + 50, assign: { 'cs-2': 'a1' } }, 'abort', 'barrier start timed out', {
    'cs-2': done(T0 + 60),
    'cs-3': { state: 'failed', processedOn: T0 + 900, failedReason: 'aborted: x' },
  });
  expect(check({ record: rec, plan: PLAN, endedAt: T0 + 500 }, lines(took('cs-2', 'a1'), took('cs-2', 'a2'), took('cs-3', 'b1')))).toEqual([
    'node job cs-3 was handed out 400 ms after its cluster ended (record: failed, aborted: x)',
    'node job cs-2 was handed out 2 times (machines a1, a2)',
    'machine a2 took node job cs-2, which the assignment gives to a1',
    'machine b1 took node job cs-3, which the assignment gives to no machine',
    'admitted partly: its assignment names machines for [cs-2], its node jobs are [cs-2 cs-3]',
  ]);
});

test('a job the reaper failed is not handed out; one left queued after the end is a violation', () => {
  const reaped: NodeJobRecord = { state: 'failed', processedOn: T0 + 5100, failedReason: 'its cluster cs-1 ended (not admitted ...) before any machine took this node job' };
  const reason = 'not admitted within 5.00s: waited for testbox ma: 1 idle (needs 1); testbox mb: no live machine for 5s (needs 1)';
  const rec = cluster({ endCause: 'not_admitted' }, 'abort', reason, { 'cs-2': reaped, 'cs-3': { state: 'waiting' } });
  expect(check({ record: rec, plan: PLAN, endedAt: T0 + 5050 })).toEqual(['node job cs-3 is still waiting in its testbox queue after its cluster ended']);
});

test('never admitted: it must end not_admitted at its admit timeout, naming every testbox it needed', () => {
  const plan = { ...PLAN, machineTestboxes: [0, 2] };
  const rec = (r: string, cause = 'not_admitted'): ClusterRecord => ({
    ...cluster({ endCause: cause }, 'abort', r),
    admission: { assign: {}, needs: { ma: ['cs-2'], mc: ['cs-3'] }, created: T0, admitTimeoutMs: 5000, endCause: cause },
  });
  const good = 'not admitted within 5.00s: waited for testbox ma: 1 idle (needs 1); testbox mc: no live machine for 5s (needs 1)';
  expect(check({ record: rec(good), plan, endedAt: T0 + 5300 })).toEqual([]);
  expect(check({ record: rec(good), plan, endedAt: T0 + 4000 })).toEqual(['it ended not_admitted 1000 ms before its admit timeout (5000 ms)']);
  expect(check({ record: rec(good), plan, endedAt: T0 + 8000 })).toEqual(['it ended not_admitted 3000 ms after its admit timeout (bound 2000 ms)']);
  expect(check({ record: rec('not admitted within 5.00s: waited for testbox ma: 1 idle (needs 1)'), plan, endedAt: T0 + 5300 })).toEqual([
    'its not_admitted reason does not name testbox mc: "not admitted within 5.00s: waited for testbox ma: 1 idle (needs 1)"',
  ]);
  expect(check({ record: rec('barrier start timed out', 'timeout'), plan, endedAt: T0 + 6000 })).toEqual(['it was never admitted and ended timeout (barrier start timed out), not not_admitted']);
  // Testbox mc has no machine in the round: admitting the cluster is a violation.
  const admitted = { ...rec(good), admission: { ...rec(good).admission!, admitted: T0 + 10, assign: { 'cs-2': 'a1', 'cs-3': 'c1' }, endCause: 'finished' } };
  expect(check({ record: admitted, plan, endedAt: T0 + 900 })).toEqual(['it was admitted, though no machine of testbox mc ever existed in the round']);
});

const m = (id: string, testbox: string, extra: Partial<MachineRecord>): MachineRecord => ({ id, testbox, state: 'idle', since: 0, seen: 0, lease_ms: 2000, ...extra });
const snap = (machines: MachineRecord[], clusters: AdmissionSnapshot['clusters'], live: Record<string, number> = {}): AdmissionSnapshot => ({
  sent: T0 + 1000,
  recv: T0 + 1010,
  machines,
  clusters,
  live,
});
const c = (extra: Partial<AdmissionSnapshot['clusters'][string]>): AdmissionSnapshot['clusters'][string] => ({
  admitted: '',
  assign: '{}',
  needs: '{"ma":["cs-2"],"mb":["cs-3"]}',
  final: '',
  exists: 1,
  waiting: 1,
  ...extra,
});

test('snapshots: one job on two machines, a job of a cluster not admitted, a machine given a second job, a reservation without live partners', () => {
  const admitted = c({ admitted: '5', assign: '{"cs-2":"a1","cs-3":"b1"}', waiting: 0 });
  expect(checkSnapshot(snap([m('a1', 'ma', { state: 'running', cluster: 'cs-1', job: 'cs-2' }), m('b1', 'mb', { state: 'running', cluster: 'cs-1', job: 'cs-3' })], { 'cs-1': admitted }), [])).toEqual(
    [],
  );
  const bad = checkSnapshot(
    snap(
      [
        m('a1', 'ma', { state: 'running', cluster: 'cs-1', job: 'cs-2' }),
        m('a2', 'ma', { state: 'running', cluster: 'cs-1', job: 'cs-2' }),
        m('b1', 'mb', { state: 'running', cluster: 'cs-4', job: 'cs-5' }),
        m('a3', 'ma', { state: 'reserved', reserved_for: 'cs-6' }),
      ],
      { 'cs-1': admitted, 'cs-4': c({}), 'cs-6': c({}) },
      { ma: 2, mb: 0 },
    ),
    [{ machine: 'b1', job: 'cs-9', from: T0 + 500 }],
  ).map((v) => v.message.replace(/ \(snapshot .*\)$/, ''));
  expect(bad).toEqual([
    'node job cs-2 is assigned to two machines, a1 and a2',
    'machine a2 is assigned node job cs-2, which the assignment of cs-1 gives to a1',
    'machine b1 is assigned node job cs-5 of cs-4, which is not admitted',
    'machine b1 is assigned node job cs-5 while it still runs cs-9 (two node jobs)',
    'machine a3 is reserved for cs-6, whose testbox mb has no live machine',
  ]);
});

test("at the round's end, a machine still reserved for or assigned to an ended cluster is a violation", () => {
  const ended = c({ final: 'abort', waiting: 0 });
  const s = snap(
    [
      m('a1', 'ma', { state: 'reserved', reserved_for: 'cs-1' }),
      m('b1', 'mb', { state: 'running', cluster: 'cs-1', job: 'cs-3', taken: false }),
      m('b2', 'mb', { state: 'running', cluster: 'cs-1', job: 'cs-2', taken: true }),
    ],
    { 'cs-1': ended },
  );
  expect(checkReleased(s).map((v) => v.message)).toEqual(['machine a1 is still reserved for cs-1, which ended', 'machine b1 is still assigned an untaken node job of cs-1, which ended']);
});
