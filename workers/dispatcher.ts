import type { Redis } from 'ioredis';
import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import { respondBounded } from '../src/bus/bounded';
import { decodeText } from '../src/bus/connect';
import { WORKER_QUEUE_GROUP } from '../src/bus/subjects';
import type { Subjects } from '../src/bus/subjects';
import { isRedisUnavailable } from '../src/core/redis-errors';
import { errorMessage } from '../src/core/errors';
import { NO_REPLICATION } from '../src/core/replication';
import type { ReplicationGuard } from '../src/core/replication';
import type { Keys } from '../src/core/keys';
import type { ClusterEvent } from '../src/fold/outcome';
import type { DispatchContext } from './dispatch/context';
import { done } from './dispatch/done';
import { TestboxPool } from './dispatch/pool';
import { EndedJobReaper } from './dispatch/reaper';
import { take } from './dispatch/take';
import type { AdmissionStore } from '../src/admission/admission-store';

export interface DispatcherOptions {
  /** How long a taken node job stays locked without being extended, ms. Default 30 000. */
  lockMs?: number;
  /** How often this process checks its testbox queues for stalled node jobs, ms. Default: lockMs. */
  stalledIntervalMs?: number;
  /**
   * After a cluster ends (finish or abort), how long its nodes have to report
   * their end before the dispatcher fails their jobs itself, ms. Covers a node
   * that took a job and never ran it. Default 60 000.
   */
  endGraceMs?: number;
  /**
   * Testbox queues this process keeps a BullMQ Worker open for (each holds a
   * Redis connection); past this the least recently used one that holds no
   * node job is closed. Default 64.
   */
  maxOpenQueues?: number;
  /** Replicas that must hold a take before the node job is handed out. Default: no wait. */
  replication?: ReplicationGuard;
  /** Admission (DESIGN §9): takes that name a machine are served by it. Default: none (every take first come, first served). */
  admission?: AdmissionStore;
  /** Told of each node job admission hands to a machine the first time (metrics): from submit to admission, ms. */
  onHanded?: (cluster: string, job: string, machine: string, waitedMs: number) => void;
}

/**
 * Hands node jobs to node agents: answers `<prefix>.queue.<testbox>.take`
 * ({@link take}) from the BullMQ queue `tb-<testbox>` through the
 * {@link TestboxPool}, and `.done` ({@link done}) by moving the job to
 * completed or failed; the {@link EndedJobReaper} fails the jobs nobody will end.
 *
 * Locks: the process that handed out a job extends its lock every half lock
 * period until the job ends. BullMQ's stalled check is not run on testbox
 * queues: a holder that is paused (SIGSTOP) or dies lets the lock lapse, the
 * job stays active (never handed out twice), and the node's `done`, checked
 * against the lock token recorded at take (`Keys.nodeLocks`), ends it as the
 * node really ended, whichever process gets it. A job stalled by an older
 * version (deferredFailure) is failed at the next take.
 */
export class Dispatcher {
  private readonly subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly ctx: DispatchContext;
  private readonly pool: TestboxPool;
  private readonly reaper: EndedJobReaper;
  private readonly lockMs: number;
  private closed = false;
  /** Counts lock extensions that succeeded (tests and metrics). */
  extensions = 0;

  constructor(nc: NatsConnection, subjects: Subjects, connection: Redis, keys: Keys, log: Logger, options: DispatcherOptions = {}) {
    this.lockMs = options.lockMs ?? 30_000;
    this.pool = new TestboxPool(connection, keys, log, { lockMs: this.lockMs, stalledMs: options.stalledIntervalMs ?? this.lockMs, maxOpen: options.maxOpenQueues ?? 64 });
    this.ctx = { nc, subjects, connection, log, pool: this.pool, replication: options.replication ?? NO_REPLICATION, admission: options.admission, onHanded: options.onHanded };
    this.reaper = new EndedJobReaper(this.ctx, options.endGraceMs ?? 60_000);
  }

  start(): void {
    const { nc, subjects, log } = this.ctx;
    const serve = (subject: string, handler: (ctx: DispatchContext, msg: Msg) => Promise<unknown>): void => {
      this.subs.push(
        nc.subscribe(subject, {
          queue: WORKER_QUEUE_GROUP,
          callback: (err, msg) => {
            if (err) return;
            void handler(this.ctx, msg)
              // A refusal because of Redis (out of memory, restarting) says so: the agent asks again rather than quits.
              .catch((e: unknown) => ({ ok: false, reason: errorMessage(e), ...(isRedisUnavailable(e) ? { retryable: true as const } : {}) }))
              .then((reply) => respondBounded(nc, msg, reply, log));
          },
        }),
      );
    };
    serve(subjects.allTakes, take);
    serve(subjects.allDones, done);
    // Every process sees every event: only the holder of a dead node's job acts on it.
    this.subs.push(
      nc.subscribe(subjects.allEvents, {
        callback: (err, msg) => {
          if (err) return;
          try {
            void this.reaper.onEvent(JSON.parse(decodeText(msg.data)) as ClusterEvent);
          } catch {
            /* not an event */
          }
        },
      }),
    );
    this.timer = setInterval(() => void this.extendAll(), Math.max(50, Math.floor(this.lockMs / 2)));
  }

  private async extendAll(): Promise<void> {
    const held = this.pool.held;
    if (held.size === 0) return;
    // The end of a cluster reaches this process as a NATS event, which a NATS restart can lose: then the
    // grace timer never starts and a dead node's job would stay held, its lock extended, for ever. So each
    // extension also asks Redis when the held job's cluster ended (`cs/clusters/ended`).
    const overdue = await this.reaper.endedPastGrace([...held.values()].map((h) => h.job.data.cluster)).catch(() => new Map<string, string>());
    for (const [id, h] of [...held]) {
      const ended = overdue.get(h.job.data.cluster);
      if (ended) {
        await this.reaper.fail(id, this.reaper.endReason(ended));
        continue;
      }
      try {
        const ok = await h.job.extendLock(h.token, this.lockMs);
        if (ok) this.extensions++;
        else throw new Error('lock not held');
      } catch (err) {
        // Redis refused or was out of reach (a failover): try again next time.
        if (isRedisUnavailable(err)) continue;
        // Ended elsewhere (another process took the `done`) or lost: stop extending it.
        held.delete(id);
        this.ctx.log.debug({ job: id, err: errorMessage(err) }, 'stopped extending a node job lock');
      }
    }
  }

  /** Testbox queues this process has a BullMQ Worker open for, least recently used first. */
  get openQueues(): string[] {
    return this.pool.open;
  }

  /** Node jobs whose locks this process holds. */
  get holding(): string[] {
    return [...this.pool.held.keys()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.reaper.close();
    await Promise.all(this.subs.map((s) => s.drain().catch(() => undefined)));
    await this.pool.close();
  }
}
