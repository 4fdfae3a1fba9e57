import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Report } from '../../src/bus/messages';
import { prepareClusters } from '../../src/cluster/prepare';
import { submitClusters } from '../../src/cluster/submit';
import { QueueSet } from '../../src/queue/queues';
import { submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { alive, bullJob, daemon, pidsIn, readLog, scriptsTree, startAgent, steps, testScript } from './agent-helpers';

const lab = useTestServers({ per: 'test', workers: true });
const { res } = lab;
/** job id -> report kind -> how many times it was folded. */
let folded: Map<string, Map<string, number>>;
let log: string;

const tree = scriptsTree({
  'daemon/d1': daemon('d1'),
  'daemon/d2': daemon('d2'),
  'tests/t1': testScript('t1'),
  'tests/t2': testScript('t2'),
  'tests/hang': '#!/bin/sh\necho "hang ran pid=$$" >> "$log"\nread _ || true\n',
  'daemon/dies': '#!/bin/sh\nexit 7\n',
  'daemon/no-interpreter': '#!/no/such/interpreter\n',
});

beforeEach(() => {
  folded = new Map();
  lab.workers.events.on('folded', (r: Report) => {
    const m = folded.get(r.job) ?? new Map<string, number>();
    m.set(r.state, (m.get(r.state) ?? 0) + 1);
    folded.set(r.job, m);
  });
  log = path.join(mkdtempSync(path.join(os.tmpdir(), 'cs-life-')), 'log');
});

const SPEC = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n';
const waits = (job: string): Record<string, number> => {
  const m = folded.get(job) ?? new Map<string, number>();
  return Object.fromEntries(['wait_start', 'wait_ready', 'wait_finish', 'finished', 'failed'].map((k) => [k, m.get(k) ?? 0]));
};

test('daemon-only and test-only roles: daemons start in YAML order before any test, one wait per barrier, daemons stopped, jobs completed', async () => {
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nawait_daemons: d1 d2\nport: 1234\nif role server:\n  d1:\n  d2:\n  myvar: srv\nif role client:\n  t1:\n  t2:\n  myvar: cli\n`;
  const [cluster] = await submitInline(res, lab.config, job, SPEC);
  const [srvJob, cliJob] = cluster!.jobs;
  const srv = await startAgent(res, lab.config, 'srv', tree);
  const cli = await startAgent(res, lab.config, 'cli', tree);
  expect(await Promise.all([srv.code, cli.code])).toEqual([0, 0]);

  const lines = readLog(log);
  // Both daemons logged before any test (the tests wait for their lines). Which daemon's shell writes
  // first is up to the machine's scheduler; the agent starting them in YAML order is in its steps below.
  expect([
    ...lines
      .slice(0, 2)
      .map((l) => l.split(' ')[0])
      .sort(),
    ...lines.slice(2).map((l) => l.split(' ')[0]),
  ]).toEqual(['d1', 'd2', 't1', 't2']);
  expect(lines[2]).toContain('roles=client server=127.0.0.1 client=127.0.0.1 direct_server_ips= port=1234 myvar=cli');
  expect(lines[0]).toContain('roles=server');
  for (const pid of pidsIn(lines)) expect(alive(pid)).toBe(false);
  expect(waits(srvJob!.job_id)).toEqual({ wait_start: 1, wait_ready: 1, wait_finish: 1, finished: 0, failed: 0 });
  expect(waits(cliJob!.job_id)).toEqual({ wait_start: 1, wait_ready: 1, wait_finish: 0, finished: 1, failed: 0 });
  expect(steps(cli).map((s) => `${s.step}:${s.result}`)).toEqual([
    'programs:ok',
    'write_state:ok',
    'wait_start:start',
    'roles_ip:ok',
    'wait_ready:ready',
    'test t1:running',
    'test t1:passed',
    'test t2:running',
    'test t2:passed',
    'finished:finish',
    'end:passed',
  ]);
  expect(steps(srv).map((s) => s.step)).toEqual(['programs', 'write_state', 'wait_start', 'roles_ip', 'daemon d1', 'daemon d2', 'wait_ready', 'wait_finish', 'stop daemons', 'end']);
  expect((await bullJob(res, lab.config, 'srv', srvJob!.job_id)).state).toBe('completed');
  expect((await bullJob(res, lab.config, 'cli', cliJob!.job_id)).state).toBe('completed');
  expect((await lab.workers.store.readCluster(cluster!.cluster)).final).toBe('finish');
});

test('a node with two roles starts its daemon, then runs its test, and still waits once per barrier', async () => {
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nawait_daemons: d1\nif role server:\n  d1:\nif role client:\n  t1:\n`;
  const [cluster] = await submitInline(res, lab.config, job, 'nodes:\n  both--1: { roles: [server, client] }\n  cli--1: { roles: [client] }\n');
  const [bothJob] = cluster!.jobs;
  const both = await startAgent(res, lab.config, 'both', tree);
  const cli = await startAgent(res, lab.config, 'cli', tree);
  expect(await Promise.all([both.code, cli.code])).toEqual([0, 0]);
  const lines = readLog(log);
  expect(lines[0]).toMatch(/^d1 start .*roles=server client$/);
  expect(lines.filter((l) => l.startsWith('t1 ran'))).toHaveLength(2);
  expect(waits(bothJob!.job_id)).toEqual({ wait_start: 1, wait_ready: 1, wait_finish: 0, finished: 1, failed: 0 });
  for (const pid of pidsIn(lines)) expect(alive(pid)).toBe(false);
});

test('a failing test fails its node and aborts the other at once: its daemons are stopped, both BullMQ jobs fail with the reason', async () => {
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nawait_daemons: d1\nt1_exit: 3\nif role server:\n  d1:\nif role client:\n  t1:\n  t2:\n`;
  const [cluster] = await submitInline(res, lab.config, job, SPEC);
  const [srvJob, cliJob] = cluster!.jobs;
  const srv = await startAgent(res, lab.config, 'srv', tree);
  const cli = await startAgent(res, lab.config, 'cli', tree);
  expect(await cli.code).toBe(1);
  expect(await srv.code).toBe(3);
  const lines = readLog(log);
  expect(lines.map((l) => l.split(' ')[0])).toEqual(['d1', 't1']); // t2 never ran
  for (const pid of pidsIn(lines)) expect(alive(pid)).toBe(false);
  expect(steps(srv).at(-1)).toMatchObject({ step: 'end', result: 'aborted', detail: `node ${cliJob!.job_id} (client) reported failed: test t1 exited with code 3` });
  expect(await bullJob(res, lab.config, 'cli', cliJob!.job_id)).toEqual({ state: 'failed', failedReason: 'test_failed: test t1 exited with code 3' });
  expect(await bullJob(res, lab.config, 'srv', srvJob!.job_id)).toEqual({ state: 'failed', failedReason: `aborted: node ${cliJob!.job_id} (client) reported failed: test t1 exited with code 3` });
});

test('roles_ip reaches the programs as ROLE=IP, and --etc-hosts appends "IP ROLE" lines', async () => {
  const hosts = path.join(path.dirname(log), 'hosts');
  writeFileSync(hosts, '127.0.0.1 localhost\n');
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  t1:\n`;
  await submitInline(res, lab.config, job, SPEC);
  const srv = await startAgent(res, lab.config, 'srv', tree, { ip: '127.0.0.11' });
  const cli = await startAgent(res, lab.config, 'cli', tree, { ip: '127.0.0.12', etcHosts: hosts });
  expect(await Promise.all([srv.code, cli.code])).toEqual([0, 0]);
  expect(readLog(log).find((l) => l.startsWith('t1'))).toContain('server=127.0.0.11 client=127.0.0.12');
  expect(readFileSync(hosts, 'utf8')).toBe('127.0.0.1 localhost\n127.0.0.11 server\n127.0.0.12 client\n');
});

test('a node whose program is in neither daemon/ nor tests/ ends with a setup error, and the cluster aborts at once', async () => {
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  no-such-test:\n`;
  const [cluster] = await submitInline(res, lab.config, job, SPEC);
  // First come, first served: with admission, the server's machine may not have taken its job yet when the
  // client's setup error ends the cluster, and is then never handed it (docs/admission.md).
  const srv = await startAgent(res, lab.config, 'srv', tree, { admission: 'fifo' });
  const cli = await startAgent(res, lab.config, 'cli', tree, { admission: 'fifo' });
  expect(await cli.code).toBe(5);
  expect(await srv.code).toBe(3);
  expect(steps(cli).find((s) => s.result === 'setup_error')?.detail).toBe(`node job: programs: no program of this node (no-such-test) is in daemon/ or tests/ of ${tree}`);
  const view = await lab.workers.store.readCluster(cluster!.cluster);
  expect(view.final).toBe('abort');
  expect(view.barriers[0]!.reason).toContain('reported failed: setup error: programs: node job: programs: no program');
});

test('an agent stopped mid-test reports abort: its test is stopped and the other node aborts', async () => {
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  hang:\n`;
  await submitInline(res, lab.config, job, SPEC);
  const srv = await startAgent(res, lab.config, 'srv', tree);
  const cli = await startAgent(res, lab.config, 'cli', tree);
  await eventually(() => readLog(log).some((l) => l.startsWith('hang')), "the client's test to run");
  cli.stop.abort(new Error('agent received SIGTERM'));
  expect(await cli.code).toBe(3);
  expect(await srv.code).toBe(3);
  for (const pid of pidsIn(readLog(log))) expect(alive(pid)).toBe(false);
  expect(steps(srv).at(-1)?.detail).toContain('reported abort: agent stopped: agent received SIGTERM');
});

test('a cs-localhost node runs every role itself and waits at no barrier', async () => {
  const job = `suite: t\nlog: ${log}\nawait_daemons: d1\nif role server:\n  d1:\nif role client:\n  t1:\n`;
  const redis = res.redis(lab.config);
  const queues = res.add(new QueueSet(redis, lab.workers.store.keys), (q) => q.close());
  const [cluster] = await submitClusters(lab.workers.store, queues, prepareClusters(job, 'test job'));
  const only = cluster!.jobs[0]!;
  expect(only.standalone).toBe(true);
  const node = await startAgent(res, lab.config, only.testbox, tree);
  expect(await node.code).toBe(0);
  expect(readLog(log).map((l) => l.split(' ')[0])).toEqual(['d1', 't1']);
  // The agent ends once `finished` is accepted (durable); the fold follows.
  await eventually(async () => (await lab.workers.store.readCluster(cluster!.cluster)).final === 'finish', 'the cluster to finish');
  await eventually(() => waits(only.job_id).finished === 1, 'the finished report to be folded');
  expect(waits(only.job_id)).toEqual({ wait_start: 0, wait_ready: 0, wait_finish: 0, finished: 1, failed: 0 });
});

test.each([
  ['dies', 'daemon dies exited with code 7'],
  ['no-interpreter', 'daemon/no-interpreter could not start: spawn'],
])('a daemon that fails (%s) reports failed: its node exits 1 and the other node is aborted', async (name, reason) => {
  // The client's test runs until stopped, so only the daemon's failure can end this cluster.
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\n  ${name}:\nif role client:\n  hang:\n`;
  const [cluster] = await submitInline(res, lab.config, job, SPEC);
  const srv = await startAgent(res, lab.config, 'srv', tree);
  const cli = await startAgent(res, lab.config, 'cli', tree);
  expect(await srv.code).toBe(1);
  expect(await cli.code).toBe(3);
  expect(steps(srv).at(-1)?.detail).toContain(reason);
  expect(steps(cli).at(-1)?.detail).toContain(`node ${cluster!.jobs[0]!.job_id} (server) reported failed: ${reason}`);
  for (const pid of pidsIn(readLog(log))) expect(alive(pid)).toBe(false);
});

test('a barrier that reaches its deadline ends the waiting node with exit 4, naming the missing node', async () => {
  const job = `suite: t\ncluster: cs-test\ncluster_timeout: 1s\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  t1:\n`;
  const [cluster] = await submitInline(res, lab.config, job, SPEC);
  // First come, first served: with admission the server's machine would not be handed a job whose partner has no machine.
  const srv = await startAgent(res, lab.config, 'srv', tree, { admission: 'fifo' });
  expect(await srv.code).toBe(4);
  expect(steps(srv).at(-1)).toMatchObject({
    step: 'end',
    result: 'timed_out',
    detail: expect.stringContaining(`barrier start timed out after 1.00s; still missing: ${cluster!.jobs[1]!.job_id} (client)`),
  });
});
