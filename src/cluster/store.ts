import type { Redis } from 'ioredis';
import type { Keys } from '../core/keys';
import type { Barrier } from '../core/states';
import type { Report } from '../bus/messages';
import type { ScriptedRedis } from '../fold/scripts';
import type { FoldOutcome } from '../fold/outcome';
import type { NodeJob, NodeJobDraft } from '../split/node-job';
import { FoldStore } from './fold-store';
import type { MembershipRefusal } from './fold-store';
import { ReadStore } from './read-store';
import { storeContext } from './store-context';
import type { StoreOptions } from './store-context';
import { SubmitStore } from './submit-store';
import { SweepStore } from './sweep-store';
import type { ClusterView } from './view';

export type { StoreOptions } from './store-context';
export type { MembershipRefusal } from './fold-store';
export { clusterRoles, hostField } from './submit-store';
export { compareJobIds } from './read-store';

/**
 * Cluster state in Redis, one object for its callers, made of four parts by
 * concern: {@link SubmitStore} (job ids, the cluster's creation),
 * {@link FoldStore} (reports folded, barriers timed out, membership checks),
 * {@link SweepStore} (the sweep's lease, due deadlines, silent nodes,
 * retention and removal) and {@link ReadStore} (reads, Redis's clock).
 *
 * The writes that move a cluster's state (create, fold, timeout) are each one
 * atomic Lua script. The rest are plain commands where one key changes on its
 * own (a deadline, the lease, the retention cursor) or where a MULTI would be
 * refused when it matters most: removal and reads run while Redis is out of
 * memory. Nothing here reads a cluster's state, modifies it in Node and writes it back.
 */
export class ClusterStore {
  readonly keys: Keys;
  readonly redis: ScriptedRedis;
  readonly submits: SubmitStore;
  readonly folds: FoldStore;
  readonly sweeps: SweepStore;
  readonly reads: ReadStore;

  constructor(redis: Redis, options: StoreOptions = {}) {
    const ctx = storeContext(redis, options);
    this.redis = ctx.redis;
    this.keys = ctx.keys;
    this.submits = new SubmitStore(ctx);
    this.reads = new ReadStore(ctx);
    this.folds = new FoldStore(ctx, this.reads);
    this.sweeps = new SweepStore(ctx);
  }

  // Submit (SubmitStore).
  assignIds(drafts: NodeJobDraft[]): Promise<NodeJob[]> {
    return this.submits.assignIds(drafts);
  }
  createCluster(jobs: NodeJob[], extraMeta?: Record<string, string | number>): Promise<{ created: number; event: string }> {
    return this.submits.createCluster(jobs, extraMeta);
  }
  markQueued(cid: string): Promise<void> {
    return this.submits.markQueued(cid);
  }

  // Fold (FoldStore).
  fold(report: Report): Promise<FoldOutcome> {
    return this.folds.fold(report);
  }
  foldBatch(reports: readonly Report[]): Promise<FoldOutcome[]> {
    return this.folds.foldBatch(reports);
  }
  timeout(cid: string, barrier: Barrier, pendingMs?: number): Promise<FoldOutcome> {
    return this.folds.timeout(cid, barrier, pendingMs);
  }
  confirmTimeout(cid: string, barrier: Barrier): Promise<void> {
    return this.folds.confirmTimeout(cid, barrier);
  }
  checkMembership(cid: string, job: string, token: string): Promise<MembershipRefusal | undefined> {
    return this.folds.checkMembership(cid, job, token);
  }
  checkMemberships(triples: readonly { cluster: string; job: string; token: string }[]): Promise<(MembershipRefusal | undefined)[]> {
    return this.folds.checkMemberships(triples);
  }
  recordDaemonStarted(cid: string, job: string): Promise<void> {
    return this.folds.recordDaemonStarted(cid, job);
  }
  setDeadline(cid: string, barrier: Barrier, at: number): Promise<void> {
    return this.folds.setDeadline(cid, barrier, at);
  }
  forgetHeartbeat(cid: string, job: string): Promise<boolean> {
    return this.folds.forgetHeartbeat(cid, job);
  }

  // Sweeps and retention (SweepStore).
  claimSweep(holder: string, ms: number): Promise<boolean> {
    return this.sweeps.claimSweep(holder, ms);
  }
  dueDeadlines(limit?: number): Promise<[string, Barrier][]> {
    return this.sweeps.dueDeadlines(limit);
  }
  silentNodes(limit?: number): Promise<[string, string][]> {
    return this.sweeps.silentNodes(limit);
  }
  unfinishedSubmits(before: number, limit?: number): Promise<string[]> {
    return this.sweeps.unfinishedSubmits(before, limit);
  }
  endedBefore(t: number, limit: number): Promise<string[]> {
    return this.sweeps.endedBefore(t, limit);
  }
  recordEnded(ends: ReadonlyMap<string, number>): Promise<void> {
    return this.sweeps.recordEnded(ends);
  }
  scanClusters(count: number): Promise<{ clusters: string[]; cursorDone: boolean }> {
    return this.sweeps.scanClusters(count);
  }
  endTimes(clusters: string[]): Promise<Map<string, number | undefined>> {
    return this.sweeps.endTimes(clusters);
  }
  deleteCluster(cid: string, jobIds?: string[]): Promise<void> {
    return this.sweeps.deleteCluster(cid, jobIds);
  }

  // Reads (ReadStore).
  readCluster(cid: string): Promise<ClusterView> {
    return this.reads.readCluster(cid);
  }
  openClusters(limit?: number): Promise<string[]> {
    return this.reads.openClusters(limit);
  }
  token(cid: string): Promise<string | undefined> {
    return this.reads.token(cid);
  }
  heartbeatSettings(cid: string): Promise<{ token: string; heartbeatMs: number } | undefined> {
    return this.reads.heartbeatSettings(cid);
  }
  clusterOfJob(job: string): Promise<string | undefined> {
    return this.reads.clusterOfJob(job);
  }
  clusterTimeoutMs(cid: string): Promise<number> {
    return this.reads.clusterTimeoutMs(cid);
  }
  nodeQueues(cid: string): Promise<Record<string, string>> {
    return this.reads.nodeQueues(cid);
  }
  finalResult(cid: string): Promise<'finish' | 'abort' | undefined> {
    return this.reads.finalResult(cid);
  }
  presence(cid: string): Promise<{ state: boolean; meta: boolean }> {
    return this.reads.presence(cid);
  }
  clusterIds(): Promise<string[]> {
    return this.reads.clusterIds();
  }
  foldedReportIds(cid: string): Promise<string[]> {
    return this.reads.foldedReportIds(cid);
  }
  now(): Promise<number> {
    return this.reads.now();
  }
}
