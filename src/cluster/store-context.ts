import type { Redis } from 'ioredis';
import { Keys } from '../core/keys';
import { withScripts } from '../fold/scripts';
import type { ScriptedRedis } from '../fold/scripts';

/** Settings of the Redis side. */
export interface StoreOptions {
  /** Prefix of every key (tests, shared servers). Default empty: Compass-CI's key names. */
  keyPrefix?: string;
  /** Prefix of node job ids, which are `PREFIX-N`. Default `cs`. */
  jobIdPrefix?: string;
  /** Approximate cap of the all-clusters event stream. Default 100 000 events. */
  maxEvents?: number;
}

/** What every part of the store shares: the client (with the scripts), the key names and the settings. */
export interface StoreContext {
  readonly redis: ScriptedRedis;
  readonly keys: Keys;
  readonly jobIdPrefix: string;
  readonly maxEvents: number;
}

export function storeContext(redis: Redis, options: StoreOptions = {}): StoreContext {
  return {
    redis: withScripts(redis),
    keys: new Keys(options.keyPrefix ?? ''),
    jobIdPrefix: options.jobIdPrefix ?? 'cs',
    maxEvents: options.maxEvents ?? 100_000,
  };
}
