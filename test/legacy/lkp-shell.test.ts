import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionConfig } from '../../src/core/config';
import { startWorkers } from '../../workers';
import { CliProcess, envFor } from '../helpers/processes';
import { Resources, eventually, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';

/**
 * Real shell "nodes" (test/legacy/lkp-node.sh: what lkp-tests' lib/job.sh
 * does, with curl or wget) run concurrently against `cluster-sync scheduler`
 * started from the built command line; `cluster-sync submit --watch` submits
 * and follows the cluster.
 */
const SCRIPT = path.join(__dirname, 'lkp-node.sh');
const TOKEN = 'shell-test-token-0123456789';
let servers: TestServers;
let config: ConnectionConfig;
let scheduler: CliProcess;
let port: string;
let dir: string;
const res = new Resources();

beforeAll(async () => {
  servers = await startTestServers();
  config = servers.config();
  res.add(await startWorkers(config), (w) => w.close());
  dir = mkdtempSync(path.join(os.tmpdir(), 'cs-lkp-shell-'));
  writeFileSync(
    path.join(dir, 'cs-pair'),
    'nodes:\n  pair--1: { roles: [server, monitor], macs: ["ec:f4:bb:cb:7b:92", "ec:f4:bb:cb:7b:93"] }\n  pair--2: { roles: [client] }\n',
  );
  writeFileSync(path.join(dir, 'job.yaml'), 'suite: shell\ncluster: cs-pair\nif role server:\n  netserver:\nif role client:\n  netperf:\n');
  scheduler = new CliProcess(['scheduler', '--port', '0', '--cluster-dir', dir, '--long-poll', '1'], envFor(config, { CS_API_TOKEN: TOKEN }));
  res.add(scheduler, (s) => s.stop());
  [, port] = (await scheduler.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/)) as unknown as [string, string];
});
afterAll(async () => {
  await res.closeAll();
  await servers.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface NodeJobLine {
  job: string;
  roles: string;
}

/** `cluster-sync submit --watch`, started; resolves with its node jobs once printed. */
async function submitWatching(): Promise<{ watch: CliProcess; nodes: NodeJobLine[] }> {
  const watch = res.add(
    new CliProcess(['submit', path.join(dir, 'job.yaml'), '--watch', '--server', `http://127.0.0.1:${port}`], envFor(config, { CS_API_TOKEN: TOKEN })),
    (w) => w.stop(),
  );
  await watch.waitFor(/^cluster \S+ .*\n.*\n.*host pair--2$/m);
  const nodes = [...watch.stdout.matchAll(/^ {2}(\S+)\s+(.+?)\s+queue \S+\s+host \S+$/gm)].map((m) => ({ job: m[1] as string, roles: m[2] as string }));
  expect(nodes.map((n) => n.roles)).toEqual(['server monitor', 'client']);
  return { watch, nodes };
}

interface ShellNode {
  stdout: string;
  stderr: string;
  resultRoot: string;
  exited: Promise<number | null>;
}

function runNode(job: string, roles: string, extra: Record<string, string>): ShellNode {
  const resultRoot = mkdtempSync(path.join(dir, 'result-'));
  const isServer = roles.startsWith('server');
  const child = spawn('sh', [SCRIPT], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LKP_SERVER: '127.0.0.1',
      LKP_CGI_PORT: port,
      LKP_USER: 'lkp',
      id: job,
      cluster: 'cs-pair',
      HOSTNAME: isServer ? 'pair--1' : 'pair--2',
      node_roles: roles,
      direct_macs: isServer ? 'ec:f4:bb:cb:7b:92 ec:f4:bb:cb:7b:93' : '',
      direct_ips: isServer ? '192.168.222.1 192.168.222.2' : '',
      NODE_IP: isServer ? '10.9.0.1' : '10.9.0.2',
      RESULT_ROOT: resultRoot,
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: ShellNode = { stdout: '', stderr: '', resultRoot, exited: new Promise((r) => child.once('close', (code) => r(code))) };
  child.stdout.on('data', (d: Buffer) => (node.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (node.stderr += d.toString()));
  res.add(child, async (c) => {
    if (c.exitCode === null) c.kill('SIGKILL');
  });
  return node;
}

test('two shell nodes (curl) pass start, ready and finish; roles_ip lines are exported; submit --watch exits 0', async () => {
  const { watch, nodes } = await submitWatching();
  const [server, client] = [runNode(nodes[0]!.job, nodes[0]!.roles, { NODE_LIFE: 'daemon' }), runNode(nodes[1]!.job, nodes[1]!.roles, { NODE_LIFE: 'test' })];
  expect(await Promise.all([server.exited, client.exited])).toEqual([0, 0]);
  expect(server.stdout).toContain('answer wait_start start\n');
  expect(server.stdout).toContain('answer wait_ready ready\n');
  expect(server.stdout).toContain('answer wait_finish finish\n');
  expect(client.stdout).toContain('answer wait_start start\n');
  expect(client.stdout).toContain('answer wait_ready ready\n');
  expect(client.stdout).toContain('answer finished finish\n');
  // what the programs see: every role's address, the server's two direct addresses joined by a space
  for (const n of [server, client]) {
    expect(n.stdout).toContain('env server=10.9.0.1\n');
    expect(n.stdout).toContain('env monitor=10.9.0.1\n');
    expect(n.stdout).toContain('env client=10.9.0.2\n');
    expect(n.stdout).toContain('env direct_server_ips=192.168.222.1 192.168.222.2\n');
    expect(n.stdout).toMatch(/done\n$/);
  }
  // write_state answered the cluster state JSON with the +-joined lists as spaces
  const state = JSON.parse(readFileSync(path.join(server.resultRoot, 'write_state.json'), 'utf8')) as Record<string, { roles: string; direct_macs: string }>;
  expect(state[nodes[0]!.job]).toMatchObject({ roles: 'server monitor', direct_macs: 'ec:f4:bb:cb:7b:92 ec:f4:bb:cb:7b:93' });
  expect(await watch.exited).toBe(0);
  expect(watch.stdout).toMatch(/barrier finish\s+finish/);
  expect(watch.stdout).toContain('1 finished, 0 aborted');
});

test('a node reporting failed makes the other\'s wait answer abort; both exit 1; submit --watch exits non-zero', async () => {
  const { watch, nodes } = await submitWatching();
  const server = runNode(nodes[0]!.job, nodes[0]!.roles, { NODE_LIFE: 'daemon', NODE_FAIL: '1' });
  const client = runNode(nodes[1]!.job, nodes[1]!.roles, { NODE_LIFE: 'test' });
  expect(await Promise.all([server.exited, client.exited])).toEqual([1, 1]);
  expect(server.stdout).toContain('reported failed\n');
  expect(client.stdout).toContain('answer wait_ready abort\n');
  expect(readFileSync(path.join(client.resultRoot, 'last_state'), 'utf8')).toBe('cluster.abort: 1\n');
  const failed = JSON.parse(readFileSync(path.join(server.resultRoot, 'failed.json'), 'utf8')) as Record<string, { state: string }>;
  expect(failed[nodes[0]!.job]!.state).toBe('abort');
  expect(await watch.exited).toBe(1);
  expect(watch.stdout).toContain('0 finished, 1 aborted');
});

test('a node that comes first loops on retry (wget) until the other arrives', async () => {
  const { watch, nodes } = await submitWatching();
  const server = runNode(nodes[0]!.job, nodes[0]!.roles, { NODE_LIFE: 'daemon', HTTP_CLIENT: 'wget' });
  await eventually(() => server.stderr.includes('raw wait_start: retry'), 'the first node to be told retry');
  const client = runNode(nodes[1]!.job, nodes[1]!.roles, { NODE_LIFE: 'test', HTTP_CLIENT: 'wget' });
  expect(await Promise.all([server.exited, client.exited])).toEqual([0, 0]);
  expect(server.stdout).toContain('answer wait_start start\n');
  expect(await watch.exited).toBe(0);
});
