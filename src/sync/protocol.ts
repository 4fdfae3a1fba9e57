import { z } from 'zod';
import { MsgDataSchema, MsgName } from '../bus/messages';

/**
 * Between a program's `lava-send` / `lava-wait` / `lava-wait-all` /
 * `lava-sync` (or `cluster-sync send|wait|wait-all|sync`) and its node agent:
 * one JSON line each way over the agent's Unix socket (`CS_SYNC_SOCKET`).
 * The program holds no NATS credentials and no cluster token: the agent
 * speaks for it with its own connection and identity.
 */

export const SYNC_OPS = ['send', 'wait', 'wait-all', 'sync'] as const;
export type SyncOp = (typeof SYNC_OPS)[number];

export const SyncRequestSchema = z.strictObject({
  v: z.literal(1),
  op: z.enum(SYNC_OPS),
  msg: MsgName,
  data: MsgDataSchema.optional(),
  role: z.string().min(1).max(128).regex(/^\S+$/, 'one role name, no white space').optional(),
  /** Give up after this long, ms. Default: the job's cluster_timeout. */
  timeout_ms: z.number().int().positive().max(2_147_483_647).optional(),
});
export type SyncRequest = z.infer<typeof SyncRequestSchema>;

/** Why a call failed, and the exit code the command then returns. */
export const SyncFailure = { usage: 2, aborted: 3, timeout: 4, error: 5 } as const;
export type SyncFailure = keyof typeof SyncFailure;

export type SyncReply =
  | {
      ok: true;
      /** The cache file's lines (LAVA's formats); empty for send. */
      lines: string[];
      waited_ms: number;
    }
  | { ok: false; code: SyncFailure; message: string };

/** One request or reply is at most this long on the socket. */
export const MAX_SYNC_LINE = 512 * 1024;
