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
