import { ClusterStore } from '../../src/cluster/store';
import { connect } from 'nats';
import { Subjects } from '../../src/bus/subjects';
import { encodeJson } from '../../src/bus/connect';
import { startWorkers } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { CliProcess, envFor } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { startOpsApp } from './ops-app';
import { nodeClients } from '../helpers/cluster';
import { useTestServers } from '../helpers/use-test-servers';
import { allWait } from './ops-helpers';
import { MessageClient } from '../../src/client/message-client';

const lab = useTestServers({ per: 'test' });
const { res } = lab;

/** Scrapes `url` and returns `metric{labels}` -> value, labels as written by prom-client. */
async function scrape(url: string): Promise<Map<string, number>> {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toContain('text/plain');
  const out = new Map<string, number>();
  for (const line of (await r.text()).split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * Scrapes until `key` has `value`: a worker counts a fold just after it
 * publishes the fold's answers, so a node may hear its answer first.
 */
async function scrapeUntil(url: string, key: string, value: number): Promise<Map<string, number>> {
  return eventually(async () => {
    const s = await scrape(url);
    return s.get(key) === value ? s : undefined;
  }, `${key} = ${value}`);
}

test('GET /metrics follows a cluster: folds by state, rejections by reason, resolutions, latency, open clusters, queue depths, dead nodes', async () => {
  const workers = res.add(await startWorkers(lab.config, { sweepEveryMs: 200 }), (w) => w.close());
  const { url } = await startOpsApp(res, lab.config, { workerEvents: workers.events });
  const metrics = `${url}/metrics`;
  const before = await scrape(metrics);
  expect(before.get('cs_clusters_open')).toBe(0);
  expect(before.get('cs_reports_folded_total{state="wait_start"}')).toBeUndefined();

  const { job, spec } = nodesJob(2);
  const submittedAt = Date.now();
  const [cluster] = await submitInline(res, lab.config, job, spec, 200);
  const afterSubmit = await scrape(metrics);
  expect(afterSubmit.get('cs_clusters_open')).toBe(1);
  expect(afterSubmit.get('cs_queue_jobs{queue="tb-node",state="waiting"}')).toBe(2); // the two node jobs
  expect(afterSubmit.get('cs_barrier_deadlines')).toBe(0); // none before admission: deadlines count from it
  expect(afterSubmit.get('cs_barrier_deadlines_overdue')).toBe(0);

  const [server, client] = await nodeClients(res, lab.config, cluster!);
  expect(await allWait([server!, client!], 'wait_start')).toEqual(['start', 'start']);
  // A report with a wrong token, straight on the wire.
  const nc = res.add(await connect({ servers: lab.config.natsUrl }), (c) => c.close());
  const j = cluster!.jobs[0]!;
  const reply = await nc.request(
    new Subjects(lab.config.subjectPrefix).report(j.cluster),
    encodeJson({ v: 1, id: 'bad-token-1', cluster: j.cluster, job: j.job_id, state: 'wait_ready', at: Date.now(), token: 'x'.repeat(32) }),
  );
  expect(reply.json()).toMatchObject({ ok: false, code: 'BAD_TOKEN' });
  let m = await scrapeUntil(metrics, 'cs_reports_folded_total{state="wait_start"}', 2);
  expect(m.get('cs_reports_rejected_total{reason="BAD_TOKEN"}')).toBe(1);
  expect(m.get('cs_barrier_resolutions_total{barrier="start",result="start"}')).toBe(1);
  expect(m.get('cs_barrier_latency_seconds_count{barrier="start"}')).toBe(1);
  // In seconds, and no longer than the test has run since the submit (not a fixed margin: a busy machine is slow).
  expect(m.get('cs_barrier_latency_seconds_sum{barrier="start"}')).toBeGreaterThanOrEqual(0);
  expect(m.get('cs_barrier_latency_seconds_sum{barrier="start"}')).toBeLessThanOrEqual((Date.now() - submittedAt) / 1000);
  expect(m.get('cs_barrier_latency_seconds_bucket{le="+Inf",barrier="start"}')).toBe(1);
  expect(m.get('cs_dead_nodes_total')).toBe(0);

  // The client sends one heartbeat, then falls silent: it is found dead and the cluster aborts.
  await client!.report('heartbeat');
  const waiting = server!.wait('wait_ready');
  expect((await waiting).result).toBe('abort');
  m = await scrapeUntil(metrics, 'cs_reports_folded_total{state="abort"}', 1);
  expect(m.get('cs_clusters_open')).toBe(0);
  expect(m.get('cs_dead_nodes_total')).toBe(1);
  expect(m.get('cs_reports_folded_total{state="heartbeat"}')).toBe(1);
  expect(m.get('cs_barrier_resolutions_total{barrier="ready",result="abort"}')).toBe(1);
  expect(m.get('cs_barrier_resolutions_total{barrier="finish",result="abort"}')).toBe(1);
  expect(m.get('cs_barrier_latency_seconds_count{barrier="ready"}')).toBe(1);
  expect(m.get('cs_barrier_deadlines')).toBe(0); // an ended cluster has none

  // With no worker process sweeping, a deadline that came long ago shows as overdue.
  await workers.close();
  const store = new ClusterStore(res.redis(lab.config), { keyPrefix: lab.config.keyPrefix });
  await store.redis.zadd(store.keys.deadlines, (await store.now()) - 60_000, `${cluster!.cluster} ready`);
  m = await scrape(metrics);
  expect(m.get('cs_barrier_deadlines')).toBe(1);
  expect(m.get('cs_barrier_deadlines_overdue')).toBe(1);
  await store.redis.zrem(store.keys.deadlines, `${cluster!.cluster} ready`);
});

test("cluster-sync worker --metrics-port serves the worker's own counters; a bad port is refused before anything starts", async () => {
  const bad = new CliProcess(['worker', '--metrics-port', '99999'], envFor(lab.config));
  expect(await bad.exited).toBe(2);
  expect(bad.stderr).toBe('cluster-sync: --metrics-port: expected a TCP port 0-65535, got "99999"\n');

  const worker = res.add(new CliProcess(['worker', '--metrics-port', '0'], envFor(lab.config, { CS_LOG_LEVEL: 'info' })), (p) => p.stop());
  const [, url] = (await worker.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/)) as unknown as [string, string];
  expect((await scrape(url)).get('cs_reports_folded_total{state="wait_start"}')).toBeUndefined();
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  expect(await allWait(await nodeClients(res, lab.config, cluster!), 'wait_start')).toEqual(['start', 'start']);
  const m = await scrapeUntil(url, 'cs_reports_folded_total{state="wait_start"}', 2);
  expect(m.get('cs_barrier_resolutions_total{barrier="start",result="start"}')).toBe(1);
  expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
  expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
});

test('GET /metrics counts named messages: sends and waits, waits released by mode and how long they waited, refusals', async () => {
  const workers = res.add(await startWorkers(lab.config), (w) => w.close());
  const { url } = await startOpsApp(res, lab.config, { workerEvents: workers.events });
  const metrics = `${url}/metrics`;
  const { job, spec } = nodesJob(3);
  const [c] = await submitInline(res, lab.config, job, spec);
  const nodes = await nodeClients(res, lab.config, c!);
  const group = Object.fromEntries(c!.jobs.map((j) => [j.job_id, j.node_roles]));
  const [a, b, d] = nodes.map((n) => res.add(new MessageClient(n, group), (m) => m.close())) as [MessageClient, MessageClient, MessageClient];
  const waiting = b.wait('server-ready', 'any', undefined);
  await a.send('server-ready', { ip: '10.0.0.1' });
  await waiting;
  await Promise.all([a.sync('done'), b.sync('done'), d.sync('done')]);
  await expect(a.send('big', { k: 'x'.repeat(4000) })).resolves.toBeDefined();
  await expect(a.send('big', { k2: 'y'.repeat(200) })).rejects.toThrow(/the limit is 4096/);
  const s = await scrapeUntil(metrics, 'cs_messages_refused_total', 1);
  expect(s.get('cs_messages_total{op="send"}')).toBe(5);
  expect(s.get('cs_messages_total{op="wait"}')).toBe(1);
  expect(s.get('cs_message_waits_released_total{mode="any"}')).toBe(1);
  expect(s.get('cs_message_waits_released_total{mode="all"}')).toBe(3);
  expect(s.get('cs_message_wait_seconds_count{mode="all"}')).toBe(3);
  expect(s.get('cs_message_release_latency_seconds_count')).toBe(2);
});
