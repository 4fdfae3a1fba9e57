import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventFeedOptions } from './event-feed';
import { EventFeed } from './event-feed';
import { parseStreamId } from './stream-id';

/** How often an idle event stream sends a comment line, so proxies keep it open, ms. */
const KEEPALIVE_MS = 15_000;

/** Open event streams, so that closing the server ends them. */
export class SseStreams {
  private readonly open = new Set<() => void>();

  /**
   * Streams cluster events as Server-Sent Events: `id:` is the stream id,
   * `data:` the event JSON. A client that reconnects sends `Last-Event-ID`
   * and first gets what it missed (replayed from Redis), then live events.
   */
  async serve(req: FastifyRequest, reply: FastifyReply, feedOptions: Omit<EventFeedOptions, 'afterId' | 'sinceMs'>): Promise<void> {
    const last = req.headers['last-event-id'];
    const afterId = typeof last === 'string' && parseStreamId(last) ? last : undefined;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // The headers go out once NATS has the subscription: a client that sees the stream open misses nothing after.
    const feed = new EventFeed({ ...feedOptions, afterId, onSubscribed: () => res.write('retry: 2000\n\n') });
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
