import { Redis } from 'ioredis';

/**
 * A Redis client for cluster-sync and BullMQ: BullMQ's blocking commands need
 * `maxRetriesPerRequest: null`; commands issued while Redis restarts wait in
 * the offline queue and go out on reconnect.
 */
export function connectRedis(url: string, name: string): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  // Each failed reconnect is an 'error' event; unheard, ioredis prints a stack for each. Who waits for
  // Redis says so once per interval (src/core/wait-servers.ts), and failed commands are logged where made.
  redis.on('error', () => undefined);
  return redis;
}
