import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../src/core/redis';
import type { ConnectionConfig } from '../../src/core/config';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer, RedisServerOptions } from '../../src/services/local-servers';

/**
 * Throw-away Redis and NATS for one test file: started on free loopback
 * ports in beforeAll, stopped by PID in afterAll. A missing binary fails the
 * test with a message that says what to install; nothing is skipped.
 */
export interface TestServers {
  redis: LocalServer;
  nats: LocalServer;
  /** A fresh namespace (subject and key prefix) per call, so tests in one file never see each other. */
  config(): ConnectionConfig;
  stop(): Promise<void>;
}

export async function startTestServers(redisOptions: RedisServerOptions = {}): Promise<TestServers> {
  const [redis, nats] = await Promise.all([startRedis(redisOptions), startNats()]);
  return {
    redis,
    nats,
    config() {
      const ns = `t${randomBytes(4).toString('hex')}`;
      return { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: ns, keyPrefix: `${ns}:` };
    },
    async stop() {
      await Promise.all([redis.dispose(), nats.dispose()]);
    },
  };
}

/** Tracks connections a test opens and closes them all at the end. */
export class Resources {
  private readonly closers: (() => Promise<unknown>)[] = [];
  add<T>(thing: T, close: (t: T) => Promise<unknown>): T {
    this.closers.push(() => close(thing));
    return thing;
  }
  async nats(config: ConnectionConfig): Promise<NatsConnection> {
    const nc = await connect({ servers: config.natsUrl.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    return this.add(nc, (n) => n.close());
  }
  redis(config: ConnectionConfig): Redis {
    // Through the sentinels when the namespace has them (test/helpers/ha.ts), so it follows a failover.
    return this.add(connectRedis(config, 'cs-test'), (r) => r.quit().catch(() => r.disconnect()));
  }
  async closeAll(): Promise<void> {
    const all = this.closers.splice(0).reverse();
    for (const c of all) await c().catch(() => undefined);
  }
}

/**
 * Waits until `check` returns a truthy value, polling a fast condition; fails
 * with `what` after `timeoutMs` (default 60 s, jest's test timeout). The
 * timeout only detects what never happens; it is no assertion on how fast it
 * happens (a busy 2-core machine can take many seconds for what takes
 * milliseconds alone).
 */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
