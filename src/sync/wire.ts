/**
 * The lava-* commands' wire format (see protocol.ts), without any import:
 * the small client that each `lava-send` / `lava-wait` starts loads only
 * this, so that it starts fast.
 */

export const SYNC_OPS = ['send', 'wait', 'wait-all', 'sync'] as const;
export type SyncOp = (typeof SYNC_OPS)[number];

/** Why a call failed, and the exit code the command then returns. */
export const SyncFailure = { usage: 2, aborted: 3, timeout: 4, error: 5 } as const;
export type SyncFailure = keyof typeof SyncFailure;

/** One call: program -> agent, one JSON line. */
export interface SyncRequest {
  v: 1;
  op: SyncOp;
  msg: string;
  data?: Record<string, string>;
  role?: string;
  /** Give up after this long, ms. Default: the job's cluster_timeout. */
  timeout_ms?: number;
}

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
