import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Report } from '../../src/bus/messages';
import { submitInline } from '../helpers/cluster';
import { CliProcess, envFor } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { alive, bullJob, daemon, pidsIn, readLog, scriptsTree } from './agent-helpers';

/** The built `cluster-sync node` as its own process, as on a test machine. */

const lab = useTestServers({ per: 'test', workers: { sweepEveryMs: 100 } });
const { res } = lab;
let log: string;

const tree = scriptsTree({
  'daemon/d1': daemon('d1'),
  'tests/hang': '#!/bin/sh\necho "hang ran pid=$$" >> "$log"\nread _ || true\n',
  'tests/t1': '#!/bin/sh\necho "t1 ran server=$server" >> "$log"\n',
});
const SPEC = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n';

beforeEach(() => {
  log = path.join(mkdtempSync(path.join(os.tmpdir(), 'cs-agent-')), 'log');
});

function agent(testbox: string, ...extra: string[]): CliProcess {
  const p = new CliProcess(['node', '--testbox', testbox, '--scripts', tree, '--once', '--ip', '127.0.0.1', '--poll-ms', '50', ...extra], envFor(lab.config));
  return res.add(p, (x) => x.stop());
}

test('an agent killed with SIGKILL mid-test stops sending heartbeats: the other agent is aborted as a dead node and exits non-zero', async () => {
  const HB = 300;
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  hang:\n`;
  const [cluster] = await submitInline(res, lab.config, job, SPEC, HB);
  const cliJob = cluster!.jobs[1]!;
  const serverWaits = new Promise<void>((resolve) => lab.workers.events.on('folded', (r: Report) => r.job === cluster!.jobs[0]!.job_id && r.state === 'wait_finish' && resolve()));
  const srv = agent('srv');
  const cli = agent('cli');
  await cli.waitFor(/test hang\s+running/);
  await serverWaits;
  const killedAt = Date.now();
  cli.kill('SIGKILL');
  expect(await cli.exited).toBe(-1);
  expect(await srv.exited).toBe(3);
  const detectedMs = Date.now() - killedAt;
  process.stderr.write(`dead-node detection with a ${HB} ms heartbeat: server agent exited ${detectedMs} ms after SIGKILL of the client agent\n`);
  // How fast is printed, not asserted (a busy machine may be slow): the abort's reason names the window.
  expect(srv.stdout).toMatch(new RegExp(`end +aborted node ${cliJob.job_id} \\(client\\) reported abort: no heartbeat for 900ms \\(dead node\\)`));
  // The server's daemon was stopped; the killed agent's test noticed its agent was gone.
  await eventually(() => pidsIn(readLog(log)).every((pid) => !alive(pid)), 'every program to be gone');
  // The dispatcher ended the dead node's BullMQ job, failed with the reason.
  await eventually(async () => (await bullJob(res, lab.config, 'cli', cliJob.job_id)).state === 'failed', 'the dead node job to fail');
  expect((await bullJob(res, lab.config, 'cli', cliJob.job_id)).failedReason).toBe('aborted: no heartbeat for 900ms (dead node)');
});

test('an agent waiting at a barrier survives a NATS restart: it sends its wait again and gets the answer it missed', async () => {
  const job = `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  t1:\n`;
  const [cluster] = await submitInline(res, lab.config, job, SPEC);
  const [srvJob, cliJob] = cluster!.jobs;
  const waiting = new Promise<void>((resolve) => lab.workers.events.on('folded', (r: Report) => r.job === srvJob!.job_id && r.state === 'wait_start' && resolve()));
  // The server runs alone until the client's wait is folded by hand: first come, first served, as
  // Compass-CI hands node jobs out. Under admission (the default) a two-node cluster gets both machines
  // at once or none, so a lone server agent would wait for a node job forever.
  const srv = agent('srv', '--admission', 'fifo');
  await waiting;
  await lab.servers.nats.stop();
  // While NATS is down, the client's wait_start completes the start barrier: the resolution reaches nobody.
  const outcome = await lab.workers.store.fold({
    v: 1,
    id: `${cliJob!.job_id}.wait_start.offline`,
    cluster: cliJob!.cluster,
    job: cliJob!.job_id,
    state: 'wait_start',
    at: Date.now(),
    token: cliJob!.token,
  });
  expect(outcome.ok && outcome.resolutions.map((r) => r.result)).toEqual(['start']);
  await lab.servers.nats.restart();
  await srv.waitFor(/reconnected to NATS; sending wait_start again/);
  await srv.waitFor(/wait_start +start/);
  const cli = agent('cli', '--admission', 'fifo');
  expect(await Promise.all([srv.exited, cli.exited])).toEqual([0, 0]);
  expect(readLog(log).find((l) => l.startsWith('t1'))).toBe('t1 ran server=127.0.0.1');
  expect((await lab.workers.store.readCluster(cluster!.cluster)).final).toBe('finish');
});
