import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { parseDuration } from '../core/duration';
import { ClusterSyncError, ErrorCode, InvalidInputError, NotFoundError } from '../core/errors';
import { redactUrl, waitUntil } from '../core/wait-servers';

/** How long a one-shot command waits for a server that does not answer, by default. */
export const DEFAULT_GIVE_UP = '10s';

/**
 * `--server`: `http://HOST[:PORT]` or `https://...`, nothing after the
 * port (the API's paths are fixed). Returns the origin.
 */
export function parseServerUrl(value: string, flag = '--server'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidInputError('command line', `${JSON.stringify(value)} is not a URL; give the scheduler as http://HOST:PORT`, flag);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError('command line', `${JSON.stringify(value)} must start with http:// or https://`, flag);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new InvalidInputError('command line', `${JSON.stringify(value)} has a path; give only the scheduler's http://HOST:PORT`, flag);
  }
  return url.origin;
}

/** Adds `--server` (and `--token` when the command needs one) and `--give-up` to a one-shot command that talks to the scheduler. */
export function withSchedulerFlags(cmd: Command, needsToken: boolean): Command {
  cmd.option('--server <url>', 'scheduler URL, http://HOST:PORT (env CS_SCHEDULER_URL)', process.env.CS_SCHEDULER_URL || 'http://127.0.0.1:3000');
  if (needsToken) cmd.option('--token <token>', "the scheduler's bearer token (env CS_API_TOKEN)");
  return cmd.option('--give-up <duration>', 'how long to wait for a scheduler that does not answer before exiting 69 (env CS_GIVE_UP)', process.env.CS_GIVE_UP || DEFAULT_GIVE_UP);
}

export interface SchedulerTarget {
  origin: string;
  token?: string;
  giveUpMs: number;
}

/** The scheduler flags, checked. */
export function schedulerTarget(opts: Record<string, unknown>, needsToken: boolean): SchedulerTarget {
  const origin = parseServerUrl(String(opts.server));
  const giveUpMs = parseDuration(opts.giveUp, '--give-up', 'command line');
  const token = (opts.token as string | undefined) ?? process.env.CS_API_TOKEN;
  if (needsToken && !token) throw new InvalidInputError('command line', "is required (or env CS_API_TOKEN): the scheduler's bearer token", '--token');
  return { origin, token, giveUpMs };
}

export interface ApiAnswer {
  status: number;
  text: string;
  json<T>(): T;
}

class ServerBusy extends Error {
  readonly code = 'EBUSY503';
}

/**
 * One request to the scheduler. A scheduler that cannot be reached, or that
 * answers 503 (its Redis is down), is asked again until `giveUpMs`, then the
 * command fails with exit 69 naming the URL. 401 and 404 become their
 * errors; other answers are returned. A request that creates something
 * sends {@link idempotencyHeader}, so that asking again creates nothing twice.
 */
export async function askScheduler(t: SchedulerTarget, method: string, path: string, body?: string, contentType = 'application/json', extraHeaders: Record<string, string> = {}): Promise<ApiAnswer> {
  const url = new URL(path, t.origin);
  const headers: Record<string, string> = { ...extraHeaders };
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  if (body !== undefined) headers['content-type'] = contentType;
  const res = await waitUntil(
    'the scheduler',
    t.origin,
    async () => {
      const r = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(Math.max(1000, t.giveUpMs)) });
      if (r.status === 503) throw new ServerBusy(`it answered 503: ${(await r.text()).slice(0, 300)}`);
      return r;
    },
    (err) => err instanceof ServerBusy || (err instanceof TypeError && /fetch failed/.test(err.message)) || (err instanceof Error && err.name === 'TimeoutError'),
    { say: (line) => void process.stderr.write(`cluster-sync: ${line}\n`), giveUpMs: t.giveUpMs, intervalMs: 5000 },
  );
  const text = await res.text();
  const answer: ApiAnswer = { status: res.status, text, json: <T>() => JSON.parse(text) as T };
  const message = (): string => {
    try {
      const j = JSON.parse(text) as { message?: string } | { message?: string }[];
      return (Array.isArray(j) ? j[0]?.message : j.message) ?? text.slice(0, 300);
    } catch {
      return text.slice(0, 300);
    }
  };
  if (res.status === 401) throw new ClusterSyncError(ErrorCode.Unauthorized, `the scheduler at ${redactUrl(t.origin)} refused: ${message()}`);
  if (res.status === 404) throw new NotFoundError(message());
  if (res.status === 400) throw new InvalidInputError('scheduler', message());
  if (res.status >= 500) throw new ClusterSyncError(ErrorCode.Internal, `the scheduler at ${redactUrl(t.origin)} answered ${res.status}: ${message()}`);
  return answer;
}

/**
 * A new `Idempotency-Key` for one command's request, sent again on each of
 * its retries: the scheduler answers a repeat as the first and creates
 * nothing twice (src/scheduler/idempotency.ts).
 */
export function idempotencyHeader(): Record<string, string> {
  return { 'idempotency-key': randomUUID() };
}
