import type { NatsConnection } from 'nats';
import type { Redis } from 'ioredis';
import { decodeText, encodeJson } from '../../src/bus/connect';
import type { Report, ReportReply } from '../../src/bus/messages';
import { Subjects } from '../../src/bus/subjects';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
import { startWorkers } from '../../workers';
import type { WorkersHandle } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { WAIT_MS } from '../helpers/processes';
import { Resources, eventually, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';
import { diffSnapshots, snapshotKeys } from '../helpers/snapshot';
import { note } from '../faults/summary';

/**
 * Real Redis, NATS and workers with two submitted 2-node clusters, for
 * tests that throw bad reports at the bridge and check that it refuses them
 * with a reason and that no key under the test's prefix changes.
 */
export interface ReportHarness {
  config: ConnectionConfig;
  workers: WorkersHandle;
  nc: NatsConnection;
  redis: Redis;
  subjects: Subjects;
  /** Two clusters of two nodes each: `a` and `b`. */
  a: SubmittedCluster;
  b: SubmittedCluster;
  /** Every rejection the workers announced: [code, reason]. */
  rejections: [string, string][];
  /** Submits one more cluster of `n` nodes. */
  submit(n: number): Promise<SubmittedCluster>;
}

/** BullMQ's stalled-job check takes a short lock key on its own every 30 s; it is no one's input. */
const HOUSEKEEPING = /:stalled-check$/;

export function useReportHarness(): () => ReportHarness {
  let servers: TestServers;
  const res = new Resources();
  let h: ReportHarness | undefined;
  beforeAll(async () => {
    servers = await startTestServers();
    const config = servers.config();
    // The sweep writes to Redis on its own every period; with this period it runs once, at start.
    const workers = res.add(await startWorkers(config, { sweepEveryMs: 3_600_000 }), (w) => w.close());
    const { job, spec } = nodesJob(2);
    const [a] = await submitInline(res, config, job, spec);
    const [b] = await submitInline(res, config, job, spec);
    const redis = res.redis(config);
    await eventually(() => workers.sweeper.sweeps >= 1 && !workers.sweeper.running, 'the first dead-node sweep to finish');
    const rejections: [string, string][] = [];
    workers.events.on('rejected', (code, reason) => rejections.push([code, reason]));
    h = {
      config,
      workers,
      nc: await res.nats(config),
      redis,
      subjects: new Subjects(config.subjectPrefix),
      a: a!,
      b: b!,
      rejections,
      submit: async (n) => (await submitInline(res, config, nodesJob(n).job, nodesJob(n).spec))[0]!,
    };
  });
  afterAll(async () => {
    await res.closeAll();
    await servers?.stop();
  });
  return () => {
    if (!h) throw new Error('the report harness did not start');
    return h;
  };
}

/** A report that the workers would accept, from node `i` of `cluster`, with `over` laid on top. */
export function goodReport(cluster: SubmittedCluster, i: number, over: Partial<Record<keyof Report, unknown>> = {}): Record<string, unknown> {
  const j = cluster.jobs[i]!;
  return { v: 1, id: `${j.job_id}.wait_start.${Math.random().toString(16).slice(2, 10)}`, cluster: j.cluster, job: j.job_id, state: 'wait_start', at: Date.now(), token: j.token, ...over };
}

/**
 * Sends raw bytes as a report request on `cluster`'s report subject and
 * returns the parsed reply. The request timeout only detects a reply that
 * never comes ({@link WAIT_MS}); how fast replies come is not tested here.
 */
export async function sendRaw(h: ReportHarness, cluster: string, body: Uint8Array | string | object): Promise<ReportReply> {
  const data = body instanceof Uint8Array ? body : typeof body === 'string' ? new TextEncoder().encode(body) : encodeJson(body);
  const msg = await h.nc.request(h.subjects.report(cluster), data, { timeout: WAIT_MS });
  return JSON.parse(decodeText(msg.data)) as ReportReply;
}

export async function snapshot(h: ReportHarness) {
  return snapshotKeys(h.redis, h.config.keyPrefix, { ignore: HOUSEKEEPING });
}

/**
 * Sends `body` and expects a rejection with `code` and a reason matching
 * `reason`, and no change to any key under the prefix. Notes the row of the
 * summary table. Returns the reason.
 */
export async function expectRejected(h: ReportHarness, input: string, cluster: string, body: Uint8Array | string | object, code: string, reason: RegExp | string): Promise<string> {
  const before = await snapshot(h);
  const seen = h.rejections.length;
  const reply = await sendRaw(h, cluster, body);
  expect(reply).toMatchObject({ ok: false, code });
  if (reply.ok) throw new Error('accepted');
  if (typeof reason === 'string') expect(reply.reason).toBe(reason);
  else expect(reply.reason).toMatch(reason);
  expect(reply.retryable).toBeUndefined();
  // The workers logged it as rejected, with the same reason.
  expect(h.rejections.slice(seen)).toEqual([[code, reply.reason]]);
  const changed = diffSnapshots(before, await snapshot(h));
  expect(changed).toEqual([]);
  note(input, `rejected ${code} "${reply.reason.length > 90 ? `${reply.reason.slice(0, 90)}...` : reply.reason}"; ${Object.keys(before).length} keys, 0 changed`);
  return reply.reason;
}
