import { ClusterStore } from '../../src/cluster/store';
import { scriptsTree } from '../agent/agent-helpers';
import { submitInline } from '../helpers/cluster';
import { CliProcess, envFor, startWorkerProcess } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Two `cluster-sync node` agents started with one `--machine-id` (DESIGN §9):
 * the one started last takes the idle machine over (as an agent restarted
 * before its old lease lapsed must), and the other is refused from then on,
 * says which id is in use, and exits `setup_error` after two leases of
 * refusals; its goodbye does not make the machine gone. (A machine running a
 * node job is not taken over: test/admission/admission-take.test.ts.)
 */

const lab = useTestServers({ per: 'test' });
const { res } = lab;
const tree = scriptsTree({ 'tests/quick': '#!/bin/sh\nexit 0\n' });

beforeEach(async () => {
  res.add(await startWorkerProcess(lab.config), (p) => p.stop());
});

function agent(machine: string): CliProcess {
  const p = new CliProcess(['node', '--testbox', 'tdup', '--scripts', tree, '--ip', '127.0.0.1', '--poll-ms', '50', '--lease', '1s', '--machine-id', machine], envFor(lab.config));
  return res.add(p, (x) => x.stop());
}

test('two agents with one --machine-id: one keeps the machine and runs its jobs, the other is told the id is in use and exits setup_error', async () => {
  const first = agent('dup1');
  await first.waitFor(/waiting for a node job of testbox tdup \(machine dup1\)/);
  const second = agent('dup1');
  await second.waitFor(/waiting for a node job of testbox tdup \(machine dup1\)/);
  await first.waitFor(/the dispatcher refused machine dup1 for now: machine id dup1 is in use by another agent \(which took it over/);
  expect(await first.exited).toBe(5);
  expect(first.stdout).toMatch(/machine id dup1 is in use by another agent .*give each agent its own --machine-id; still so after 2000 ms \(two leases\), so another agent runs as machine dup1/);
  // The first agent's goodbye did not make the machine gone: the second still runs what it is handed.
  const [s] = await submitInline(res, lab.config, 'suite: t\ncluster: cs-test\nif role server:\n  quick:\n', 'nodes:\n  tdup--1: { roles: [server] }\n');
  await second.waitFor(new RegExp(`${s!.jobs[0]!.job_id} .*end\\s+passed`));
  const store = new ClusterStore(res.redis(lab.config), { keyPrefix: lab.config.keyPrefix });
  await eventually(async () => (await store.readCluster(s!.cluster)).final === 'finish', 'S to finish');
});
