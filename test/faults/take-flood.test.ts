import { readdirSync } from 'node:fs';
import { connect } from 'nats';
import { Redis } from 'ioredis';
import { decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from './summary';

/**
 * Issue 11, item 4 (done with the dispatcher of issue 10): every `take` for
 * a testbox name opened a BullMQ Worker (and its Redis connection) that was
 * never closed, so a flood of made-up names grew the worker's sockets and
 * Redis's client list without bound. A testbox without a queue is answered
 * "no job" without opening anything.
 */
const lab = useTestServers({ workerProcess: true });
const { res } = lab;

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function clients(redis: Redis): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(String(await redis.call('INFO', 'clients')))?.[1]);
}

test('2,000 take requests for made-up testbox names: all answered "no job", Redis clients and the worker\'s fds back to their baseline', async () => {
  const admin = res.add(new Redis(lab.config.redisUrl), (r) => r.quit());
  const nc = res.add(await connect({ servers: lab.config.natsUrl }), (c) => c.close());
  const subjects = new Subjects(lab.config.subjectPrefix);
  // A real testbox first: its queue is served as before.
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, lab.config, job, spec);
  const real = (await nc.request(subjects.take('node'), encodeJson({ v: 1 }), { timeout: 5000 })).json<{ ok: boolean; job: { job_id: string } | null }>();
  expect(real.job?.job_id).toBe(cluster!.jobs[0]!.job_id);
  const baseClients = await clients(admin);
  const baseFds = fds(lab.worker.pid);

  const answers = new Map<string, number>();
  for (let i = 0; i < 2000; i += 200) {
    const batch = await Promise.all(Array.from({ length: 200 }, (_, k) => nc.request(subjects.take(`made-up-${i + k}`), encodeJson({ v: 1 }), { timeout: 10_000 }).then((m) => decodeText(m.data))));
    for (const a of batch) answers.set(a, (answers.get(a) ?? 0) + 1);
  }
  expect([...answers]).toEqual([[JSON.stringify({ ok: true, job: null }), 2000]]);
  const peakClients = await clients(admin);
  const peakFds = fds(lab.worker.pid);
  const settled = await eventually(
    async () => {
      const c = await clients(admin);
      const f = fds(lab.worker.pid);
      return c <= baseClients && f <= baseFds ? { c, f } : undefined;
    },
    "Redis clients and the worker's fds to be back to their baseline",
    20_000,
  );
  expect(lab.worker.child.exitCode).toBeNull();
  note(
    'flood of 2,000 take requests for made-up testbox names',
    `all 2,000 answered {ok:true, job:null}; Redis clients ${baseClients} before, ${peakClients} after the flood, ${settled.c} settled; worker fds ${baseFds} -> ${peakFds} -> ${settled.f}`,
  );
});
