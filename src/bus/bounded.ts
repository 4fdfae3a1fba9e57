import type { Msg, NatsConnection } from 'nats';
import { RefusalCode } from '../core/refusal-codes';
import type { Logger } from 'pino';
import { encodeJson } from './connect';
import { errorMessage } from '../core/errors';

/** nats-server's default `max_payload` (1 MiB), used until the server has said its own. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Kept free under `max_payload` for headers and protocol framing, bytes. */
const HEADROOM = 1024;

/** The largest message body this connection may send: the connected server's `max_payload` less some headroom. */
export function payloadLimit(nc: NatsConnection): number {
  const max = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  return Math.max(256, max - HEADROOM);
}

/** What a requester hears when the answer it asked for is too large to send. */
export interface TooLargeReply {
  ok: false;
  code: typeof RefusalCode.TooLarge;
  reason: string;
}

export function tooLargeReply(what: string, bytes: number, limit: number): TooLargeReply {
  return { ok: false, code: RefusalCode.TooLarge, reason: `${what} is ${bytes} bytes, over the ${limit} bytes this NATS server carries (its max_payload less headroom)` };
}

/**
 * Answers a request with `value` as JSON, never throwing: an answer over the
 * server's `max_payload` is replaced by a `TOO_LARGE` reply naming the sizes,
 * and a failing `respond` (connection closing) is logged. A request without a
 * reply subject gets nothing. Returns whether the full answer went out.
 */
export function respondBounded(nc: NatsConnection, msg: Msg, value: unknown, log: Logger, what = 'the answer'): boolean {
  if (!msg.reply) return false;
  try {
    const data = encodeJson(value);
    const limit = payloadLimit(nc);
    if (data.length > limit) {
      log.warn({ subject: msg.subject, bytes: data.length, limit }, `${what} is too large for NATS; answered TOO_LARGE`);
      msg.respond(encodeJson(tooLargeReply(what, data.length, limit)));
      return false;
    }
    msg.respond(data);
    return true;
  } catch (err) {
    log.error({ subject: msg.subject, err: errorMessage(err) }, 'could not answer a request');
    return false;
  }
}

/**
 * Publishes `value` as JSON, never throwing: a message over the server's
 * `max_payload`, or a publish on a closed connection, is logged and dropped.
 * Returns whether it went out.
 */
export function publishBounded(nc: NatsConnection, subject: string, value: unknown, log: Pick<Logger, 'error' | 'warn'>): boolean {
  try {
    const data = encodeJson(value);
    const limit = payloadLimit(nc);
    if (data.length > limit) {
      log.error({ subject, bytes: data.length, limit }, 'message too large for NATS; not published');
      return false;
    }
    nc.publish(subject, data);
    return true;
  } catch (err) {
    log.error({ subject, err: errorMessage(err) }, 'could not publish');
    return false;
  }
}
