import { spawnSync } from 'node:child_process';
import { CLI, assertBuilt } from '../helpers/processes';
import { parseIntFlag } from '../../src/cli/numbers';

/**
 * Issue 19: every numeric flag is parsed and checked where the command line
 * is read (src/cli/numbers.ts). A value that is not a whole number in range
 * is refused before anything starts: exit 2 and one line naming the flag.
 * These runs need no Redis or NATS: a refused flag never gets that far (a
 * wrong URL makes sure that a flag let through would fail otherwise).
 */
function run(args: string[]) {
  assertBuilt();
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, CS_REDIS_URL: 'redis://127.0.0.1:1', CS_NATS_URL: 'nats://127.0.0.1:1' },
  });
}

const BAD: [command: string[], flag: string, value: string][] = [
  [['worker'], '--concurrency', 'abc'],
  [['worker'], '--concurrency', 'NaN'],
  [['worker'], '--concurrency', '2.5'],
  [['worker'], '--concurrency', '-1'],
  [['worker'], '--concurrency', '0'],
  [['worker'], '--concurrency', ''],
  [['worker'], '--lock-ms', '1e4'],
  [['worker'], '--metrics-port', '99999'],
  [['scheduler'], '--port', '-3000'],
  [['scheduler'], '--long-poll', 'forever'],
  [['services'], '--redis-port', '0x1f'],
  [['services'], '--nats-port', '65536'],
  [['node', '--testbox', 'tb', '--scripts', '.'], '--poll-ms', '5'],
];

test.each(BAD)('%j %s %j is refused with exit 2, naming the flag', (command, flag, value) => {
  const r = run([...command, flag, value]);
  expect(r.status).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(new RegExp(`^cluster-sync: ${flag}: expected .*, got ${JSON.stringify(JSON.stringify(value)).slice(1, -1)}\\n$`));
});

test('the --flag=value form is checked the same way', () => {
  const r = run(['worker', '--concurrency=-4']);
  expect(r.status).toBe(2);
  expect(r.stderr).toBe('cluster-sync: --concurrency: expected a whole number of at least 1, got "-4"\n');
});

test('the parser accepts whole numbers in range and says what it expected otherwise', () => {
  expect(parseIntFlag('--concurrency', '16', { min: 1 })).toBe(16);
  expect(parseIntFlag('--port', '0', { min: 0, max: 65_535 })).toBe(0);
  expect(parseIntFlag('--port', '65535', { min: 0, max: 65_535 })).toBe(65_535);
  expect(() => parseIntFlag('--port', '65536', { min: 0, max: 65_535, what: 'a TCP port' })).toThrow('--port: expected a TCP port 0-65535, got "65536"');
  expect(() => parseIntFlag('--n', ' 7', { min: 1 })).toThrow('--n: expected a whole number of at least 1, got " 7"');
  expect(() => parseIntFlag('--n', '9007199254740993')).toThrow('--n: expected a whole number of at least 0');
});
