import type { Redis } from 'ioredis';
import type { NatsConnection, Subscription } from 'nats';
import { decodeText } from '../bus/connect';
import type { Subjects } from '../bus/subjects';
import type { Keys } from '../core/keys';
import type { ClusterEvent } from '../fold/outcome';
import { compareStreamIds, parseStreamId } from './stream-id';

/*
 * Design note: replay, then live, with no gap and no duplicate at the seam.
 *
 * 1. Subscribe to the NATS event subject and flush, so the server has the
 *    subscription before anything is read from Redis; messages go to a buffer.
 * 2. Replay the Redis stream with XRANGE, page by page, up to its end.
 * 3. Switch to live in one synchronous step: deliver the buffered events
 *    whose id is newer than the last replayed one, then deliver as they come.
 *
 * The fold writes an event to Redis before the workers publish it, so an
 * event the replay did not read was published after the subscription began
 * (no gap), and one it did read has an id at or below the last replayed id
 * (no duplicate). Workers may publish an event again (a re-run fold), so
 * recent ids are also remembered.
 */

/** Where an event came from. */
export type EventSource = 'replay' | 'live';

export interface EventFeedOptions {
  redis: Redis;
  nc: NatsConnection;
  keys: Keys;
  subjects: Subjects;
  /** Only this cluster: its NATS subject and its own stream. Default: every cluster (the global stream). */
  cluster?: string;
  /** Replay events written at or after this time (ms) before going live. Default: no replay. */
  sinceMs?: number;
  /** Replay events strictly after this stream id (an SSE client's Last-Event-ID). Default: no replay. */
  afterId?: string;
  /** Events read per XRANGE call. Default 500. */
  pageSize?: number;
  /** Called after each replayed page, before the next is read (tests publish events here to hit the seam). */
  onReplayPage?: (page: number, last: boolean) => Promise<void> | void;
  /** Called once the NATS subscription is in place at the server, before the replay. */
  onSubscribed?: () => void;
  /** Called with a NATS message that is not an event (ignored otherwise). */
  onInvalid?: (reason: string) => void;
}

/** How many recent event ids are remembered to drop a re-published event. */
const SEEN_LIMIT = 10_000;
const TYPES = new Set(['report', 'resolution', 'submitted', 'message']);

/** Parses one event body; undefined when it is not an event. */
export function parseEvent(body: string, id?: string): ClusterEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const ev = v as Record<string, unknown>;
  if (id !== undefined) ev.id = id;
  if (typeof ev.id !== 'string' || !parseStreamId(ev.id)) return undefined;
  if (typeof ev.type !== 'string' || !TYPES.has(ev.type) || typeof ev.cluster !== 'string') return undefined;
  return ev as unknown as ClusterEvent;
}

/** The event of one Redis stream entry (`[id, ['e', body]]`). */
export function streamEntryEvent(id: string, fields: string[]): ClusterEvent | undefined {
  const at = fields.indexOf('e');
  const body = at >= 0 ? fields[at + 1] : undefined;
  return body === undefined ? undefined : parseEvent(body, id);
}

export class EventFeed {
  private sub: Subscription | undefined;
  private buffer: ClusterEvent[] | undefined;
  private lastReplayed = '0-0';
  private readonly seen = new Set<string>();
  private closed = false;

  constructor(private readonly opts: EventFeedOptions) {}

  /** Whether this feed replays before it goes live. */
  get replays(): boolean {
    return this.opts.sinceMs !== undefined || this.opts.afterId !== undefined;
  }

  /**
   * Delivers every event (replayed first, then live) to `onEvent`. Resolves
   * once the replay is done and the feed is live, with the number replayed.
   */
  async start(onEvent: (ev: ClusterEvent, source: EventSource) => void): Promise<{ replayed: number }> {
    const { nc, subjects, cluster } = this.opts;
    this.buffer = this.replays ? [] : undefined;
    const deliver = (ev: ClusterEvent, source: EventSource): void => {
      if (this.closed || this.seen.has(ev.id)) return;
      if (source === 'live' && compareStreamIds(ev.id, this.lastReplayed) <= 0) return;
      this.seen.add(ev.id);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
      onEvent(ev, source);
    };
    this.sub = nc.subscribe(cluster === undefined ? subjects.allEvents : subjects.event(cluster), {
      callback: (err, msg) => {
        if (err) return;
        const ev = parseEvent(decodeText(msg.data));
        if (!ev) {
          this.opts.onInvalid?.(`not an event on ${msg.subject}`);
          return;
        }
        if (this.buffer) this.buffer.push(ev);
        else deliver(ev, 'live');
      },
    });
    await nc.flush();
    this.opts.onSubscribed?.();
    let replayed = 0;
    if (this.replays) {
      replayed = await this.replay((ev) => {
        deliver(ev, 'replay');
        this.lastReplayed = ev.id;
      });
      const buffered = this.buffer ?? [];
      this.buffer = undefined;
      for (const ev of buffered) deliver(ev, 'live');
    }
    return { replayed };
  }

  private async replay(each: (ev: ClusterEvent) => void): Promise<number> {
    const { redis, keys, cluster, sinceMs, afterId, pageSize = 500 } = this.opts;
    const key = cluster === undefined ? keys.allEvents : keys.events(cluster);
    let start = afterId !== undefined ? `(${afterId}` : `${Math.max(0, Math.floor(sinceMs ?? 0))}-0`;
    let count = 0;
    for (let page = 0; !this.closed; page++) {
      const entries = (await redis.xrange(key, start, '+', 'COUNT', pageSize)) as [string, string[]][];
      for (const [id, fields] of entries) {
        const ev = streamEntryEvent(id, fields);
        if (ev) {
          each(ev);
          count++;
        }
        start = `(${id}`;
      }
      const last = entries.length < pageSize;
      await this.opts.onReplayPage?.(page, last);
      if (last) break;
    }
    return count;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sub && !this.sub.isClosed()) this.sub.unsubscribe();
    this.sub = undefined;
  }
}
