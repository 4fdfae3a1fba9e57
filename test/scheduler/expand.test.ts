import { loadYamlDocuments } from '../../src/core/safe-yaml';
import { expandJob } from '../../src/job/expand';
import { fixtureJob } from '../helpers/fixtures';

function expand(text: string): Record<string, unknown>[] {
  return expandJob(loadYamlDocuments(text, 'job.yaml'), 'job.yaml');
}

/** What lkp-tests' `Job#each_jobs` makes of netperf-runtime.yaml, written out by hand. */
const NETPERF_EXPECTED: { test: string; runtime: number; send_size?: number }[] = [
  // the first document is a job of its own: 3 tests x runtime [10]
  { test: 'TCP_RR', runtime: 10 },
  { test: 'UDP_RR', runtime: 10 },
  { test: 'TCP_CRR', runtime: 10 },
  // the second document over the first: 13 send sizes x [TCP_STREAM] x [60]
  { send_size: 1, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 64, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 128, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 256, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 512, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 1024, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 1500, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 2048, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 4096, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 9000, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 16384, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 32768, test: 'TCP_STREAM', runtime: 60 },
  { send_size: 65536, test: 'TCP_STREAM', runtime: 60 },
  // the third document over the first: 12 send sizes x [UDP_STREAM] x [60]
  { send_size: 1, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 64, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 128, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 256, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 512, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 1024, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 1500, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 2048, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 4096, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 9000, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 16384, test: 'UDP_STREAM', runtime: 60 },
  { send_size: 32768, test: 'UDP_STREAM', runtime: 60 },
];

test('netperf-runtime.yaml expands as lkp expands it: 3 + 13 + 12 jobs, in lkp order', () => {
  const jobs = expand(fixtureJob('netperf-runtime.yaml'));
  expect(jobs.map((j) => (j['if role client'] as { netperf: unknown }).netperf)).toEqual(NETPERF_EXPECTED);
  for (const j of jobs) {
    // every job keeps the first document's top level, its one-element lists made scalars
    expect(j).toMatchObject({
      suite: 'netperf',
      category: 'benchmark',
      disable_latency_stats: 1,
      set_nic_irq_affinity: 1,
      ip: 'ipv4',
      runtime: 1800,
      nr_threads: 1,
      cluster: 'cs-s1-a1006-c1',
      'if role server': { netserver: null },
    });
  }
});

test('the first document alone is a job, and a later one replaces the keys it names whole (lkp merge!)', () => {
  const jobs = expand('a: 1\nb: { x: 1, y: 2 }\n---\nb: { y: 3 }\n---\nc: 4\n');
  expect(jobs).toEqual([
    { a: 1, b: { x: 1, y: 2 } },
    { a: 1, b: { y: 3 } },
    { a: 1, b: { x: 1, y: 2 }, c: 4 },
  ]);
});

test('lists give the cartesian product, the first list varying slowest, nested lists in a chosen element too', () => {
  const jobs = expand('p: [1, 2]\nprog:\n  q: [a, b]\n  r: [{ s: [x, y] }, z]\n');
  expect(jobs.map((j) => [j.p, (j.prog as Record<string, unknown>).q, (j.prog as Record<string, unknown>).r])).toEqual([
    [1, 'a', { s: 'x' }],
    [1, 'a', { s: 'y' }],
    [1, 'a', 'z'],
    [1, 'b', { s: 'x' }],
    [1, 'b', { s: 'y' }],
    [1, 'b', 'z'],
    [2, 'a', { s: 'x' }],
    [2, 'a', { s: 'y' }],
    [2, 'a', 'z'],
    [2, 'b', { s: 'x' }],
    [2, 'b', { s: 'y' }],
    [2, 'b', 'z'],
  ]);
});

test('lists lkp accumulates are kept whole; an empty list and a non-mapping document are refused by name', () => {
  expect(expand('mail_to: [a, b]\nneed_kconfig: [X, Y]\nt: [1]\n')).toEqual([{ mail_to: ['a', 'b'], need_kconfig: ['X', 'Y'], t: 1 }]);
  expect(() => expand('t: []\n')).toThrow('job.yaml: t: an empty list gives no job');
  expect(() => expand('a: 1\n---\n- x\n')).toThrow('job.yaml: document 2 is not a YAML mapping of parameters');
  expect(() => expand('just text\n')).toThrow('job.yaml: document 1 is not a YAML mapping of parameters');
});

test('more than 10 000 expansions fail before they are built', () => {
  const lists = Array.from({ length: 14 }, (_, i) => `k${i}: [a, b]`).join('\n');
  expect(() => expand(`${lists}\n`)).toThrow('job.yaml: expands to more than 10000 jobs');
});
