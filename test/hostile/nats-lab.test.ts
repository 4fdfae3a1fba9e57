import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionConfig } from '../../src/core/config';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import { freePort, startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { note } from '../faults/summary';
import { writeLab } from '../helpers/nats-lab';
import type { Lab } from '../helpers/nats-lab';
import { CliProcess, ROOT, envFor } from '../helpers/processes';

/**
 * The whole product as separate processes under the NATS configuration
 * `cluster-sync nats-config` writes for the demo's two testboxes: worker,
 * scheduler, `watch` and `submit --watch` as their users, one node agent per
 * testbox as that testbox's user, and the legacy lkp endpoint speaking for
 * nodes that only know HTTP. Every process does its whole job: the cluster
 * runs to its end, `watch` sees the scheduler's `submitted` event, and the
 * server refused nothing.
 */
const TOKEN = 'lab-token-0123456789abcdef';
const TESTBOXES = ['demo-server', 'demo-client'];

let redis: LocalServer;
let nats: LocalServer;
let lab: Lab;
let tmp: string;
let base: ConnectionConfig;
const procs: CliProcess[] = [];
let worker: CliProcess;
let scheduler: CliProcess;
let url: string;

/** Processes start slowly on a busy 2-core machine: wait for their first lines this long. */
const STARTUP_MS = 60_000;
jest.setTimeout(240_000);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cs-nats-lab-'));
  lab = await writeLab(path.join(tmp, 'lab'), TESTBOXES);
  [redis, nats] = await Promise.all([startRedis(), startNats({ config: lab.authConf })]);
  base = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: 'cs', keyPrefix: 'lab:' };
  worker = run('worker', ['worker']);
  [url, scheduler] = await startScheduler('scheduler');
  await worker.waitFor(/workers ready/, STARTUP_MS);
}, 240_000);
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all([redis?.dispose(), nats?.dispose()]);
  rmSync(tmp, { recursive: true, force: true });
});

/** `cluster-sync ARGS` as `user`, with the settings of that user's .env file. */
function run(user: string, args: string[], extra: NodeJS.ProcessEnv = {}): CliProcess {
  const p = new CliProcess(args, envFor(base, { ...lab.env(user), CS_LOG_LEVEL: 'info', ...extra }));
  procs.push(p);
  return p;
}

async function startScheduler(user: string): Promise<[string, CliProcess]> {
  const p = run(user, ['scheduler', '--port', '0', '--cluster-dir', path.join(ROOT, 'examples/cluster')], { CS_API_TOKEN: TOKEN });
  return [(await p.waitFor(/listening on (http:\/\/\S+)/, STARTUP_MS))[1]!, p];
}

const violations = (): string[] =>
  readFileSync(path.join(nats.dir, 'nats.log'), 'utf8')
    .split('\n')
    .filter((l) => /Violation/.test(l));

test('submit -> agents -> watch: every process does its whole job as its own user, and the server refuses nothing', async () => {
  const watch = run('ops', ['watch', '--json']);
  await watch.waitFor(/following all clusters live/, STARTUP_MS);

  const port = await freePort();
  const jobFile = path.join(tmp, 'echo.yaml');
  writeFileSync(jobFile, readFileSync(path.join(ROOT, 'examples/jobs/echo.yaml'), 'utf8').replace(/^port: \d+$/m, `port: ${port}`));
  const submit = run('ops', ['submit', jobFile, '--server', url, '--token', TOKEN, '--watch']);
  const agents = TESTBOXES.map((tb) => run(`node-${tb}`, ['node', '--testbox', tb, '--scripts', path.join(ROOT, 'examples/lkp'), '--once', '--ip', '127.0.0.1', '--poll-ms', '200']));
  const codes = await Promise.all(agents.map((a) => a.exited));
  expect({ codes, out: agents.map((a) => a.stdout + a.stderr) }).toEqual({ codes: [0, 0], out: expect.anything() as unknown });
  expect(await submit.exited).toBe(0);
  expect(submit.stdout).toMatch(/1 finished, 0 aborted/);
  const submitted = await watch.waitFor(/^\{.*"type":"submitted".*$/m, STARTUP_MS);
  await watch.waitFor(/"type":"resolution".*"barrier":"finish"/, STARTUP_MS);

  const all = [worker, scheduler, watch, submit, ...agents];
  expect(all.map((p) => p.stdout + p.stderr).join('\n')).not.toMatch(/permissions violation/i);
  expect(violations()).toEqual([]);
  const ev = JSON.parse(submitted[0]) as { cluster: string; nodes: number };
  note(
    'echo job under `cluster-sync nats-config` users: worker, scheduler, ops (watch, submit --watch), node-demo-server, node-demo-client',
    `cluster ${ev.cluster} finished; both agents exit 0; watch saw the submitted event (${ev.nodes} nodes); nats-server logged no violation`,
  );
});

test('the legacy endpoint speaks for HTTP-only nodes under the scheduler user', async () => {
  const spec = 'nodes:\n  demo-server--1: { roles: [server] }\n  demo-client--1: { roles: [client] }\n';
  const res = await fetch(`${url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ job: 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n', cluster_spec: spec }),
  });
  expect(res.status).toBe(200);
  const jobs = (await res.json()) as SubmitMessage[];
  const ask = async (job: string, query: string): Promise<string> => (await fetch(`${url}/~lkp/cgi-bin/lkp-cluster-sync?job_id=${job}&${query}`)).text();
  await Promise.all(jobs.map((j) => ask(j.job_id, 'state=write_state&ip=127.0.0.1')));
  for (const [state, answer] of [
    ['wait_start', 'start'],
    ['wait_ready', 'ready'],
    ['finished', 'finish'],
  ]) {
    expect(await Promise.all(jobs.map((j) => ask(j.job_id, `state=${state!}`)))).toEqual([answer, answer]);
  }
  expect(await ask(jobs[0]!.job_id, 'state=roles_ip')).toMatch(/^server=127\.0\.0\.1$/m);
  expect(violations()).toEqual([]);
  note('lkp nodes through the legacy endpoint, scheduler as user "scheduler"', 'write_state, start, ready, finish and roles_ip answered; nats-server logged no violation');
});

test('a refused publish shows in the process log: a scheduler run as the ops user says the submitted event was refused', async () => {
  const [opsUrl, misconfigured] = await startScheduler('ops');
  const spec = 'nodes:\n  demo-server--1: { roles: [server] }\n';
  const res = await fetch(`${opsUrl}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ job: 'suite: t\nif role server:\n  srv:\n', cluster_spec: spec }),
  });
  expect(res.status).toBe(200);
  const [first] = (await res.json()) as SubmitMessage[];
  const line = await misconfigured.waitFor(new RegExp(`NATS server refused publish to \\\\?"cs\\.cluster\\.${first!.cluster}\\.event\\\\?": permissions violation`), STARTUP_MS);
  note('scheduler started with a user that may not publish events (the old secure.conf mistake)', `its log says: ${line[0]}`);
});

test('a node agent started with another testbox\'s credentials is a setup error (exit 5) naming the refusal, not "no job"', async () => {
  const agent = run('node-demo-client', ['node', '--testbox', 'demo-server', '--scripts', path.join(ROOT, 'examples/lkp'), '--once', '--take-timeout', '60s', '--poll-ms', '200']);
  expect(await agent.exited).toBe(5);
  expect(agent.stdout + agent.stderr).toMatch(/refused this node's take on cs\.queue\.demo-server\.take.*may not take node jobs of testbox demo-server/);
});
