import { connect } from 'nats';
import { encodeJson, decodeText } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import { ExitCode } from '../../src/cli/exit-codes';
import { CliProcess, envFor, ROOT } from '../helpers/processes';
import { startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';
import path from 'node:path';
import type { ConnectionConfig } from '../../src/core/config';
import { freePort } from '../../src/services/local-servers';

/** Each test starts several processes; on a busy 2-core machine that takes minutes, not seconds (no timing is asserted). */
jest.setTimeout(240_000);
/**
 * Every command with a server down at start, then brought up (real
 * redis-server and nats-server, stopped and restarted on their ports):
 * long-running commands wait, say which URL once per interval, and serve
 * once it answers; SIGTERM ends a waiting process; one-shot commands go on
 * when the server comes within --give-up.
 */
let servers: TestServers;
let config: ConnectionConfig;
const procs: CliProcess[] = [];
beforeEach(async () => {
  servers = await startTestServers();
  config = servers.config();
});
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()));
  await servers.stop();
});

function start(args: string[], extra: NodeJS.ProcessEnv = {}): CliProcess {
  const p = new CliProcess(args, envFor(config, { CS_LOG_LEVEL: 'info', CS_WAIT_SAY_MS: '1000', ...extra }));
  procs.push(p);
  return p;
}

/** Exit code after SIGTERM; -1 if it had to be killed (SIGKILL at 50 s). */
async function terminate(p: CliProcess): Promise<number | null> {
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 50_000);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

test('worker started before NATS: says which URL it waits for, then serves takes once NATS is up', async () => {
  await servers.nats.stop();
  const worker = start(['worker']);
  await worker.waitFor(new RegExp(`waiting for NATS at nats://127\\.0\\.0\\.1:${servers.nats.port}`));
  await servers.nats.restart();
  await worker.waitFor(/workers ready/);
  expect(worker.stderr).toMatch(/NATS at nats:\/\/\S+ answers; going on/);
  const nc = await connect({ servers: servers.nats.url });
  const reply = JSON.parse(decodeText((await nc.request(new Subjects(config.subjectPrefix).take('nobody'), encodeJson({ v: 1 }), { timeout: 30_000 })).data)) as unknown;
  await nc.close();
  expect(reply).toEqual({ ok: true, job: null });
  expect(await terminate(worker)).toBe(0);
  process.stderr.write(`worker started before NATS, stderr:\n${worker.stderr}\n`);
});

test('worker waiting for Redis ends on SIGTERM without waiting any longer', async () => {
  await servers.redis.stop();
  const worker = start(['worker']);
  await worker.waitFor(/waiting for Redis at redis:\/\//);
  expect(await terminate(worker)).not.toBe(-1);
});

test('watch started before Redis and NATS follows live once both are up', async () => {
  await Promise.all([servers.redis.stop(), servers.nats.stop()]);
  const watch = start(['watch']);
  await watch.waitFor(/waiting for Redis at redis:\/\//);
  await servers.redis.restart();
  await watch.waitFor(/waiting for NATS at nats:\/\//);
  await servers.nats.restart();
  await watch.waitFor(/following all clusters live/);
  expect(await terminate(watch)).toBe(0);
});

test('scheduler with Redis down answers 503 naming Redis, then serves once Redis is up', async () => {
  await servers.redis.stop();
  const scheduler = start(['scheduler', '--port', '0', '--token', 'scheduler-token-0123456789']);
  const url = (await scheduler.waitFor(/listening on (http:\/\/\S+)/))[1]!;
  const down = await fetch(`${url}/clusters/cs-1/result`);
  expect(down.status).toBe(503);
  expect(((await down.json()) as { message: string }).message).toContain(`Redis at redis://127.0.0.1:${servers.redis.port} is not reachable`);
  const post = await fetch(`${url}/jobs`, { method: 'POST', headers: { authorization: 'Bearer scheduler-token-0123456789', 'content-type': 'application/yaml' }, body: 'suite: t\n' });
  expect(post.status).toBe(503);
  await servers.redis.restart();
  const list = start(['list', '--server', url, '--give-up', '60s']);
  expect(await list.exited).toBe(0);
  expect(list.stdout).toMatch(/no clusters/);
  expect(await terminate(scheduler)).toBe(0);
});

test('scheduler stops by itself on SIGTERM when Redis and NATS are already gone', async () => {
  const scheduler = start(['scheduler', '--port', '0', '--token', 'scheduler-token-0123456789']);
  const url = (await scheduler.waitFor(/listening on (http:\/\/\S+)/))[1]!;
  // A long poll held, as lkp's wget holds one.
  const held = fetch(`${url}/~lkp/cgi-bin/lkp-cluster-sync?job_id=1&state=wait_start`).catch(() => undefined);
  await Promise.all([servers.redis.stop(), servers.nats.stop()]);
  // Exit 0 by its own close, not the CLI's 10 s deadline (exit 1, "did not stop within 10s").
  // Its NATS connection, reconnecting, used to keep the process alive after close.
  expect(await terminate(scheduler)).toBe(0);
  expect(scheduler.stderr).not.toContain('did not stop within');
  await held;
});

test('node started before NATS waits for it, then asks for work (no dispatcher: exit 6 after --take-timeout)', async () => {
  await servers.nats.stop();
  const node = start(['node', '--testbox', 'tb1', '--scripts', path.join(ROOT, 'examples/lkp'), '--once', '--take-timeout', '1s', '--poll-ms', '100']);
  await node.waitFor(/waiting for NATS at nats:\/\//);
  await servers.nats.restart();
  expect(await node.exited).toBe(ExitCode.NoJob);
  expect(node.stderr).toMatch(/answers; going on/);
});

test('status with Redis down at start goes on when Redis comes within --give-up', async () => {
  await servers.redis.stop();
  const status = start(['status', 'cs-404', '--give-up', '60s']);
  await status.waitFor(/waiting for Redis at redis:\/\//);
  await servers.redis.restart();
  // It reached Redis: the cluster is unknown there.
  expect(await status.exited).toBe(ExitCode.NotFound);
  expect(status.stderr).toMatch(/unknown cluster cs-404/);
});

test('result with the scheduler down at start goes on when it comes within --give-up', async () => {
  const p = await freePort();
  const result = start(['result', 'cs-404', '--server', `http://127.0.0.1:${p}`, '--give-up', '60s']);
  await result.waitFor(/waiting for the scheduler at http:\/\/127\.0\.0\.1/);
  start(['scheduler', '--port', String(p), '--token', 'scheduler-token-0123456789']);
  expect(await result.exited).toBe(ExitCode.NotFound);
  expect(result.stderr).toMatch(/unknown cluster cs-404/);
});
