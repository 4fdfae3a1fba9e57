import { randomBytes } from 'node:crypto';
import type { ConnectionConfig } from '../../src/core/config';
import { startHaSet, watchSwitchMaster } from '../../src/services/ha-servers';
import type { HaSet, HaSetOptions } from '../../src/services/ha-servers';
import type { LocalServer } from '../../src/services/local-servers';

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
    stop: () => set.stop(),
  };
}
