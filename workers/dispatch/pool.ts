import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { errorMessage } from '../../src/core/errors';
import type { Keys } from '../../src/core/keys';
import { testboxQueueName } from '../../src/queue/queues';
import type { NodeJob } from '../../src/split/node-job';

/** A node job this process handed out, and the lock token it holds it by. */
export interface Held {
  job: Job<NodeJob>;
  token: string;
  testbox: string;
}

/** Settings of the pool, ms. */
export interface PoolOptions {
  lockMs: number;
  stalledMs: number;
  maxOpen: number;
}

/**
 * The BullMQ Workers of the testbox queues (manual processing: Workers
 * without a processor), opened on first use and kept in least-recently-used
 * order, and the node jobs this process holds through them.
 */
export class TestboxPool {
  private readonly workers = new Map<string, Worker<NodeJob>>();
  /** Node job id -> what this process holds it by. */
  readonly held = new Map<string, Held>();

  constructor(
    private readonly connection: Redis,
    readonly keys: Keys,
    private readonly log: Logger,
    private readonly options: PoolOptions,
  ) {}

  /** Whether a Worker of `testbox` is open here, or anything was ever queued for it (BullMQ writes a queue's meta hash with its first job). */
  async known(testbox: string): Promise<boolean> {
    return this.workers.has(testbox) || (await this.connection.exists(this.keys.bullQueueMeta(testboxQueueName(testbox)))) === 1;
  }

  /**
   * The BullMQ Worker of a testbox queue, opened on first use; the caller
   * has checked that the queue exists ({@link known}), so a made-up testbox
   * name never opens one.
   */
  workerFor(testbox: string): Worker<NodeJob> {
    let w = this.workers.get(testbox);
    if (w) {
      this.workers.delete(testbox);
      this.workers.set(testbox, w);
      return w;
    }
    this.closeIdle(this.options.maxOpen - 1);
    w = new Worker<NodeJob>(testboxQueueName(testbox), null, {
      connection: this.connection,
      prefix: this.keys.bullPrefix,
      lockDuration: this.options.lockMs,
      stalledInterval: this.options.stalledMs,
      maxStalledCount: 0,
    });
    w.on('error', (err) => this.log.error({ err, testbox }, 'dispatcher queue error'));
    // No stalled check: a node job's fate is the node's to tell (`done`), not a lock's. A holder that
    // was paused or died lets its locks lapse; the job stays active, never handed out twice, and the
    // node's `done` (checked against the lock token recorded at take) still ends it as it really ended.
    this.workers.set(testbox, w);
    return w;
  }

  /** Closes least recently used Workers that hold no node job until at most `keep` are open. */
  private closeIdle(keep: number): void {
    const busy = new Set([...this.held.values()].map((h) => h.testbox));
    for (const [testbox, w] of this.workers) {
      if (this.workers.size <= keep) return;
      if (busy.has(testbox)) continue;
      this.workers.delete(testbox);
      w.close().catch((err: unknown) => this.log.debug({ testbox, err: errorMessage(err) }, 'closing an idle testbox queue failed'));
    }
  }

  /** Whether BullMQ's lock of node job `id` in `testbox`'s queue is held (by any process). */
  async locked(testbox: string, id: string): Promise<boolean> {
    return (await this.connection.exists(this.keys.bullJobLock(testboxQueueName(testbox), id))) === 1;
  }

  /** Testbox queues with a Worker open, least recently used first. */
  get open(): string[] {
    return [...this.workers.keys()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.close(true).catch(() => undefined)));
    this.workers.clear();
    this.held.clear();
  }
}
