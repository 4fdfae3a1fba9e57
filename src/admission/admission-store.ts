import type { Redis } from 'ioredis';
import type { Keys } from '../core/keys';
import { withScripts } from '../fold/scripts';
import type { ScriptedRedis } from '../fold/scripts';
import { parseOutcome } from '../fold/outcome';
import type { FoldOutcome } from '../fold/outcome';
import { ADMIT_PASS_LIMIT, DEFAULT_RESERVE_AFTER_MS, GONE_KEEP_MS, needsOfJobs } from './settings';
import type { ClusterAdmission } from './settings';
import type { NodeJob } from '../split/node-job';

/** A machine as admission keeps it (the JSON record of `cs/machines`; see admit-lib.lua). */
export interface MachineRecord {
  id: string;
  testbox: string;
  state: 'idle' | 'reserved' | 'running' | 'gone';
  /** Since when in this state, ms (Redis clock). */
  since: number;
  /** Last contact, ms. */
  seen: number;
  lease_ms: number;
  cluster?: string;
  job?: string;
  /** Its node job was moved to active for it (handed out). */
  taken?: boolean;
  reserved_for?: string;
  /** The agent process (session) that holds the machine id: another is refused while its lease lives. */
  agent?: string;
  gone_at?: number;
  /** A gone machine's state before its lease lapsed. */
  was?: string;
}

/** What a take got: a node job (with the BullMQ lock token that ends it), or the machine's state. */
export type AdmitTake =
  | { ok: true; state: 'running'; job: string; cluster: string; queue: string; lock: string; admitted: number; fresh: boolean; waited_ms: number }
  | { ok: true; state: 'idle' | 'reserved' | 'none'; reserved_for?: string; admitted: number }
  | { ok: false; reason: string; in_use?: boolean };

export interface TakeArgs {
  machine: string;
  testbox: string;
  leaseMs: number;
  /** The agent process: a taken job is handed again only to the process that took it. */
  session: string;
  /** The job the agent ran last ('' if none): it is over. */
  last: string;
  /** Lock token for a job handed now. */
  lock: string;
}

/** What reaping an ended cluster found: node jobs still queued, now locked with the given token, to fail. */
export type Reaped = { ended: false } | { ended: true; final: string; reason: string; jobs: { job: string; queue: string }[] };

/**
 * The Redis side of admission (DESIGN §9): every call is one atomic script
 * (src/fold/lua/admit-*.lua); nothing is read, changed and written back from Node.
 */
export class AdmissionStore {
  readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    readonly keys: Keys,
    readonly options: { lockMs?: number; reserveAfterMs?: number; maxEvents?: number } = {},
  ) {
    this.redis = withScripts(redis);
  }

  private common(): (string | number)[] {
    const k = this.keys;
    return [
      k.machines,
      k.machineLeases,
      k.admitWaiting,
      k.admitAssigned,
      k.submitting,
      k.heartbeats,
      k.deadlines,
      k.testboxSeen,
      k.meta('{}'),
      k.nodeLocks('{}'),
      k.testboxIdle('{}'),
      k.testboxLive('{}'),
      `${k.bullPrefix}:{}`,
    ];
  }

  private async call(op: 'take' | 'renew' | 'leave' | 'pass', a: Partial<TakeArgs>): Promise<AdmitTake> {
    const raw = await this.redis.csAdmitTake(
      ...this.common(),
      op,
      a.machine ?? '',
      a.testbox ?? '',
      a.leaseMs ?? 0,
      a.session ?? '',
      a.last ?? '',
      a.lock ?? '',
      this.options.lockMs ?? 30_000,
      this.options.reserveAfterMs ?? DEFAULT_RESERVE_AFTER_MS,
      ADMIT_PASS_LIMIT,
      GONE_KEEP_MS,
    );
    return JSON.parse(raw) as AdmitTake;
  }

  /** A machine asks for work: its lease is renewed, an admission pass runs, and its assigned node job (if any) is handed to it. */
  take(a: TakeArgs): Promise<AdmitTake> {
    return this.call('take', a);
  }

  /** A machine running `job` renews its lease. */
  renew(a: Omit<TakeArgs, 'lock'>): Promise<AdmitTake> {
    return this.call('renew', a);
  }

  /** A machine stops asking (its agent exits): gone at once, unless it holds a node job it has not said it ran. */
  leave(a: Omit<TakeArgs, 'lock'>): Promise<AdmitTake> {
    return this.call('leave', a);
  }

  /** An admission pass alone (the sweep: a lease lapsed or a cluster ended may have freed machines). */
  pass(): Promise<AdmitTake> {
    return this.call('pass', {});
  }

  /** The cluster's node jobs are all queued: it waits for admission (and leaves "submitting"). */
  async enqueue(cid: string, jobs: readonly Pick<NodeJob, 'job_id' | 'queue'>[], settings: ClusterAdmission = { priority: 0 }): Promise<void> {
    await this.redis.csAdmitEnqueue(...this.common(), cid, JSON.stringify(needsOfJobs(jobs)), settings.admitTimeoutMs ?? '', settings.priority);
  }

  /** A node job was handed out first come, first served: its cluster counts as admitted. */
  async fifoTaken(cid: string, job: string): Promise<void> {
    await this.redis.csAdmitFifo(...this.common(), cid, job, 'fifo');
  }

  /**
   * Waiting clusters whose nodes report although no machine took a node job
   * (lkp clients handed their jobs by Compass-CI's scheduler, DESIGN §9) count
   * as admitted: their start deadline runs from now. Returns how many.
   */
  async admitReporting(cids: readonly string[]): Promise<number> {
    if (cids.length === 0) return 0;
    // One round trip for every waiting cluster's count, not one each (a lab may have hundreds waiting).
    const pipe = this.redis.pipeline();
    for (const cid of cids) pipe.hlen(this.keys.reports(cid));
    const counts = (await pipe.exec()) ?? [];
    let n = 0;
    for (let i = 0; i < cids.length; i++) {
      const [err, count] = counts[i] ?? [null, 0];
      if (err) throw err;
      if (count === 0) continue;
      await this.redis.csAdmitFifo(...this.common(), cids[i] as string, '', 'reports');
      n++;
    }
    return n;
  }

  /** Drops an ended cluster from admission; its still-queued node jobs come back locked with `lock`, to fail. */
  async reap(cid: string, lock: string): Promise<Reaped> {
    return JSON.parse(await this.redis.csAdmitReap(...this.common(), cid, lock, this.options.lockMs ?? 30_000)) as Reaped;
  }

  /** Ends a waiting cluster `not_admitted` with `reason` (unless admitted or ended meanwhile). */
  async expire(cid: string, reason: string): Promise<FoldOutcome> {
    const k = this.keys;
    const raw = await this.redis.csAdmitExpire(...k.endKeys(cid), k.admitWaiting, k.retryDue, cid, reason.slice(0, 2000), this.options.maxEvents ?? 100_000);
    return parseOutcome(raw);
  }

  /** Every known machine (gone ones too, for a while), by testbox then id. */
  async machines(): Promise<MachineRecord[]> {
    const all = Object.values(await this.redis.hgetall(this.keys.machines)).map((v) => JSON.parse(v) as MachineRecord);
    return all.sort((a, b) => a.testbox.localeCompare(b.testbox) || a.id.localeCompare(b.id));
  }

  /** Waiting clusters, oldest (highest priority) first. */
  async waiting(limit = 1000): Promise<string[]> {
    return this.redis.zrange(this.keys.admitWaiting, 0, limit - 1);
  }

  /** Admitted clusters some of whose node jobs are not taken yet. */
  async assigned(limit = 1000): Promise<string[]> {
    return this.redis.zrange(this.keys.admitAssigned, 0, limit - 1);
  }
}
