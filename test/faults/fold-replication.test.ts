import { Writable } from 'node:stream';
import pino from 'pino';
import { Subjects } from '../../src/bus/subjects';
import { decodeText } from '../../src/bus/connect';
import type { Report } from '../../src/bus/messages';
import type { ConnectionConfig } from '../../src/core/config';
import { enqueueReports } from '../../src/fold/batch';
import { QueueSet } from '../../src/queue/queues';
import { startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { startWorkers } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { Resources, eventually, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';
import { note } from './summary';

/**
 * A fold's answers are published only once a replica holds the fold, as
 * every "accepted" is (docs/high-availability.md). A primary frozen past a
 * failover, when it wakes, runs the folds still in its socket buffers and
 * answers them before the sentinels make it a replica; its answers came
 * from state the new primary never had (test/ha/redis-freeze once saw
 * nodes answered "ready" that way, and their wait_ready never folded on the
 * new primary). Here the replica alone is frozen, so no replica holds
 * what the primary folds: the barrier must not be answered until one does.
 */
let servers: TestServers;
let replica: LocalServer;
const res = new Resources();

beforeAll(async () => {
  servers = await startTestServers();
  replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(servers.redis.port)] });
});
afterAll(async () => {
  process.kill(replica.pid, 'SIGCONT');
  await res.closeAll();
  await replica.dispose();
  await servers.stop();
});

/** A logger whose lines the test can read. */
function capturedLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines };
}

test('the last wait_start is folded while no replica acknowledges it: nobody is answered until a replica holds the fold', async () => {
  const config: ConnectionConfig = { ...servers.config(), minReplicas: 1, replicaTimeoutMs: 200 };
  const admin = res.redis(config);
  await eventually(async () => /connected_slaves:1\b/.test(await admin.info('replication')) && /state=online/.test(await admin.info('replication')), 'the replica to be in sync');
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec);
  const { logger, lines } = capturedLogger();
  const workers = res.add(await startWorkers(config, { logger }), (w) => w.close());
  const subjects = new Subjects(config.subjectPrefix);
  const answers: string[] = [];
  const nc = await res.nats(config);
  nc.subscribe(subjects.barrier(cluster!.cluster), { callback: (_e, m) => answers.push(decodeText(m.data)) });
  await nc.flush();

  const report = (i: number): Report => {
    const j = cluster!.jobs[i]!;
    return { v: 1, id: `${j.job_id}.start-${i}`, cluster: j.cluster, job: j.job_id, state: 'wait_start', at: Date.now(), token: j.token };
  };
  // Node 1 at start, folded and replicated; then the replica freezes and node 2's wait_start, the last one, comes.
  const queues = res.add(new QueueSet(admin, workers.store.keys), (q) => q.close());
  await enqueueReports(queues, [report(0)]);
  await eventually(async () => (await workers.store.readCluster(cluster!.cluster)).nodes.filter((n) => n.state === 'start').length === 1, 'node 1 folded');
  process.kill(replica.pid, 'SIGSTOP');
  await enqueueReports(queues, [report(1)]);
  // The primary folds it (the barrier is resolved there), no replica acknowledges it: the fold is tried again,
  // and nobody was answered.
  const retried = () => lines.some((l) => /fold failed because of Redis/.test(l) && /NOREPLICAS/.test(l));
  await eventually(() => retried() || answers.length > 0, 'a fold retried for want of a replica (or an answer)');
  expect(answers).toEqual([]);
  expect((await workers.store.readCluster(cluster!.cluster)).barriers[0]?.result).toBe('start');

  process.kill(replica.pid, 'SIGCONT');
  await eventually(() => answers.length > 0, 'the start barrier answered once the replica holds the fold');
  expect(new Set(answers.map((a) => (JSON.parse(a) as { barrier: string; result: string }).result))).toEqual(new Set(['start']));
  note(
    'the last report of a barrier folded on a primary whose only replica is frozen (SIGSTOP), min replicas 1',
    'the fold was tried again for want of a replica (NOREPLICAS) and the barrier was not answered; answered start once the replica was continued',
  );
});
