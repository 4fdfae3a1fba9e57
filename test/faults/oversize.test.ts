import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Job } from 'bullmq';
import type { NatsConnection } from 'nats';
import { decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import { ClusterStore } from '../../src/cluster/store';
import { NodeClient } from '../../src/client/node-client';
import type { ConnectionConfig } from '../../src/core/config';
import { QueueSet, testboxQueueName } from '../../src/queue/queues';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { submitInline } from '../helpers/cluster';
import { startWorkerProcess } from '../helpers/processes';
import type { CliProcess } from '../helpers/processes';
import { Resources, eventually } from '../helpers/servers';
import { post, startTestScheduler } from '../scheduler/scheduler-helpers';
import { note } from './summary';
import { Keys } from '../../src/core/keys';
import { snapshotKeys } from '../helpers/snapshot';

/**
 * Issue 10, items 1 and 2: an answer or a node job larger than the NATS
 * server's max_payload used to make `msg.respond` throw inside the worker
 * and kill the process (and the next one on the retry). The NATS server here
 * carries at most 8 KiB, so ordinary, valid input overflows it.
 */
const MAX_PAYLOAD = 8192;
let redis: LocalServer;
let nats: LocalServer;
let dir: string;
const res = new Resources();
let config: ConnectionConfig;
let worker: CliProcess;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cs-oversize-'));
  const conf = path.join(dir, 'nats.conf');
  writeFileSync(conf, `max_payload: ${MAX_PAYLOAD}\n`);
  [redis, nats] = await Promise.all([startRedis(), startNats({ config: conf })]);
  config = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: 'ov', keyPrefix: 'ov:' };
  worker = await startWorkerProcess(config);
});
afterAll(async () => {
  await res.closeAll();
  await worker?.stop();
  await Promise.all([redis?.dispose(), nats?.dispose()]);
  rmSync(dir, { recursive: true, force: true });
});

function manyRolesJob(roles: number): { job: string; spec: string } {
  const extra = Array.from({ length: roles }, (_, i) => `role-${String(i).padStart(3, '0')}`).join(', ');
  return {
    job: 'suite: t\ncluster: cs-test\nif role server:\n  srv:\nif role client:\n  cli:\n',
    spec: `nodes:\n  big--1: { roles: [server, ${extra}] }\n  big--2: { roles: [client] }\n`,
  };
}

async function request(nc: NatsConnection, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const msg = await nc.request(subject, encodeJson(body), { timeout: 5000 });
  return JSON.parse(decodeText(msg.data)) as Record<string, unknown>;
}

test('a roles_ip answer over max_payload gets a clear error and the worker lives on', async () => {
  const { job, spec } = manyRolesJob(400);
  const [cluster] = await submitInline(res, config, job, spec);
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  const [a, b] = cluster!.jobs.map((j) => res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close()));
  await a!.start();
  await b!.start();
  await a!.report('write_state', { info: { node_roles: cluster!.jobs[0]!.node_roles, ip: '127.0.0.1', direct_macs: '', direct_ips: '' } });
  await b!.report('write_state', { info: { node_roles: 'client', ip: '127.0.0.2', direct_macs: '', direct_ips: '' } });
  await Promise.all([a!.wait('wait_start'), b!.wait('wait_start')]);
  let refused = '';
  for (let i = 0; i < 3; i++) {
    // Asked three times, as a retrying node would: each used to kill a worker.
    refused = await a!.rolesIp().then(
      () => 'answered',
      (err: Error) => err.message,
    );
  }
  expect(refused).toMatch(/roles_ip answer is \d+ bytes, over the \d+ bytes this NATS server carries/);
  expect(worker.child.exitCode).toBeNull();
  // The same worker still folds reports and answers.
  const answer = await Promise.all([a!.wait('wait_ready'), b!.wait('wait_ready')]);
  expect(answer.map((x) => x.result)).toEqual(['ready', 'ready']);
  expect(worker.child.exitCode).toBeNull();
  note(
    `roles_ip over max_payload (node with 401 roles, server max_payload ${MAX_PAYLOAD} B), asked 3 times`,
    `each answered ${refused}; worker process alive (pid ${worker.pid}), the next barrier resolved ready`,
  );
});

test('a node job over max_payload already in a queue is failed with the reason at take, and the dispatcher lives on', async () => {
  const big = 'x'.repeat(3 * MAX_PAYLOAD);
  const [cluster] = await submitInline(res, config, `suite: t\ncluster: cs-test\nif role server:\n  srv:\n    blob: ${big}\n`, 'nodes:\n  huge--1: { roles: [server] }\n');
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  const reply = await request(nc, subjects.take('huge'), { v: 1, agent: 'test' });
  expect(reply.ok).toBe(false);
  expect(String(reply.reason)).toMatch(/node job cs-\d+ is \d+ bytes, over the \d+ bytes this NATS server carries/);
  const store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
  const queues = res.add(new QueueSet(res.redis(config), store.keys), (q) => q.close());
  const jobId = cluster!.jobs[0]!.job_id;
  const q = queues.get(testboxQueueName('huge'));
  const state = await eventually(async () => {
    const s = await q.getJobState(jobId);
    return s === 'failed' ? s : undefined;
  }, 'the oversized node job to end failed');
  const failed = await Job.fromId(q, jobId);
  expect(failed?.failedReason).toMatch(/too large/);
  // The queue is usable: the next take answers "no job".
  expect(await request(nc, subjects.take('huge'), { v: 1 })).toEqual({ ok: true, job: null });
  expect(worker.child.exitCode).toBeNull();
  note(
    `node job of ${big.length} B in a queue, take over a server with max_payload ${MAX_PAYLOAD} B`,
    `take answered "${String(reply.reason)}"; BullMQ job ${state}: "${failed?.failedReason ?? ''}"; worker alive`,
  );
});

test('submit refuses a node job whose size after alias expansion is over the bound, naming the limit, and writes nothing', async () => {
  const sched = await startTestScheduler(res, config);
  // 60 KB of text: one 80 KB anchor used 30 times expands to a 2.5 MB node job.
  const anchor = 'y'.repeat(80_000);
  const refs = Array.from({ length: 30 }, (_, i) => `    p${i}: *b`).join('\n');
  const job = `suite: t\ncluster: cs-localhost\nbase: &b ${anchor}\nif role server:\n  srv:\n${refs}\n`;
  // The worker's sweep moves BullMQ's own timer and report keys by itself, and admission indexes an earlier test's waiting
  // cluster's admit deadline when its sweep first sees it (cs/admit/due): those are not the submit's.
  const snap = () => snapshotKeys(res.redis(config), config.keyPrefix, { ignore: /cs-bull:cs-(timers|reports):|:stalled-check$|cs\/admit\/due$/ });
  // Admission acts on the earlier tests' clusters within a sweep or two: it admits a waiting cluster whose nodes
  // reported, and runs the pass its last change asked for (~passed catches up with ~gen). On a loaded machine that
  // came between the two snapshots; wait for it first, so the snapshots see only what the submit does.
  const redis = res.redis(config);
  const keys = new Keys(config.keyPrefix);
  await eventually(async () => {
    const [gen, passed] = await redis.hmget(keys.testboxSeen, '~gen', '~passed');
    if ((gen ?? '0') !== (passed ?? '0')) return false;
    for (const cid of await redis.zrange(keys.admitWaiting, 0, -1)) if ((await redis.hlen(keys.reports(cid))) > 0) return false;
    return true;
  }, "admission to act on the earlier tests' clusters");
  const before = await snap();
  const r = await post(sched.url, job, 'application/yaml');
  expect(r.status).toBe(400);
  expect(r.text).toMatch(/node job .* is \d+ bytes once expanded; the limit is \d+ bytes/);
  expect(await snap()).toEqual(before);
  // The scheduler and the workers are fine.
  const ok = await post(sched.url, 'suite: t\ncluster: cs-localhost\nif role server:\n  srv:\n', 'application/yaml');
  expect(ok.status).toBe(200);
  expect(worker.child.exitCode).toBeNull();
  note(`job of ${job.length} B whose alias expands 30 times (2.5 MB node job), POST /jobs`, `HTTP ${r.status} ${r.text.slice(0, 200)}; 0 keys changed; the next submit 200`);
});

test('a process guard logs an unexpected rejection and lives on, and exits non-zero on an uncaught exception', async () => {
  const guard = path.join(__dirname, '../../dist/src/core/process-guards.js');
  const script = (body: string): string => `const { installProcessGuards } = require(${JSON.stringify(guard)});
const log = { error: (o, m) => console.error('ERROR', m), fatal: (o, m) => console.error('FATAL', m) };
installProcessGuards('test', log);
${body}`;
  const { spawn } = await import('node:child_process');
  const run = (body: string): Promise<{ code: number | null; stderr: string; stdout: string }> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, ['-e', script(body)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let stdout = '';
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.on('close', (code) => resolve({ code, stderr, stdout }));
    });
  const lives = await run(`Promise.reject(new Error('nobody listens')); setTimeout(() => console.log('still alive'), 50);`);
  expect(lives.stderr).toContain('unhandled promise rejection (living on): nobody listens');
  expect(lives.stdout).toContain('still alive');
  expect(lives.code).toBe(0);
  const dies = await run(`setTimeout(() => { throw new Error('boom'); }, 0); setTimeout(() => console.log('still alive'), 500);`);
  expect(dies.stderr).toContain('uncaught exception, exiting: boom');
  expect(dies.stdout).not.toContain('still alive');
  expect(dies.code).not.toBe(0);
  note(
    'a promise rejected with no handler / an exception nobody catches, in a process with the guards',
    `logged "${lives.stderr.trim().split('\n')[0] ?? ''}" and lived on; logged "uncaught exception, exiting: boom" and exited ${dies.code}`,
  );
});
