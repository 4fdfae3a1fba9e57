import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys } from '../core/keys';

/** BullMQ queue of reports waiting to be folded, in batches (`src/fold/batch.ts`). */
export const REPORTS_QUEUE = 'cs-reports';
/** BullMQ queue of the per-second sweep (barrier deadlines, dead nodes). */
export const TIMERS_QUEUE = 'cs-timers';
/** BullMQ queue of one testbox's node jobs. */
export function testboxQueueName(testbox: string): string {
  return `tb-${testbox}`;
}
/** The testbox of a node job queue's name (`tb-<testbox>`), or undefined for any other queue. */
export function testboxOfQueue(name: string): string | undefined {
  return name.startsWith('tb-') && name.length > 3 ? name.slice(3) : undefined;
}

/** Queues opened on demand and closed together. */
export class QueueSet {
  private readonly queues = new Map<string, Queue>();
  private flowProducer: FlowProducer | undefined;
  /**
   * @param onError told about connection errors of the queues (they recover by themselves);
   *   default: ignore them, the caller's own Redis client reports the outage.
   */
  constructor(
    private readonly connection: Redis,
    readonly keys: Keys,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  get(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.keys.bullPrefix });
      // Connection errors while Redis restarts: ioredis reconnects and retries the commands;
      // without a listener BullMQ prints each one as an unhandled error.
      q.on('error', (err) => this.onError(err));
      this.queues.set(name, q);
    }
    return q;
  }

  /** Adds jobs to several queues in one MULTI: all of them or none (submit's node jobs and first deadline). */
  get flows(): FlowProducer {
    if (!this.flowProducer) {
      this.flowProducer = new FlowProducer({ connection: this.connection, prefix: this.keys.bullPrefix });
      this.flowProducer.on('error', (err) => this.onError(err));
    }
    return this.flowProducer;
  }

  get reports(): Queue {
    return this.get(REPORTS_QUEUE);
  }
  get timers(): Queue {
    return this.get(TIMERS_QUEUE);
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    await this.flowProducer?.close();
    this.flowProducer = undefined;
  }
}
