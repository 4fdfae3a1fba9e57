import path from 'node:path';
import { eventually } from '../helpers/servers';
import { ShellLab, answers, lastState } from './shell-nodes';
import type { ShellNode, SubmittedNode } from './shell-nodes';

/**
 * Shell nodes running intel's upstream lib/job.sh (lkp-node-intel.sh, which
 * follows it function by function): no job_id, so the endpoint finds each
 * node job by spec name and host; no start barrier; the daemon's `finished`
 * comes before its write_state and wait_ready.
 */
const SCRIPT = 'lkp-node-intel.sh';
const lab = new ShellLab();

beforeAll(() =>
  lab.start(
    {
      'cs-duo': 'nodes:\n  duo--1: { roles: [server] }\n  duo--2: { roles: [client] }\n',
      'cs-quad': 'nodes:\n  quad--1: { roles: [server] }\n  quad--2: { roles: [client] }\n  quad--3: { roles: [client] }\n  quad--4: { roles: [client] }\n',
    },
    {
      'duo.yaml': 'suite: intel\ncluster: cs-duo\nif role server:\n  netserver:\nif role client:\n  netperf:\n',
      'quad.yaml': 'suite: intel\ncluster: cs-quad\nif role server:\n  netserver:\nif role client:\n  netperf:\n',
    },
  ),
);
afterAll(() => lab.stop());

function start(n: SubmittedNode, spec: string, program: string, extra: Record<string, string> = {}): ShellNode {
  // intel's client sends no job_id: the node is its spec and host
  return lab.runNode(SCRIPT, { host: n.host, roles: n.roles }, spec, n.roles === 'server' ? 'daemon' : 'test', program, extra);
}

async function legacy(query: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${lab.port}/~lkp/cgi-bin/lkp-cluster-sync?${query}`);
  return { status: r.status, text: await r.text() };
}

function noShellErrors(n: ShellNode): void {
  expect({ host: n.host, errors: n.stderr.split('\n').filter((l) => l !== '' && !/^(answer|paused) /.test(l)) }).toEqual({ host: n.host, errors: [] });
}

test("two nodes pass; the daemon's early finished (before its write_state) does not let ready resolve, so the client exports the server's address", async () => {
  const { watch, cluster, nodes } = await lab.submitWatching('duo.yaml', 2);
  const release = path.join(lab.dir, 'release-duo');
  const client = start(nodes[1]!, 'cs-duo', 'ok', { RELEASE: release });
  await eventually(() => answers(client, 'wait_ready').includes('retry'), 'the client to wait at ready', 15_000);
  // the daemon starts, reports finished, and is held back before its write_state
  const server = start(nodes[0]!, 'cs-duo', 'ok', { PAUSE_BEFORE: 'write_state', RELEASE: release });
  await eventually(() => server.stderr.includes('paused before write_state'), 'the daemon to reach its write_state', 15_000);
  expect(answers(server, 'finished')).toHaveLength(1);
  expect(JSON.parse(answers(server, 'finished')[0]!)).toMatchObject({ [nodes[0]!.job]: { state: '' } });
  const retries = answers(client, 'wait_ready').length;
  await eventually(() => answers(client, 'wait_ready').length >= retries + 2, 'two more long polls of the client', 15_000);
  expect(answers(client, 'wait_ready').every((a) => a === 'retry')).toBe(true);
  expect((await lab.clusterStates(cluster))[nodes[0]!.job]).toBe('');
  lab.release(release);

  expect(await Promise.all([server.exited, client.exited])).toEqual([0, 0]);
  expect(answers(client, 'wait_ready').at(-1)).toBe('ready');
  expect(answers(server, 'wait_ready').at(-1)).toBe('ready');
  expect(answers(server, 'wait_finish').at(-1)).toBe('finish');
  for (const n of [server, client]) {
    expect(n.stdout).toContain('env server=10.9.0.1\n');
    expect(n.stdout).toContain('env client=10.9.0.2\n');
    expect(n.stdout).toMatch(/done\n$/);
    noShellErrors(n);
  }
  // the client's finished is answered at once (the state JSON), not held
  expect(JSON.parse(answers(client, 'finished')[0]!)).toMatchObject({ [nodes[1]!.job]: { state: 'finish' } });
  expect(await watch.exited).toBe(0);
  expect(watch.stdout).toContain('1 finished, 0 aborted');
  // the daemon asking wait_finish again after its cluster ended still finds it and is told finish
  expect(await legacy('cluster=cs-duo&node=duo--1&state=wait_finish')).toEqual({ status: 200, text: 'finish' });
  expect(await legacy('cluster=cs-duo&node=duo--1&state=roles_ip')).toEqual({ status: 200, text: 'direct_server_ips=\nserver=10.9.0.1\ndirect_client_ips=\nclient=10.9.0.2' });
});

test('four nodes pass (curl and wget); the daemon waits at finish until the slowest client ends', async () => {
  const { watch, nodes } = await lab.submitWatching('quad.yaml', 4);
  const release = path.join(lab.dir, 'release-quad');
  const shells = nodes.map((n, i) => start(n, 'cs-quad', i === 3 ? 'wait-release' : 'ok', { RELEASE: release, HTTP_CLIENT: i % 2 ? 'wget' : 'curl' }));
  const server = shells[0]!;
  await eventually(() => answers(server, 'wait_finish').includes('retry'), 'the daemon to wait at finish', 30_000);
  expect(shells[3]!.exitCode()).toBeNull();
  lab.release(release);
  expect(await Promise.all(shells.map((s) => s.exited))).toEqual([0, 0, 0, 0]);
  expect(answers(server, 'wait_finish').at(-1)).toBe('finish');
  for (const n of shells) {
    expect(n.stdout).toContain('env server=10.9.0.1\n');
    expect(n.stdout).toMatch(/done\n$/);
    noShellErrors(n);
  }
  expect(await watch.exited).toBe(0);
  expect(watch.stdout).toContain('1 finished, 0 aborted');
}, 90_000);

test('two nodes fail: the client test fails, the daemon waiting at finish is told abort; both exit 1', async () => {
  const { watch, nodes } = await lab.submitWatching('duo.yaml', 2);
  const server = start(nodes[0]!, 'cs-duo', 'ok');
  const client = start(nodes[1]!, 'cs-duo', 'fail');
  expect(await Promise.all([server.exited, client.exited])).toEqual([1, 1]);
  expect(answers(client, 'failed')).toHaveLength(1);
  expect(lastState(client)).toContain('exit_fail: 1\n');
  expect(answers(server, 'wait_finish').at(-1)).toBe('abort');
  expect(lastState(server)).toBe('cluster.abort: 1\n');
  expect(await watch.exited).toBe(1);
  expect(watch.stdout).toContain('0 finished, 1 aborted');
});

test('four nodes fail: the daemon fails to start, every client waiting at ready is told abort; all exit 1', async () => {
  const { watch, nodes } = await lab.submitWatching('quad.yaml', 4);
  const clients = nodes.slice(1).map((n) => start(n, 'cs-quad', 'ok'));
  await eventually(() => clients.every((c) => answers(c, 'wait_ready').length > 0), 'the clients to wait at ready', 30_000);
  const server = start(nodes[0]!, 'cs-quad', 'fail');
  expect(await Promise.all([server, ...clients].map((s) => s.exited))).toEqual([1, 1, 1, 1]);
  expect(answers(server, 'finished')).toEqual([]);
  for (const c of clients) {
    expect(answers(c, 'wait_ready').at(-1)).toBe('abort');
    noShellErrors(c);
  }
  expect(await watch.exited).toBe(1);
}, 90_000);

test('a host with no node job of that spec: 404 naming spec and host; neither job_id nor cluster and node: 400', async () => {
  expect(await legacy('cluster=cs-duo&node=nosuch--1&state=wait_ready')).toEqual({ status: 404, text: 'no cluster of spec cs-duo has a node on host nosuch--1\n' });
  expect(await legacy('cluster=cs-nosuch&node=duo--1&state=wait_ready')).toEqual({ status: 404, text: 'no cluster of spec cs-nosuch has a node on host duo--1\n' });
  expect((await legacy('cluster=cs-duo&state=wait_ready')).status).toBe(400);
});
