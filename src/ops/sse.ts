import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventFeedOptions } from './event-feed';
import { EventFeed } from './event-feed';
import { compareStreamIds, parseStreamId } from './stream-id';

/** How often an idle event stream sends a comment line, so proxies keep it open, ms. */
const KEEPALIVE_MS = 15_000;

/**
 * Where a client's stream starts, from its `Last-Event-ID`:
 * - none: live only;
 * - an id of this stream (or older than its first entry, trimmed since): replay after it;
 * - an id past the stream's last entry (the stream was reset, or the id is made up): replay from
 *   the stream's start, as for a client that has seen nothing of this stream;
 * - not a stream id (`<ms>-<seq>`, each at most 16 digits): 400, naming the header.
 */
async function replayFrom(req: FastifyRequest, opts: Omit<EventFeedOptions, 'afterId' | 'sinceMs'>): Promise<{ afterId?: string; sinceMs?: number } | { error: string }> {
  const last = req.headers['last-event-id'];
  if (last === undefined || last === '') return {};
  if (typeof last !== 'string' || !parseStreamId(last)) {
    return { error: `Last-Event-ID: ${JSON.stringify(String(last).slice(0, 64))} is no event id (<ms>-<seq>, as sent in the stream's id: lines)` };
  }
  const key = opts.cluster === undefined ? opts.keys.allEvents : opts.keys.events(opts.cluster);
  const newest = (await opts.redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0];
  if (newest === undefined || compareStreamIds(last, newest) > 0) {
    req.log.info({ lastEventId: last, newest: newest ?? null }, 'Last-Event-ID is past the end of the event stream: replaying it from the start');
    return { sinceMs: 0 };
  }
  return { afterId: last };
}

/** Open event streams, so that closing the server ends them. */
export class SseStreams {
  private readonly open = new Set<() => void>();

  /**
   * Streams cluster events as Server-Sent Events: `id:` is the stream id,
   * `data:` the event JSON. A client that reconnects sends `Last-Event-ID`
   * and first gets what it missed (replayed from Redis), then live events.
   */
  async serve(req: FastifyRequest, reply: FastifyReply, feedOptions: Omit<EventFeedOptions, 'afterId' | 'sinceMs'>): Promise<void> {
    const from = await replayFrom(req, feedOptions);
    if ('error' in from) {
      await reply.code(400).send({ error: from.error });
      return;
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // The headers go out once NATS has the subscription: a client that sees the stream open misses nothing after.
    const feed = new EventFeed({ ...feedOptions, ...from, onSubscribed: () => res.write('retry: 2000\n\n') });
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    const end = (): void => {
      clearInterval(keepalive);
      this.open.delete(end);
      void feed.close();
      if (!res.writableEnded) res.end();
    };
    this.open.add(end);
    req.raw.on('close', end);
    try {
      await feed.start((ev) => {
        if (!res.writableEnded) res.write(`id: ${ev.id}\ndata: ${JSON.stringify(ev)}\n\n`);
      });
    } catch (err) {
      req.log.warn({ err }, 'event stream failed');
      end();
    }
  }

  closeAll(): void {
    for (const end of [...this.open]) end();
  }
}
