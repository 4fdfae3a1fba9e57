import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import type { ConnectionConfig } from '../../src/core/config';
import { startWorkers } from '../../workers';
import type { WorkersHandle } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { Resources, eventually, startTestServers } from '../helpers/servers';
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
  stopB(); // b goes silent, as a node whose machine lost power
  const answer = await a!.wait('wait_ready');
  stopA();
  expect(answer.result).toBe('abort');
  expect(answer.reason).toContain(`node ${b!.id.job} (client) reported abort: no heartbeat for 600ms (dead node)`);
  // Told of once, however many sweeps saw it silent before its abort was folded. How fast is not
  // asserted here (a loaded machine may be slow); the abort's reason names the window.
  expect(dead).toEqual([b!.id.job]);
  const view = await workers.store.readCluster(cluster!.cluster);
  expect(view.nodes.find((n) => n.job === b!.id.job)?.state).toBe('abort');
  expect(view.nodes.find((n) => n.job === a!.id.job)?.state).toBe('ready');
});

test('nodes that keep sending heartbeats are never taken for dead', async () => {
  // Dead means silent for 3 intervals: 1.5 s here, far more than a busy machine delays a timer.
  const HB = 500;
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec, HB);
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  const nodes = cluster!.jobs.map((j) => res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close()));
  const stops = nodes.map((n) => n.startHeartbeat(HB));
  await Promise.all(nodes.map((n) => n.wait('wait_start')));
  // Node 0 waits at ready while node 1 only sends heartbeats: counted in folded heartbeats, not in time,
  // no abort may come while node 1 sends ten of them.
  let beats = 0;
  const onFolded = (r: { job: string; state: string }): void => void (r.job === nodes[1]!.id.job && r.state === 'heartbeat' && beats++);
  workers.events.on('folded', onFolded);
  const waiting = nodes[0]!.wait('wait_ready');
  await eventually(() => beats >= 10, 'ten heartbeats of node 1 folded', 60_000);
  workers.events.off('folded', onFolded);
  expect(nodes[0]!.aborted).toBeUndefined();
  const answer = await nodes[1]!.wait('wait_ready');
  stops.forEach((s) => s());
  expect(answer.result).toBe('ready');
  expect((await waiting).result).toBe('ready');
});
