import { ReplyError } from 'ioredis';

/** Error replies by which Redis says "not now", not "never": out of memory, loading, busy script, read-only replica, ... */
const TRANSIENT_REPLIES = ['OOM', 'LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'MISCONF', 'NOREPLICAS', 'CLUSTERDOWN', 'NOSCRIPT'];

/**
 * True when a Redis call failed because of Redis (out of memory, loading,
 * a lost connection, a timeout): the same call may well succeed later, so an
 * accepted report must be retried, never given up. False for an error the
 * call itself caused (a script error), which no retry cures.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof ReplyError || err.name === 'ReplyError') {
    const code = err.message.split(/[\s:]/, 1)[0] ?? '';
    // Redis 7 passes a write's OOM refusal inside a script on with the script's own prefix.
    return TRANSIENT_REPLIES.includes(code) || /\bOOM command not allowed\b/.test(err.message);
  }
  // Connection closed or refused, a command timeout, ioredis giving up its retries: all about Redis, not the call.
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return err.name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable|Command timed out|ECONN|ETIMEDOUT|EPIPE/.test(err.message);
}
