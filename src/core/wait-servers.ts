import { Redis } from 'ioredis';
import { connectNats } from '../bus/connect';
import type { ConnectionConfig } from './config';
import { UnavailableError, errorMessage } from './errors';
import { pause } from './pause';

/** A URL as it may be printed: a password in it becomes `***`. */
export function redactUrl(url: string): string {
  return url
    .split(',')
    .map((u) => {
      try {
        const p = new URL(u.trim());
        if (p.password) p.password = '***';
        return p.toString().replace(/\/$/, '');
      } catch {
        return u.trim();
      }
    })
    .join(',');
}

export interface WaitOptions {
  /** Where the "waiting for ..." lines go (once per interval). */
  say: (line: string) => void;
  /** Stops the wait (SIGTERM): the wait throws. */
  signal?: AbortSignal;
  /** How often the wait says it still waits, ms. Default 5000. */
  intervalMs?: number;
  /** Give up after this long, ms (one-shot commands): throws {@link UnavailableError}. Default: wait for ever. */
  giveUpMs?: number;
}


/**
 * Tries `attempt` until it succeeds. While it fails with an error `isDown`
 * accepts, says which server it waits for (at once, then once per
 * interval) and tries again; any other error is thrown as it is.
 */
export async function waitUntil<T>(what: string, url: string, attempt: () => Promise<T>, isDown: (err: unknown) => boolean, opts: WaitOptions): Promise<T> {
  const every = opts.intervalMs ?? 5000;
  const started = Date.now();
  let lastSaid = -Infinity;
  let waited = false;
  for (;;) {
    if (opts.signal?.aborted) throw new Error(`stopped while waiting for ${what} at ${redactUrl(url)}`);
    try {
      const value = await attempt();
      if (waited) opts.say(`${what} at ${redactUrl(url)} answers; going on`);
      return value;
    } catch (err) {
      if (!isDown(err)) throw err;
      const elapsed = Date.now() - started;
      if (opts.giveUpMs !== undefined && elapsed >= opts.giveUpMs) {
        throw new UnavailableError(url, `${what} at ${redactUrl(url)} did not answer within ${Math.round(opts.giveUpMs / 1000)}s (${errorMessage(err)})`, { cause: err });
      }
      if (Date.now() - lastSaid >= every) {
        opts.say(`waiting for ${what} at ${redactUrl(url)} (${errorMessage(err)}); retrying`);
        lastSaid = Date.now();
      }
      waited = true;
      await pause(Math.min(500, opts.giveUpMs === undefined ? 500 : Math.max(50, opts.giveUpMs - elapsed)), opts.signal);
    }
  }
}

/** NATS errors that mean "no server there (yet)", not "the server said no". */
export function natsIsDown(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return ['CONNECTION_REFUSED', 'CONNECTION_TIMEOUT', 'TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_DRAINING'].includes(code) || /^E[A-Z]+$/.test(code) || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT/.test(errorMessage(err));
}

/** Redis errors that mean "not there or not ready (yet)". */
export function redisIsDown(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return /^E[A-Z]+$/.test(code) || /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|Connection is closed|connect ETIMEDOUT|LOADING|MaxRetriesPerRequest|Stream isn't writeable/.test(errorMessage(err));
}

/** Waits until the NATS servers of `config` accept a connection (a probe, closed again). */
export async function waitForNats(config: ConnectionConfig, opts: WaitOptions): Promise<void> {
  await waitUntil(
    'NATS',
    config.natsUrl,
    async () => {
      const nc = await connectNats(config, 'cluster-sync-probe', { reconnect: false, timeout: 2000 }, () => undefined);
      await nc.close();
    },
    natsIsDown,
    opts,
  );
}

/** A Redis client that tries once, fails fast and prints nothing by itself. */
function probeClient(url: string, name: string): Redis {
  const r = new Redis(url, { lazyConnect: true, connectionName: name, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 2000 });
  r.on('error', () => undefined);
  return r;
}

/** Waits until Redis at `url` answers PING (a probe, closed again). */
export async function waitForRedis(url: string, opts: WaitOptions): Promise<void> {
  await waitUntil(
    'Redis',
    url,
    async () => {
      const r = probeClient(url, 'cs-probe');
      try {
        await r.connect();
        await r.ping();
      } finally {
        r.disconnect();
      }
    },
    redisIsDown,
    opts,
  );
}

/**
 * For one-shot commands: a Redis client once Redis answers, within
 * `giveUpMs` (then {@link UnavailableError} naming the URL). Its commands
 * time out after `giveUpMs` too, and it prints no stack traces of its own.
 */
export async function connectRedisBounded(url: string, name: string, opts: WaitOptions & { giveUpMs: number }): Promise<Redis> {
  await waitForRedis(url, opts);
  const r = new Redis(url, { connectionName: name, maxRetriesPerRequest: 1, commandTimeout: opts.giveUpMs, retryStrategy: (times) => (times > 5 ? null : 200) });
  r.on('error', () => undefined);
  return r;
}
