import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import { RejectedError, TimeoutError } from '../../src/core/errors';
import { startWorkers } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

const lab = useTestServers();
const { res } = lab;

test('with no worker listening the client says so, retries, and is accepted once a worker starts', async () => {
  const config = lab.servers.config();
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec);
  const j = cluster!.jobs[0]!;
  const notices: string[] = [];
  const nc = await res.nats(config);
  const client = res.add(new NodeClient(nc, new Subjects(config.subjectPrefix), { cluster: j.cluster, job: j.job_id, token: j.token }, { onNotice: (l) => notices.push(l), maxBackoffMs: 200 }), (c) =>
    c.close(),
  );
  const sent = client.report('wait_start');
  await eventually(() => notices.length >= 2, 'two retry notices');
  expect(notices[0]).toMatch(/^wait_start: no worker is listening on t[0-9a-f]+\.cluster\.cs-\d+\.report \(is "cluster-sync worker" running\?\); retrying in 100 ms \(attempt 1\)$/);
  const workers = res.add(await startWorkers(config), (w) => w.close());
  await sent;
  await eventually(async () => (await workers.store.readCluster(j.cluster)).nodes[0]!.state === 'start', 'the report to be folded');
});

test('a report the workers reject is not retried: the reason comes back', async () => {
  const config = lab.servers.config();
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec);
  res.add(await startWorkers(config), (w) => w.close());
  const j = cluster!.jobs[0]!;
  const nc = await res.nats(config);
  const notices: string[] = [];
  const client = res.add(new NodeClient(nc, new Subjects(config.subjectPrefix), { cluster: j.cluster, job: j.job_id, token: 'not-the-token' }, { onNotice: (l) => notices.push(l) }), (c) => c.close());
  const err = await client.report('wait_start').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RejectedError);
  expect((err as RejectedError).reason).toBe(`wrong token for cluster ${j.cluster}`);
  expect(notices).toEqual([]);
});

test('the client gives up after its limit with the last problem in the error', async () => {
  const config = lab.servers.config();
  const nc = await res.nats(config);
  const client = res.add(new NodeClient(nc, new Subjects(config.subjectPrefix), { cluster: 'cs-1', job: 'cs-1', token: 'x' }, { giveUpAfterMs: 300, maxBackoffMs: 100 }), (c) => c.close());
  const err = await client.report('heartbeat').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TimeoutError);
  expect((err as Error).message).toMatch(/^gave up sending heartbeat after \d+ attempts: no worker is listening/);
});
