import type { Logger } from 'pino';
import type { ClusterStore } from '../cluster/store';
import type { SubmittedListener } from '../cluster/submit';
import { errorMessage } from '../core/errors';
import type { QueueSet } from '../queue/queues';
import { END_CLASSES, causeFromReason, isEndCause } from './end-cause';
import type { EndCause } from './end-cause';
import { attemptsOf, rootOf } from './history';
import { retryCluster } from './resubmit';

export interface RetryOptions {
  /** The wait before the first retry, ms; doubled for each later attempt. Default 10 000. */
  retryBackoffMs?: number;
}

/** The cause of an ended cluster from its meta. */
export function endCauseOf(meta: Record<string, string>): EndCause | undefined {
  if (isEndCause(meta.end_cause)) return meta.end_cause;
  if (meta.final !== 'finish' && meta.final !== 'abort') return undefined;
  const reason = ['start', 'ready', 'finish'].map((b) => meta[`reason:${b}`]).find(Boolean);
  return causeFromReason(meta.final, reason);
}

/**
 * The workers' retrier, run by the per-second sweep: each cluster the fold
 * put in `cs/clusters/retry` when it ended (its job has `cluster_retries`)
 * is judged once its backoff has passed (`retryBackoffMs` * 2^(attempt-1)
 * after its end): an infrastructure cause (END_CLASSES[cause].retried) with
 * attempts left is submitted again as the next attempt; anything else is
 * just dropped from the zset. A ZREM claims each, so one worker judges it.
 */
export class Retrier {
  private readonly backoffMs: number;
  constructor(
    private readonly store: ClusterStore,
    private readonly queues: QueueSet,
    private readonly log: Logger,
    options: RetryOptions = {},
    private readonly onSubmitted?: SubmittedListener,
  ) {
    this.backoffMs = options.retryBackoffMs ?? 10_000;
  }

  /** One round; returns how many attempts it submitted. */
  async run(now: number): Promise<number> {
    const k = this.store.keys;
    const due = await this.store.redis.zrangebyscore(k.retryDue, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 100);
    let submitted = 0;
    for (let i = 0; i < due.length; i += 2) {
      const cid = due[i] as string;
      const endedAt = Number(due[i + 1]);
      try {
        const meta = await this.store.redis.hgetall(k.meta(cid));
        const attempt = Number(meta.attempt) || 1;
        if (now < endedAt + this.backoffMs * 2 ** (attempt - 1)) continue;
        if ((await this.store.redis.zrem(k.retryDue, cid)) === 0) continue;
        const cause = endCauseOf(meta);
        const retries = Number(meta.cluster_retries) || 0;
        if (!cause || !END_CLASSES[cause].retried || attempt > retries) continue;
        const root = rootOf(cid, meta);
        const rootMeta = root === cid ? meta : await this.store.redis.hgetall(k.meta(root));
        // Only the last attempt is retried: an older one's end is history.
        if (attemptsOf(root, rootMeta).at(-1) !== cid) continue;
        const next = await retryCluster(this.store, this.queues, cid, this.onSubmitted);
        if (next) {
          submitted++;
          this.log.warn(
            { cluster: cid, cause, attempt: attempt + 1, of: retries + 1, next: next.cluster },
            `cluster ${cid} ended ${cause}: submitted attempt ${attempt + 1} of ${retries + 1} as ${next.cluster}`,
          );
        }
      } catch (err) {
        await this.store.redis.zadd(k.retryDue, endedAt, cid).catch(() => undefined);
        this.log.warn({ cluster: cid, err: errorMessage(err) }, 'could not judge a cluster for a retry; trying again next sweep');
      }
    }
    return submitted;
  }
}
