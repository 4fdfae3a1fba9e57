import { Redis } from 'ioredis';
import { CoalescedReads } from '../../src/scheduler/coalesced-reads';
import { startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';

/**
 * The legacy endpoint's hash reads (coalesced-reads.ts): the reads asked in
 * one turn of the event loop go to Redis as one HMGET per hash, each gets
 * its own field's value, and a read is never answered by a command sent
 * before it was asked.
 */
let server: LocalServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  await redis?.quit();
  await server?.dispose();
});

test('reads asked in one turn go as one HMGET per hash; each gets its field, a field asked twice is asked once, a missing one is null', async () => {
  await redis.hset('t1:id2cluster', { 'cs-1.1': 'cs-1', 'cs-1.2': 'cs-1', 'cs-2.1': 'cs-2' });
  await redis.hset('t1:meta', { token: 'tok' });
  const reads = new CoalescedReads(redis);
  const asked = [
    ...Array.from({ length: 500 }, (_, i) => ['t1:id2cluster', `cs-${(i % 2) + 1}.1`] as const),
    ['t1:id2cluster', 'cs-1.2'] as const,
    ['t1:id2cluster', 'cs-404.1'] as const,
    ['t1:meta', 'token'] as const,
    ['t1:none', 'token'] as const,
  ];
  const answers = await Promise.all(asked.map(([hash, field]) => reads.hget(hash, field)));
  expect(answers.slice(0, 4)).toEqual(['cs-1', 'cs-2', 'cs-1', 'cs-2']);
  expect(answers.slice(500)).toEqual(['cs-1', null, 'tok', null]);
  expect(reads.commands).toBe(3);
});

test('more fields of one hash than one HMGET takes are split over several, each answered', async () => {
  const fields = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`job-${i}`, `c-${i}`]));
  await redis.hset('t2:id2cluster', fields);
  const reads = new CoalescedReads(redis);
  const answers = await Promise.all(Object.keys(fields).map((f) => reads.hget('t2:id2cluster', f)));
  expect(answers).toEqual(Object.values(fields));
  expect(reads.commands).toBe(3);
});

test("a hash Redis refuses to read fails only its own readers; the other hash's are answered", async () => {
  await redis.set('t3:not-a-hash', 'x');
  await redis.hset('t3:hash', { f: 'v' });
  const reads = new CoalescedReads(redis);
  const [bad, good] = await Promise.allSettled([reads.hget('t3:not-a-hash', 'f'), reads.hget('t3:hash', 'f')]);
  expect(bad.status === 'rejected' && String(bad.reason)).toMatch(/WRONGTYPE/);
  expect(good).toEqual({ status: 'fulfilled', value: 'v' });
});

test('a read asked after a write sees the write: nothing is kept from one turn to the next', async () => {
  const reads = new CoalescedReads(redis);
  await redis.hset('t4:meta', { token: 'one' });
  expect(await reads.hget('t4:meta', 'token')).toBe('one');
  await redis.hset('t4:meta', { token: 'two' });
  expect(await reads.hget('t4:meta', 'token')).toBe('two');
  await redis.del('t4:meta');
  expect(await reads.hget('t4:meta', 'token')).toBeNull();
  expect(reads.commands).toBe(3);
});
