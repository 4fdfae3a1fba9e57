import { readFileSync } from 'node:fs';
import { eventually } from '../helpers/servers';
import { ShellLab, answers, lastState } from './shell-nodes';

/**
 * Shell nodes running Compass-CI's lib/job.sh (lkp-node.sh, which follows it
 * function by function) against `cluster-sync scheduler`: the client lkp
 * users run, with curl or wget.
 */
const SCRIPT = 'lkp-node.sh';
const lab = new ShellLab();

beforeAll(() =>
  lab.start(
    {
      'cs-pair': 'nodes:\n  pair--1: { roles: [server, monitor], macs: ["ec:f4:bb:cb:7b:92", "ec:f4:bb:cb:7b:93"] }\n  pair--2: { roles: [client] }\n',
      'cs-six': `nodes:\n${[['server'], ['store'], ['client'], ['client'], ['client'], ['client']].map((r, i) => `  six--${i + 1}: { roles: [${r.join(', ')}] }`).join('\n')}\n`,
    },
    {
      'pair.yaml': 'suite: shell\ncluster: cs-pair\nif role server:\n  netserver:\nif role client:\n  netperf:\n',
      'six.yaml': 'suite: shell\ncluster: cs-six\nif role server:\n  netserver:\nif role store:\n  redis-server:\nif role client:\n  netperf:\n',
    },
  ),
);
afterAll(() => lab.stop());

const isServer = (roles: string): boolean => roles.startsWith('server') || roles === 'store';

test('two shell nodes (curl) pass start, ready and finish; roles_ip lines are exported and written to the hosts file; submit --watch exits 0', async () => {
  const { watch, nodes } = await lab.submitWatching('pair.yaml', 2);
  expect(nodes.map((n) => n.roles)).toEqual(['server monitor', 'client']);
  const macs = 'ec:f4:bb:cb:7b:92 ec:f4:bb:cb:7b:93';
  const server = lab.runNode(SCRIPT, nodes[0]!, 'cs-pair', 'daemon', 'ok', { direct_macs: macs, direct_ips: '192.168.222.1 192.168.222.2' });
  const client = lab.runNode(SCRIPT, nodes[1]!, 'cs-pair', 'test', 'ok');
  expect(await Promise.all([server.exited, client.exited])).toEqual([0, 0]);
  expect(answers(server, 'wait_start')).toEqual(['start']);
  expect(answers(server, 'wait_ready').at(-1)).toBe('ready');
  expect(answers(server, 'wait_finish').at(-1)).toBe('finish');
  expect(answers(client, 'wait_start')).toEqual(['start']);
  expect(answers(client, 'wait_ready').at(-1)).toBe('ready');
  expect(answers(client, 'finished')).toEqual(['finish']);
  for (const n of [server, client]) {
    expect(n.stdout).toContain('env server=10.9.0.1\n');
    expect(n.stdout).toContain('env monitor=10.9.0.1\n');
    expect(n.stdout).toContain('env client=10.9.0.2\n');
    expect(n.stdout).toContain('env direct_server_ips=192.168.222.1 192.168.222.2\n');
    expect(n.stdout).toMatch(/done\n$/);
    // lib/job.sh writes "VALUE NAME" per roles_ip line
    const hosts = readFileSync(n.etcHosts, 'utf8');
    expect(hosts).toContain('\n10.9.0.1 server\n');
    expect(hosts).toContain('\n10.9.0.1 monitor\n');
    expect(hosts).toContain('\n10.9.0.2 client\n');
    expect(n.stderr).not.toMatch(/bad variable name|not found/);
  }
  // the server bound its direct addresses to the devices with its MACs (lkp runs ip; here it is recorded)
  expect(readFileSync(`${server.tmp}/ip-commands`, 'utf8')).toContain('ip addr add 192.168.222.2/24 dev eth3\n');
  // write_state answered the cluster state JSON, the +-joined lists as spaces
  expect(server.stdout).toContain('"roles":"server monitor","direct_ips":"192.168.222.1 192.168.222.2","direct_macs":"ec:f4:bb:cb:7b:92 ec:f4:bb:cb:7b:93"');
  expect(await watch.exited).toBe(0);
  expect(watch.stdout).toMatch(/barrier finish\s+finish/);
  expect(watch.stdout).toContain('1 finished, 0 aborted');
});

test("a daemon that fails to start reports failed; the other node's wait answers abort; both exit 1; submit --watch exits non-zero", async () => {
  const { watch, nodes } = await lab.submitWatching('pair.yaml', 2);
  const server = lab.runNode(SCRIPT, nodes[0]!, 'cs-pair', 'daemon', 'fail');
  const client = lab.runNode(SCRIPT, nodes[1]!, 'cs-pair', 'test', 'ok');
  expect(await Promise.all([server.exited, client.exited])).toEqual([1, 1]);
  expect(answers(server, 'failed')).toHaveLength(1);
  expect(lastState(server)).toContain('exit_fail: 1\n');
  expect(answers(client, 'wait_ready').at(-1)).toBe('abort');
  expect(lastState(client)).toBe('cluster.abort: 1\n');
  expect(await watch.exited).toBe(1);
  expect(watch.stdout).toContain('0 finished, 1 aborted');
});

test('a node that comes first loops on retry (wget) until the other arrives', async () => {
  const { watch, nodes } = await lab.submitWatching('pair.yaml', 2);
  const server = lab.runNode(SCRIPT, nodes[0]!, 'cs-pair', 'daemon', 'ok', { HTTP_CLIENT: 'wget' });
  await eventually(() => answers(server, 'wait_start').includes('retry'), 'the first node to be told retry');
  const client = lab.runNode(SCRIPT, nodes[1]!, 'cs-pair', 'test', 'ok', { HTTP_CLIENT: 'wget' });
  expect(await Promise.all([server.exited, client.exited])).toEqual([0, 0]);
  expect(answers(server, 'wait_start').at(-1)).toBe('start');
  expect(await watch.exited).toBe(0);
});

test('six nodes (2 daemon roles, 4 test roles): test nodes that end early have their finished held until the whole cluster finishes, never answered retry', async () => {
  const { watch, cluster, nodes } = await lab.submitWatching('six.yaml', 6);
  const shells = nodes.map((n, i) => lab.runNode(SCRIPT, n, 'cs-six', isServer(n.roles) ? 'daemon' : 'test', i === 5 ? 'wait-release' : 'ok'));
  const [d1, d2, t1, t2, t3, slow] = shells as [(typeof shells)[0], (typeof shells)[0], (typeof shells)[0], (typeof shells)[0], (typeof shells)[0], (typeof shells)[0]];
  const early = [t1, t2, t3];
  // the three early test nodes have sent finished (their state is finish) ...
  await eventually(
    async () => {
      const s = await lab.clusterStates(cluster);
      return [2, 3, 4].every((i) => s[nodes[i]!.job] === 'finish');
    },
    'the early test nodes to report finished',
    30_000,
  );
  // ... and more than a long poll (1 s here) passes: the daemons' wait_finish is answered retry twice more
  const seen = answers(d1, 'wait_finish').length;
  await eventually(() => answers(d1, 'wait_finish').filter((a) => a === 'retry').length >= seen + 2, 'two more long polls of the daemon', 30_000);
  for (const n of early) {
    expect({ host: n.host, exit: n.exitCode(), finished: answers(n, 'finished') }).toEqual({ host: n.host, exit: null, finished: [] });
  }
  expect(slow.exitCode()).toBeNull();
  lab.release();
  expect(await Promise.all(shells.map((s) => s.exited))).toEqual([0, 0, 0, 0, 0, 0]);
  for (const n of [...early, slow]) expect(answers(n, 'finished')).toEqual(['finish']);
  for (const d of [d1, d2]) expect(answers(d, 'wait_finish').at(-1)).toBe('finish');
  expect(await watch.exited).toBe(0);
  expect(watch.stdout).toContain('1 finished, 0 aborted');
}, 120_000);
