import { Redis } from 'ioredis';
import { ReplicationGuard } from '../../src/core/replication';
import { note } from '../faults/summary';
import { expectAllFinished, reportsDrained } from '../faults/workload';
import { startTestHaSet } from '../helpers/ha';
import type { TestHaSet } from '../helpers/ha';
import type { CliProcess } from '../helpers/processes';
import { Resources, eventually } from '../helpers/servers';
import { failedJobs, startHaWorkload } from './ha-workload';

/**
 * The primary is frozen (SIGSTOP) past the sentinels' down-after, a replica
 * is promoted, then the old primary wakes up (SIGCONT) still believing it
 * is the primary. It is configured here WITHOUT min-replicas-to-write, so
 * only the WAIT before every "accepted" protects: a write it takes alone
 * after waking is never confirmed, and it is gone once the old primary
 * rejoins as a replica of the new one.
 */
jest.setTimeout(180_000);

let ha: TestHaSet;
const res = new Resources();
const procs: CliProcess[] = [];

beforeAll(async () => {
  ha = await startTestHaSet({ minReplicasToWrite: 0 });
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all(procs.map((p) => p.stop()));
  await ha?.stop();
});

test('SIGSTOP of the primary past down-after, then SIGCONT: it rejoins as a replica, and nothing it accepted alone was reported accepted', async () => {
  const CLUSTERS = 20;
  const NODES = 4;
  const config = ha.config();
  const { clusters, lives } = await startHaWorkload(res, procs, config, CLUSTERS, NODES);

  // A client that still talks to the old primary directly (a stale connection, a partitioned process):
  // connected before the freeze; what it sends meanwhile runs when the old primary wakes.
  const before = await ha.set.primary();
  const stale = res.add(new Redis(before.port, '127.0.0.1', { maxRetriesPerRequest: 0 }), (r) => Promise.resolve(r.disconnect()));
  await stale.ping();
  const t0 = Date.now();
  const { old, next } = await ha.failPrimary('SIGSTOP');
  const switchMs = Date.now() - t0;
  expect(old).toBe(before);
  const probe = `${config.keyPrefix}probe`;
  const guard = new ReplicationGuard({ minReplicas: 1, timeoutMs: 1000 });
  const mark = guard.mark(stale);
  const write = stale.set(probe, 'accepted-alone?');
  const confirmed = write.then(() => guard.waitForReplicas(stale, mark));
  process.kill(old.pid, 'SIGCONT');
  // Either the old primary took the write and no replica acknowledged it, or it was already a replica (READONLY).
  await expect(confirmed).rejects.toThrow(/NOREPLICAS 0 of 1|READONLY/);

  // The old primary rejoins as a replica of the new one (the sentinels' choice once they agree: on a loaded
  // machine they may fail over once more), and the write it took alone is not on the new primary.
  const oldConn = res.add(new Redis(old.port, '127.0.0.1', { maxRetriesPerRequest: 0 }), (r) => Promise.resolve(r.disconnect()));
  await eventually(async () => {
    const primary = await ha.agreedPrimary();
    const info = await oldConn.info('replication').catch(() => '');
    return primary !== undefined && primary !== old && /role:slave/.test(info) && new RegExp(`master_port:${primary.port}\\b`).test(info) && /master_link_status:up/.test(info);
  }, 'the old primary to follow the new one');
  const { primary, store: after } = await ha.afterFailover(res, config);
  expect(primary).not.toBe(old);
  expect(await after.redis.get(probe)).toBeNull();

  const told = await Promise.all(lives);
  expect(told.filter((r) => r.join(' ') !== 'start ready finish')).toEqual([]);
  await reportsDrained(after, 60_000);
  const counts = await expectAllFinished(after, clusters, 4);
  expect(counts).toMatchObject({ resolutions: CLUSTERS * 3, folded: CLUSTERS * NODES * 4 });
  expect(await failedJobs(after, clusters)).toBe(0);
  note(
    `Redis primary frozen (SIGSTOP) past down-after 1000 ms while ${CLUSTERS} clusters x ${NODES} nodes report, then SIGCONT`,
    `+switch-master after ${switchMs} ms (${old.port} -> ${next.port}${primary === next ? '' : `, then ${primary.port}`}); a write the woken old primary took alone was not confirmed (WAIT: 0 replicas) and is absent from the new primary; the old one rejoined as its replica; ${counts.folded} reports each folded once`,
  );
});
