import { describeViolation, runCampaign } from '../../chaos/campaign';
import type { CampaignOptions } from '../../chaos/campaign';
import { FAULT_KINDS } from '../../chaos/plan';
import { summaryTable } from '../../chaos/table';
import { assertBuilt } from '../helpers/processes';
import { note } from '../faults/summary';

/**
 * The chaos campaign on a short fixed set of seeds (docs/testing.md, "The chaos
 * campaign"): real Redis with its AOF, NATS, 2–3 workers and the scheduler,
 * seeded workload and faults, every round checked for safety, exactly once,
 * liveness, integrity, node job records and retention (workers run with
 * `--retention 8s`, `--end-grace 3s`, `--submit-grace 2s`). A failure prints
 * each violation with its seed and history lines; `npm run chaos -- --seed S
 * --rounds N` replays it.
 *
 * The liveness bound without faults is 1 s in `npm run chaos`; here it is
 * 5 s, because CI shares two cores with other test files.
 */
// Between them these two seeds draw every fault kind but the Redis out-of-memory window in their 3
// rounds (from the kinds below): 253 a NATS restart, the scheduler killed mid-submit, Redis restarts
// and a worker kill; 1710 a Redis restart, a worker stop, a client pause and the scheduler killed
// again; besides duplicate, reordered and late reports.
// The out-of-memory window has a case of its own below (seed 5), so these seeds keep to the rest.
const KINDS = FAULT_KINDS.filter((k) => k !== 'redis-oom');
const SEEDS = [253, 1710];

beforeAll(() => assertBuilt());

async function clean(name: string, options: CampaignOptions, rounds: number): Promise<void> {
  const lines: string[] = [];
  const result = await runCampaign({
    ...options,
    log: (l) => {
      lines.push(l);
      if (process.env.CHAOS_VERBOSE) process.stderr.write(`${l}\n`);
    },
  });
  note(
    `chaos ${name}: ${result.rounds} rounds, ${result.clusters} clusters, faults ${
      Object.entries(result.faults)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    }`,
    `${result.reportsChecked} reports, ${result.recordsChecked} node job records, ${result.retentionChecked} clusters after retention checked; ${result.violations.length} violations`,
  );
  expect(result.violations.map((v) => describeViolation(options.seed, v))).toEqual([]);
  expect(result.rounds).toBe(rounds);
  expect(result.recordsChecked).toBeGreaterThan(0);
  expect(result.retentionChecked).toBeGreaterThanOrEqual(result.clusters);
  expect(summaryTable(result)).toContain('| violations');
}

test.each(SEEDS)(
  'chaos seed %i, 3 rounds: no invariant violated',
  async (seed) => {
    await clean(`seed ${seed}`, { seed, rounds: 3, maxClusters: 5, boundMs: 5000, faultKinds: KINDS }, 3);
  },
  240_000,
);

// Regression: round 51 of seed 7 (drawn from the six fault kinds of that run, before redis-oom)
// killed the scheduler mid-submit and left a half-written cluster; the reaper now finishes or
// removes it after --submit-grace. The kill's few milliseconds are not always hit again.
test('regression: seed 7 round 51, the scheduler killed mid-submit: nothing left half-written', async () => {
  await clean('seed 7 round 51', { seed: 7, fromRound: 51, rounds: 1, boundMs: 5000, faultKinds: KINDS }, 1);
}, 240_000);

// Regression: seed 5 with Redis out-of-memory windows only. Round 0's window left the sweep's repeating
// BullMQ job active (no dead node or deadline handled until its lock lapsed: the sweep is now a timer
// with a lapsing lease); in round 1 a node's wait was answered by its cluster's abort while its report
// was still being retried, and the records were read before that report was acknowledged and folded
// (the checker now waits for reports in flight). Both showed about one run in five.
test('regression: seed 5, rounds 0-1, Redis out of memory: the sweep recovers, nothing acknowledged is lost', async () => {
  await clean('seed 5 rounds 0-1 (redis-oom)', { seed: 5, rounds: 2, boundMs: 5000, faultKinds: ['redis-oom'] }, 2);
}, 240_000);
