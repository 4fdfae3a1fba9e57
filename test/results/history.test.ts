import type { NodeClient } from '../../src/client/node-client';
import type { ClusterRow } from '../../src/results/list';
import type { ClusterResult } from '../../src/results/result';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import { ExitCode } from '../../src/cli/exit-codes';
import { nodeClients } from '../helpers/cluster';
import { CliProcess, envFor } from '../helpers/processes';
import { useTestServers } from '../helpers/use-test-servers';
import { TOKEN, startTestScheduler } from '../scheduler/scheduler-helpers';
import type { SubmittedCluster } from '../../src/cluster/submit';

/** Each test starts several processes; on a busy 2-core machine that takes minutes, not seconds (no timing is asserted). */
jest.setTimeout(240_000);
/**
 * History and re-run (DESIGN §10) through the built CLI against a real
 * scheduler and workers; the nodes are in-process NodeClients that report
 * over NATS like agents.
 */
const lab = useTestServers({ workers: { sweepEveryMs: 100 } });
const { res } = lab;
let url: string;

beforeAll(async () => {
  url = (await startTestScheduler(res, lab.config)).url;
});

const SPEC = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n';
const JOB = 'suite: history\ncluster: cs-test\nif role server:\n  srv:\nif role client:\n  cli:\n';

function cli(...args: string[]): CliProcess {
  return res.add(new CliProcess(args, envFor(lab.config, { CS_API_TOKEN: TOKEN, CS_SCHEDULER_URL: url })), (p) => p.stop());
}

async function submit(): Promise<SubmittedCluster> {
  const r = await fetch(`${url}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ job: JOB, cluster_spec: SPEC }) });
  expect(r.status).toBe(200);
  const msgs = (await r.json()) as SubmitMessage[];
  const cid = msgs[0]!.cluster;
  const meta = await lab.workers.store.redis.hgetall(lab.workers.store.keys.meta(cid));
  return {
    cluster: cid,
    index: 0,
    spec: 'cs-test',
    warnings: [],
    jobs: msgs.map((m) => ({ job_id: m.job_id, cluster: cid, token: meta.token!, node_roles: m.node_roles })),
  } as unknown as SubmittedCluster;
}

/** Both nodes live through every barrier; the client's test passes, or fails with `failed`. */
async function run(c: SubmittedCluster, clientFails: boolean): Promise<void> {
  const [srv, client] = (await nodeClients(res, lab.config, c)) as [NodeClient, NodeClient];
  await Promise.all([srv.wait('wait_start'), client.wait('wait_start')]);
  await Promise.all([srv.wait('wait_ready'), client.wait('wait_ready')]);
  if (clientFails) await client.report('failed', { reason: 'test cli exited with code 1' });
  else await Promise.all([srv.wait('wait_finish'), client.wait('finished')]);
}

test('list shows clusters with their verdicts; --state and --json filter; a rerun links both ways and result --wait exits with its verdict', async () => {
  const passed = await submit();
  await run(passed, false);
  const failed = await submit();
  await run(failed, true);
  const open = await submit();

  const list = cli('list', '--json');
  expect(await list.exited).toBe(0);
  const rows = JSON.parse(list.stdout) as ClusterRow[];
  expect(rows.map((r) => [r.cluster, r.state, r.verdict])).toEqual([
    [open.cluster, 'open', null],
    [failed.cluster, 'ended', 'failed'],
    [passed.cluster, 'ended', 'passed'],
  ]);
  const ended = cli('list', '--state', 'ended', '--since', '1d');
  expect(await ended.exited).toBe(0);
  expect(ended.stdout).toMatch(new RegExp(`^${failed.cluster}\\s+ended\\s+failed\\s+test_failed`, 'm'));
  expect(ended.stdout).not.toContain(open.cluster);

  // status and result of an ended cluster exit with its verdict's code.
  expect(await cli('status', failed.cluster).exited).toBe(ExitCode.Failed);
  expect(await cli('status', passed.cluster).exited).toBe(ExitCode.Ok);
  expect(await cli('status', open.cluster).exited).toBe(ExitCode.Ok);
  expect(await cli('result', open.cluster).exited).toBe(ExitCode.NotEnded);
  expect(await cli('result', 'cs-999999').exited).toBe(ExitCode.NotFound);

  // Re-run the failed one: new ids, the same job; it passes this time.
  const rerun = cli('rerun', failed.cluster, '--json');
  expect(await rerun.exited).toBe(0);
  const msgs = JSON.parse(rerun.stdout) as SubmitMessage[];
  const again = msgs[0]!.cluster;
  expect(again).not.toBe(failed.cluster);
  expect(msgs.map((m) => m.node_roles)).toEqual(['server', 'client']);
  const waiting = cli('result', again, '--wait', '--json', '--poll', '100ms');
  const meta = await lab.workers.store.redis.hgetall(lab.workers.store.keys.meta(again));
  await run({ cluster: again, jobs: msgs.map((m) => ({ job_id: m.job_id, cluster: again, token: meta.token!, node_roles: m.node_roles })) } as unknown as SubmittedCluster, false);
  expect(await waiting.exited).toBe(0);
  const r = JSON.parse(waiting.stdout) as ClusterResult;
  expect([r.verdict, r.rerun_of]).toEqual(['passed', failed.cluster]);
  const original = cli('result', failed.cluster, '--json');
  expect(await original.exited).toBe(ExitCode.Failed);
  expect((JSON.parse(original.stdout) as ClusterResult).reruns).toEqual([again]);
  expect(JSON.parse(meta.job!)).toMatchObject({ suite: 'history', cluster: 'cs-test' });
});

test('watch --cluster of an ended cluster prints its events and exits', async () => {
  const c = await submit();
  await run(c, false);
  const watch = cli('watch', '--cluster', c.cluster);
  expect(await watch.exited).toBe(0);
  expect(watch.stdout).toMatch(/submitted/);
  expect(watch.stdout).toMatch(/barrier finish\s+finish/);
  expect(watch.stderr).toMatch(new RegExp(`cluster ${c.cluster} has ended; printed its \\d+ events`));
});
