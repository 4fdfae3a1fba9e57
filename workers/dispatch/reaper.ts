import { Job } from 'bullmq';
import type { Logger } from 'pino';
import { neverTakenReason } from '../../src/admission/explain';
import { errorMessage } from '../../src/core/errors';
import { isRedisUnavailable } from '../../src/core/redis-errors';
import { timeReplyMs } from '../../src/core/redis';
import type { ClusterEvent } from '../../src/fold/outcome';
import { testboxOfQueue } from '../../src/queue/queues';
import type { NodeJob } from '../../src/split/node-job';
import type { DispatchContext } from './context';

/**
 * Fails the node jobs nobody will end: the job of a node aborted as dead (its
 * `abort` event says "no heartbeat"), and, the end grace after their cluster
 * ended, the jobs whose node never reported their end (it took the job and
 * died, or never got the reply), whether this process holds them or their
 * holder is gone too.
 */
export class EndedJobReaper {
  private readonly graceTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly ctx: DispatchContext,
    private readonly endGraceMs: number,
  ) {}

  private get log(): Logger {
    return this.ctx.log;
  }

  /** The reason given when a cluster ended `ended` (`aborted` / `finished`) more than the grace ago. */
  endReason(ended: string): string {
    return `its cluster ${ended} ${this.endGraceMs} ms ago and the node never reported the job's end`;
  }

  async onEvent(ev: ClusterEvent): Promise<void> {
    if (ev.type === 'resolution' && (ev.result === 'abort' || ev.barrier === 'finish')) {
      const ended = ev.result === 'abort' ? 'aborted' : 'finished';
      const reason = this.endReason(ended);
      const timer = setTimeout(() => {
        this.graceTimers.delete(timer);
        for (const [id, h] of [...this.ctx.pool.held]) {
          if (h.job.data.cluster === ev.cluster) void this.fail(id, reason);
        }
        // A job active with no take recorded was handed to no node (admission's reaper was cut off between
        // taking the ended cluster's untaken jobs and failing them, or a dispatcher died between BullMQ's
        // move and its record of the take): it fails as admission's reaper would have failed it.
        void this.failOrphans(ev.cluster, reason, neverTakenReason(ev.cluster, ended));
      }, this.endGraceMs);
      this.graceTimers.add(timer);
      return;
    }
    if (ev.type !== 'report' || ev.report !== 'abort' || !ev.reason?.startsWith('no heartbeat')) return;
    await this.fail(ev.job, `aborted: ${ev.reason}`);
  }

  /** Fails a node job this process holds, with the reason. */
  async fail(id: string, reason: string): Promise<void> {
    const h = this.ctx.pool.held.get(id);
    if (!h) return;
    this.ctx.pool.held.delete(id);
    try {
      await h.job.moveToFailed(new Error(reason), h.token, false);
      this.log.warn({ job: id, reason }, 'node job failed by the dispatcher');
    } catch (err) {
      // Redis refused or was out of reach: still held, so the next lock extension tries again.
      const retry = isRedisUnavailable(err);
      if (retry && !this.ctx.pool.held.has(id)) this.ctx.pool.held.set(id, h);
      this.log.warn({ err: errorMessage(err), job: id }, retry ? 'could not fail a node job yet; trying again at the next lock extension' : 'could not fail a node job');
    }
  }

  /**
   * Fails the node jobs of an ended cluster that are still active with no
   * lock: their holder died (or is stopped) and so is their node. Every
   * process tries; BullMQ lets one succeed.
   */
  private async failOrphans(cluster: string, reason: string, neverHanded: string): Promise<void> {
    const { connection, pool } = this.ctx;
    try {
      // Every node job of the cluster, not only those whose lock was recorded at take: a dispatcher
      // can die after BullMQ moved a job to active and before it recorded the lock or replied.
      const [locks, queuesRaw] = await Promise.all([connection.hgetall(pool.keys.nodeLocks(cluster)), connection.hget(pool.keys.meta(cluster), 'queues')]);
      const testboxes = new Map<string, string>();
      try {
        // meta `queues`: node job id -> its BullMQ queue, `tb-<testbox>`.
        for (const [id, q] of Object.entries(JSON.parse(queuesRaw ?? '{}') as Record<string, string>)) {
          const testbox = testboxOfQueue(q);
          if (testbox) testboxes.set(id, testbox);
        }
      } catch {
        /* a corrupt meta: the recorded locks are all we know */
      }
      for (const [id, value] of Object.entries(locks)) testboxes.set(id, value.split(' ')[0] ?? '');
      for (const [id, testbox] of testboxes) {
        if (pool.held.has(id) || testbox === '') continue;
        if (await pool.locked(testbox, id)) continue;
        const job = (await Job.fromId(pool.workerFor(testbox), id)) as Job<NodeJob> | undefined;
        if (!job || !(await job.isActive())) continue;
        // A take is recorded in the node locks before the job is handed to a node: without one, no node got it.
        const why = id in locks ? reason : neverHanded;
        await job.moveToFailed(new Error(why), '0', false).then(
          () =>
            this.log.warn({ job: id, reason: why }, id in locks ? 'node job failed by the dispatcher (its holder and its node are gone)' : 'node job failed by the dispatcher (no node was handed it)'),
          () => undefined,
        );
      }
    } catch (err) {
      this.log.warn({ cluster, err: errorMessage(err) }, 'could not look for orphaned node jobs');
    }
  }

  /**
   * The clusters among `clusters` that ended more than the end grace ago ->
   * `aborted` / `finished`, by Redis's clock and `cs/clusters/ended`: the end
   * reaches this process as a NATS event, which a NATS restart can lose.
   */
  async endedPastGrace(clusters: string[]): Promise<Map<string, string>> {
    const { connection, pool } = this.ctx;
    const unique = [...new Set(clusters)];
    const pipe = connection.pipeline().time();
    for (const cid of unique) pipe.zscore(pool.keys.endedClusters, cid).hget(pool.keys.meta(cid), 'final');
    const replies = (await pipe.exec()) ?? [];
    const now = timeReplyMs((replies[0]?.[1] ?? []) as string[]);
    const out = new Map<string, string>();
    unique.forEach((cid, i) => {
      const at = replies[1 + 2 * i]?.[1] as string | null | undefined;
      const final = replies[2 + 2 * i]?.[1] as string | null | undefined;
      if (at !== null && at !== undefined && now - Number(at) > this.endGraceMs) out.set(cid, final === 'finish' ? 'finished' : 'aborted');
    });
    return out;
  }

  close(): void {
    for (const t of this.graceTimers) clearTimeout(t);
    this.graceTimers.clear();
  }
}
