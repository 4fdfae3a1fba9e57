import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
import type { ClusterEvent } from '../../src/fold/outcome';
import { Keys } from '../../src/core/keys';
import { startWorkers } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { CliProcess, envFor } from '../helpers/processes';
import { Resources, eventually, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';
import { nodeClients } from '../helpers/cluster';
import { allWait } from './ops-helpers';
import { MessageClient } from '../../src/client/message-client';

/*
 * The built `watch` and `status` commands against a lab with two clusters:
 * A aborted at ready (its client failed), B open and waiting at ready.
 */
let servers: TestServers;
let config: ConnectionConfig;
const res = new Resources();
const procs: CliProcess[] = [];
let a: string;
let b: string;
let bJobs: string[];
let clusterB: SubmittedCluster;

beforeAll(async () => {
  servers = await startTestServers();
  config = servers.config();
  res.add(await startWorkers(config), (w) => w.close());
  const { job, spec } = nodesJob(2);
  const [ca] = await submitInline(res, config, job, spec);
  const [cb] = await submitInline(res, config, job, spec);
  a = ca!.cluster;
  clusterB = cb!;
  b = cb!.cluster;
  bJobs = cb!.jobs.map((j) => j.job_id);
  const na = await nodeClients(res, config, ca!);
  await allWait(na, 'wait_start');
  await na[1]!.report('failed', { reason: 'iperf exited 1' });
  await eventually(async () => (await res.redis(config).hget(new Keys(config.keyPrefix).meta(a), 'final')) === 'abort', 'cluster A aborted');
  await allWait(await nodeClients(res, config, cb!), 'wait_start');
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await res.closeAll();
  await servers.stop();
});

function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): CliProcess {
  const p = new CliProcess(args, envFor(config, extraEnv));
  procs.push(p);
  return p;
}
async function run(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  const p = cli(args, extraEnv);
  const code = await p.exited;
  return { code, out: p.stdout, err: p.stderr };
}
/** Starts a watch and waits until it follows live. */
async function watch(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliProcess> {
  const p = cli(['watch', ...args], extraEnv);
  await p.waitFor(/following .* live/);
  return p;
}
const lines = (s: string) => s.split('\n').filter(Boolean);

test('status without an id: a row per open cluster with its pending barrier and nodes waiting', async () => {
  const { code, out } = await run(['status']);
  expect(code).toBe(0);
  // The table of open clusters; what follows a blank line is admission's (machines, clusters waiting for them).
  const rows = lines(out.split('\n\n')[0] ?? '');
  expect(rows[0]).toMatch(/^CLUSTER\s+ROLES\s+PENDING\s+WAITING\s+AGE\s+DEADLINE$/);
  expect(rows).toHaveLength(2); // A is over
  expect(rows[1]).toMatch(new RegExp(`^${b}\\s+server client\\s+ready\\s+0/2\\s+\\S+\\s+in (7h59m|8h0m)$`));
});

test('status ID: every node, the barriers with the abort reason, and the event history', async () => {
  const { code, out } = await run(['status', a]);
  // A did not pass: status exits with its verdict's code (failed: 1, docs/exit-codes.md).
  expect(code).toBe(1);
  expect(out).toContain('verdict: failed (test_failed)');
  expect(out).toContain(`cluster ${a}  spec cs-test  aborted`);
  expect(out).toMatch(/ready\s+abort\s+\S+\s+-\s+node \S+ \(client\) reported failed: iperf exited 1/);
  expect(out).toMatch(/start\s+start\s+\d{4}-/);
  expect(out).toMatch(/\n\S+\s+server\s+start\s+-/);
  expect(out).toMatch(/\n\S+\s+client\s+abort\s+-/);
  expect(out).toMatch(/events \(7\):/);
  expect(out).not.toContain('\u001b[');
  const json = JSON.parse((await run(['status', a, '--json'])).out) as { final: string; events: ClusterEvent[] };
  expect(json.final).toBe('abort');
  // submitted, wait_start x2, start, failed, then ready and finish resolve abort at once.
  expect(json.events.map((e) => (e.type === 'report' ? e.report : e.type === 'resolution' ? `${e.barrier}:${e.result}` : e.type))).toEqual([
    'submitted',
    'wait_start',
    'wait_start',
    'start:start',
    'failed',
    'ready:abort',
    'finish:abort',
  ]);
});

test('status of an unknown or malformed id says so', async () => {
  expect(await run(['status', 'cs-999999'])).toMatchObject({ code: 9, err: 'cluster-sync: unknown cluster cs-999999\n' });
  expect(await run(['status', 'a.b'])).toMatchObject({ code: 2, err: 'cluster-sync: cluster: "a.b" is not a cluster id\n' });
});

test('watch rejects bad flags before connecting, naming the flag', async () => {
  expect(await run(['watch', '--state', 'bogus'])).toMatchObject({ code: 2, err: expect.stringContaining('--state: unknown state "bogus"; expected one of start, ready') });
  expect(await run(['watch', '--since', 'yesterday'])).toMatchObject({ code: 2, err: expect.stringContaining('--since: expected a duration like 10m') });
  expect(await run(['watch', '--since', '2999-01-01T00:00:00Z'])).toMatchObject({ code: 2, err: expect.stringContaining('is in the future') });
  expect(await run(['watch', '--cluster', 'x.>'])).toMatchObject({ code: 2, err: expect.stringContaining('--cluster: "x.>" is not a cluster or job id') });
  expect(await run(['watch', '--node', 'cs-424242'])).toMatchObject({ code: 9, err: expect.stringContaining('--node: unknown node job cs-424242') });
});

test('watch --since --json replays every event once, in order, then follows live', async () => {
  const all = (await res.redis(config).xrange(new Keys(config.keyPrefix).allEvents, '-', '+')) as [string, string[]][];
  const p = await watch(['--since', '1h', '--json']);
  expect(p.stderr).toContain(`replayed ${all.length} events`);
  const replayed = lines(p.stdout).map((l) => JSON.parse(l) as ClusterEvent);
  expect(replayed.map((e) => e.id)).toEqual(all.map(([id]) => id));
  expect(replayed[0]).toMatchObject({ type: 'submitted', cluster: a, nodes: 2, roles: 'server client', spec: 'cs-test' });
});

test('watch --cluster --state abort of an ended cluster prints only its aborts, with reasons, and exits', async () => {
  const p = cli(['watch', '--since', '1h', '--cluster', a, '--state', 'abort']);
  expect(await p.exited).toBe(0);
  const out = lines(p.stdout);
  expect(out).toHaveLength(3);
  expect(out[0]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  ${a}\\s+\\S+ \\(client\\)\\s+failed\\s+start -> abort  iperf exited 1$`));
  expect(out[1]).toMatch(new RegExp(`  ${a}\\s+barrier ready\\s+abort\\s+took \\S+  node \\S+ \\(client\\) reported failed: iperf exited 1$`));
  expect(out[2]).toMatch(/barrier finish\s+abort/);
  expect(p.stdout).not.toContain('\u001b['); // piped: plain
});

test("watch --node follows one node live: its reports and its cluster's barriers, in colour when forced", async () => {
  const p = await watch(['--node', bJobs[0]!], { FORCE_COLOR: '1' });
  const plain = await watch(['--cluster', b]);
  const nodes = await nodeClients(res, config, clusterB);
  expect(await allWait(nodes, 'wait_ready')).toEqual(['ready', 'ready']);
  await p.waitFor(/barrier ready/);
  await plain.waitFor(/barrier ready/);
  const strip = (s: string) =>
    s
      .split('\u001b[')
      .map((part, i) => (i === 0 ? part : part.replace(/^[0-9;]*m/, '')))
      .join('');
  const out = lines(strip(p.stdout));
  expect(p.stdout).toContain('\u001b[');
  expect(out).toHaveLength(2);
  expect(out[0]).toMatch(new RegExp(`${b}\\s+${bJobs[0]} \\(server\\)\\s+wait_ready\\s+start -> ready$`));
  expect(out[1]).toMatch(new RegExp(`${b}\\s+barrier ready\\s+ready\\s+took \\S+$`));
  expect(lines(plain.stdout)).toHaveLength(3);
  expect(plain.stdout).toContain(`${bJobs[1]} (client)`);
});

test('named messages show in status ID (who sent, who waits, who was released after how long) and in watch lines', async () => {
  const { job, spec } = nodesJob(3);
  const [c] = await submitInline(res, config, job, spec);
  const jobs = c!.jobs.map((j) => j.job_id);
  const group = Object.fromEntries(c!.jobs.map((j) => [j.job_id, j.node_roles]));
  const [srv, c1, c2] = (await nodeClients(res, config, c!)).map((n) => res.add(new MessageClient(n, group), (m) => m.close()));
  const released = c1!.wait('server-ready', 'any', undefined);
  await eventually(async () => (await res.redis(config).hget(new Keys(config.keyPrefix).messages(c!.cluster), 'server-ready')) !== null, 'the wait recorded');
  await srv!.send('server-ready', { ip: '10.0.0.1', port: '5201' });
  await released;
  void c2!.wait('done', 'all', 'client', { timeoutMs: 60_000 }).catch(() => undefined);
  await eventually(async () => (await res.redis(config).hget(new Keys(config.keyPrefix).messages(c!.cluster), 'done')) !== null, 'the wait-all recorded');
  const { code, out } = await run(['status', c!.cluster]);
  expect(code).toBe(0);
  expect(out).toMatch(/MESSAGE\s+SENT BY\s+KEYS\s+WAITING\s+RELEASED/);
  expect(out).toMatch(new RegExp(`\\nserver-ready\\s+${jobs[0]}\\s+ip port\\s+-\\s+${jobs[1]} after \\d+(ms|\\.\\d+s)\\n`));
  expect(out).toMatch(new RegExp(`\\ndone\\s+-\\s+-\\s+${jobs[2]} \\(all client\\) for \\S+\\s+-\\n`));
  const p = await watch(['--cluster', c!.cluster, '--since', '1h']);
  await p.waitFor(/wait-all\s+done \(client\)/);
  expect(p.stdout).toMatch(new RegExp(`${jobs[1]} \\(client\\)\\s+wait\\s+server-ready\\n`));
  expect(p.stdout).toMatch(new RegExp(`${jobs[0]} \\(server\\)\\s+send\\s+server-ready  ip port  released ${jobs[1]} after \\d+(ms|\\.\\d+s)\\n`));
});
