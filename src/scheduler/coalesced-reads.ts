import type { Redis } from 'ioredis';

/*
 * Design note: hash-field reads of one turn of the event loop, sent together.
 *
 * Each legacy request reads a few hash fields before it can wait (its job's
 * cluster in `sched/id2cluster`, the cluster's token, for a message its
 * nodes' roles). Thousands of lkp clients asking at once used to send one
 * command each, one socket write each: at 5,000 waits those reads were a
 * quarter of the scheduler's CPU, and every other request's reads queued
 * behind them. Here a read is held until the turn's I/O has been taken in
 * (setImmediate), then every field asked in the turn goes out at once: one
 * HMGET per hash (a field asked twice is asked once). Nothing is kept between turns, so a read is never older than the
 * request that asked it: each is answered by a command sent after it was
 * asked.
 */

/** Fields asked of one hash in one HMGET at most; more go in further HMGETs of the same pipeline. */
const MAX_FIELDS = 1000;

interface Asked {
  resolve: (value: string | null) => void;
  reject: (err: Error) => void;
}

export class CoalescedReads {
  /** hash -> field -> who asked it, this turn. */
  private pending = new Map<string, Map<string, Asked[]>>();
  private scheduled = false;
  /** Commands sent so far (an HMGET each): for tests. */
  commands = 0;

  constructor(private readonly redis: Redis) {}

  /** `HGET hash field`, sent with every other read asked in this turn of the event loop. */
  hget(hash: string, field: string): Promise<string | null> {
    return new Promise((resolve, reject) => {
      let fields = this.pending.get(hash);
      if (!fields) {
        fields = new Map();
        this.pending.set(hash, fields);
      }
      const asked = fields.get(field);
      if (asked) asked.push({ resolve, reject });
      else fields.set(field, [{ resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    // One command per hash (more when it has many fields), all written in this tick; no MULTI, no pipeline object (ioredis' costs more than a few commands).
    for (const [hash, fields] of batch) {
      const names = [...fields.keys()];
      for (let i = 0; i < names.length; i += MAX_FIELDS) {
        const part = names.slice(i, i + MAX_FIELDS);
        this.commands++;
        this.redis.hmget(hash, ...part).then(
          (values) => {
            for (const [j, field] of part.entries()) for (const a of fields.get(field) ?? []) a.resolve(values[j] ?? null);
          },
          (err: unknown) => {
            const e = err instanceof Error ? err : new Error(String(err));
            for (const field of part) for (const a of fields.get(field) ?? []) a.reject(e);
          },
        );
      }
    }
  }
}
