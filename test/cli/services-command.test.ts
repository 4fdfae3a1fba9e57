import { Redis } from 'ioredis';
import { connect } from 'nats';
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
