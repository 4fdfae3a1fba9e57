import type { ConnectionConfig } from '../../src/core/config';
import { ClusterStore } from '../../src/cluster/store';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer, NatsServer } from '../../src/services/local-servers';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import type { SchedulerHandle } from '../../src/scheduler/start';
import { startWorkers } from '../../workers';
import { Resources, eventually } from '../helpers/servers';
import { post, startTestScheduler } from '../scheduler/scheduler-helpers';

/**
 * What a legacy request reads before it waits (legacy-reads.ts): while a
 * wait on a cluster is held, the cluster's token and nodes are kept on its
 * barrier subscription, so further requests of its nodes read nothing from
 * Redis; they are still answered by the one delivery, and a repeat after
 * the answer is answered at once. Once the scheduler heard the cluster end,
 * what it kept is not used: a deleted cluster answers 404 even while a wait
 * on it is still held.
 */
let redis: LocalServer;
let nats: NatsServer;
const res = new Resources();
let config: ConnectionConfig;
let scheduler: SchedulerHandle;

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNats()]);
  config = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: 'tkept', keyPrefix: 'tkept:' };
  res.add(await startWorkers(config), (w) => w.close());
  scheduler = await startTestScheduler(res, config, { longPollMs: 600_000 });
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all([redis.dispose(), nats.dispose()]);
});

const SPEC = 'nodes:\n  box--1: { roles: [server] }\n  box--2: { roles: [client] }\n';
const JOB = 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n';

async function submit(): Promise<[SubmitMessage, SubmitMessage]> {
  const r = await post(scheduler.url, JSON.stringify({ job: JOB, cluster_spec: SPEC }), 'application/json');
  expect(r.status).toBe(200);
  return r.body as [SubmitMessage, SubmitMessage];
}

async function ask(query: string, signal?: AbortSignal): Promise<{ status: number; text: string }> {
  const r = await fetch(`${scheduler.url}/~lkp/cgi-bin/lkp-cluster-sync?${query}`, { signal });
  return { status: r.status, text: await r.text() };
}

/** Opens `n` requests and waits until the scheduler holds `total` waits. */
async function open(query: string, n: number, total: number): Promise<Promise<{ status: number; text: string }>[]> {
  const held = Array.from({ length: n }, () => ask(query));
  await eventually(() => scheduler.shared.waiting === total, `${total} waits held`);
  return held;
}

test('barrier waits: while one is held, 200 more of the node read nothing from Redis; the other node releases all; a repeat answers at once', async () => {
  const [a, b] = await submit();
  const reads = scheduler.legacyReads;
  // The first wait subscribes; the second reads the cluster from Redis and keeps it on the subscription.
  const first = await open(`job_id=${a.job_id}&state=wait_start`, 1, 1);
  const second = await open(`job_id=${a.job_id}&state=wait_start`, 1, 2);
  const counts = { ...reads.counts };
  const commands = reads.reads.commands;
  const more = await open(`job_id=${a.job_id}&state=wait_start`, 200, 202);
  expect(reads.counts.kept - counts.kept).toBe(200);
  expect(reads.counts.read).toBe(counts.read);
  expect(reads.reads.commands).toBe(commands);
  expect(await ask(`job_id=${b.job_id}&state=wait_start`)).toEqual({ status: 200, text: 'start' });
  const answers = await Promise.all([...first, ...second, ...more]);
  expect(new Set(answers.map((x) => `${x.status} ${x.text}`))).toEqual(new Set(['200 start']));
  expect(scheduler.shared.waiting).toBe(0);
  expect(await ask(`job_id=${a.job_id}&state=wait_start`)).toEqual({ status: 200, text: 'start' });
});

test("message waits: 100 held waits of one node are released by the other node's send with its data; a repeat answers at once", async () => {
  const [a, b] = await submit();
  const waits = [...(await open(`job_id=${a.job_id}&state=wait&msg=addr`, 1, 1)), ...(await open(`job_id=${a.job_id}&state=wait&msg=addr`, 99, 100))];
  expect(await ask(`job_id=${b.job_id}&state=send&msg=addr&address=10.0.0.2`)).toEqual({ status: 200, text: 'ok' });
  const answers = await Promise.all(waits);
  expect(new Set(answers.map((x) => `${x.status} ${x.text}`))).toEqual(new Set(['200 ok\naddress=10.0.0.2']));
  expect(await ask(`job_id=${a.job_id}&state=wait&msg=addr`)).toEqual({ status: 200, text: 'ok\naddress=10.0.0.2' });
  // wait_all ROLE still checks the role against the kept nodes.
  const held = await open(`job_id=${a.job_id}&state=wait&msg=other`, 1, 1);
  expect(await ask(`job_id=${a.job_id}&state=wait_all&msg=addr&role=storage`)).toEqual({ status: 400, text: 'query: role: no node of this cluster has role storage (roles: server client)\n' });
  expect(await ask(`job_id=${a.job_id}&state=wait_all&msg=addr&role=client`)).toEqual({ status: 200, text: `ok\n${b.job_id}:address=10.0.0.2` });
  expect(await ask(`job_id=${b.job_id}&state=send&msg=other&k=v`)).toEqual({ status: 200, text: 'ok' });
  expect((await Promise.all(held)).map((x) => x.text)).toEqual(['ok\nk=v']);
});

test('once the scheduler heard the cluster end, what it kept is not used: the deleted cluster answers 404 while a wait on it is still held', async () => {
  const [a, b] = await submit();
  // A message wait that nothing answers holds the cluster's subscriptions past its end.
  const gone = new AbortController();
  const never = ask(`job_id=${a.job_id}&state=wait&msg=never`, gone.signal).catch(() => undefined);
  await eventually(() => scheduler.shared.waiting === 1, 'the message wait held');
  for (const [state, word] of [
    ['wait_start', 'start'],
    ['wait_ready', 'ready'],
    ['wait_finish', 'finish'],
  ] as const) {
    const both = await Promise.all([ask(`job_id=${a.job_id}&state=${state}`), ask(`job_id=${b.job_id}&state=${state}`)]);
    expect(both.map((x) => x.text)).toEqual([word, word]);
  }
  // While the cluster was open the kept identity served a's requests; now retention deletes the ended cluster.
  expect(scheduler.shared.waiting).toBe(1);
  await new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix }).deleteCluster(a.cluster);
  expect(await ask(`job_id=${a.job_id}&state=wait_finish`)).toEqual({ status: 404, text: `unknown job id ${a.job_id}\n` });
  expect(await ask(`job_id=${b.job_id}&state=wait&msg=never`)).toEqual({ status: 404, text: `unknown job id ${b.job_id}\n` });
  gone.abort();
  await never;
  await eventually(() => scheduler.shared.waiting === 0, 'the abandoned wait to go');
});
