import { randomUUID } from 'node:crypto';
import { Job } from 'bullmq';
import type { NatsConnection, Subscription } from 'nats';
import type { AdmissionStore } from '../src/admission/admission-store';
import { explainWaiting, neverTakenReason, notAdmittedReason } from '../src/admission/explain';
import { DEFAULT_ADMIT_TIMEOUT_MS } from '../src/admission/settings';
import { decodeText } from '../src/bus/connect';
import type { Subjects } from '../src/bus/subjects';
import { errorMessage } from '../src/core/errors';
import type { ClusterEvent } from '../src/fold/outcome';
import type { AdmissionSweep } from './events';
import { PeriodicSweep } from './periodic-sweep';
import type { SweepContext } from './periodic-sweep';

export type { AdmissionSweep };

export interface AdmissionKeeperOptions {
  /** How often the admission sweep runs (lapsed leases, admit timeouts, ended clusters), ms. Default 1000. */
  sweepEveryMs?: number;
  /** A cluster not admitted within this long ends `not_admitted` (job field `admit_timeout` overrides), ms. Default 1 h. */
  admitTimeoutMs?: number;
}

/**
 * The workers' side of admission that no take drives (DESIGN §9):
 *
 * - **Ended-cluster reaper.** A cluster that ended by any path (barrier,
 *   timeout, dead node, cancel, not admitted) leaves admission at once: its
 *   reservations and untaken assignments are released and its node jobs still
 *   queued are failed with the cluster's reason, so none is ever handed out.
 *   Triggered by each final resolution event (NATS, every process) and, in case
 *   an event is lost, by the sweep: waiting and assigned clusters whose meta has
 *   `final`, and the clusters ended since the last sweep (`cs/clusters/ended`).
 * - **Admit timeout.** A waiting cluster past its admit timeout ends
 *   `not_admitted`, its reason naming the testboxes and machines it waited for.
 * - **Passes.** An admission pass runs each sweep too (a lapsed lease or an
 *   ended cluster may have freed machines for a waiting cluster).
 *
 * One process sweeps per period (lease `cs/admit/sweep-lease`, as the barrier sweep).
 */
export class AdmissionKeeper extends PeriodicSweep {
  private readonly admitTimeoutMs: number;
  private sub: Subscription | undefined;
  private readonly reaping = new Set<Promise<unknown>>();
  private walked = false;

  constructor(
    private readonly admission: AdmissionStore,
    ctx: SweepContext,
    options: AdmissionKeeperOptions = {},
  ) {
    super(ctx, options.sweepEveryMs);
    this.admitTimeoutMs = options.admitTimeoutMs ?? DEFAULT_ADMIT_TIMEOUT_MS;
  }

  start(nc: NatsConnection, subjects: Subjects): void {
    this.sub = nc.subscribe(subjects.allEvents, {
      callback: (err, msg) => {
        if (err) return;
        let ev: ClusterEvent;
        try {
          ev = JSON.parse(decodeText(msg.data)) as ClusterEvent;
        } catch {
          return;
        }
        if (ev.type === 'resolution' && (ev.result === 'abort' || ev.barrier === 'finish')) this.reapSoon(ev.cluster);
      },
    });
    this.startPeriods();
  }

  /** Reaps an ended cluster now (in the background; close() waits for it). */
  reapSoon(cid: string): void {
    const p = this.reap(cid)
      .catch((err: unknown) => this.log.warn({ cluster: cid, err: errorMessage(err) }, 'could not reap an ended cluster; the sweep tries again'))
      .finally(() => this.reaping.delete(p));
    this.reaping.add(p);
  }

  protected async period(): Promise<void> {
    try {
      const got = (await this.admission.redis.set(this.admission.keys.admitSweepLease, this.holder, 'PX', this.every, 'NX')) === 'OK';
      if (!got) return;
      const result = await this.sweep();
      this.events.emit('admissionSwept', result);
    } catch (err) {
      this.repeats.error('admission sweep failed (leases, admit timeouts, ended clusters); trying again next period', err);
    }
  }

  /** One sweep; exported for tests through the events. */
  async sweep(): Promise<AdmissionSweep> {
    const result: AdmissionSweep = { admitted: 0, notAdmitted: 0, reaped: 0, failedJobs: 0, machines: { idle: 0, reserved: 0, running: 0, gone: 0 }, waiting: 0 };
    const pass = await this.admission.pass();
    if (pass.ok) result.admitted += pass.admitted;
    result.admitted += await this.admission.admitReporting(await this.admission.waiting());
    const now = Number((await this.admission.redis.time())[0]) * 1000;
    for (const w of await explainWaiting(this.admission, this.admitTimeoutMs, 0, await this.dueWaiting(now))) {
      if (w.admitDeadline > now) continue;
      const reason = notAdmittedReason(w);
      const outcome = await this.admission.expire(w.cluster, reason);
      if (!outcome.ok || outcome.resolutions.length === 0) continue;
      this.publisher.apply(w.cluster, outcome);
      this.log.warn({ cluster: w.cluster, reason }, 'cluster not admitted in time; ended');
      this.events.emit('notAdmitted', w.cluster, reason);
      result.notAdmitted++;
      result.failedJobs += await this.reap(w.cluster);
    }
    // Any end, by any path: open entries of admission whose cluster has `final`, and clusters ended since the last sweep.
    const k = this.admission.keys;
    const cursor = Number(await this.admission.redis.get(k.admitReapCursor)) || 0;
    const ended = await this.admission.redis.zrangebyscore(k.endedClusters, cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, 1000);
    // Every end is recorded in the ended zset; the open entries of admission are walked once per keeper
    // (those that ended before that index, or while no keeper ran), not every sweep.
    const candidates = new Set(this.walked ? [] : [...(await this.admission.waiting()), ...(await this.admission.assigned())]);
    this.walked = true;
    let upTo = cursor;
    for (let i = 0; i < ended.length; i += 2) {
      candidates.add(ended[i] as string);
      upTo = Math.max(upTo, Number(ended[i + 1]));
    }
    for (const cid of candidates) {
      const failed = await this.reap(cid);
      if (failed >= 0) result.reaped++;
      result.failedJobs += Math.max(0, failed);
    }
    if (upTo !== cursor) await this.admission.redis.set(k.admitReapCursor, upTo);
    for (const m of await this.admission.machines()) result.machines[m.state]++;
    result.waiting = await this.admission.redis.zcard(k.admitWaiting);
    return result;
  }

  /**
   * The waiting clusters whose admit deadline has come. Deadlines are indexed in `cs/admit/due`
   * (a cluster's meta is read once, when first seen waiting), so a sweep reads no meta per waiting cluster.
   */
  private async dueWaiting(now: number): Promise<string[]> {
    const k = this.admission.keys;
    const redis = this.admission.redis;
    const waiting = await this.admission.waiting();
    if (waiting.length > 0) {
      const scores = await redis.zmscore(k.admitDue, ...waiting);
      for (let i = 0; i < waiting.length; i++) {
        if (scores[i] !== null) continue;
        const cid = waiting[i] as string;
        const [created, timeout] = await redis.hmget(k.meta(cid), 'created', 'admit_timeout_ms');
        if (!created) continue;
        await redis.zadd(k.admitDue, Number(created) + (Number(timeout) || this.admitTimeoutMs), cid);
      }
    }
    const due = await redis.zrangebyscore(k.admitDue, '-inf', now, 'LIMIT', 0, 1000);
    const out: string[] = [];
    for (const cid of due) {
      if ((await redis.zscore(k.admitWaiting, cid)) === null) await redis.zrem(k.admitDue, cid);
      else out.push(cid);
    }
    return out;
  }

  /** Reaps one cluster; returns the node jobs failed, or -1 when the cluster is open. */
  async reap(cid: string): Promise<number> {
    const lock = randomUUID();
    const r = await this.admission.reap(cid, lock);
    if (!r.ended) return -1;
    let failed = 0;
    const why = r.final === 'finish' ? 'finished' : `ended (${r.reason || 'aborted'})`;
    // cjson encodes an empty list as {}.
    for (const { job, queue } of Array.isArray(r.jobs) ? r.jobs : []) {
      const j = await Job.fromId(this.queues.get(queue), job);
      if (!j) continue;
      await j.moveToFailed(new Error(neverTakenReason(cid, why)), lock, false);
      failed++;
      this.log.info({ cluster: cid, job }, 'node job of an ended cluster failed before it was handed out');
    }
    return failed;
  }

  async close(): Promise<void> {
    this.sub?.unsubscribe();
    await this.stopPeriods();
    await Promise.all([...this.reaping]);
    this.repeats.close();
  }
}
