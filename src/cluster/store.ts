import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { formatDuration } from '../core/duration';
import { NotFoundError } from '../core/errors';
import { Keys } from '../core/keys';
import { BARRIERS } from '../core/states';
import type { Barrier, NodeState, Result } from '../core/states';
import type { Report } from '../bus/messages';
import { withScripts } from '../fold/scripts';
import type { ScriptedRedis } from '../fold/scripts';
import { foldBatchCall } from '../fold/batch';
import { parseOutcome } from '../fold/outcome';
import type { FoldOutcome } from '../fold/outcome';
import type { NodeJob, NodeJobDraft } from '../split/node-job';
import type { ClusterView, NodeEntry } from './view';
import { testboxQueueName } from '../queue/queues';
import { MAX_CLUSTER_TIMEOUT_MS, MIN_CLUSTER_TIMEOUT_MS } from '../split/split';

/** Settings of the Redis side. */
export interface StoreOptions {
  /** Prefix of every key (tests, shared servers). Default empty: Compass-CI's key names. */
  keyPrefix?: string;
  /** Prefix of node job ids, which are `PREFIX-N`. Default `cs`. */
  jobIdPrefix?: string;
  /** Approximate cap of the all-clusters event stream. Default 100 000 events. */
  maxEvents?: number;
}

/**
 * Cluster state in Redis. Every write goes through one atomic Lua script;
 * nothing here reads, modifies and writes back from Node.
 */
export class ClusterStore {
  readonly keys: Keys;
  readonly redis: ScriptedRedis;
  private readonly jobIdPrefix: string;
  private readonly maxEvents: number;

  constructor(redis: Redis, options: StoreOptions = {}) {
    this.redis = withScripts(redis);
    this.keys = new Keys(options.keyPrefix ?? '');
    this.jobIdPrefix = options.jobIdPrefix ?? 'cs';
    this.maxEvents = options.maxEvents ?? 100_000;
  }

  /** Gives each draft a job id (the first is the cluster id) and the cluster's token. */
  async assignIds(drafts: NodeJobDraft[]): Promise<NodeJob[]> {
    const last = await this.redis.incrby(this.keys.jobSeq, drafts.length);
    const first = last - drafts.length + 1;
    const ids = drafts.map((_, i) => `${this.jobIdPrefix}-${first + i}`);
    const cluster = ids[0] as string;
    const token = randomBytes(24).toString('base64url');
    const group = Object.fromEntries(drafts.map((d, i) => [ids[i] as string, d.node_roles]));
    return drafts.map((d, i) => ({ ...d, job_id: ids[i] as string, cluster, token, group }));
  }

  /**
   * Writes the cluster's state, id map, meta (with the start deadline) and
   * "submitted" event in one script, and marks the cluster as being
   * submitted until {@link markQueued}. Returns the creation time and the event's id.
   */
  async createCluster(jobs: NodeJob[], extraMeta: Record<string, string | number> = {}): Promise<{ created: number; event: string }> {
    const first = jobs[0];
    if (!first) throw new Error('a cluster needs at least one node job');
    const cid = first.cluster;
    const nodes: Record<string, NodeEntry> = {};
    for (const j of jobs) {
      nodes[j.job_id] = { state: '', roles: j.node_roles, ip: '', direct_ips: j.direct_ips, direct_macs: j.direct_macs, entire_state: '' };
    }
    const meta = {
      token: first.token,
      spec: first.cluster_spec,
      nodes: jobs.length,
      roles: clusterRoles(jobs),
      timeout_ms: first.cluster_timeout_ms,
      heartbeat_ms: first.heartbeat_interval_ms,
      standalone: first.standalone ? 1 : 0,
      // the node job of each spec host, for clients that send no job_id
      ...Object.fromEntries(jobs.map((j) => [hostField(j.host), j.job_id])),
      // Where each node job waits: what the reaper and retention remove.
      queues: JSON.stringify(Object.fromEntries(jobs.map((j) => [j.job_id, testboxQueueName(j.queue)]))),
      // The policy, the job and its lineage (src/results/history.ts).
      ...extraMeta,
    };
    const event = { v: 1, type: 'submitted', cluster: cid, nodes: jobs.length, roles: meta.roles, spec: meta.spec };
    const k = this.keys;
    const [created, id] = await this.redis.csCreate(
      k.clusterState, k.id2cluster, k.meta(cid), k.events(cid), k.allEvents, k.openClusters, k.submitting, k.deadlines, k.specClusters(first.cluster_spec),
      cid, JSON.stringify(nodes), JSON.stringify(meta), JSON.stringify(event), this.maxEvents, MIN_CLUSTER_TIMEOUT_MS, MAX_CLUSTER_TIMEOUT_MS,
    );
    return { created: Number(created), event: id };
  }

  /** The cluster's node jobs are queued (with its first deadline): its submit is complete. */
  async markQueued(cid: string): Promise<void> {
    await this.redis.zrem(this.keys.submitting, cid);
  }

  /** Clusters created before `before` (ms, Redis clock) whose submit never said it was complete. */
  async unfinishedSubmits(before: number, limit = 100): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.submitting, '-inf', before, 'LIMIT', 0, limit);
  }

  /** Where each of the cluster's node jobs waits (`{job id: queue name}`); empty once the cluster is gone. */
  async nodeQueues(cid: string): Promise<Record<string, string>> {
    const raw = await this.redis.hget(this.keys.meta(cid), 'queues');
    if (!raw) return {};
    try {
      return JSON.parse(raw) as Record<string, string>;
    } catch {
      return {};
    }
  }

  /**
   * Removes every trace of a cluster in Redis (not its BullMQ jobs: the
   * caller removes those first). Plain commands, no MULTI: Redis refuses a
   * MULTI when it is out of memory, but always accepts deletes. Each
   * command is tried even when an earlier one failed; the first error is
   * thrown at the end, so the caller knows to try again.
   */
  async deleteCluster(cid: string, jobIds?: string[]): Promise<void> {
    const k = this.keys;
    const [rawNodes, submitted, spec] = await Promise.all([
      this.redis.hget(k.clusterState, cid).catch(() => null),
      this.redis.hget(k.meta(cid), 'submitted_event').catch(() => null),
      this.redis.hget(k.meta(cid), 'spec').catch(() => null),
    ]);
    let jobs = jobIds ?? [];
    if (rawNodes) {
      try {
        jobs = [...new Set([...jobs, ...Object.keys(JSON.parse(rawNodes) as Record<string, unknown>)])];
      } catch {
        /* a corrupt entry: the ids given are all we know */
      }
    }
    const steps: Promise<unknown>[] = [
      this.redis.hdel(k.clusterState, cid),
      this.redis.zrem(k.openClusters, cid),
      this.redis.zrem(k.retryDue, cid),
      this.redis.zrem(k.deadlines, ...BARRIERS.map((b) => `${cid} ${b}`)),
    ];
    if (jobs.length > 0) {
      steps.push(this.redis.hdel(k.id2cluster, ...jobs));
      steps.push(this.redis.zrem(k.heartbeats, ...jobs.map((j) => `${cid} ${j}`)));
    }
    if (submitted) steps.push(this.redis.xdel(k.allEvents, submitted));
    if (spec !== null) steps.push(this.redis.zrem(k.specClusters(spec), cid));
    const results = await Promise.allSettled(steps);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    // The meta hash goes last but one: while it exists, the reaper can find the node queues again.
    await this.redis.del(...k.clusterKeys(cid));
    // Last: while these entries stay, the reaper and retention find the cluster again and finish the job.
    await this.redis.zrem(k.submitting, cid);
    await this.redis.zrem(k.endedClusters, cid);
  }

  /** Folds one validated report: a batch of one. */
  async fold(report: Report): Promise<FoldOutcome> {
    const [outcome] = await this.foldBatch([report]);
    return outcome as FoldOutcome;
  }

  /** Folds validated reports in order, each on its own, in one atomic call: one outcome per report. */
  async foldBatch(reports: readonly Report[]): Promise<FoldOutcome[]> {
    if (reports.length === 0) return [];
    const [numberOfKeys, ...args] = foldBatchCall(this.keys, reports, this.maxEvents);
    const raw = JSON.parse(await this.redis.csFoldBatch(numberOfKeys, ...args)) as unknown[];
    return raw.map((o) => parseOutcome(o));
  }

  /** Resolves `barrier` abort if it is still open at its deadline. */
  async timeout(cid: string, barrier: Barrier): Promise<FoldOutcome> {
    const k = this.keys;
    const prefix = `barrier ${barrier} timed out after ${formatDuration(await this.clusterTimeoutMs(cid))}`;
    const raw = await this.redis.csTimeout(k.clusterState, k.meta(cid), k.events(cid), k.allEvents, k.heartbeats, k.openClusters, k.deadlines, k.endedClusters, k.retryDue, cid, barrier, prefix, this.maxEvents);
    return parseOutcome(raw);
  }

  /** The cheap check made before a report or query is accepted: does the token and job fit the cluster? */
  async checkMembership(cid: string, job: string, token: string): Promise<MembershipRefusal | undefined> {
    const [bad] = await this.checkMemberships([{ cluster: cid, job, token }]);
    return bad;
  }

  /**
   * The same check for many (cluster, job, token) triples in one pipeline (no
   * MULTI: nothing is written, and each answer stands alone): one refusal or
   * `undefined` per triple, in order.
   */
  async checkMemberships(triples: readonly { cluster: string; job: string; token: string }[]): Promise<(MembershipRefusal | undefined)[]> {
    const p = this.redis.pipeline();
    for (const t of triples) p.hget(this.keys.meta(t.cluster), 'token').hget(this.keys.id2cluster, t.job);
    const replies = (await p.exec()) ?? [];
    return triples.map((t, i) => {
      const [tokenErr, metaToken] = replies[2 * i] ?? [new Error('no reply')];
      const [ownerErr, owner] = replies[2 * i + 1] ?? [new Error('no reply')];
      if (tokenErr) throw tokenErr;
      if (ownerErr) throw ownerErr;
      return membershipRefusal(t.cluster, t.job, t.token, metaToken as string | null, owner as string | null);
    });
  }

  async token(cid: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.meta(cid), 'token')) ?? undefined;
  }

  /** The token and heartbeat interval (ms) of a cluster, in one read; `undefined` once the cluster is gone. */
  async heartbeatSettings(cid: string): Promise<{ token: string; heartbeatMs: number } | undefined> {
    const [token, hb] = await this.redis.hmget(this.keys.meta(cid), 'token', 'heartbeat_ms');
    return token ? { token, heartbeatMs: Number(hb) || 0 } : undefined;
  }

  async clusterOfJob(job: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.id2cluster, job)) ?? undefined;
  }

  /** How long each barrier may wait, ms (job field `cluster_timeout`). */
  async clusterTimeoutMs(cid: string): Promise<number> {
    return Number(await this.redis.hget(this.keys.meta(cid), 'timeout_ms')) || 0;
  }

  /** Records that a legacy client's daemon started (intel's early `finished`); the node's state does not move. */
  async recordDaemonStarted(cid: string, job: string): Promise<void> {
    const [sec, usec] = await this.redis.time();
    await this.redis.hset(this.keys.meta(cid), `daemon_started:${job}`, Number(sec) * 1000 + Math.floor(Number(usec) / 1000));
  }

  /** Records when `barrier` times out: the workers' sweep fires it then (later deadlines are written by the fold). */
  async setDeadline(cid: string, barrier: Barrier, at: number): Promise<void> {
    await this.redis.multi().hset(this.keys.meta(cid), `deadline:${barrier}`, at).zadd(this.keys.deadlines, at, `${cid} ${barrier}`).exec();
  }

  /** Barrier deadlines that have come (Redis server time): `[cluster, barrier]` pairs, earliest first. */
  async dueDeadlines(limit = 1000): Promise<[string, Barrier][]> {
    const [sec, usec] = await this.redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const members = await this.redis.zrangebyscore(this.keys.deadlines, '-inf', now, 'LIMIT', 0, limit);
    return members.map((m) => m.split(' ') as [string, Barrier]);
  }

  async readCluster(cid: string): Promise<ClusterView> {
    // No MULTI: Redis refuses one while it is out of memory, and status must work then too.
    const [raw, meta] = await Promise.all([this.redis.hget(this.keys.clusterState, cid), this.redis.hgetall(this.keys.meta(cid))]);
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
    return this.redis.zrange(this.keys.openClusters, 0, limit - 1);
  }

  /** Drops a node from the heartbeat watch; true for the one caller that removed it. */
  async forgetHeartbeat(cid: string, job: string): Promise<boolean> {
    return (await this.redis.zrem(this.keys.heartbeats, `${cid} ${job}`)) === 1;
  }

  /**
   * Takes this period's sweep lease for `ms` unless another process holds
   * it: true for the one caller that got it. Throws while Redis refuses
   * writes; the caller tries again next period.
   */
  async claimSweep(holder: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.sweepLease, holder, 'PX', ms, 'NX')) === 'OK';
  }

  /** Redis's clock, ms: the one clock every worker process shares. */
  async now(): Promise<number> {
    const [sec, usec] = await this.redis.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }

  /** Clusters that ended at or before `t` (ms), oldest first. */
  async endedBefore(t: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.endedClusters, '-inf', t, 'LIMIT', 0, limit);
  }

  /** Records clusters as ended at the given times, unless already recorded (the backfill of clusters ended before the index existed). */
  async recordEnded(ends: ReadonlyMap<string, number>): Promise<void> {
    if (ends.size === 0) return;
    await this.redis.zadd(this.keys.endedClusters, 'NX', ...[...ends].flatMap(([cid, at]) => [at, cid]));
  }

  /**
   * The next clusters of `sched/cluster_state`, one HSCAN step from the
   * cursor kept in Redis (so every worker process continues the same walk).
   * `cursorDone` is true when this step finished a whole pass.
   */
  async scanClusters(count: number): Promise<{ clusters: string[]; cursorDone: boolean }> {
    const cursor = (await this.redis.get(this.keys.retentionCursor)) ?? '0';
    const [next, flat] = await this.redis.hscan(this.keys.clusterState, cursor, 'COUNT', count);
    // Written only when the walk moves on: a small hash is walked in one step and writes nothing.
    if (next !== cursor) await (next === '0' ? this.redis.del(this.keys.retentionCursor) : this.redis.set(this.keys.retentionCursor, next));
    const clusters: string[] = [];
    for (let i = 0; i < flat.length; i += 2) clusters.push(flat[i] as string);
    return { clusters, cursorDone: next === '0' };
  }

  /** For each cluster, when it ended (ms: its last resolution), or undefined while it is open or half-written. */
  async endTimes(clusters: string[]): Promise<Map<string, number | undefined>> {
    const pipe = this.redis.pipeline();
    for (const cid of clusters) pipe.hmget(this.keys.meta(cid), 'final', 'created', ...BARRIERS.map((b) => `at:${b}`));
    const rows = (await pipe.exec()) ?? [];
    const out = new Map<string, number | undefined>();
    clusters.forEach((cid, i) => {
      const [err, vals] = rows[i] ?? [null, []];
      const v = (vals ?? []) as (string | null)[];
      if (err || !v[0]) return out.set(cid, undefined);
      const ats = v.slice(2).map(Number).filter((n) => Number.isFinite(n) && n > 0);
      if (ats.length === 0) ats.push(Number(v[1]) || 0);
      out.set(cid, Math.max(...ats));
    });
    return out;
  }

  /** Nodes whose heartbeat deadline has passed: `[cluster, job]` pairs. */
  async silentNodes(limit = 100): Promise<[string, string][]> {
    const [sec, usec] = await this.redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const members = await this.redis.zrangebyscore(this.keys.heartbeats, '-inf', now, 'LIMIT', 0, limit);
    return members.map((m) => m.split(' ') as [string, string]);
  }
}

/** Why a report or query does not fit its cluster (codes as the fold's refusals). */
export interface MembershipRefusal {
  code: string;
  reason: string;
}

function membershipRefusal(cid: string, job: string, token: string, metaToken: string | null, owner: string | null): MembershipRefusal | undefined {
  if (metaToken === null) return { code: 'UNKNOWN_CLUSTER', reason: `unknown cluster ${cid}` };
  if (metaToken !== token) return { code: 'BAD_TOKEN', reason: `wrong token for cluster ${cid}` };
  if (owner === null) return { code: 'UNKNOWN_JOB', reason: `unknown job ${job}` };
  if (owner !== cid) return { code: 'OTHER_CLUSTER', reason: `job ${job} belongs to cluster ${owner}, not ${cid}` };
  return undefined;
}

/** The meta field holding the node job id of spec host `host`. */
export function hostField(host: string): string {
  return `host:${host}`;
}

/** Every role of a cluster's nodes, once each, in node order. */
export function clusterRoles(jobs: readonly NodeJob[]): string {
  return [...new Set(jobs.flatMap((j) => j.node_roles.split(' ')))].join(' ');
}

/** `cs-9` before `cs-10`. */
export function compareJobIds(a: string, b: string): number {
  const na = Number(/(\d+)$/.exec(a)?.[1]);
  const nb = Number(/(\d+)$/.exec(b)?.[1]);
  return Number.isFinite(na) && Number.isFinite(nb) && na !== nb ? na - nb : a.localeCompare(b);
}
