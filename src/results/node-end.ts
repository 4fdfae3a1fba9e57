import { z } from 'zod';
import type { Redis } from 'ioredis';
import type { Keys } from '../core/keys';

/** One program a node ran, as its agent tells the dispatcher at the end of the node job. */
export const ProgramRunSchema = z.strictObject({
  name: z.string().min(1).max(128),
  kind: z.enum(['daemon', 'test']),
  /** Exit code; null when it was killed by a signal, or is still running (a daemon stopped at the end). */
  exit: z.number().int().nullable(),
  signal: z.string().max(32).nullable(),
  /** From start to exit (or to the end of the node job), ms. */
  ms: z.number().int().nonnegative(),
  /** `passed`, `failed`, `stopped` (ended by the cluster's end or an abort), `started` (a daemon that ran to the end), `not_started`. */
  result: z.string().min(1).max(32),
});
export type ProgramRun = z.infer<typeof ProgramRunSchema>;

/** How a node job ended, as recorded with its cluster (meta field `end:<job>`). */
export interface NodeEnd {
  /** The agent's outcome: passed, test_failed, aborted, timed_out, setup_error. */
  outcome: string;
  reason?: string;
  programs: ProgramRun[];
  /** Which agent ran it (`host:pid`, or the machine id). */
  machine?: string;
  /** When the end was recorded (Redis clock, ms). */
  at: number;
}

/** Meta field of a node job's end. */
export function nodeEndField(job: string): string {
  return `end:${job}`;
}

/**
 * Records a node job's end with its cluster, so the cluster's result names
 * each program's exit and duration; removed with the cluster by retention.
 * Nothing is written for a cluster that is gone.
 */
export async function recordNodeEnd(redis: Redis, keys: Keys, cluster: string, job: string, end: Omit<NodeEnd, 'at'>): Promise<void> {
  const [sec, usec] = await redis.time();
  const at = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const meta = keys.meta(cluster);
  if ((await redis.exists(meta)) === 0) return;
  await redis.hset(meta, nodeEndField(job), JSON.stringify({ ...end, at }));
}

/** The node ends recorded in a cluster's meta hash (as HGETALL returns it). */
export function nodeEndsOf(meta: Record<string, string>): Map<string, NodeEnd> {
  const out = new Map<string, NodeEnd>();
  for (const [f, v] of Object.entries(meta)) {
    if (!f.startsWith('end:')) continue;
    try {
      out.set(f.slice(4), JSON.parse(v) as NodeEnd);
    } catch {
      /* a corrupt record: that node's end is unknown */
    }
  }
  return out;
}
