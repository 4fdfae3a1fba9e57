import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import type { ConnectionConfig } from '../../src/core/config';
import { startWorkers } from '../../workers';
import type { WorkersHandle } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { Resources, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';

let servers: TestServers;
const res = new Resources();
let config: ConnectionConfig;
let workers: WorkersHandle;

beforeAll(async () => {
  servers = await startTestServers();
  config = servers.config();
  workers = await startWorkers(config, { sweepEveryMs: 100 });
});
afterAll(async () => {
  await res.closeAll();
  await workers.close();
  await servers.stop();
});

test('a node whose heartbeats stop is aborted, and its cluster with it, within three intervals', async () => {
  const HB = 200;
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec, HB);
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  const [a, b] = cluster!.jobs.map((j) => res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close()));
  await a!.start();
  await b!.start();
  const stopA = a!.startHeartbeat(HB);
  const stopB = b!.startHeartbeat(HB);
  await Promise.all([a!.wait('wait_start'), b!.wait('wait_start')]);
  const dead: string[] = [];
  workers.events.on('dead', (_c, j) => dead.push(j));
  const silentSince = Date.now();
  stopB(); // b goes silent, as a node whose machine lost power
  const answer = await a!.wait('wait_ready');
  const detectedMs = Date.now() - silentSince;
  stopA();
  expect(answer.result).toBe('abort');
  expect(answer.reason).toContain(`node ${b!.id.job} (client) reported abort: no heartbeat for 600ms (dead node)`);
  expect(dead).toEqual([b!.id.job]);
  // 3 intervals plus at most one sweep period and one interval of the last beat in flight.
  expect(detectedMs).toBeLessThan(3 * HB + HB + 100 + 2000);
  const view = await workers.store.readCluster(cluster!.cluster);
  expect(view.nodes.find((n) => n.job === b!.id.job)?.state).toBe('abort');
  expect(view.nodes.find((n) => n.job === a!.id.job)?.state).toBe('ready');
});

test('nodes that keep sending heartbeats are never taken for dead', async () => {
  const HB = 100;
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec, HB);
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  const nodes = cluster!.jobs.map((j) => res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close()));
  const stops = nodes.map((n) => n.startHeartbeat(HB));
  await Promise.all(nodes.map((n) => n.wait('wait_start')));
  // Node 0 waits ten heartbeat intervals at ready while node 1 only sends heartbeats: no abort may come.
  const early = await nodes[0]!.wait('wait_ready', { timeoutMs: 10 * HB }).catch((err: Error) => err.message);
  expect(early).toMatch(/no answer at barrier ready within/);
  expect(nodes[0]!.aborted).toBeUndefined();
  const answer = await nodes[1]!.wait('wait_ready');
  stops.forEach((s) => s());
  expect(answer.result).toBe('ready');
});
