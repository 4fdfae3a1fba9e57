import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { ConnectionConfig } from './config';
import { failoverSafeConnector } from './sentinel-connector';
import type { CloseState } from './sentinel-connector';

/** What a Redis connection needs of the configuration: a URL, or sentinels and the primary's name. */
export type RedisTarget = Pick<ConnectionConfig, 'redisUrl'> & Partial<Pick<ConnectionConfig, 'redisSentinels' | 'redisMaster' | 'redisPassword' | 'redisSentinelPassword'>>;

/** True when the target is a primary found through sentinels. */
export function viaSentinels(target: RedisTarget): boolean {
  return (target.redisSentinels?.length ?? 0) > 0;
}

/**
 * Errors by which a server says it is a replica now: a write's `READONLY`,
 * and the refusal of `WAIT` (src/core/replication.ts), which a connection
 * that only reads meets first.
 */
const ON_A_REPLICA = /^READONLY\b|^ERR WAIT cannot be used with replica instances/;

/**
 * A Redis client for cluster-sync and BullMQ: BullMQ's blocking commands need
 * `maxRetriesPerRequest: null`; commands issued while Redis restarts wait in
 * the offline queue and go out on reconnect.
 *
 * Behind sentinels the client asks them for the primary, and follows a
 * failover by itself: it drops its connection when a sentinel announces
 * `+switch-master` (`failoverDetector`, which also catches a primary that is
 * frozen rather than dead) and when a write meets `READONLY` or a `WAIT`
 * is refused (the old primary came back as a replica), then asks the
 * sentinels again.
 */
export function connectRedis(target: RedisTarget | string, name: string): Redis {
  const t: RedisTarget = typeof target === 'string' ? { redisUrl: target } : target;
  const common: RedisOptions = {
    maxRetriesPerRequest: null,
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    ...(t.redisPassword ? { password: t.redisPassword } : {}),
  };
  if (!viaSentinels(t)) {
    const client = new Redis(t.redisUrl, common);
    // Each failed reconnect is an 'error' event; unheard, ioredis prints a stack for each. Who waits for
    // Redis says so once per interval (src/core/wait-servers.ts), and failed commands are logged where made.
    client.on('error', () => undefined);
    return client;
  }
  return sentinelClient({
    ...common,
    sentinels: t.redisSentinels,
    name: t.redisMaster,
    role: 'master',
    ...(t.redisSentinelPassword ? { sentinelPassword: t.redisSentinelPassword } : {}),
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    // A sentinel that takes the connection but never answers (its host frozen) is left for the next one after this, ms;
    // without it the client would wait for that sentinel for ever, and never find the promoted primary.
    sentinelCommandTimeout: 1000,
    failoverDetector: true,
    // 2 = reconnect and send the failed command again, to the primary the sentinels name now.
    reconnectOnError: (err) => (ON_A_REPLICA.test(err.message) ? 2 : false),
  });
}

/**
 * Resolves once `client`'s first try to connect has ended, either way:
 * ready (connected, its ready check passed), or failed (an `error`, or the
 * connection closed or ended). It never rejects: the caller learns which
 * from `client.status`. A process that serves requests whether or not Redis
 * is up waits for this before it says it is serving, so that it never
 * refuses a request as "Redis not reachable" while Redis is up and its own
 * connection is merely still being made.
 */
export function firstConnectTry(client: Redis): Promise<void> {
  if (client.status === 'ready' || client.status === 'end') return Promise.resolve();
  return new Promise((resolve) => {
    const settled = (): void => {
      for (const e of SETTLING) client.off(e, settled);
      resolve();
    };
    for (const e of SETTLING) client.once(e, settled);
  });
}
const SETTLING = ['ready', 'error', 'close', 'end'] as const;

/** Where a target's Redis is, for messages: its URL (password hidden) or the primary's name and its sentinels. */
export function describeRedis(target: RedisTarget): string {
  if (viaSentinels(target)) return `primary ${target.redisMaster ?? '?'} via sentinels ${(target.redisSentinels ?? []).map((s) => `${s.host}:${s.port}`).join(',')}`;
  return redactUrl(target.redisUrl);
}

/** A URL as it may be printed: a password in it becomes `***`. */
export function redactUrl(url: string): string {
  return url
    .split(',')
    .map((u) => {
      try {
        const p = new URL(u.trim());
        if (p.password) p.password = '***';
        return p.toString().replace(/\/$/, '');
      } catch {
        return u.trim();
      }
    })
    .join(',');
}

/**
 * A client of the primary behind sentinels, with two ioredis faults worked
 * around, for the client and each `duplicate()` (BullMQ's blocking
 * connections):
 * - a failover announced while the client is reconnecting ended it for good
 *   ("Connection is closed." on every command, redis/ioredis#1683): its
 *   connector asks the sentinels again instead (src/core/sentinel-connector.ts);
 * - `quit()` ends the connection to the primary but leaves the failover
 *   detector's connections to the sentinels open, so a process that quit
 *   every client never exits (redis/ioredis#1362): a quit also disconnects.
 * Should the client still end without being closed, it connects again.
 * Closed means `quit()` or `disconnect()` since the last `connect()`.
 */
function sentinelClient(options: RedisOptions): Redis {
  const state: CloseState = { closing: false };
  const client = new Redis({ ...options, Connector: failoverSafeConnector(state) });
  client.on('error', () => undefined);
  const quit = client.quit.bind(client);
  const disconnect = client.disconnect.bind(client);
  const connect = client.connect.bind(client);
  // A client closed on purpose may be opened again (BullMQ disconnects its blocking connection to
  // interrupt a wait, then connects it): from then on it is not closing any more.
  client.connect = (callback?: Parameters<Redis['connect']>[0]) => {
    if (client.status === 'wait' || client.status === 'end') state.closing = false;
    return connect(callback);
  };
  client.quit = async (callback?: Parameters<Redis['quit']>[0]) => {
    state.closing = true;
    try {
      return await quit(callback);
    } finally {
      disconnect();
    }
  };
  client.disconnect = (reconnect?: boolean) => {
    if (!reconnect) state.closing = true;
    disconnect(reconnect);
  };
  client.on('end', () => {
    if (state.closing) return;
    setTimeout(() => {
      if (!state.closing && client.status === 'end') client.connect().catch(() => undefined);
    }, 100).unref();
  });
  client.duplicate = (override) => sentinelClient({ ...client.options, ...override });
  return client;
}

/** A `TIME` reply (`[seconds, microseconds]`) in ms. */
export function timeReplyMs([sec, usec]: readonly (string | number | undefined)[]): number {
  return Number(sec ?? 0) * 1000 + Math.floor(Number(usec ?? 0) / 1000);
}

/** Redis's clock, ms: the one clock every worker process shares. */
export async function redisNowMs(redis: Pick<Redis, 'time'>): Promise<number> {
  return timeReplyMs(await redis.time());
}
