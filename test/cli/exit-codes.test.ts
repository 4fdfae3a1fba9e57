import { freePort } from '../../src/services/local-servers';
import { ExitCode } from '../../src/cli/exit-codes';
import { CliProcess } from '../helpers/processes';

/** Each test starts several processes; on a busy 2-core machine that takes minutes, not seconds (no timing is asserted). */
jest.setTimeout(240_000);
/**
 * The one exit-code table (docs/exit-codes.md) and help that tells the truth,
 * against the built CLI. Servers here are ports nobody listens on: one-shot
 * commands must give up in bounded time naming the URL.
 */
function run(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return new CliProcess(args, { ...process.env, CS_API_TOKEN: '', CS_SCHEDULER_URL: '', ...env });
}

test.each([
  [['frobnicate'], /unknown command 'frobnicate'/],
  [['result'], /missing required argument 'cluster'/],
  [['status', '--no-such-flag'], /unknown option '--no-such-flag'/],
  [['result', 'cs-1', '--server', 'localhost:3000'], /--server: "localhost:3000" must start with http:\/\/ or https:\/\//],
  [['result', 'cs-1', '--server', 'http://127.0.0.1:3000/api'], /--server: "http:\/\/127.0.0.1:3000\/api" has a path/],
  [['cancel', 'cs-1'], /--token: is required/],
  [['rerun', 'cs-1'], /--token: is required/],
  [['scheduler', '--port', '0'], /--token: is required/],
  [['result', 'cs-1', '--json', '--junit'], /give --json or --junit, not both/],
  [['result', 'no.such.id'], /is not a cluster id/],
])('a bad command line exits 2 and says what is wrong: %j', async (args, message) => {
  const p = run(args);
  expect(await p.exited).toBe(ExitCode.Usage);
  expect(p.stderr).toMatch(message);
});

test('help lists only the flags each command uses, and names what the worker runs', async () => {
  const help = async (cmd: string): Promise<string> => {
    const p = run([cmd, '--help']);
    expect(await p.exited).toBe(0);
    return p.stdout;
  };
  for (const cmd of ['node', 'submit']) expect(await help(cmd)).not.toMatch(/--redis-url|--key-prefix/);
  expect(await help('node')).toMatch(/--nats-url/);
  expect(await help('status')).not.toMatch(/--nats-url|--subject-prefix/);
  for (const cmd of ['result', 'cancel', 'list', 'rerun']) expect(await help(cmd)).not.toMatch(/--redis-url|--nats-url/);
  expect(await help('worker')).toMatch(/dispatcher of node jobs/);
});

test.each([
  ['result', ['result', 'cs-1']],
  ['cancel', ['cancel', 'cs-1', '--token', 'x'.repeat(20)]],
  ['list', ['list']],
  ['rerun', ['rerun', 'cs-1', '--token', 'x'.repeat(20)]],
])('%s with no scheduler answering gives up after --give-up, naming the URL, exit 69', async (_name, args) => {
  const port = await freePort();
  const p = run([...args, '--server', `http://127.0.0.1:${port}`, '--give-up', '1s']);
  expect(await p.exited).toBe(ExitCode.Unavailable);
  expect(p.stderr).toContain(`waiting for the scheduler at http://127.0.0.1:${port}`);
  expect(p.stderr).toContain(`the scheduler at http://127.0.0.1:${port} did not answer within 1s`);
});

test('submit with no scheduler answering exits 69 naming the URL', async () => {
  const port = await freePort();
  const p = run(['submit', 'examples/jobs/echo.yaml', '--server', `http://127.0.0.1:${port}`, '--token', 'x'.repeat(20), '--give-up', '1s']);
  expect(await p.exited).toBe(ExitCode.Unavailable);
  expect(p.stderr).toContain(`the scheduler at http://127.0.0.1:${port} did not answer within 1s`);
});

test('status with no Redis answering exits 69 naming the URL, without stack traces', async () => {
  const port = await freePort();
  const p = run(['status', 'cs-1', '--redis-url', `redis://:secret@127.0.0.1:${port}`, '--give-up', '1s']);
  expect(await p.exited).toBe(ExitCode.Unavailable);
  expect(p.stderr).toContain(`Redis at redis://:***@127.0.0.1:${port} did not answer within 1s`);
  expect(p.stderr).not.toContain('secret');
  expect(p.stderr).not.toMatch(/\n\s+at /);
});
