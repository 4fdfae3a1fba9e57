import { Redis } from 'ioredis';

/**
 * A Redis client for cluster-sync and BullMQ: BullMQ's blocking commands need
 * `maxRetriesPerRequest: null`; commands issued while Redis restarts wait in
 * the offline queue and go out on reconnect.
 */
export function connectRedis(url: string, name: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
}

/** A `TIME` reply (`[seconds, microseconds]`) in ms. */
export function timeReplyMs([sec, usec]: readonly (string | number | undefined)[]): number {
  return Number(sec ?? 0) * 1000 + Math.floor(Number(usec ?? 0) / 1000);
}

/** Redis's clock, ms: the one clock every worker process shares. */
export async function redisNowMs(redis: Pick<Redis, 'time'>): Promise<number> {
  return timeReplyMs(await redis.time());
}
