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
  /** The Redis of the set every sentinel names as the primary; undefined while they differ (a failover under way) or one does not answer. */
  agreedPrimary(): Promise<LocalServer | undefined>;
  /**
   * For a test's reads after {@link failPrimary}: once every sentinel names
   * the same primary, that primary and a store on a new connection to it.
   *
   * The failover may not be the only one: on a loaded machine a primary just
   * promoted can miss the sentinels' down-after (1 s here), and they fail
   * over once more, so the primary may differ from the one `failPrimary`
   * resolved with. And a connection made before follows the failover by
   * itself, but ioredis rejects what is queued on it with "Connection is
   * closed." when a `+switch-master` reaches it while it is reconnecting
   * (redis/ioredis#1683: the workers retry such a command, a test's read
   * would fail); one made once every sentinel has announced the last switch
   * meets none.
   */
  afterFailover(res: Resources, config: ConnectionConfig): Promise<{ primary: LocalServer; store: ClusterStore }>;
  stop(): Promise<void>;
}

export async function startTestHaSet(options: HaSetOptions = {}): Promise<TestHaSet> {
  const set = await startHaSet({ downAfterMs: 1000, failoverTimeoutMs: 5000, ...options });
  const agreedPrimary = async (): Promise<LocalServer | undefined> => {
    const named = await Promise.all(set.sentinels.map((s) => primaryPortAt(s.port, set.masterName)));
    return named.every((p) => p !== undefined && p === named[0]) ? set.redis.find((r) => r.port === named[0]) : undefined;
  };
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
    agreedPrimary,
    async afterFailover(res, config) {
      const primary = await eventually(agreedPrimary, 'every sentinel to name the same primary');
      return { primary, store: new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix }) };
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
