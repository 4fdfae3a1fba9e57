import { Redis } from 'ioredis';
import { connect } from 'nats';
import { loadConnectionConfig } from '../../src/core/config';
import { connectRedis } from '../../src/core/redis';
import { CliProcess, envFor } from '../helpers/processes';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('services starts Redis and NATS on loopback, says where, and stops both on SIGTERM', async () => {
  const p = new CliProcess(['services', '--appendfsync', 'no'], envFor({ redisUrl: 'redis://127.0.0.1:1', natsUrl: 'nats://127.0.0.1:1', subjectPrefix: 'cs', keyPrefix: '' }));
  try {
    const [, redisUrl, redisPid] = await p.waitFor(/Redis listens on (redis:\/\/127\.0\.0\.1:\d+) \(pid (\d+)/);
    const [, natsUrl, natsPid] = await p.waitFor(/NATS listens on (nats:\/\/127\.0\.0\.1:\d+) \(pid (\d+)/);
    await p.waitFor(/Ctrl-C stops both/);
    const redis = new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
    expect(await redis.ping()).toBe('PONG');
    await redis.quit();
    const nc = await connect({ servers: natsUrl! });
    await nc.flush();
    await nc.close();
    expect(await p.stop()).toBe(0);
    expect(alive(Number(redisPid))).toBe(false);
    expect(alive(Number(natsPid))).toBe(false);
  } finally {
    await p.stop();
  }
});

test('services --ha starts a NATS cluster, a Redis primary with 2 replicas and 3 sentinels, prints the exports, and stops all 9 on SIGTERM', async () => {
  const p = new CliProcess(['services', '--ha', '--down-after-ms', '1000'], envFor({ redisUrl: 'redis://127.0.0.1:1', natsUrl: 'nats://127.0.0.1:1', subjectPrefix: 'cs', keyPrefix: '' }));
  try {
    await p.waitFor(/Ctrl-C stops all 9/, 120_000);
    const pids = [...p.stdout.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(9);
    const [, natsUrls, sentinels, master] = /export CS_NATS_URL=(\S+) CS_REDIS_SENTINELS=(\S+) CS_REDIS_MASTER=(\S+)/.exec(p.stdout) ?? [];
    expect(natsUrls?.split(',')).toHaveLength(3);
    // The exports are a configuration cluster-sync accepts, and the sentinels name the primary it printed.
    const config = loadConnectionConfig({}, { CS_NATS_URL: natsUrls, CS_REDIS_SENTINELS: sentinels, CS_REDIS_MASTER: master });
    const sentinel = new Redis(config.redisSentinels![0]!.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    const addr = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', master!)) as [string, string];
    sentinel.disconnect(); // a sentinel knows no QUIT
    expect(p.stdout).toContain(`Redis primary listens on redis://127.0.0.1:${addr[1]}`);
    const primary = connectRedis(config, 'cs-test');
    expect(await primary.set('k', 'v')).toBe('OK');
    expect(await primary.wait(1, 5000)).toBeGreaterThanOrEqual(1);
    await primary.quit();
    for (const url of natsUrls!.split(',')) {
      const nc = await connect({ servers: url });
      await nc.close();
    }
    expect(await p.stop()).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  } finally {
    await p.stop();
  }
}, 180_000);

test('services --ha refuses a down-after that is no number of milliseconds, naming the flag', async () => {
  const p = new CliProcess(['services', '--ha', '--down-after-ms', 'soon'], { ...process.env });
  expect(await p.exited).toBe(2);
  expect(p.stderr).toContain('--down-after-ms');
});
