import { defaultMachineId } from '../../src/agent/agent';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ClusterResult } from '../../src/results/result';
import { scriptsTree, daemon } from '../agent/agent-helpers';
import { submitInline } from '../helpers/cluster';
import { readJUnit } from '../helpers/junit-reader';
import { CliProcess, envFor } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { TOKEN, startTestScheduler } from '../scheduler/scheduler-helpers';

/** Each test starts several processes; on a busy 2-core machine that takes minutes, not seconds (no timing is asserted). */
jest.setTimeout(240_000);
/**
 * One result per cluster (DESIGN §10), end to end: real Redis and NATS,
 * in-process workers and scheduler, real `cluster-sync node` agents and the
 * built CLI (`result`, `cancel`).
 */
const lab = useTestServers({ per: 'test', workers: { sweepEveryMs: 100, retryBackoffMs: 200 } });
const { res } = lab;
let url: string;
let dir: string;

const tree = scriptsTree({
  'daemon/d1': daemon('d1'),
  'tests/t_ok': '#!/bin/sh\necho "t_ok ran" >> "$log"\n',
  'tests/t_fail': '#!/bin/sh\necho "t_fail ran" >> "$log"\nexit 1\n',
  'tests/hang': '#!/bin/sh\necho "hang ran pid=$$" >> "$log"\nread _ || true\nexit 1\n',
  // Hangs the first time (until its agent dies and stdin closes), passes every later time.
  'tests/flaky': '#!/bin/sh\nif [ -e "$marker" ]; then echo "flaky passed" >> "$log"; exit 0; fi\ntouch "$marker"\nread _ || true\nexit 1\n',
});
const SPEC = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n';

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cs-results-'));
  url = (await startTestScheduler(res, lab.config)).url;
});

function job(client: string, extra = '', clientExtra = ''): string {
  return `suite: t\ncluster: cs-test\nlog: ${dir}/log\nmarker: ${dir}/marker\n${extra}\nif role server:\n  d1:\nif role client:\n${clientExtra}  ${client}:\n`;
}

/** An agent process; its lkp stats go to DIR/<testbox>/last_state (`--result-root`). */
function agent(testbox: string, ...extra: string[]): CliProcess {
  const p = new CliProcess(['node', '--testbox', testbox, '--scripts', tree, '--once', '--ip', '127.0.0.1', '--poll-ms', '50', '--result-root', path.join(dir, testbox), ...extra], envFor(lab.config));
  return res.add(p, (x) => x.stop());
}

function cli(...args: string[]): CliProcess {
  const p = new CliProcess([...args, '--server', url], envFor(lab.config, { CS_API_TOKEN: TOKEN }));
  return res.add(p, (x) => x.stop());
}

function lastState(testbox: string): string {
  return readFileSync(path.join(dir, testbox, 'last_state'), 'utf8');
}

async function submit(text: string): Promise<SubmittedCluster> {
  const [c] = await submitInline(res, lab.config, text, SPEC, 300);
  return c!;
}

async function result(cid: string): Promise<{ code: number | null; r: ClusterResult }> {
  const p = cli('result', cid, '--wait', '--json', '--poll', '100ms');
  const code = await p.exited;
  return { code, r: JSON.parse(p.stdout) as ClusterResult };
}

async function junit(cid: string): Promise<{ code: number | null; xml: string }> {
  const p = cli('result', cid, '--junit');
  return { code: await p.exited, xml: p.stdout };
}

test('a passed cluster: verdict passed, each program with its exit and duration, JUnit that a reader accepts', async () => {
  const c = await submit(job('t_ok'));
  expect(await Promise.all([agent('srv').exited, agent('cli').exited])).toEqual([0, 0]);
  expect(existsSync(path.join(dir, 'srv', 'last_state'))).toBe(false);
  const { code, r } = await result(c.cluster);
  expect(code).toBe(0);
  expect(r).toMatchObject({ state: 'ended', verdict: 'passed', end_cause: 'finished', attempts: [{ attempt: 1, verdict: 'passed' }] });
  const [srv, client] = r.nodes;
  expect(srv).toMatchObject({ host: 'srv--1', testbox: 'srv', roles: 'server', ended: 'passed', programs: [{ name: 'd1', kind: 'daemon', result: 'stopped' }] });
  expect(client).toMatchObject({ host: 'cli--1', roles: 'client', ended: 'passed', programs: [{ name: 't_ok', kind: 'test', exit: 0, result: 'passed' }] });
  // The machine that ran the node: its admission id (by default the host name and the testbox).
  expect(client!.machine).toBe(defaultMachineId('cli'));
  expect(r.barriers.map((b) => [b.name, b.result])).toEqual([
    ['multinode-barrier-start', 'pass'],
    ['multinode-barrier-ready', 'pass'],
    ['multinode-barrier-finish', 'pass'],
  ]);
  const x = await junit(c.cluster);
  expect(x.code).toBe(0);
  const report = readJUnit(x.xml);
  expect(report.suites).toEqual([expect.objectContaining({ name: `cluster ${c.cluster}`, failures: 0, errors: 0, tests: 5 })]);
  expect(report.suites[0]!.properties.verdict).toBe('passed');
  expect(report.cases.map((k) => [k.name, k.outcome])).toContainEqual([`test t_ok on ${client!.job} (client)`, 'passed']);
});

test('a test failure is never retried, whatever cluster_retries says: verdict failed, exit 1, the failing program named', async () => {
  const c = await submit(job('t_fail', 'cluster_retries: 2'));
  expect(await Promise.all([agent('srv').exited, agent('cli').exited])).toEqual([3, 1]);
  // lkp's own stats, as its wait_cluster_state and check_exit_code write them.
  expect(lastState('srv')).toBe('cluster.abort: 1\n');
  expect(lastState('cli')).toBe('test.t_fail.exit_code.1: 1\nexit_fail: 1\n');
  // The retrier judged the end (and dropped it) without a new attempt.
  await eventually(async () => (await lab.workers.store.redis.zcard(lab.workers.store.keys.retryDue)) === 0, 'the retrier to judge the end');
  const { code, r } = await result(c.cluster);
  expect(code).toBe(1);
  expect(r).toMatchObject({ verdict: 'failed', end_cause: 'test_failed', end_kind: 'test', attempts: [expect.objectContaining({ attempt: 1 })] });
  expect(r.abort_reason).toMatch(/reported failed: test t_fail exited with code 1/);
  expect(r.nodes[1]).toMatchObject({ ended: 'test_failed', programs: [{ name: 't_fail', exit: 1, result: 'failed' }] });
  const report = readJUnit((await junit(c.cluster)).xml);
  expect(report.cases.find((k) => k.name.startsWith('test t_fail'))).toMatchObject({ outcome: 'failure', message: 'test t_fail exited with code 1' });
  expect(report.cases.find((k) => k.name === 'multinode-barrier-finish')).toMatchObject({ outcome: 'failure' });
  expect((await lab.workers.store.openClusters()).length).toBe(0);
});

test('a node SIGKILLed in attempt 1 is an infrastructure end: attempt 2 runs with new ids and passes; the result lists both', async () => {
  const c = await submit(job('flaky', 'cluster_retries: 1'));
  const srv1 = agent('srv');
  const cli1 = agent('cli');
  await cli1.waitFor(/test flaky\s+running/);
  cli1.kill('SIGKILL');
  expect(await srv1.exited).toBe(3);
  // The retrier submits attempt 2 after its backoff; new agents take it.
  const second = await eventually(async () => (await lab.workers.store.redis.hget(lab.workers.store.keys.meta(c.cluster), 'attempt:2')) || undefined, 'attempt 2 to be submitted');
  expect(second).not.toBe(c.cluster);
  expect(await Promise.all([agent('srv').exited, agent('cli').exited])).toEqual([0, 0]);
  const { code, r } = await result(c.cluster);
  expect(code).toBe(0);
  expect(r).toMatchObject({ state: 'ended', verdict: 'passed', attempt: 2, attempt_cluster: second });
  expect(r.attempts.map((a) => [a.attempt, a.cluster, a.verdict, a.end_cause])).toEqual([
    [1, c.cluster, 'aborted', 'dead_node'],
    [2, second, 'passed', 'finished'],
  ]);
  // The same result from either attempt's id.
  expect((await result(second)).r.attempts).toEqual(r.attempts);
  const x = await junit(c.cluster);
  const report = readJUnit(x.xml);
  expect(report.cases.find((k) => k.name.startsWith('multinode-attempt-1'))).toMatchObject({ outcome: 'skipped' });
  expect(report.cases.find((k) => k.name.startsWith('test flaky'))).toMatchObject({ outcome: 'passed' });
  process.stderr.write(`retried cluster ${c.cluster} -> ${second}, JUnit:\n${x.xml}`);
});

test('cancel of a waiting cluster: 401 without the token, then ended cancelled with who and why; a second cancel is 409 and changes nothing', async () => {
  const c = await submit(job('t_ok'));
  const bare = await fetch(`${url}/clusters/${c.cluster}`, { method: 'DELETE' });
  expect(bare.status).toBe(401);
  expect((await lab.workers.store.readCluster(c.cluster)).final).toBeUndefined();
  const first = cli('cancel', c.cluster, '--by', 'alice', '--reason', 'wrong kernel');
  expect(await first.exited).toBe(0);
  expect(first.stdout).toMatch(/cancelled by alice: wrong kernel/);
  const before = await lab.workers.store.redis.hgetall(lab.workers.store.keys.meta(c.cluster));
  const again = cli('cancel', c.cluster, '--by', 'bob');
  expect(await again.exited).toBe(10);
  expect(again.stderr).toMatch(/ended already \(abort, cancelled\); nothing changed/);
  expect(await lab.workers.store.redis.hgetall(lab.workers.store.keys.meta(c.cluster))).toEqual(before);
  const { code, r } = await result(c.cluster);
  expect(code).toBe(7);
  expect(r).toMatchObject({ verdict: 'cancelled', end_cause: 'cancelled', end_kind: 'operator', cancelled_by: 'alice', abort_reason: 'cancelled by alice: wrong kernel' });
  expect(r.nodes.map((n) => n.ended)).toEqual(['never_ran', 'never_ran']);
});

test('cancel of a running cluster: every node hears it at once and stops its programs; the verdict is cancelled', async () => {
  const c = await submit(job('hang'));
  const srv = agent('srv');
  const client = agent('cli');
  await client.waitFor(/test hang\s+running/);
  expect(await cli('cancel', c.cluster, '--by', 'bob', '--reason', 'lab maintenance').exited).toBe(0);
  expect(await Promise.all([srv.exited, client.exited])).toEqual([3, 3]);
  for (const a of [srv, client]) expect(a.stdout).toMatch(/cancelled by bob: lab maintenance/);
  const { code, r } = await result(c.cluster);
  expect(code).toBe(7);
  expect(r.nodes[1]).toMatchObject({ ended: 'aborted', programs: [{ name: 'hang', result: 'stopped' }] });
  const report = readJUnit((await junit(c.cluster)).xml);
  expect(report.cases.find((k) => k.name.startsWith('test hang'))).toMatchObject({ outcome: 'error', message: expect.stringMatching(/cancelled by bob/) as unknown });
});

test('a node of a role with essential: false fails without aborting the others; success roles [server] makes the verdict passed', async () => {
  const c = await submit(job('t_fail', 'success: roles [server]', '  essential: false\n'));
  expect(await Promise.all([agent('srv').exited, agent('cli').exited])).toEqual([0, 1]);
  const { code, r } = await result(c.cluster);
  expect(code).toBe(0);
  expect(r).toMatchObject({ verdict: 'passed', end_cause: 'finished', policy: { success: { mode: 'roles', roles: ['server'] }, optionalRoles: ['client'] } });
  expect(r.nodes.map((n) => [n.roles, n.essential, n.ended])).toEqual([
    ['server', true, 'passed'],
    ['client', false, 'test_failed'],
  ]);
  expect(r.barriers.every((b) => b.result === 'pass')).toBe(true);
});

test('success: any passes with one node passed; the default success all fails the same cluster', async () => {
  const any = await submit(job('t_fail', 'success: any', '  essential: false\n'));
  expect(await Promise.all([agent('srv').exited, agent('cli').exited])).toEqual([0, 1]);
  expect((await result(any.cluster)).r.verdict).toBe('passed');
  const all = await submit(job('t_fail', '', '  essential: false\n'));
  expect(await Promise.all([agent('srv').exited, agent('cli').exited])).toEqual([0, 1]);
  const { code, r } = await result(all.cluster);
  expect([code, r.verdict, r.end_cause]).toEqual([1, 'failed', 'finished']);
});

test('a bad policy is refused at submit with 400 naming the field, and creates nothing', async () => {
  for (const [extra, field] of [
    ['cluster_retries: 9', 'cluster_retries'],
    ['success: some', 'success'],
    ['success: roles [nosuch]', 'success'],
  ]) {
    const res2 = await fetch(`${url}/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ job: job('t_ok', extra), cluster_spec: SPEC }),
    });
    expect(res2.status).toBe(400);
    expect(((await res2.json()) as { message: string }[])[0]!.message).toContain(`${field}:`);
  }
  const bad = await fetch(`${url}/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ job: job('t_ok', '', '  essential: maybe\n'), cluster_spec: SPEC }),
  });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { message: string }[])[0]!.message).toContain('if role client.essential: must be true or false');
  expect(await lab.workers.store.openClusters()).toEqual([]);
});

test('a barrier deadline: verdict timed_out, exit 4 from the agent and from result --wait, lkp stats cluster.timeout', async () => {
  const c = await submit(job('t_ok', 'cluster_timeout: 2s'));
  // Only the server comes: the start barrier times out. Under admission the cluster would wait for a
  // machine of cli (and end not_admitted): a FIFO take admits it, as an lkp client's report does.
  expect(await agent('srv', '--admission', 'fifo').exited).toBe(4);
  expect(lastState('srv')).toBe('cluster.abort: 1\ncluster.timeout: 1\n');
  const { code, r } = await result(c.cluster);
  expect(code).toBe(4);
  expect(r).toMatchObject({ verdict: 'timed_out', end_cause: 'timed_out', end_kind: 'infrastructure' });
  expect(r.abort_reason).toMatch(/^barrier start timed out after 2.00s; still missing: .*\(client\)/);
  expect(r.nodes.map((n) => n.ended)).toEqual(['timed_out', 'never_ran']);
});
