import type { Redis } from 'ioredis';
import { Keys } from '../../src/core/keys';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import type { SchedulerHandle } from '../../src/scheduler/start';
import { useTestServers } from '../helpers/use-test-servers';
import { TOKEN, startTestScheduler } from './scheduler-helpers';

/**
 * `Idempotency-Key` on the requests that create clusters (POST /jobs,
 * POST /clusters/:id/rerun): a repeat gets the first answer and creates
 * nothing (src/scheduler/idempotency.ts). test/faults/fold-replication runs
 * the case it is for: a 503 for want of a replica, then the same request again.
 */
const lab = useTestServers();
const { res } = lab;
let scheduler: SchedulerHandle;
let redis: Redis;
let keys: Keys;

beforeAll(async () => {
  scheduler = await startTestScheduler(res, lab.config);
  redis = res.redis(lab.config);
  keys = new Keys(lab.config.keyPrefix);
});

const SPEC = 'nodes:\n  box--1: { roles: [server] }\n  box--2: { roles: [client] }\n';
const job = (suite: string): string => JSON.stringify({ job: `suite: ${suite}\ncluster: cs-test\nif role server:\n  srv:\nif role client:\n  cli:\n`, cluster_spec: SPEC });

async function send(method: string, path: string, key: string | undefined, body?: string): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key !== undefined) headers['idempotency-key'] = key;
  const r = await fetch(`${scheduler.url}${path}`, { method, headers, body });
  return { status: r.status, text: await r.text() };
}

const clusterIds = (text: string): string[] => [...new Set((JSON.parse(text) as SubmitMessage[]).map((m) => m.cluster))];
const openClusters = async (): Promise<number> => redis.zcard(keys.openClusters);

test('POST /jobs sent twice with one key: the same answer, one cluster; without a key, two', async () => {
  const before = await openClusters();
  const first = await send('POST', '/jobs', 'submit-1', job('a'));
  const again = await send('POST', '/jobs', 'submit-1', job('a'));
  expect([first.status, again.status]).toEqual([200, 200]);
  expect(again.text).toBe(first.text);
  expect(await openClusters()).toBe(before + 1);
  // The key is what makes a repeat: the same job without one is a new submit.
  const plain = [await send('POST', '/jobs', undefined, job('a')), await send('POST', '/jobs', undefined, job('a'))];
  expect(new Set(plain.flatMap((p) => clusterIds(p.text))).size).toBe(2);
  expect(await openClusters()).toBe(before + 3);
});

test('one key with a different job: 409 naming the key, nothing created', async () => {
  expect((await send('POST', '/jobs', 'submit-2', job('a'))).status).toBe(200);
  const before = await openClusters();
  const other = await send('POST', '/jobs', 'submit-2', job('b'));
  expect(other.status).toBe(409);
  expect(other.text).toMatch(/Idempotency-Key submit-2 was sent before with a different request; send a new key/);
  expect(await openClusters()).toBe(before);
});

test('a key that breaks the identifier rule: 400 naming the header, nothing created', async () => {
  const before = await openClusters();
  for (const key of ['a*b', 'x'.repeat(300)]) {
    const r = await send('POST', '/jobs', key, job('a'));
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/request header: Idempotency-Key: /);
  }
  expect(await openClusters()).toBe(before);
});

test('a refused submit records nothing: the same key with the job fixed is a first submit', async () => {
  const bad = await send('POST', '/jobs', 'submit-3', JSON.stringify({ job: 'suite: t\ncluster: cs-test\n', cluster_spec: 'nodes: {}\n' }));
  expect(bad.status).toBe(400);
  expect(await redis.exists(keys.idempotency('jobs', 'submit-3'))).toBe(0);
  const before = await openClusters();
  expect((await send('POST', '/jobs', 'submit-3', job('fixed'))).status).toBe(200);
  expect(await openClusters()).toBe(before + 1);
  // Refused inside the claimed run (no such cluster to re-run): the claim is let go.
  expect((await send('POST', '/clusters/cs-999999/rerun', 'rerun-0')).status).toBe(404);
  expect(await redis.exists(keys.idempotency('rerun/cs-999999', 'rerun-0'))).toBe(0);
});

test('POST /clusters/:id/rerun sent twice with one key: one re-run; another key, another', async () => {
  const [cid] = clusterIds((await send('POST', '/jobs', undefined, job('r'))).text);
  const first = await send('POST', `/clusters/${cid}/rerun`, 'rerun-1');
  const again = await send('POST', `/clusters/${cid}/rerun`, 'rerun-1');
  expect([first.status, again.status]).toEqual([200, 200]);
  expect(clusterIds(again.text)).toEqual(clusterIds(first.text));
  const other = await send('POST', `/clusters/${cid}/rerun`, 'rerun-2');
  expect(clusterIds(other.text)).not.toEqual(clusterIds(first.text));
  const meta = await redis.hgetall(keys.meta(cid!));
  expect(Object.keys(meta).filter((f) => f.startsWith('rerun:')).length).toBe(2);
});
