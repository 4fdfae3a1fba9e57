import type { Command } from 'commander';
import { loadConnectionConfig } from '../core/config';
import type { ConnectionConfig, ConnectionFlags } from '../core/config';
import { ClusterSyncError, errorMessage } from '../core/errors';

/** Adds the connection flags every server-facing command shares. */
export function withConnectionFlags(cmd: Command): Command {
  return cmd
    .option('--redis-url <url>', 'Redis URL (env CS_REDIS_URL)', undefined)
    .option('--nats-url <url>', 'NATS URL(s), comma separated (env CS_NATS_URL)', undefined)
    .option('--nats-user <user>', 'NATS user (env CS_NATS_USER; password in CS_NATS_PASS)')
    .option('--nats-creds <file>', 'NATS .creds or nkey seed file (env CS_NATS_CREDS)')
    .option('--subject-prefix <prefix>', 'NATS subject prefix (env CS_SUBJECT_PREFIX, default cs)')
    .option('--key-prefix <prefix>', 'Redis key prefix (env CS_KEY_PREFIX, default none)');
}

export function connectionFrom(opts: Record<string, unknown>): ConnectionConfig {
  const flags: ConnectionFlags = {
    redisUrl: opts.redisUrl as string | undefined,
    natsUrl: opts.natsUrl as string | undefined,
    natsUser: opts.natsUser as string | undefined,
    natsCreds: opts.natsCreds as string | undefined,
    subjectPrefix: opts.subjectPrefix as string | undefined,
    keyPrefix: opts.keyPrefix as string | undefined,
  };
  return loadConnectionConfig(flags);
}

/** Exit codes of the command line. */
export const Exit = { Ok: 0, Failed: 1, Usage: 2, Unavailable: 69 } as const;

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
 * exit code: 2 for bad input (a flag's value, a file), 1 for anything else.
 */
export function reportError(err: unknown): void {
  process.stderr.write(`cluster-sync: ${errorMessage(err)}\n`);
  if (process.env.CS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  process.exitCode = err instanceof ClusterSyncError && err.code === 'INVALID_INPUT' ? Exit.Usage : Exit.Failed;
}

/** Resolves on SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
