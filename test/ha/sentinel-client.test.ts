import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, ReplyError } from 'ioredis';
import { connectRedis } from '../../src/core/redis';
import { watchSwitchMaster } from '../../src/services/ha-servers';
import { note } from '../faults/summary';
import { startTestHaSet } from '../helpers/ha';
import type { TestHaSet } from '../helpers/ha';
import { Resources } from '../helpers/servers';

/**
 * The client every cluster-sync process uses behind sentinels (connectRedis)
 * through the failover that ended ioredis clients for good
 * (redis/ioredis#1683): the promotion is announced while the client, which
 * lost the dead primary, is waiting for a sentinel's answer. Made certain
 * here: the sentinel each client asks first (the first of its list, which
 * found it the primary) is frozen before the primary is killed, so each
 * reconnect waits on it for most of its cycle; the other two sentinels make
 * the quorum and announce `+switch-master`. A write may reach the promoted
 * primary before the other replica has re-attached: its NOREPLICAS answer
 * (min-replicas-to-write) is retried, as every caller retries it; any other
 * refusal fails the test (CI on 2026-12-07 saw 8 NOREPLICAS answers here).
 */
jest.setTimeout(180_000);

let ha: TestHaSet;
const res = new Resources();

beforeAll(async () => {
  ha = await startTestHaSet();
});
afterAll(async () => {
  await res.closeAll();
  await ha?.stop();
});

test('a failover announced while the clients ask a frozen sentinel: no client ends, every command queued meanwhile reaches the new primary', async () => {
  const CLIENTS = 8;
  const config = ha.config();
  const [first, second] = ha.set.sentinels;
  const clients = Array.from({ length: CLIENTS }, (_, i) => res.add(connectRedis(config, `cs-test-${i}`), (r) => r.quit().catch(() => r.disconnect())));
  const ended: string[] = [];
  clients.forEach((c, i) => c.on('end', () => ended.push(`client ${i}`)));
  await Promise.all(clients.map((c, i) => c.set(`${config.keyPrefix}k${i}`, 'before')));
  // Half of them closed and opened again first, as BullMQ interrupts a blocking connection's wait: closed once is not closing for ever.
  for (const c of clients.slice(0, CLIENTS / 2)) {
    const closed = new Promise((resolve) => c.once('end', resolve));
    c.disconnect();
    await closed;
    await c.connect();
  }
  ended.splice(0);

  const old = await ha.set.primary();
  const watch = await watchSwitchMaster(second!.port, ha.set.masterName);
  process.kill(first!.pid, 'SIGSTOP');
  try {
    const t0 = Date.now();
    process.kill(old.pid, 'SIGKILL');
    // Issued at once: they wait in each client's offline queue through the failover.
    // The promoted primary may answer a write before the other replica has re-attached to it:
    // NOREPLICAS (min-replicas-to-write) is then its own answer, proof the write reached it, and
    // every cluster-sync caller retries it (isRedisUnavailable). Any other refusal fails the test.
    const refusedByNewPrimary: string[] = [];
    const writes = clients.map(async (c, i) => {
      for (;;) {
        try {
          return await c.set(`${config.keyPrefix}k${i}`, 'during');
        } catch (err) {
          if (!(err instanceof ReplyError) || !(err as Error).message.startsWith('NOREPLICAS')) throw err;
          refusedByNewPrimary.push(`client ${i}`);
          await sleep(100);
        }
      }
    });
    const promoted = await watch.next;
    // A failover takes seconds; a client that never finds the new primary is reported, not waited for until jest's timeout.
    const results = await Promise.race([
      Promise.allSettled(writes),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('writes still pending 60 s after the kill')), 60_000).unref()),
    ]);
    const doneMs = Date.now() - t0;
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    expect(ended).toEqual([]);
    expect(clients.map((c) => c.status)).toEqual(clients.map(() => 'ready'));

    // Read on the promoted primary itself: every write is there.
    const direct = res.add(new Redis(promoted.port, promoted.host, { maxRetriesPerRequest: 0 }), (r) => Promise.resolve(r.disconnect()));
    expect(await direct.mget(clients.map((_, i) => `${config.keyPrefix}k${i}`))).toEqual(clients.map(() => 'during'));
    note(
      `Redis primary SIGKILLed while the sentinel every client asks first is frozen (SIGSTOP): the promotion is announced while they wait for it (redis/ioredis#1683)`,
      `${CLIENTS} of ${CLIENTS} clients still connected, none ended; ${CLIENTS} writes queued during the failover on the new primary ${promoted.port}, ${doneMs} ms after the kill (${refusedByNewPrimary.length} NOREPLICAS answers from it retried)`,
    );
  } finally {
    watch.close();
    process.kill(first!.pid, 'SIGCONT');
    await old.restart();
    await ha.set.ready();
  }
});
