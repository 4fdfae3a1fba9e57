import type { Redis } from 'ioredis';
import type { Group } from '../client/message-client';
import { compareJobIds } from '../cluster/read-store';
import type { NodeEntry } from '../cluster/view';
import type { Keys } from '../core/keys';
import { setBounded } from '../core/bounded-map';
import { NotFoundError } from '../core/errors';
import { CoalescedReads } from './coalesced-reads';

/*
 * Design note: what a legacy request reads before it waits, and when it is
 * not read again.
 *
 * Each request names its node job; before it can report or wait it needs
 * the job's cluster (`sched/id2cluster`), the cluster's token (its meta) and,
 * for a message, the cluster's nodes and roles (`sched/cluster_state`).
 * Thousands of lkp clients waiting on one cluster used to read these once
 * each: a command per field per request.
 *
 * None of the three changes in a cluster's life (the token and the node
 * jobs are written when it is created; a node may only repeat its own
 * roles), and a cluster is deleted only after it ended (retention) or when
 * its submit never completed (then no node of it holds a job). So they are
 * kept, as a `ClusterIdentity`, on the cluster's barrier subscription
 * (BarrierRouter, node-proxy.ts): they live while some wait on the cluster
 * is held, and are not used once this process heard the cluster end (its
 * finish barrier resolved, or an abort), when the next request reads Redis
 * again and gets the 404 of a deleted cluster. A job's cluster is looked up
 * by a bounded map of hints, believed only when the cluster's kept
 * identity lists the job.
 *
 * Reads that do go to Redis go through CoalescedReads: the reads of every
 * request taken in during one turn of the event loop go out together.
 */

/** A cluster's token and nodes (`{job: roles}`, in job order), as read from Redis. */
export interface ClusterIdentity {
  token: string;
  nodes: Readonly<Group>;
}

/** Where a cluster's identity is kept while waits on it are held: its barrier router. */
export interface IdentityHolder {
  identity: ClusterIdentity | undefined;
  /** This process heard the cluster end: what it kept is no longer used. */
  readonly ended: boolean;
}

/** Job -> cluster hints kept (about 100 bytes each). */
const MAX_HINTS = 100_000;
/** Clusters whose last parsed node list is kept (a parse is reused only for the very same stored JSON). */
const PARSED_CLUSTERS = 64;

export class LegacyReads {
  readonly reads: CoalescedReads;
  private readonly hints = new Map<string, string>();
  private readonly parsed = new Map<string, { raw: string; nodes: Readonly<Group> }>();
  /** Requests answered from a kept identity / from Redis: for tests and the bench. */
  readonly counts = { kept: 0, read: 0 };

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    /** The holder of a cluster's identity while some wait on it is held; undefined when none is. */
    private readonly holder: (cluster: string) => IdentityHolder | undefined,
  ) {
    this.reads = new CoalescedReads(redis);
  }

  /** The cluster of a node job; undefined when there is none. */
  async clusterOfJob(job: string): Promise<string | undefined> {
    const hint = this.hints.get(job);
    const kept = hint === undefined ? undefined : this.kept(hint);
    if (kept && Object.hasOwn(kept.nodes, job)) return hint;
    const cluster = (await this.reads.hget(this.keys.id2cluster, job)) ?? undefined;
    if (cluster !== undefined) this.hint(job, cluster);
    return cluster;
  }

  /**
   * The cluster's token and nodes: kept ones while waits on the cluster are
   * held and it has not ended, else read (and then kept, when a holder is
   * there). Undefined once the cluster is gone.
   */
  async identity(cluster: string): Promise<ClusterIdentity | undefined> {
    const kept = this.kept(cluster);
    if (kept) {
      this.counts.kept++;
      return kept;
    }
    this.counts.read++;
    const [token, raw] = await Promise.all([this.reads.hget(this.keys.meta(cluster), 'token'), this.reads.hget(this.keys.clusterState, cluster)]);
    if (!token || raw === null) return undefined;
    const identity = { token, nodes: this.parse(cluster, raw) };
    const holder = this.holder(cluster);
    if (holder && !holder.ended) holder.identity ??= identity;
    return identity;
  }

  /** The cluster's entry of `sched/cluster_state`, as stored (Compass-CI's JSON), read now; NotFoundError once the cluster is gone. */
  async stateJson(cluster: string): Promise<string> {
    const raw = await this.reads.hget(this.keys.clusterState, cluster);
    if (raw === null) throw new NotFoundError(`cluster ${cluster} no longer exists`);
    return raw;
  }

  private kept(cluster: string): ClusterIdentity | undefined {
    const holder = this.holder(cluster);
    return holder && !holder.ended ? holder.identity : undefined;
  }

  private hint(job: string, cluster: string): void {
    setBounded(this.hints, job, cluster, MAX_HINTS);
  }

  private parse(cluster: string, raw: string): Readonly<Group> {
    const last = this.parsed.get(cluster);
    if (last && last.raw === raw) return last.nodes;
    const entries = JSON.parse(raw) as Record<string, NodeEntry>;
    // fromEntries: a job named `__proto__` (the id rule allows it) is a field like any other.
    const nodes: Group = Object.fromEntries(
      Object.keys(entries)
        .sort(compareJobIds)
        .map((job) => [job, entries[job]?.roles ?? '']),
    );
    // Shared by every request that reads the same JSON: nobody may change it.
    Object.freeze(nodes);
    // Deleted first, so it is set as the newest.
    this.parsed.delete(cluster);
    setBounded(this.parsed, cluster, { raw, nodes }, PARSED_CLUSTERS);
    return nodes;
  }
}
