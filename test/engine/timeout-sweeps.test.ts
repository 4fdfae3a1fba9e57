import pino from 'pino';
import type { Redis } from 'ioredis';
import { Publisher } from '../../src/bus/publisher';
import { Subjects } from '../../src/bus/subjects';
import { ClusterStore } from '../../src/cluster/store';
import { ReplicationGuard } from '../../src/core/replication';
import { WorkerEvents } from '../../src/core/worker-events';
import { QueueSet } from '../../src/queue/queues';
import { Sweeper } from '../../workers/timers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { Resources, eventually, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';

/**
 * Two sweeps of two worker processes can overlap: the sweep lease lapses
 * after one period, while a sweep that fired a deadline may still wait for
 * a replica (up to `--replica-timeout-ms`). Real Redis and NATS; what is held
 * is only when each sweep's WAIT returns (a replica slow to acknowledge), so
 * the two sweeps interleave the same way every run.
 */
let servers: TestServers;
const res = new Resources();
beforeAll(async () => {
  servers = await startTestServers();
});
afterAll(async () => {
  await res.closeAll();
  await servers.stop();
});

/** A replication guard whose WAIT returns when the test lets it: a replica that acknowledges late. */
class HeldAcknowledgements extends ReplicationGuard {
  private readonly held: (() => void)[] = [];
  constructor() {
    super({ minReplicas: 1, timeoutMs: 200 });
  }
  override async waitForReplicas(_conn: Redis, _mark: number): Promise<void> {
    await new Promise<void>((resolve) => this.held.push(resolve));
  }
  get waiting(): number {
    return this.held.length;
  }
  release(): void {
    this.held.shift()?.();
  }
}

test('two overlapping sweeps: each timeout abort is told once, by the sweep that fired it', async () => {
  const config = servers.config();
  const redis = res.redis(config);
  const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  const told = new Map<string, string[]>();
  const cids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const { job, spec } = nodesJob(2);
    const [c] = await submitInline(res, config, job, spec);
    if (!c) throw new Error('the submit created no cluster');
    cids.push(c.cluster);
    told.set(c.cluster, []);
    nc.subscribe(subjects.barrier(c.cluster), { callback: (_e, m) => told.get(c.cluster)?.push(m.json<{ barrier: string }>().barrier) });
  }
  await nc.flush();
  // Both start deadlines due, the first earlier: a sweep fires them in that order.
  for (const [i, cid] of cids.entries()) await store.setDeadline(cid, 'start', i);
  const sweeper = (guard: HeldAcknowledgements) =>
    new Sweeper(store, { queues, publisher: new Publisher(nc, subjects), events: new WorkerEvents(), log: pino({ level: 'silent' }) }, { replication: guard });
  const guardA = new HeldAcknowledgements();
  const guardB = new HeldAcknowledgements();

  // Sweep A lists both, fires the first and waits for its replica.
  const sweepA = sweeper(guardA).sweep();
  await eventually(() => guardA.waiting === 1, 'sweep A waiting for a replica after its first deadline');
  // Sweep B (another process, the lease lapsed) lists the second only (the first is pending), fires it and waits.
  const sweepB = sweeper(guardB).sweep();
  await eventually(() => guardB.waiting === 1, 'sweep B waiting for a replica after the second deadline');
  // A's replica acknowledges: A tells the first, then comes to the second, which B fired and is telling.
  guardA.release();
  expect((await sweepA).timedOut).toBe(3);
  guardB.release();
  expect((await sweepB).timedOut).toBe(3);
  await nc.flush();
  await eventually(() => cids.every((c) => (told.get(c)?.length ?? 0) >= 3), 'both aborts told');
  expect(Object.fromEntries(told)).toEqual(Object.fromEntries(cids.map((c) => [c, ['start', 'ready', 'finish']])));
  // Told and confirmed: nothing of either is left to fire.
  expect(await redis.zrange(store.keys.deadlines, 0, -1)).toEqual([]);
});
