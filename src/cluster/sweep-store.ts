import { redisNowMs } from '../core/redis';
import { BARRIERS } from '../core/states';
import type { Barrier } from '../core/states';
import type { StoreContext } from './store-context';

/**
 * What the workers' per-second sweep reads and writes: its lease, due
 * deadlines, silent nodes, half-written submits, and retention (ended
 * clusters, the walk over all clusters, and the removal of one).
 */
export class SweepStore {
  constructor(private readonly ctx: StoreContext) {}

  /**
   * Takes this period's sweep lease for `ms` unless another process holds
   * it: true for the one caller that got it. Throws while Redis refuses
   * writes; the caller tries again next period.
   */
  async claimSweep(holder: string, ms: number): Promise<boolean> {
    return (await this.ctx.redis.set(this.ctx.keys.sweepLease, holder, 'PX', ms, 'NX')) === 'OK';
  }

  /** Barrier deadlines that have come (Redis server time): `[cluster, barrier]` pairs, earliest first. */
  async dueDeadlines(limit = 1000): Promise<[string, Barrier][]> {
    return (await this.due(this.ctx.keys.deadlines, limit)) as [string, Barrier][];
  }

  /** Nodes whose heartbeat deadline has passed: `[cluster, job]` pairs. */
  async silentNodes(limit = 100): Promise<[string, string][]> {
    return this.due(this.ctx.keys.heartbeats, limit);
  }

  /** Members `"<cluster> <x>"` of zset `key` whose time (ms) has come by Redis's clock, split in two. */
  private async due(key: string, limit: number): Promise<[string, string][]> {
    const members = await this.ctx.redis.zrangebyscore(key, '-inf', await redisNowMs(this.ctx.redis), 'LIMIT', 0, limit);
    return members.map((m) => m.split(' ') as [string, string]);
  }

  /** Clusters created before `before` (ms, Redis clock) whose submit never said it was complete. */
  async unfinishedSubmits(before: number, limit = 100): Promise<string[]> {
    return this.ctx.redis.zrangebyscore(this.ctx.keys.submitting, '-inf', before, 'LIMIT', 0, limit);
  }

  /** Clusters that ended at or before `t` (ms), oldest first. */
  async endedBefore(t: number, limit: number): Promise<string[]> {
    return this.ctx.redis.zrangebyscore(this.ctx.keys.endedClusters, '-inf', t, 'LIMIT', 0, limit);
  }

  /** Records clusters as ended at the given times, unless already recorded (the backfill of clusters ended before the index existed). */
  async recordEnded(ends: ReadonlyMap<string, number>): Promise<void> {
    if (ends.size === 0) return;
    await this.ctx.redis.zadd(this.ctx.keys.endedClusters, 'NX', ...[...ends].flatMap(([cid, at]) => [at, cid]));
  }

  /**
   * The next clusters of `sched/cluster_state`, one HSCAN step from the
   * cursor kept in Redis (so every worker process continues the same walk).
   * `cursorDone` is true when this step finished a whole pass.
   */
  async scanClusters(count: number): Promise<{ clusters: string[]; cursorDone: boolean }> {
    const { redis, keys } = this.ctx;
    const cursor = (await redis.get(keys.retentionCursor)) ?? '0';
    const [next, flat] = await redis.hscan(keys.clusterState, cursor, 'COUNT', count);
    // Written only when the walk moves on: a small hash is walked in one step and writes nothing.
    if (next !== cursor) await (next === '0' ? redis.del(keys.retentionCursor) : redis.set(keys.retentionCursor, next));
    const clusters: string[] = [];
    for (let i = 0; i < flat.length; i += 2) clusters.push(flat[i] as string);
    return { clusters, cursorDone: next === '0' };
  }

  /** For each cluster, when it ended (ms: its last resolution), or undefined while it is open or half-written. */
  async endTimes(clusters: string[]): Promise<Map<string, number | undefined>> {
    const pipe = this.ctx.redis.pipeline();
    for (const cid of clusters) pipe.hmget(this.ctx.keys.meta(cid), 'final', 'created', ...BARRIERS.map((b) => `at:${b}`));
    const rows = (await pipe.exec()) ?? [];
    const out = new Map<string, number | undefined>();
    clusters.forEach((cid, i) => {
      const [err, vals] = rows[i] ?? [null, []];
      const v = (vals ?? []) as (string | null)[];
      if (err || !v[0]) return out.set(cid, undefined);
      const ats = v
        .slice(2)
        .map(Number)
        .filter((n) => Number.isFinite(n) && n > 0);
      if (ats.length === 0) ats.push(Number(v[1]) || 0);
      out.set(cid, Math.max(...ats));
    });
    return out;
  }

  /**
   * Removes every trace of a cluster in Redis (not its BullMQ jobs: the
   * caller removes those first). Plain commands, no MULTI: Redis refuses a
   * MULTI when it is out of memory, but always accepts deletes. Each
   * command is tried even when an earlier one failed; the first error is
   * thrown at the end, so the caller knows to try again.
   */
  async deleteCluster(cid: string, jobIds?: string[]): Promise<void> {
    const { redis, keys: k } = this.ctx;
    const [rawNodes, submitted, spec] = await Promise.all([
      redis.hget(k.clusterState, cid).catch(() => null),
      redis.hget(k.meta(cid), 'submitted_event').catch(() => null),
      redis.hget(k.meta(cid), 'spec').catch(() => null),
    ]);
    let jobs = jobIds ?? [];
    if (rawNodes) {
      try {
        jobs = [...new Set([...jobs, ...Object.keys(JSON.parse(rawNodes) as Record<string, unknown>)])];
      } catch {
        /* a corrupt entry: the ids given are all we know */
      }
    }
    const steps: Promise<unknown>[] = [redis.hdel(k.clusterState, cid), redis.zrem(k.openClusters, cid), redis.zrem(k.retryDue, cid), redis.zrem(k.deadlines, ...BARRIERS.map((b) => `${cid} ${b}`))];
    // Admission's indexes: a removed cluster neither waits nor falls due (the sweep would drop it only at its admit deadline).
    steps.push(redis.zrem(k.admitWaiting, cid), redis.zrem(k.admitDue, cid));
    if (jobs.length > 0) {
      steps.push(redis.hdel(k.id2cluster, ...jobs));
      steps.push(redis.zrem(k.heartbeats, ...jobs.map((j) => `${cid} ${j}`)));
    }
    if (submitted) steps.push(redis.xdel(k.allEvents, submitted));
    if (spec !== null) steps.push(redis.zrem(k.specClusters(spec), cid));
    const results = await Promise.allSettled(steps);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    // The meta hash goes last but one: while it exists, the reaper can find the node queues again.
    await redis.del(...k.clusterKeys(cid));
    // Last: while these entries stay, the reaper and retention find the cluster again and finish the job.
    await redis.zrem(k.submitting, cid);
    await redis.zrem(k.endedClusters, cid);
  }
}
