import { expectAllFinished, reportsDrained } from '../faults/workload';
import { note } from '../faults/summary';
import { startTestHaSet } from '../helpers/ha';
import type { TestHaSet } from '../helpers/ha';
import type { CliProcess } from '../helpers/processes';
import { Resources } from '../helpers/servers';
import { failedJobs, startHaWorkload } from './ha-workload';

/**
 * Redis behind Sentinel loses its primary while work is in flight. Two
 * worker processes, never restarted, find the promoted replica through the
 * sentinels by themselves; every report a node was told "accepted" had
 * reached a replica first (WAIT), so the new primary holds it; folds whose
 * completion was lost are re-run, deduplicated by report id.
 */
jest.setTimeout(180_000);

let ha: TestHaSet;
const res = new Resources();
const procs: CliProcess[] = [];

beforeAll(async () => {
  ha = await startTestHaSet();
});
afterEach(async () => {
  await res.closeAll();
  await Promise.all(procs.splice(0).map((p) => p.stop()));
});
afterAll(async () => {
  await ha?.stop();
});

test('SIGKILL of the Redis primary while 40 clusters x 4 nodes report: every node answered, every report folded once, nothing failed', async () => {
  const CLUSTERS = 40;
  const NODES = 4;
  const config = ha.config();
  // The primary dies once a quarter of the nodes have passed the start barrier: reports are in flight everywhere.
  const { clusters, lives } = await startHaWorkload(res, procs, config, CLUSTERS, NODES);
  const t0 = Date.now();
  const { old, next } = await ha.failPrimary('SIGKILL');
  const switchMs = Date.now() - t0;
  const told = await Promise.all(lives);
  expect(told.filter((r) => r.join(' ') !== 'start ready finish')).toEqual([]);
  // Read on the new primary (the sentinels' choice once they agree: on a loaded machine they may fail over
  // once more): what every node was told is there, each report folded exactly once.
  const { primary, store: after } = await ha.afterFailover(res, config);
  expect(primary).not.toBe(old);
  await reportsDrained(after, 60_000);
  const counts = await expectAllFinished(after, clusters, 4);
  expect(counts).toMatchObject({ moves: CLUSTERS * NODES * 3, resolutions: CLUSTERS * 3, folded: CLUSTERS * NODES * 4 });
  expect(await failedJobs(after, clusters)).toBe(0);
  note(
    `Redis primary SIGKILLed (Sentinel, 2 replicas, WAIT 1) while ${CLUSTERS} clusters x ${NODES} nodes report`,
    `+switch-master ${switchMs} ms after the kill (${old.port} -> ${next.port}${primary === next ? '' : `, then ${primary.port}`}); all ${CLUSTERS * NODES} nodes answered start/ready/finish; ${counts.folded} reports each folded once; 0 failed jobs`,
  );
});
