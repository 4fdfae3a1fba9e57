import { MembershipCache } from '../../src/cluster/membership-cache';

/** The bridge's cache of (cluster, job, token) triples that passed the membership check. */
test('knows a remembered triple, and nothing that differs in any of its parts', () => {
  const cache = new MembershipCache();
  cache.remember('c1', 'cs-1', 'tok');
  expect(cache.has('c1', 'cs-1', 'tok')).toBe(true);
  expect(cache.has('c1', 'cs-1', 'tok2')).toBe(false);
  expect(cache.has('c1', 'cs-2', 'tok')).toBe(false);
  expect(cache.has('c2', 'cs-1', 'tok')).toBe(false);
  // The separator cannot be forged by moving characters between parts.
  expect(cache.has('c1\ncs-1', 'tok', '')).toBe(false);
});

test('keeps keys exactly, whatever characters the parts hold', () => {
  const cache = new MembershipCache();
  const parts = ['clüster-é', 'jöb-☃', 'tök€n-😀'] as const;
  cache.remember(...parts);
  expect(cache.has(...parts)).toBe(true);
  expect(cache.has('clÃ¼ster-Ã©', parts[1], parts[2])).toBe(false);
});

test('holds at most its bound, dropping the oldest first', () => {
  const cache = new MembershipCache(3);
  for (const job of ['a', 'b', 'c']) cache.remember('c', job, 't');
  cache.remember('c', 'a', 't'); // already known: no reordering, no eviction
  cache.remember('c', 'd', 't');
  expect(['a', 'b', 'c', 'd'].map((job) => cache.has('c', job, 't'))).toEqual([false, true, true, true]);
  expect(cache.size).toBe(3);
});
