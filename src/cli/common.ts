import type { Command } from 'commander';
import { loadConnectionConfig } from '../core/config';
import type { ConnectionConfig, ConnectionFlags } from '../core/config';
import { ClusterSyncError, ErrorCode, errorMessage } from '../core/errors';
import type { WaitOptions } from '../core/wait-servers';
import { ExitCode } from './exit-codes';

/** Adds the flags of a command that talks to Redis. */
export function withRedisFlags(cmd: Command): Command {
  return cmd
    .option('--redis-url <url>', 'Redis URL (env CS_REDIS_URL; password also in CS_REDIS_PASSWORD)', undefined)
    .option('--redis-sentinels <host:port,...>', 'find the Redis primary through these sentinels, instead of --redis-url (env CS_REDIS_SENTINELS; their password in CS_REDIS_SENTINEL_PASSWORD)')
    .option('--redis-master <name>', "the primary's name at the sentinels (env CS_REDIS_MASTER)")
    .option('--min-replicas <n>', 'replicas that must hold a write before it is answered "accepted" (env CS_MIN_REPLICAS; default 1 with replicas, else 0)')
    .option('--replica-timeout-ms <ms>', 'how long to wait for those replicas before answering "retry" (env CS_REPLICA_TIMEOUT_MS; default 2000)')
    .option('--key-prefix <prefix>', 'Redis key prefix (env CS_KEY_PREFIX, default none)');
}

/** Adds the flags of a command that talks to NATS. */
export function withNatsFlags(cmd: Command): Command {
  return cmd
    .option('--nats-url <url>', 'NATS URL(s), comma separated (env CS_NATS_URL)', undefined)
    .option('--nats-user <user>', 'NATS user (env CS_NATS_USER; password in CS_NATS_PASS)')
    .option('--nats-creds <file>', 'NATS .creds or nkey seed file (env CS_NATS_CREDS)')
    .option('--subject-prefix <prefix>', 'NATS subject prefix (env CS_SUBJECT_PREFIX, default cs)');
}

/** Adds the connection flags of a command that talks to both Redis and NATS. */
export function withConnectionFlags(cmd: Command): Command {
  return withNatsFlags(withRedisFlags(cmd));
}

export function connectionFrom(opts: Record<string, unknown>): ConnectionConfig {
  const flags: ConnectionFlags = {
    redisUrl: opts.redisUrl as string | undefined,
    redisSentinels: opts.redisSentinels as string | undefined,
    redisMaster: opts.redisMaster as string | undefined,
    minReplicas: opts.minReplicas as string | undefined,
    replicaTimeoutMs: opts.replicaTimeoutMs as string | undefined,
    natsUrl: opts.natsUrl as string | undefined,
    natsUser: opts.natsUser as string | undefined,
    natsCreds: opts.natsCreds as string | undefined,
    subjectPrefix: opts.subjectPrefix as string | undefined,
    keyPrefix: opts.keyPrefix as string | undefined,
  };
  return loadConnectionConfig(flags);
}

/** @deprecated the one table is {@link ExitCode}; kept for the names older code uses. */
export const Exit = { Ok: ExitCode.Ok, Failed: ExitCode.Failed, Usage: ExitCode.Usage, Unavailable: ExitCode.Unavailable } as const;

/** The exit code of an error a command threw (the one table, src/cli/exit-codes.ts). */
export function exitCodeOf(err: unknown): ExitCode {
  if (!(err instanceof ClusterSyncError)) return ExitCode.Failed;
  switch (err.code) {
    case ErrorCode.InvalidInput:
      return ExitCode.Usage;
    case ErrorCode.NotFound:
      return ExitCode.NotFound;
    case ErrorCode.Unavailable:
      return ExitCode.Unavailable;
    case ErrorCode.Unauthorized:
      return ExitCode.Unauthorized;
    default:
      return ExitCode.Failed;
  }
}

/** Runs a command's action, printing errors as one clear line (stack only with CS_DEBUG). */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (err) {
      reportError(err);
    }
  };
}

/**
 * Prints an error as one clear line (stack only with CS_DEBUG) and sets the
 * exit code from the one table (src/cli/exit-codes.ts).
 */
export function reportError(err: unknown): void {
  process.stderr.write(`cluster-sync: ${errorMessage(err)}\n`);
  if (process.env.CS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  process.exitCode = exitCodeOf(err);
}

/** How long a process may take to stop after SIGTERM or SIGINT before it exits anyway, ms. */
export const STOP_DEADLINE_MS = 10_000;

/**
 * Resolves on SIGINT or SIGTERM. From then on the process has
 * {@link STOP_DEADLINE_MS} to stop by itself; then it exits (code 1) whatever
 * is still in flight (a request held by a dead Redis, a connection retrying).
 */
export function untilSignal(name = 'cluster-sync'): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      setTimeout(() => {
        process.stderr.write(`${name}: did not stop within ${STOP_DEADLINE_MS / 1000}s of ${sig}; exiting\n`);
        process.exit(ExitCode.Failed);
      }, STOP_DEADLINE_MS).unref();
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * An AbortSignal for a long-running command's start-up (waiting for its
 * servers): SIGTERM or SIGINT aborts it, and the process exits within
 * {@link STOP_DEADLINE_MS}. `release()` hands the signals back once the
 * command serves (and waits with {@link untilSignal}).
 */
export function startupSignal(name: string): { signal: AbortSignal; release(): void } {
  const ctl = new AbortController();
  const on = (sig: NodeJS.Signals): void => {
    process.stderr.write(`${name}: ${sig} while starting; stopping\n`);
    ctl.abort(new Error(sig));
    setTimeout(() => process.exit(ExitCode.Failed), STOP_DEADLINE_MS).unref();
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    signal: ctl.signal,
    release() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

/** How a long-running command waits for its servers: for ever, saying so on stderr once per interval. */
export function waitForever(name: string, signal: AbortSignal): WaitOptions {
  return { say: (line) => void process.stderr.write(`${name}: ${line}\n`), signal, intervalMs: Number(process.env.CS_WAIT_SAY_MS) || 5000 };
}
