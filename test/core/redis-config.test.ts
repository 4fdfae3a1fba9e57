import { connectionEnv, loadConnectionConfig } from '../../src/core/config';
import { CliProcess } from '../helpers/processes';

const NO_ENV = {};

test('sentinels and the primary name give every connection its sentinels, passwords from the environment', () => {
  const config = loadConnectionConfig(
    { redisSentinels: '127.0.0.1:26379, host-b.lab:26380,[::1]:26381', redisMaster: 'cs-primary' },
    { CS_REDIS_PASSWORD: 'r-secret', CS_REDIS_SENTINEL_PASSWORD: 's-secret', CS_MIN_REPLICAS: '2' },
  );
  expect(config.redisSentinels).toEqual([
    { host: '127.0.0.1', port: 26379 },
    { host: 'host-b.lab', port: 26380 },
    { host: '::1', port: 26381 },
  ]);
  expect(config.redisMaster).toBe('cs-primary');
  expect(config.redisPassword).toBe('r-secret');
  expect(config.redisSentinelPassword).toBe('s-secret');
  expect(config.minReplicas).toBe(2);
  // A child process gets the same connections, and no Redis URL beside the sentinels.
  const env = connectionEnv(config);
  expect(env.CS_REDIS_SENTINELS).toBe('127.0.0.1:26379,host-b.lab:26380,[::1]:26381');
  expect(env.CS_REDIS_URL).toBeUndefined();
  expect(loadConnectionConfig({}, env).redisSentinels).toEqual(config.redisSentinels);
});

test.each([
  [{ redisMaster: 'm' }, /--redis-master.*no sentinels are given \(--redis-sentinels/],
  [{ redisSentinels: '127.0.0.1:26379' }, /--redis-sentinels.*needs the primary's name.*--redis-master/],
  [{ redisSentinels: '127.0.0.1:26379', redisMaster: 'm', redisUrl: 'redis://127.0.0.1:6380' }, /--redis-sentinels.*cannot be given with --redis-url/],
  [{ redisSentinels: '127.0.0.1', redisMaster: 'm' }, /--redis-sentinels.*"127\.0\.0\.1" is not host:port/],
  [{ redisSentinels: '127.0.0.1:26379,:1', redisMaster: 'm' }, /--redis-sentinels.*":1" is not host:port/],
  [{ redisSentinels: 'a:70000', redisMaster: 'm' }, /--redis-sentinels.*"a:70000" is not host:port/],
  [{ redisSentinels: 'a:1', redisMaster: 'm', minReplicas: '-1' }, /--min-replicas/],
])('%j is refused naming the flag', (flags, message) => {
  expect(() => loadConnectionConfig(flags, NO_ENV)).toThrow(message);
});

test('the command line refuses a bad combination with exit 2 before it connects anywhere', async () => {
  const p = new CliProcess(['worker', '--redis-master', 'cs-primary'], { ...process.env, CS_REDIS_URL: '', CS_REDIS_SENTINELS: '', CS_NATS_URL: 'nats://127.0.0.1:1' });
  expect(await p.exited).toBe(2);
  expect(p.stderr).toContain('--redis-master');
  expect(p.stderr).toContain('--redis-sentinels');
});
