import { CliProcess, envFor } from '../helpers/processes';
import { useTestServers } from '../helpers/use-test-servers';
import { alive, scriptsTree } from './agent-helpers';

const lab = useTestServers();
const tree = scriptsTree({ 'tests/t': '#!/bin/sh\n' });

function cli(args: string[], env: NodeJS.ProcessEnv = envFor(lab.config)): CliProcess {
  return lab.track(new CliProcess(args, env));
}

/** The environment of someone who configured no servers: the demo starts its own. */
function bareEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('CS_')) delete env[k];
  return env;
}

test.each([
  [['--testbox', 'a b', '--scripts', tree], /--testbox: testbox: "a b" is no testbox: only letters, digits, "_", "." and "-"/],
  [['--testbox', 'box', '--scripts', '/no/such/tree'], /--scripts: \/no\/such\/tree does not exist/],
  [['--testbox', 'box', '--scripts', tree, '--take-timeout', 'soon'], /--take-timeout: expected a positive duration/],
])('node %j is refused with exit 2 and a reason naming the flag', async (args, message) => {
  const p = cli(['node', ...args]);
  expect(await p.exited).toBe(2);
  expect(p.stderr).toMatch(message);
});

test('node with an unreachable NATS keeps trying, says where, and ends on SIGTERM (exit 3, stopped)', async () => {
  const p = cli(['node', '--testbox', 'box', '--scripts', tree, '--nats-url', 'nats://127.0.0.1:1']);
  await p.waitFor(/waiting for NATS at nats:\/\/127\.0\.0\.1:1 \(CONNECTION_REFUSED\); retrying/);
  p.kill('SIGTERM');
  expect(await p.exited).toBe(3);
});

test('node --once with no dispatcher listening says so, and gives up after --take-timeout with exit 6', async () => {
  const p = cli(['node', '--testbox', 'box', '--scripts', tree, '--once', '--take-timeout', '500ms', '--poll-ms', '50']);
  expect(await p.exited).toBe(6);
  expect(p.stdout).toContain(`no dispatcher is listening on ${lab.config.subjectPrefix}.queue.box.take (is "cluster-sync worker" running?); retrying`);
  expect(p.stdout).toContain('no node job for testbox box within 500 ms');
});

test('demo: with no servers configured it starts its own, runs a real two-node test that passes, and leaves no process behind', async () => {
  const p = cli(['demo'], bareEnv());
  expect(await p.exited).toBe(0);
  expect(p.stdout).toMatch(/\[client agent\] .*\[echo-client\] reply "pong ping cs-2 from server@127\.0\.0\.1": contains "pong", passed/);
  expect(p.stdout).toMatch(/barrier start resolved start after/);
  expect(p.stdout).toMatch(/summary cluster cs-1: .*finish/);
  expect(p.stdout).toContain('the client test ran and passed');
  const pids = [...p.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
  expect(pids.length).toBeGreaterThanOrEqual(5); // redis, nats, two agents, the daemon
  expect(pids.filter(alive)).toEqual([]);
});

test('demo --fail: the client test fails, the server is aborted at once and its daemon stopped; exit 1', async () => {
  const p = cli(['demo', '--fail'], bareEnv());
  expect(await p.exited).toBe(1);
  expect(p.stdout).toMatch(/barrier finish resolved abort after [\d.]+m?s: node cs-2 \(client\) reported failed: test echo-client exited with code 1/);
  expect(p.stdout).toMatch(/server agent exit 3 \(aborted\)/);
  expect(p.stdout).toMatch(/client agent exit 1 \(test_failed\)/);
  expect(p.stdout).toMatch(/the client test failed, and the server was aborted [\d.]+m?s after the client reported failed/);
  expect([...p.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])).filter(alive)).toEqual([]);
});

test('demo stopped with Ctrl-C stops everything it started', async () => {
  const p = cli(['demo'], bareEnv());
  await p.waitFor(/started the client node agent/);
  p.kill('SIGINT');
  expect(await p.exited).toBe(130);
  expect(p.stdout).toContain('interrupted: stopping everything the demo started');
  expect([...p.stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])).filter(alive)).toEqual([]);
});
