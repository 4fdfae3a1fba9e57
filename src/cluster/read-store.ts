import { NotFoundError } from '../core/errors';
import { redisNowMs } from '../core/redis';
import { BARRIERS } from '../core/states';
import type { Barrier, NodeState, Result } from '../core/states';
import type { StoreContext } from './store-context';
import type { ClusterView, NodeEntry } from './view';

/** Reads of cluster state: plain commands, no MULTI (Redis refuses one while it is out of memory, and reads must work then too). */
export class ReadStore {
  constructor(private readonly ctx: StoreContext) {}

  async readCluster(cid: string): Promise<ClusterView> {
    const { redis, keys } = this.ctx;
    const [raw, meta] = await Promise.all([redis.hget(keys.clusterState, cid), redis.hgetall(keys.meta(cid))]);
    if (raw === null) throw new NotFoundError(`unknown cluster ${cid}`);
    const nodes = JSON.parse(raw) as Record<string, NodeEntry>;
    const num = (f: string): number | undefined => (meta[f] === undefined || meta[f] === '' ? undefined : Number(meta[f]));
    return {
      id: cid,
      spec: meta.spec ?? '',
      created: num('created') ?? 0,
      pending: (meta.pending || undefined) as Barrier | undefined,
      final: (meta.final || undefined) as 'finish' | 'abort' | undefined,
      nodes: Object.keys(nodes)
        .sort(compareJobIds)
        .map((job) => ({ job, ...(nodes[job] as NodeEntry), state: (nodes[job]?.state ?? '') as NodeState })),
      barriers: BARRIERS.map((b) => ({
        barrier: b,
        result: (meta[`res:${b}`] || undefined) as Result | undefined,
        reason: meta[`reason:${b}`] || undefined,
        at: num(`at:${b}`),
        deadline: num(`deadline:${b}`),
      })),
      cluster_timeout_ms: num('timeout_ms') ?? 0,
      heartbeat_interval_ms: num('heartbeat_ms') ?? 0,
    };
  }

  /** Open clusters, oldest first. */
  async openClusters(limit = 1000): Promise<string[]> {
    return this.ctx.redis.zrange(this.ctx.keys.openClusters, 0, limit - 1);
  }

  async token(cid: string): Promise<string | undefined> {
    return (await this.ctx.redis.hget(this.ctx.keys.meta(cid), 'token')) ?? undefined;
  }

  /** The token and heartbeat interval (ms) of a cluster, in one read; `undefined` once the cluster is gone. */
  async heartbeatSettings(cid: string): Promise<{ token: string; heartbeatMs: number } | undefined> {
    const [token, hb] = await this.ctx.redis.hmget(this.ctx.keys.meta(cid), 'token', 'heartbeat_ms');
    return token ? { token, heartbeatMs: Number(hb) || 0 } : undefined;
  }

  async clusterOfJob(job: string): Promise<string | undefined> {
    return (await this.ctx.redis.hget(this.ctx.keys.id2cluster, job)) ?? undefined;
  }

  /** How long each barrier may wait, ms (job field `cluster_timeout`). */
  async clusterTimeoutMs(cid: string): Promise<number> {
    return Number(await this.ctx.redis.hget(this.ctx.keys.meta(cid), 'timeout_ms')) || 0;
  }

  /** Where each of the cluster's node jobs waits (`{job id: queue name}`); empty once the cluster is gone. */
  async nodeQueues(cid: string): Promise<Record<string, string>> {
    const raw = await this.ctx.redis.hget(this.ctx.keys.meta(cid), 'queues');
    if (!raw) return {};
    try {
      return JSON.parse(raw) as Record<string, string>;
    } catch {
      return {};
    }
  }

  /** How the cluster ended (`finish` / `abort`), or undefined while it is open or once it is gone. */
  async finalResult(cid: string): Promise<'finish' | 'abort' | undefined> {
    return ((await this.ctx.redis.hget(this.ctx.keys.meta(cid), 'final')) || undefined) as 'finish' | 'abort' | undefined;
  }

  /** Which of the cluster's two records are there: its state (`sched/cluster_state` field) and its meta hash. */
  async presence(cid: string): Promise<{ state: boolean; meta: boolean }> {
    const [state, meta] = await Promise.all([this.ctx.redis.hexists(this.ctx.keys.clusterState, cid), this.ctx.redis.exists(this.ctx.keys.meta(cid))]);
    return { state: state === 1, meta: meta === 1 };
  }

  /** Every cluster with a state in `sched/cluster_state` (HKEYS: for tools and checks, not for a hot path). */
  async clusterIds(): Promise<string[]> {
    return this.ctx.redis.hkeys(this.ctx.keys.clusterState);
  }

  /** The report ids folded into the cluster (`cs/cluster/<cid>/reports`). */
  async foldedReportIds(cid: string): Promise<string[]> {
    return this.ctx.redis.hkeys(this.ctx.keys.reports(cid));
  }

  /** Redis's clock, ms: the one clock every worker process shares. */
  async now(): Promise<number> {
    return redisNowMs(this.ctx.redis);
  }
}

/** `cs-9` before `cs-10`. */
export function compareJobIds(a: string, b: string): number {
  const na = Number(/(\d+)$/.exec(a)?.[1]);
  const nb = Number(/(\d+)$/.exec(b)?.[1]);
  return Number.isFinite(na) && Number.isFinite(nb) && na !== nb ? na - nb : a.localeCompare(b);
}
