import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { connectNats } from '../bus/connect';
import type { ConnectionConfig } from './config';
import { describeRedis, redactUrl, viaSentinels } from './redis';
import type { RedisTarget } from './redis';
import { UnavailableError, errorMessage } from './errors';
import { pause } from './pause';

export { redactUrl };

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
  return (
    ['CONNECTION_REFUSED', 'CONNECTION_TIMEOUT', 'TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_DRAINING'].includes(code) ||
    /^E[A-Z]+$/.test(code) ||
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT/.test(errorMessage(err))
  );
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

/** Connection options for `target`: its URL, or its primary through the sentinels. */
function redisOptions(target: RedisTarget, extra: RedisOptions): [string, RedisOptions] | [RedisOptions] {
  const opts: RedisOptions = { ...extra, ...(target.redisPassword ? { password: target.redisPassword } : {}) };
  if (!viaSentinels(target)) return [target.redisUrl, opts];
  return [
    {
      ...opts,
      sentinels: target.redisSentinels,
      name: target.redisMaster,
      role: 'master',
      ...(target.redisSentinelPassword ? { sentinelPassword: target.redisSentinelPassword } : {}),
      sentinelRetryStrategy: () => null,
    },
  ];
}

function newRedis(args: [string, RedisOptions] | [RedisOptions]): Redis {
  return args.length === 2 ? new Redis(args[0], args[1]) : new Redis(args[0]);
}

/** A Redis client that tries once, fails fast and prints nothing by itself. */
function probeClient(target: RedisTarget, name: string): Redis {
  const r = newRedis(redisOptions(target, { lazyConnect: true, connectionName: name, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 2000 }));
  r.on('error', () => undefined);
  return r;
}

function targetOf(target: RedisTarget | string): RedisTarget {
  return typeof target === 'string' ? { redisUrl: target } : target;
}

/** Waits until Redis (a URL, or a primary behind sentinels) answers PING (a probe, closed again). */
export async function waitForRedis(target: RedisTarget | string, opts: WaitOptions): Promise<void> {
  const t = targetOf(target);
  await waitUntil(
    'Redis',
    describeRedis(t),
    async () => {
      const r = probeClient(t, 'cs-probe');
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
 * `giveUpMs` (then {@link UnavailableError} naming where Redis is). Its commands
 * time out after `giveUpMs` too, and it prints no stack traces of its own.
 */
export async function connectRedisBounded(target: RedisTarget | string, name: string, opts: WaitOptions & { giveUpMs: number }): Promise<Redis> {
  const t = targetOf(target);
  await waitForRedis(t, opts);
  const r = newRedis(redisOptions(t, { connectionName: name, maxRetriesPerRequest: 1, commandTimeout: opts.giveUpMs, retryStrategy: (times) => (times > 5 ? null : 200) }));
  r.on('error', () => undefined);
  return r;
}
