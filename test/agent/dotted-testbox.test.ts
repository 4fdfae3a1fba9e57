import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { note } from '../faults/summary';
import { submitInline } from '../helpers/cluster';
import { useTestServers } from '../helpers/use-test-servers';
import { bullJob, daemon, readLog, scriptsTree, startAgent, steps, testScript } from './agent-helpers';

/**
 * Issue 10, item 9: host names with dots (`srv.lab.example.com--1`) were
 * accepted at submit and queued on `tb-srv.lab.example.com`, but the agent
 * refused that testbox, so the jobs could never be taken. Submit and agent
 * now agree: a dot is written `%2E` in the take/done subjects.
 */
const lab = useTestServers({ workers: true });
const { res } = lab;

test('a cluster on dotted host names runs to the end: each agent takes its job by the dotted testbox and ends it completed', async () => {
  const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'cs-dots-')), 'log');
  const tree = scriptsTree({ 'daemon/d1': daemon('d1'), 'tests/t1': testScript('t1') });
  const spec = 'nodes:\n  srv.lab.example.com--1: { roles: [server] }\n  cli.lab.example.com--1: { roles: [client] }\n';
  const [cluster] = await submitInline(res, lab.config, `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  t1:\n`, spec);
  const [srvJob, cliJob] = cluster!.jobs;
  expect(srvJob!.queue).toBe('srv.lab.example.com');
  const srv = await startAgent(res, lab.config, 'srv.lab.example.com', tree);
  const cli = await startAgent(res, lab.config, 'cli.lab.example.com', tree);
  expect(await Promise.all([srv.code, cli.code])).toEqual([0, 0]);
  // The test ran; the daemon's own log line may be cut short by its stop on a busy machine, its start step is not.
  expect(readLog(log).map((l) => l.split(' ')[0])).toContain('t1');
  expect(steps(srv).find((x) => x.step === 'daemon d1')?.result).toBe('started');
  expect((await bullJob(res, lab.config, 'srv.lab.example.com', srvJob!.job_id)).state).toBe('completed');
  expect((await bullJob(res, lab.config, 'cli.lab.example.com', cliJob!.job_id)).state).toBe('completed');
  note(
    'cluster spec with dotted host names (srv.lab.example.com--1, cli.lab.example.com--1)',
    'queued on tb-srv.lab.example.com and tb-cli.lab.example.com; both agents (--testbox srv.lab.example.com / cli.lab.example.com) took their jobs, passed, jobs completed',
  );
});
