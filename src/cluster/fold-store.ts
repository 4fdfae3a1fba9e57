import { formatDuration } from '../core/duration';
import { RefusalCode } from '../core/refusal-codes';
import { redisNowMs } from '../core/redis';
import type { Barrier } from '../core/states';
import type { Report } from '../bus/messages';
import { foldBatchCall } from '../fold/batch';
import { parseOutcome } from '../fold/outcome';
import type { FoldOutcome } from '../fold/outcome';
import type { ReadStore } from './read-store';
import type { StoreContext } from './store-context';

/** Why a report or query does not fit its cluster (codes as the fold's refusals). */
export interface MembershipRefusal {
  code: RefusalCode;
  reason: string;
}

/**
 * The workers' writes to cluster state: reports folded and barriers timed
 * out (each one atomic script), the membership check made before a report is
 * accepted, and the few plain writes beside them (deadlines, heartbeat watch).
 */
export class FoldStore {
  constructor(
    private readonly ctx: StoreContext,
    private readonly reads: ReadStore,
  ) {}

  /** Folds one validated report: a batch of one. */
  async fold(report: Report): Promise<FoldOutcome> {
    const [outcome] = await this.foldBatch([report]);
    return outcome as FoldOutcome;
  }

  /** Folds validated reports in order, each on its own, in one atomic call (fold-batch.lua): one outcome per report. */
  async foldBatch(reports: readonly Report[]): Promise<FoldOutcome[]> {
    if (reports.length === 0) return [];
    const [numberOfKeys, ...args] = foldBatchCall(this.ctx.keys, reports, this.ctx.maxEvents);
    const raw = JSON.parse(await this.ctx.redis.csFoldBatch(numberOfKeys, ...args)) as unknown[];
    return raw.map((o) => parseOutcome(o));
  }

  /**
   * Resolves `barrier` abort if it is still open at its deadline (timeout.lua).
   * With `pendingMs` above 0, a deadline that aborted the cluster stays due
   * again `pendingMs` later, and a later call returns the same outcome, until
   * {@link confirmTimeout}: for a caller that must not lose the outcome before
   * it is published (the workers' sweep waits for a replica first).
   */
  async timeout(cid: string, barrier: Barrier, pendingMs = 0): Promise<FoldOutcome> {
    const k = this.ctx.keys;
    const prefix = `barrier ${barrier} timed out after ${formatDuration(await this.reads.clusterTimeoutMs(cid))}`;
    const raw = await this.ctx.redis.csTimeout(...k.endKeys(cid), k.retryDue, cid, barrier, prefix, this.ctx.maxEvents, pendingMs);
    return parseOutcome(raw);
  }

  /** The outcome of `barrier`'s timeout was published: its deadline and kept outcome are dropped, and no sweep publishes it again. */
  async confirmTimeout(cid: string, barrier: Barrier): Promise<void> {
    await this.ctx.redis.multi().zrem(this.ctx.keys.deadlines, `${cid} ${barrier}`).hdel(this.ctx.keys.meta(cid), `timeout_outcome:${barrier}`).exec();
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
    const p = this.ctx.redis.pipeline();
    for (const t of triples) p.hget(this.ctx.keys.meta(t.cluster), 'token').hget(this.ctx.keys.id2cluster, t.job);
    const replies = (await p.exec()) ?? [];
    return triples.map((t, i) => {
      const [tokenErr, metaToken] = replies[2 * i] ?? [new Error('no reply')];
      const [ownerErr, owner] = replies[2 * i + 1] ?? [new Error('no reply')];
      if (tokenErr) throw tokenErr;
      if (ownerErr) throw ownerErr;
      return membershipRefusal(t.cluster, t.job, t.token, metaToken as string | null, owner as string | null);
    });
  }

  /** Records that a legacy client's daemon started (intel's early `finished`); the node's state does not move. */
  async recordDaemonStarted(cid: string, job: string): Promise<void> {
    await this.ctx.redis.hset(this.ctx.keys.meta(cid), `daemon_started:${job}`, await redisNowMs(this.ctx.redis));
  }

  /** Records when `barrier` times out: the workers' sweep fires it then (later deadlines are written by the fold). */
  async setDeadline(cid: string, barrier: Barrier, at: number): Promise<void> {
    await this.ctx.redis.multi().hset(this.ctx.keys.meta(cid), `deadline:${barrier}`, at).zadd(this.ctx.keys.deadlines, at, `${cid} ${barrier}`).exec();
  }

  /** Drops a node from the heartbeat watch; true for the one caller that removed it. */
  async forgetHeartbeat(cid: string, job: string): Promise<boolean> {
    return (await this.ctx.redis.zrem(this.ctx.keys.heartbeats, `${cid} ${job}`)) === 1;
  }
}

function membershipRefusal(cid: string, job: string, token: string, metaToken: string | null, owner: string | null): MembershipRefusal | undefined {
  if (metaToken === null) return { code: RefusalCode.UnknownCluster, reason: `unknown cluster ${cid}` };
  if (metaToken !== token) return { code: RefusalCode.BadToken, reason: `wrong token for cluster ${cid}` };
  if (owner === null) return { code: RefusalCode.UnknownJob, reason: `unknown job ${job}` };
  if (owner !== cid) return { code: RefusalCode.OtherCluster, reason: `job ${job} belongs to cluster ${owner}, not ${cid}` };
  return undefined;
}
