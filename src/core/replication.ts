import type { Redis } from 'ioredis';
import type { ConnectionConfig } from './config';
import { ClusterSyncError, ErrorCode } from './errors';

/**
 * Fewer replicas than required acknowledged a write in time: it may be lost
 * in a failover, so it must not be answered "accepted". Worth retrying (the
 * write is idempotent: a report is deduplicated by its id).
 */
export class NotReplicatedError extends ClusterSyncError {
  constructor(
    readonly acknowledged: number,
    readonly required: number,
    readonly timeoutMs: number,
    why = `${acknowledged} of ${required} required Redis replicas acknowledged the write within ${timeoutMs} ms`,
  ) {
    super(ErrorCode.Internal, `NOREPLICAS ${why}`, { retryable: true });
  }
}

export interface ReplicationSettings {
  /** Replicas that must hold a write; undefined = decided from the primary (see {@link ReplicationGuard}). */
  minReplicas?: number;
  /** Timeout of one WAIT, ms. Default 2000. */
  timeoutMs?: number;
  /** Behind sentinels: the default is then 1 whatever the primary says at the moment it is asked. */
  sentinels?: boolean;
}

/** The replication settings of a connection configuration. */
export function replicationOf(config: Pick<ConnectionConfig, 'minReplicas' | 'replicaTimeoutMs' | 'redisSentinels'>): ReplicationSettings {
  return { minReplicas: config.minReplicas, timeoutMs: config.replicaTimeoutMs, sentinels: (config.redisSentinels?.length ?? 0) > 0 };
}

/**
 * "Accepted means replicated" (DESIGN §7). Callers take a {@link mark}
 * of the connection before the write that must survive a failover, and
 * invoke {@link waitForReplicas} with it after the write, before they answer
 * "accepted", on the SAME connection that made the write: `WAIT` covers the
 * earlier writes of its own connection only. The mark catches the one case
 * WAIT cannot: the connection was lost between the write and the WAIT
 * (ioredis then sends the WAIT again, to the promoted replica, which would
 * count replicas of a primary that may never have seen the write).
 *
 * The number of replicas: `minReplicas` when given; else 1 behind sentinels;
 * else 1 if the primary has replicas (`INFO replication` connected_slaves,
 * read once), 0 for a lone Redis, which never waits.
 */
export class ReplicationGuard {
  private required: Promise<number> | undefined;
  private readonly closes = new WeakMap<Redis, { n: number }>();
  readonly timeoutMs: number;

  constructor(private readonly settings: ReplicationSettings = {}) {
    this.timeoutMs = settings.timeoutMs ?? 2000;
    if (settings.minReplicas !== undefined) this.required = Promise.resolve(settings.minReplicas);
    else if (settings.sentinels) this.required = Promise.resolve(1);
  }

  /** The replicas each write waits for (decided at the first call). */
  async minReplicas(conn: Redis): Promise<number> {
    if (!this.required) {
      const decided = conn.info('replication').then((text) => (Number(/^connected_slaves:(\d+)/m.exec(text)?.[1] ?? 0) > 0 ? 1 : 0));
      // A failed read is asked again next time, not remembered.
      this.required = decided.catch((err: unknown) => {
        this.required = undefined;
        throw err;
      });
    }
    return this.required;
  }

  /** How many times `conn` lost its connection so far: take it before the write. */
  mark(conn: Redis): number {
    let c = this.closes.get(conn);
    if (!c) {
      const counter = { n: 0 };
      conn.on('close', () => counter.n++);
      this.closes.set(conn, counter);
      c = counter;
    }
    return c.n;
  }

  /**
   * Resolves once `minReplicas` replicas hold every write of `conn` since
   * `mark`; throws {@link NotReplicatedError} when fewer acknowledged in time,
   * or when the connection was lost since `mark` (and whatever the connection
   * throws when Redis is down).
   */
  async waitForReplicas(conn: Redis, mark: number): Promise<void> {
    const required = await this.minReplicas(conn);
    if (required === 0) return;
    const acknowledged = await conn.wait(required, this.timeoutMs);
    if (this.mark(conn) !== mark) throw new NotReplicatedError(0, required, this.timeoutMs, 'the connection to the primary was lost after the write');
    if (acknowledged < required) throw new NotReplicatedError(acknowledged, required, this.timeoutMs);
  }
}

/** A guard that never waits (a lone Redis, tests of other things). */
export const NO_REPLICATION = new ReplicationGuard({ minReplicas: 0 });
