import { z } from 'zod';
import { MsgDataSchema, MsgName } from '../bus/messages';
import { SYNC_OPS } from './wire';
import type { SyncRequest } from './wire';

/**
 * Between a program's `lava-send` / `lava-wait` / `lava-wait-all` /
 * `lava-sync` (or `cluster-sync send|wait|wait-all|sync`) and its node agent:
 * one JSON line each way over the agent's Unix socket (`CS_SYNC_SOCKET`).
 * The program holds no NATS credentials and no cluster token: the agent
 * speaks for it with its own connection and identity. The types are in
 * wire.ts; this is the agent's check of a request, at its edge.
 */
export const SyncRequestSchema: z.ZodType<SyncRequest> = z.strictObject({
  v: z.literal(1),
  op: z.enum(SYNC_OPS),
  msg: MsgName,
  data: MsgDataSchema.optional(),
  role: z.string().min(1).max(128).regex(/^\S+$/, 'one role name, no white space').optional(),
  timeout_ms: z.number().int().positive().max(2_147_483_647).optional(),
});

export { MAX_SYNC_LINE, SYNC_OPS, SyncFailure } from './wire';
export type { SyncOp, SyncReply, SyncRequest } from './wire';
