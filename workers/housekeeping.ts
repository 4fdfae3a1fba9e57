import type { Logger } from 'pino';
import type { ClusterStore } from '../src/cluster/store';
import { claimSubmit, removeCluster } from '../src/cluster/submit';
import { errorMessage } from '../src/core/errors';
import { formatDuration } from '../src/core/duration';
import { testboxOfQueue } from '../src/queue/queues';
import type { QueueSet } from '../src/queue/queues';
import { AdmissionStore } from '../src/admission/admission-store';

export interface HousekeepingOptions {
  /**
   * How long a cluster may stay half-submitted (created, its node jobs not
   * yet known to be queued) before the reaper finishes or removes it, ms.
   * Default 60 000: a submit takes milliseconds.
   */
  submitGraceMs?: number;
  /** How long an ended cluster (final finish or abort) is kept before it is deleted whole, ms. Default 7 days. */
  retentionMs?: number;
  /** Ended clusters deleted per sweep at most, and clusters looked at per step of the backfill walk. Default 500. */
  retentionBatch?: number;
}

export const DEFAULT_RETENTION_MS = 7 * 86_400_000;
export const DEFAULT_SUBMIT_GRACE_MS = 60_000;

/**
 * The workers' housekeeping, run by the per-second sweep:
 *
 * - **Reaper.** A cluster that create.lua wrote but whose submit never said
 *   its node jobs were queued (the scheduler died, Redis refused the
 *   enqueue and the removal) is, after the grace period, either finished
 *   (all its node jobs are queued: only the mark was missing) or removed
 *   whole with the reason logged (none is: no node can have taken one,
 *   because they are queued together in one MULTI).
 * - **Retention.** An ended cluster is deleted whole (its keys, its entries
 *   in the global hashes and zsets, its BullMQ node and deadline jobs) once
 *   it has been over for the retention period. The call that ends a cluster
 *   records it in `cs/clusters/ended` (score: when), so a sweep reads only
 *   the clusters that are due, whatever the number of open ones. (It used to
 *   walk every cluster's meta each second: Redis commands per barrier grew
 *   with how long barriers waited.)
 * - **Backfill.** Clusters that ended before that index existed are found
 *   once per worker process: a walk over `sched/cluster_state` with HSCAN, a
 *   step per sweep (the cursor kept in Redis, so the processes share one
 *   walk), records the ended ones it meets, and stops for this process when
 *   a pass is done.
 */
export class Housekeeping {
  private readonly submitGraceMs: number;
  private readonly retentionMs: number;
  private readonly batch: number;
  private running = false;
  /** This process has seen a whole pass of the backfill walk. */
  private backfilled = false;

  constructor(
    private readonly store: ClusterStore,
    private readonly queues: QueueSet,
    private readonly log: Logger,
    options: HousekeepingOptions = {},
  ) {
    this.submitGraceMs = options.submitGraceMs ?? DEFAULT_SUBMIT_GRACE_MS;
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.batch = options.retentionBatch ?? 500;
  }

  /** One round of both. Overlapping rounds in one process are skipped (a sweep may outlast its period). */
  async run(): Promise<{ reaped: number; completed: number; deleted: number }> {
    if (this.running) return { reaped: 0, completed: 0, deleted: 0 };
    this.running = true;
    try {
      const now = await this.store.now();
      // Each half on its own: Redis refusing writes (out of memory) must not stop the reaper's deletes.
      const { reaped, completed } = await this.reap(now).catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err) }, 'reaper round failed; trying again next sweep');
        return { reaped: 0, completed: 0 };
      });
      const deleted = await this.retain(now).catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err) }, 'retention round failed; trying again next sweep');
        return 0;
      });
      return { reaped, completed, deleted };
    } finally {
      this.running = false;
    }
  }

  private async reap(now: number): Promise<{ reaped: number; completed: number }> {
    let reaped = 0;
    let completed = 0;
    for (const cid of await this.store.unfinishedSubmits(now - this.submitGraceMs)) {
      try {
        const where = await this.store.nodeQueues(cid);
        const jobs = Object.entries(where);
        const states = await Promise.all(jobs.map(([job, queue]) => this.queues.get(queue).getJobState(job)));
        if (jobs.length > 0 && states.every((s) => s !== 'unknown')) {
          // Complete: it waits for admission (with the workers' default admit timeout and priority 0).
          await new AdmissionStore(this.store.redis, this.store.keys).enqueue(
            cid,
            jobs.map(([job_id, q]) => ({ job_id, queue: testboxOfQueue(q) ?? q })),
          );
          completed++;
          this.log.info({ cluster: cid }, 'a submit stopped after queueing every node job of the cluster; marked it complete');
          continue;
        }
        // The submit may be alive but slow, and queue its node jobs any moment: one of the two decides.
        const end = await claimSubmit(this.store, cid, 'reaper');
        if (end !== 'reaper') continue;
        await removeCluster(this.store, this.queues, cid);
        reaped++;
        this.log.warn(
          { cluster: cid, jobs: jobs.map(([j]) => j), queued: states.filter((s) => s !== 'unknown').length },
          `removed half-written cluster ${cid}: created over ${formatDuration(this.submitGraceMs)} ago but its node jobs were never queued (the scheduler stopped or Redis failed mid-submit)`,
        );
      } catch (err) {
        this.log.warn({ cluster: cid, err: errorMessage(err) }, 'could not finish or remove a half-written cluster; trying again next sweep');
      }
    }
    return { reaped, completed };
  }

  private async retain(now: number): Promise<number> {
    if (!this.backfilled) await this.backfill();
    let deleted = 0;
    for (const cid of await this.store.endedBefore(now - this.retentionMs, this.batch)) {
      try {
        await removeCluster(this.store, this.queues, cid);
        deleted++;
        this.log.debug({ cluster: cid }, 'ended cluster deleted after the retention period');
      } catch (err) {
        this.log.warn({ cluster: cid, err: errorMessage(err) }, 'could not delete an ended cluster; trying again next sweep');
      }
    }
    if (deleted > 0) this.log.info({ deleted, retention: formatDuration(this.retentionMs) }, 'ended clusters deleted after the retention period');
    return deleted;
  }

  /** One step of the walk that records clusters ended before `cs/clusters/ended` existed. */
  private async backfill(): Promise<void> {
    const { clusters, cursorDone } = await this.store.scanClusters(this.batch);
    const ends = await this.store.endTimes(clusters);
    const ended = new Map<string, number>();
    for (const [cid, at] of ends) if (at !== undefined) ended.set(cid, at);
    await this.store.recordEnded(ended);
    if (cursorDone) this.backfilled = true;
  }
}
