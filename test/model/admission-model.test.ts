import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { AdmissionStore } from '../../src/admission/admission-store';
import type { MachineRecord } from '../../src/admission/admission-store';
import { ClusterStore } from '../../src/cluster/store';
import { prepareClusters } from '../../src/cluster/prepare';
import { submitClusters } from '../../src/cluster/submit';
import { QueueSet } from '../../src/queue/queues';
import { startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { note } from '../faults/summary';

/**
 * The admission script (admit-take.lua and its fragments) against a model:
 * fast-check generates labs (machines on three testboxes) and sequences of
 * submits of 1- to 3-node clusters, takes (some saying their job is over),
 * machines leaving and clusters ending; every step runs the real scripts on a
 * real Redis. After each take the model recomputes, from the state before it,
 * which waiting clusters an all-or-nothing, oldest-first pass must admit and
 * how many machines each must reserve, and the invariants of DESIGN §9 are
 * checked on the whole state: no machine holds two node jobs, no job is
 * assigned twice, no cluster is partly admitted, an ended cluster holds no
 * machine, a reserved machine is held for a waiting cluster.
 * CS_MODEL_ADMIT_RUNS sets the number of sequences (default 200).
 */
const RUNS = Number(process.env.CS_MODEL_ADMIT_RUNS ?? 200);
const TESTBOXES = ['ma', 'mb', 'mc'];
const MACHINES = Array.from({ length: 6 }, (_, i) => ({ id: `m${i}`, tb: TESTBOXES[i % 3] as string }));

let server: LocalServer;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  await redis.quit();
  await server.dispose();
});

type Action = { a: 'submit'; tbs: number[] } | { a: 'take'; m: number; done: boolean } | { a: 'leave'; m: number } | { a: 'end'; c: number };
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ a: fc.constant('submit' as const), tbs: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 8, arbitrary: fc.record({ a: fc.constant('take' as const), m: fc.integer({ min: 0, max: 5 }), done: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('leave' as const), m: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('end' as const), c: fc.nat(20) }) },
);

interface ClusterInfo {
  cid: string;
  needs: Record<string, string[]>;
}

interface Snapshot {
  machines: Map<string, MachineRecord>;
  waiting: string[];
  meta: Map<string, Record<string, string>>;
}

async function snapshot(adm: AdmissionStore, clusters: ClusterInfo[]): Promise<Snapshot> {
  const machines = new Map((await adm.machines()).map((m) => [m.id, m]));
  const meta = new Map<string, Record<string, string>>();
  for (const c of clusters) meta.set(c.cid, await redis.hgetall(adm.keys.meta(c.cid)));
  return { machines, waiting: await adm.waiting(), meta };
}

/** What a pass must do, from the counts before it: admitted clusters, and machines reserved per cluster and testbox. */
function expectedPass(before: Snapshot, clusters: Map<string, ClusterInfo>, reserveAll: boolean, caller: string | undefined): { admitted: string[]; reserved: Map<string, Record<string, number>> } {
  const idle: Record<string, number> = {};
  const live: Record<string, number> = {};
  const reserved = new Map<string, Record<string, number>>();
  for (const m of before.machines.values()) {
    if (m.state === 'gone') continue;
    live[m.testbox] = (live[m.testbox] ?? 0) + 1;
    if (m.state === 'idle') idle[m.testbox] = (idle[m.testbox] ?? 0) + 1;
    if (m.state === 'reserved' && m.reserved_for) {
      const r = reserved.get(m.reserved_for) ?? {};
      r[m.testbox] = (r[m.testbox] ?? 0) + 1;
      reserved.set(m.reserved_for, r);
    }
  }
  const admitted: string[] = [];
  const after = new Map<string, Record<string, number>>();
  for (const cid of before.waiting) {
    const c = clusters.get(cid) as ClusterInfo;
    if (before.meta.get(cid)?.final) continue;
    const mine = reserved.get(cid) ?? {};
    const tbs = Object.keys(c.needs);
    if (tbs.every((tb) => (mine[tb] ?? 0) + (idle[tb] ?? 0) >= (c.needs[tb]?.length ?? 0))) {
      for (const tb of tbs) idle[tb] = (idle[tb] ?? 0) - Math.max(0, (c.needs[tb]?.length ?? 0) - (mine[tb] ?? 0)) + Math.max(0, (mine[tb] ?? 0) - (c.needs[tb]?.length ?? 0));
      admitted.push(cid);
    } else if (reserveAll && tbs.every((tb) => (live[tb] ?? 0) > 0)) {
      const r: Record<string, number> = {};
      for (const tb of tbs) {
        const add = Math.min(idle[tb] ?? 0, Math.max(0, (c.needs[tb]?.length ?? 0) - (mine[tb] ?? 0)));
        idle[tb] = (idle[tb] ?? 0) - add;
        r[tb] = (mine[tb] ?? 0) + add;
      }
      after.set(cid, r);
    } else {
      // Any machine it held goes back to the pool, for the clusters after it.
      for (const tb of tbs) idle[tb] = (idle[tb] ?? 0) + (mine[tb] ?? 0);
    }
  }
  void caller;
  return { admitted, reserved: after };
}

function checkInvariants(s: Snapshot, clusters: Map<string, ClusterInfo>, reaped: Set<string>): void {
  const holders = new Map<string, string>();
  for (const m of s.machines.values()) {
    if (m.state === 'running' && m.cluster) {
      const key = `${m.cluster}/${m.job}`;
      expect(holders.get(key)).toBeUndefined(); // a job on two machines
      holders.set(key, m.id);
      const c = clusters.get(m.cluster) as ClusterInfo;
      expect(c.needs[m.testbox]).toContain(m.job); // the machine's own testbox
    }
    if (m.state === 'reserved') {
      expect(s.waiting).toContain(m.reserved_for);
      expect(Object.keys(JSON.parse(s.meta.get(m.reserved_for as string)?.reserved ?? '{}') as object)).toContain(m.id);
    }
  }
  for (const [cid, meta] of s.meta) {
    const c = clusters.get(cid) as ClusterInfo;
    if (meta.admitted && !meta.final) {
      // All or nothing: every node job of an admitted cluster has its machine, and the assignment says which.
      const assign = JSON.parse(meta.assign ?? '{}') as Record<string, string>;
      expect(Object.keys(assign).sort()).toEqual(Object.values(c.needs).flat().sort());
      expect(s.waiting).not.toContain(cid);
    }
    if (!meta.admitted) for (const m of s.machines.values()) expect(m.state === 'running' && m.cluster === cid).toBe(false);
    if (meta.final && reaped.has(cid)) {
      expect(s.waiting).not.toContain(cid);
      for (const m of s.machines.values()) {
        expect(m.state === 'reserved' && m.reserved_for === cid).toBe(false);
        expect(m.state === 'running' && m.cluster === cid && !m.taken).toBe(false);
      }
    }
  }
}

test('the admission script admits all or nothing, oldest first, and keeps its invariants (model)', async () => {
  let steps = 0;
  let admittedTotal = 0;
  let reservedTotal = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 10, maxLength: 60 }), fc.boolean(), async (actions, reserveAll) => {
      const prefix = `am${randomUUID().slice(0, 8)}:`;
      const store = new ClusterStore(redis, { keyPrefix: prefix });
      const queues = new QueueSet(redis, store.keys);
      const adm = new AdmissionStore(redis, store.keys, { lockMs: 600_000, reserveAfterMs: reserveAll ? 0 : 1e12 });
      const clusters = new Map<string, ClusterInfo>();
      const order: string[] = [];
      const last = new Map<string, string>();
      const reaped = new Set<string>();
      try {
        for (const act of actions) {
          steps++;
          if (act.a === 'submit') {
            const hosts = act.tbs.map((t, i) => `  ${TESTBOXES[t]}--${i + 1}: { roles: [r${i}] }`).join('\n');
            const roles = act.tbs.map((_, i) => `if role r${i}:\n  p${i}:`).join('\n');
            const [c] = await submitClusters(store, queues, prepareClusters(`suite: t\ncluster: cs-m\n${roles}\n`, 'model job', { inlineSpec: `nodes:\n${hosts}\n`, isProgram: () => true }));
            const needs: Record<string, string[]> = {};
            for (const j of c!.jobs) (needs[j.queue] ??= []).push(j.job_id);
            clusters.set(c!.cluster, { cid: c!.cluster, needs });
            order.push(c!.cluster);
          } else if (act.a === 'take') {
            const mach = MACHINES[act.m]!;
            const before = await snapshot(adm, [...clusters.values()]);
            const rec = before.machines.get(mach.id);
            const lastJob = act.done && rec?.state === 'running' && rec.taken ? (rec.job ?? '') : (last.get(mach.id) ?? '');
            if (lastJob) last.set(mach.id, lastJob);
            // The model's pass starts from the state the caller leaves before it: itself freed or registered.
            const pre = structuredClone(before);
            const own = pre.machines.get(mach.id);
            const frees =
              !own ||
              own.state === 'gone' ||
              (own.state === 'running' && (own.job === lastJob || Boolean(pre.meta.get(own.cluster ?? '')?.final))) ||
              (own.state === 'reserved' && (!pre.waiting.includes(own.reserved_for ?? '') || Boolean(pre.meta.get(own.reserved_for ?? '')?.final)));
            if (frees) pre.machines.set(mach.id, { id: mach.id, testbox: mach.tb, state: 'idle', since: 0, seen: 0, lease_ms: 0 });
            const want = expectedPass(pre, clusters, reserveAll, mach.id);
            const r = await adm.take({ machine: mach.id, testbox: mach.tb, leaseMs: 3_600_000, session: 's', last: lastJob, lock: randomUUID() });
            expect(r.ok).toBe(true);
            const after = await snapshot(adm, [...clusters.values()]);
            const newly = [...clusters.keys()].filter((cid) => !before.meta.get(cid)?.admitted && after.meta.get(cid)?.admitted);
            expect(newly.sort()).toEqual([...want.admitted].sort());
            admittedTotal += newly.length;
            reservedTotal += [...want.reserved.values()].reduce((n, r) => n + Object.values(r).reduce((a, b) => a + b, 0), 0);
            for (const [cid, perTb] of want.reserved) {
              const held: Record<string, number> = {};
              for (const m of after.machines.values()) if (m.state === 'reserved' && m.reserved_for === cid) held[m.testbox] = (held[m.testbox] ?? 0) + 1;
              for (const [tb, n] of Object.entries(perTb)) expect([cid, tb, held[tb] ?? 0]).toEqual([cid, tb, n]);
            }
            // The caller gets the job assigned to it, taken now (or again).
            const me = after.machines.get(mach.id);
            if (me?.state === 'running') expect(r).toMatchObject({ state: 'running', job: me.job, cluster: me.cluster });
            else expect(r).toMatchObject({ state: me?.state });
          } else if (act.a === 'leave') {
            const mach = MACHINES[act.m]!;
            await adm.leave({ machine: mach.id, testbox: mach.tb, leaseMs: 3_600_000, session: 's', last: last.get(mach.id) ?? '' });
          } else {
            const cid = order[act.c % Math.max(1, order.length)];
            if (cid === undefined) continue;
            await store.timeout(cid, 'start');
            await adm.reap(cid, randomUUID());
            reaped.add(cid);
          }
          checkInvariants(await snapshot(adm, [...clusters.values()]), clusters, reaped);
        }
      } finally {
        await queues.close();
      }
    }),
    { numRuns: RUNS },
  );
  note('admission model', `${RUNS} sequences, ${steps} steps, ${admittedTotal} admissions, ${reservedTotal} reservations checked against admit-take.lua / admit-reap.lua on a real Redis`);
  process.stderr.write(`admission model: ${RUNS} sequences, ${steps} steps, ${admittedTotal} admissions, ${reservedTotal} machine reservations checked\n`);
  // The sequences reached what they test.
  expect(admittedTotal).toBeGreaterThan(RUNS);
  expect(reservedTotal).toBeGreaterThan(0);
}, 600_000);
