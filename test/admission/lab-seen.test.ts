import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import type { TakeReply, TakeRequest } from '../../src/bus/queue-messages';
import { ClusterStore } from '../../src/cluster/store';
import { bullJob, scriptsTree } from '../agent/agent-helpers';
import { submitInline } from '../helpers/cluster';
import { CliProcess, envFor, startWorkerProcess } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Issue 20, "What was seen", items 1-4, each with a `cluster-sync worker`
 * process and `cluster-sync node` agent processes (the built CLI). Each fails
 * on the FIFO hand-out of before: see the comment of each test.
 */

const lab = useTestServers({ per: 'test' });
const { res } = lab;
let dir: string;
let log: string;
let flag: string;

const tree = scriptsTree({
  'tests/quick': '#!/bin/sh\necho "quick ran roles=$node_roles" >> "$log"\n',
  'tests/wait': '#!/bin/sh\nuntil [ -e "$flag" ]; do sleep 0.05; done\necho "wait ran" >> "$log"\n',
});
const PAIR = 'nodes:\n  taa--1: { roles: [server] }\n  tbb--1: { roles: [client] }\n';
const ONLY = (tb: string, role: string): string => `nodes:\n  ${tb}--1: { roles: [${role}] }\n`;
const job = (extra = '', program = 'quick'): string => `suite: t\ncluster: cs-test\nlog: ${log}\nflag: ${flag}\n${extra}\nif role server:\n  ${program}:\nif role client:\n  ${program}:\n`;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cs-lab-'));
  log = path.join(dir, 'log');
  flag = path.join(dir, 'flag');
  res.add(await startWorkerProcess(lab.config), (p) => p.stop());
});

function agent(testbox: string, machine: string, extra: string[] = []): CliProcess {
  const p = new CliProcess(['node', '--testbox', testbox, '--scripts', tree, '--ip', '127.0.0.1', '--poll-ms', '50', '--machine-id', machine, ...extra], envFor(lab.config));
  return res.add(p, (x) => x.stop());
}

/** A machine played by the test: one take request as the agent sends it, then whatever the test does. */
async function rawTake(testbox: string, req: Omit<TakeRequest, 'v'>): Promise<TakeReply> {
  const nc = await res.nats(lab.config);
  const msg = await nc.request(new Subjects(lab.config.subjectPrefix).take(testbox), encodeJson({ v: 1, ...req }), { timeout: 20_000 });
  return JSON.parse(decodeText(msg.data)) as TakeReply;
}
const jobOf = (r: TakeReply): string | null => (r.ok && r.job ? r.job.job_id : null);
const store = (): ClusterStore => new ClusterStore(res.redis(lab.config), { keyPrefix: lab.config.keyPrefix });

// Before: B's agent was handed Z's node job after Z had aborted, and exited 4 ("barrier start timed out").
test('1. a node job of an ended cluster is never handed out: the late machine is told there is no job', async () => {
  const [z] = await submitInline(res, lab.config, job('cluster_timeout: 5s\nadmit_timeout: 5s'), PAIR);
  const a = agent('taa', 'a1');
  await a.waitFor(/waiting for a node job of testbox taa \(machine a1\)/);
  await eventually(async () => (await store().readCluster(z!.cluster)).final === 'abort', 'Z to end', 60_000);
  const b = agent('tbb', 'b1', ['--once', '--take-timeout', '3s']);
  expect(await b.exited).toBe(6);
  expect(b.stdout).toMatch(/no node job for testbox tbb within 3000 ms/);
  const tbJob = z!.jobs[1]!.job_id;
  await eventually(async () => (await bullJob(res, lab.config, 'tbb', tbJob)).state === 'failed', "Z's untaken node job to be failed");
  expect((await bullJob(res, lab.config, 'tbb', tbJob)).failedReason).toMatch(new RegExp(`^its cluster ${z!.cluster} ended \\(not admitted within 5`));
});

// Before: A was handed X's node job and waited at start until B's job ended (S waited too).
test('2. a busy partner does not idle the machine that came first: A runs the one-node job S while X waits for B', async () => {
  const [long] = await submitInline(res, lab.config, job('', 'wait'), ONLY('tbb', 'client'));
  const b = agent('tbb', 'b1');
  await b.waitFor(/test wait\s+running/);
  const [x] = await submitInline(res, lab.config, job(), PAIR);
  const [s] = await submitInline(res, lab.config, job(), ONLY('taa', 'server'));
  const a = agent('taa', 'a1', ['--once']);
  expect(await a.exited).toBe(0);
  expect(a.stdout).toContain(s!.jobs[0]!.job_id);
  expect(a.stdout).not.toContain(x!.jobs[0]!.job_id);
  expect((await bullJob(res, lab.config, 'taa', x!.jobs[0]!.job_id)).state).toBe('waiting');
  // B's job ends; A comes back: X is admitted on both at once and passes.
  writeFileSync(flag, '');
  const a2 = agent('taa', 'a1', ['--once']);
  expect(await a2.exited).toBe(0);
  expect(a2.stdout).toContain(x!.jobs[0]!.job_id);
  await eventually(async () => (await store().readCluster(x!.cluster)).final === 'finish', 'X to finish');
  expect((await store().readCluster(long!.cluster)).final).toBe('finish');
});

// Before: dead-node detection started at a node's first heartbeat; a machine that took its job and said
// nothing held its partner at start until cluster_timeout (8 h here).
test('3a. a machine that took its node job first come first served and died is found dead within a few heartbeats', async () => {
  const [w] = await submitInline(res, lab.config, job(), PAIR, 300);
  const a = agent('taa', 'a1', ['--once', '--admission', 'fifo']);
  await a.waitFor(new RegExp(`${w!.jobs[0]!.job_id} .*write_state`));
  expect(jobOf(await rawTake('tbb', {}))).toBe(w!.jobs[1]!.job_id);
  expect(await a.exited).toBe(3);
  expect(a.stdout).toContain(`node ${w!.jobs[1]!.job_id} (client) reported abort: no heartbeat for 900ms (dead node)`);
});

// Before: the worker recorded the job taken, the agent's take timed out, its retry got nothing, and the cluster
// stayed at start until cluster_timeout.
test('3b. a retried take gets the same job back; a machine that then says nothing is found dead; no one else gets its job', async () => {
  const [v] = await submitInline(res, lab.config, job(), PAIR, 300);
  const a = agent('taa', 'a1', ['--once']);
  await a.waitFor(/waiting for a node job of testbox taa \(machine a1\)/);
  const first = await rawTake('tbb', { machine: 'b-dead', session: 'p1' });
  expect(jobOf(first)).toBe(v!.jobs[1]!.job_id);
  const again = await rawTake('tbb', { machine: 'b-dead', session: 'p1' });
  expect(again).toEqual(first);
  expect(await a.exited).toBe(3);
  expect(a.stdout).toContain(`node ${v!.jobs[1]!.job_id} (client) reported abort: no heartbeat for 900ms (dead node)`);
  expect(jobOf(await rawTake('tbb', { machine: 'b2', session: 'p2' }))).toBeNull();
});

// Before: A was held in Y for its whole 40 s cluster_timeout, then ran S2.
test('4. an absent partner does not hold a machine: A runs S2 while Y waits for a machine of B; status says so', async () => {
  const [y] = await submitInline(res, lab.config, job('cluster_timeout: 40s'), PAIR);
  const [s2] = await submitInline(res, lab.config, job(), ONLY('taa', 'server'));
  const a = agent('taa', 'a1', ['--once']);
  expect(await a.exited).toBe(0);
  expect(a.stdout).toContain(s2!.jobs[0]!.job_id);
  expect((await store().readCluster(y!.cluster)).final).toBeUndefined();
  // The --once agent left after S2: its machine is gone, not busy.
  const status = new CliProcess(['status'], envFor(lab.config));
  expect(await status.exited).toBe(0);
  expect(status.stdout).toMatch(
    new RegExp(
      `${y!.cluster} waiting \\S+ \\(not admitted in \\S+: ends not_admitted\\)\\n    testbox taa: no live machine for \\S+ \\(needs 1\\)\\n    testbox tbb: no live machine for \\S+ \\(needs 1\\)`,
    ),
  );
});
