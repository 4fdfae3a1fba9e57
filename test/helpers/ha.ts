import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ClusterStore } from '../../src/cluster/store';
import type { ConnectionConfig } from '../../src/core/config';
import { startHaSet, watchSwitchMaster } from '../../src/services/ha-servers';
import type { HaSet, HaSetOptions } from '../../src/services/ha-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { eventually } from './servers';
import type { Resources } from './servers';

/**
 * A high-availability set for one test file, started the way `cluster-sync
 * services --ha` starts it (src/services/ha-servers.ts), with a fast
 * failure detection (the sentinels' down-after 1000 ms).
 */
export interface TestHaSet {
  readonly set: HaSet;
  /** A fresh namespace on the set: NATS cluster URLs, the sentinels, the primary's name. */
  config(): ConnectionConfig;
  /**
   * Kills (`SIGKILL`) or freezes (`SIGSTOP`) the current primary and resolves
   * with it and the new primary when a sentinel announces `+switch-master`.
   */
  failPrimary(signal: 'SIGKILL' | 'SIGSTOP'): Promise<{ old: LocalServer; next: LocalServer }>;
  /**
   * For a test's reads after {@link failPrimary}: a store on a new
   * connection, once every sentinel names `next` (the others announce the
   * switch when they learn of it, some time after the first; after the last,
   * none announces it again). A connection made before follows the failover
   * by itself, but ioredis rejects what is queued on it with "Connection is
   * closed." when a `+switch-master` reaches it while it is reconnecting
   * (redis/ioredis#1683: the workers retry such a command, a test's read
   * would fail); one made after the last announcement never meets one.
   */
  storeAfterFailover(res: Resources, config: ConnectionConfig, next: LocalServer): Promise<ClusterStore>;
  stop(): Promise<void>;
}

export async function startTestHaSet(options: HaSetOptions = {}): Promise<TestHaSet> {
  const set = await startHaSet({ downAfterMs: 1000, failoverTimeoutMs: 5000, ...options });
  return {
    set,
    config() {
      const ns = `t${randomBytes(4).toString('hex')}`;
      const { natsUrl, redisSentinels, redisMaster } = set.connection();
      return { natsUrl, redisUrl: 'redis://127.0.0.1:6379', redisSentinels, redisMaster, subjectPrefix: ns, keyPrefix: `${ns}:` };
    },
    async failPrimary(signal) {
      const old = await set.primary();
      // Subscribed on a sentinel before the failure, so the announcement cannot be missed.
      const watch = await watchSwitchMaster(set.sentinels[0]!.port, set.masterName);
      try {
        process.kill(old.pid, signal);
        const addr = await watch.next;
        const next = set.redis.find((r) => r.port === addr.port);
        if (!next) throw new Error(`the sentinels promoted 127.0.0.1:${addr.port}, which is not of this set`);
        return { old, next };
      } finally {
        watch.close();
      }
    },
    async storeAfterFailover(res, config, next) {
      const named = () => Promise.all(set.sentinels.map((s) => primaryPortAt(s.port, set.masterName)));
      await eventually(async () => (await named()).every((port) => port === next.port), `every sentinel to name 127.0.0.1:${next.port} the primary`);
      return new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
    },
    stop: () => set.stop(),
  };
}

/** The port of the primary the sentinel on `port` names; undefined if it names none or does not answer. */
async function primaryPortAt(port: number, name: string): Promise<number | undefined> {
  const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const addr = (await r.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string] | null;
    return addr ? Number(addr[1]) : undefined;
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}
