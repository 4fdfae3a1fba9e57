import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { note } from '../faults/summary';
import { runSequence } from './sequence';
import type { Action, MsgSpec, Sequence, Step } from './sequence';

/**
 * The fold against the model: fast-check generates clusters and report
 * sequences (duplicates, reordering, late reports, unknown jobs, wrong
 * tokens, other clusters' jobs and ids, batches, deadlines, named messages), and every step
 * goes to the real Lua scripts on a real Redis and to the pure model in
 * test/model/model.ts; outcomes and visible state must agree after each step.
 *
 * CS_MODEL_RUNS sets the number of sequences (default 10 000), CS_MODEL_BUDGET_S
 * the time they may take (default 90 s; the rest is skipped and the note says so);
 * CS_MODEL_SEED replays a run: lane i uses seed CS_MODEL_SEED + i, and a
 * failure names its lane's seed and path.
 */
const RUNS = Number(process.env.CS_MODEL_RUNS ?? 10_000);
const SEED = process.env.CS_MODEL_SEED === undefined ? undefined : Number(process.env.CS_MODEL_SEED);
/** How long the sequences may take in all, ms (CS_MODEL_BUDGET_S); on a busy machine fewer run. */
const BUDGET_MS = Number(process.env.CS_MODEL_BUDGET_S ?? 90) * 1000;

/** Independent properties run side by side, each on its own connection, so one's round trips overlap another's work. */
const LANES = 4;
let server: LocalServer;
let lanes: Redis[];
beforeAll(async () => {
  server = await startRedis();
  lanes = Array.from({ length: LANES }, () => new Redis(server.url, { maxRetriesPerRequest: null }));
});
afterAll(async () => {
  await Promise.all(lanes.map((r) => r.quit()));
  await server.dispose();
});

const roles = fc.constantFrom('server', 'client', 'server client');
/** Most reports move nodes along the life; the rest are everything else a node can send. */
const kind = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('wait_start', 'wait_ready', 'wait_finish', 'finished') },
  { weight: 2, arbitrary: fc.constantFrom('write_state', 'heartbeat') },
  { weight: 1, arbitrary: fc.constantFrom('failed', 'abort') },
  // Named messages: their message ID, data and wait come from the action's `m`.
  { weight: 2, arbitrary: fc.constantFrom('send', 'wait_msg') },
);
/** Two message IDs and two short keys: sends meet each other, and no byte or ID limit is reached. */
const msgSpec: fc.Arbitrary<MsgSpec> = fc.record({
  id: fc.constantFrom('m1', 'm2'),
  data: fc.array(fc.tuple(fc.constantFrom('k1', 'k2'), fc.constantFrom('x', 'y')), { maxLength: 2 }),
  mode: fc.constantFrom('none', 'any', 'all'),
  role: fc.constantFrom('none', 'server', 'client', 'nobody'),
});
const target = fc.oneof(
  { weight: 12, arbitrary: fc.constant('A' as const) },
  { weight: 2, arbitrary: fc.constant('B' as const) },
  { weight: 1, arbitrary: fc.constantFrom('unknown-job' as const, 'other-cluster' as const, 'unknown-cluster' as const) },
);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        t: fc.constant('report' as const),
        target,
        node: fc.nat(7),
        kind,
        goodToken: fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        ip: fc.constantFrom('10.0.0.1', '10.0.0.2'),
        roles,
        reason: fc.constantFrom('disk full', 'oops'),
        m: msgSpec,
      },
      { requiredKeys: ['t', 'target', 'node', 'kind', 'goodToken'] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('again' as const), pick: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reuse-id' as const), pick: fc.nat(40), target: fc.constantFrom('A' as const, 'B' as const), node: fc.nat(7), kind, m: msgSpec }) },
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('batch' as const), actions: fc.array(action, { minLength: 1, maxLength: 3 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('deadline' as const),
      cluster: fc.constantFrom('A' as const, 'B' as const),
      barrier: fc.constantFrom('start' as const, 'ready' as const, 'finish' as const),
    }),
  },
);
export const sequence: fc.Arbitrary<Sequence> = fc.record({
  a: fc.array(roles, { minLength: 1, maxLength: 5 }),
  b: fc.array(roles, { minLength: 1, maxLength: 2 }),
  // Roles of cluster A that are not essential (`if role R: essential: false`); mostly none.
  optional: fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.subarray(['server', 'client'], { minLength: 1 }) }),
  timeoutMs: fc.constantFrom(1000, 90_000, 8 * 3_600_000),
  steps: fc.array(step, { minLength: 1, maxLength: 10 }),
});

/** CPU time (ms) the Redis server has used so far (Linux /proc; 0 elsewhere), for CS_MODEL_PROFILE. */
function redisCpuMs(): number {
  try {
    const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

test(
  `${RUNS} random report sequences: the Lua fold and the model agree after every step`,
  async () => {
    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    const redisCpu0 = redisCpuMs();
    // Lane i checks sequences i, i + LANES, ...: with a fixed seed, each lane has its own seed derived from it.
    const base = SEED ?? Math.floor(Math.random() * 2 ** 31);
    // A loaded machine gets fewer sequences, not a timeout: each lane stops at the budget, and the note says how many ran.
    const runs = await Promise.all(
      lanes.map((redis, i) =>
        fc.check(
          fc.asyncProperty(sequence, (seq) => runSequence(redis, seq)),
          {
            numRuns: Math.ceil(RUNS / LANES),
            seed: base + i,
            endOnFailure: false,
            interruptAfterTimeLimit: BUDGET_MS,
          },
        ),
      ),
    );
    for (const r of runs) if (r.failed) throw new Error(fc.defaultReportMessage(r) ?? 'a sequence failed');
    const done = runs.reduce((n, r) => n + r.numRuns, 0);
    const seconds = (Date.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (process.env.CS_MODEL_PROFILE) {
      const perSeq = (ms: number): string => (ms / done).toFixed(2);
      console.log(`${done} sequences; ms per sequence: test process cpu ${perSeq((cpu.user + cpu.system) / 1000)}, Redis cpu ${perSeq(redisCpuMs() - redisCpu0)}, wall ${perSeq(seconds * 1000)}`);
    }
    note(
      `${RUNS} generated report sequences (fast-check) on the Lua fold and the model`,
      `${done} ran${done < RUNS ? ` (the ${BUDGET_MS / 1000} s budget ran out)` : ''}, all agreed after every step; ${(done / seconds).toFixed(0)} sequences/s (${seconds.toFixed(1)} s)`,
    );
    await lanes[0]!.flushall();
  },
  BUDGET_MS + 60_000,
);
