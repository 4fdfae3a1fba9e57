import { isIP, isIPv4 } from 'node:net';
import type { RefusalCode } from '../core/refusal-codes';
import { z } from 'zod';
import { REPORT_KINDS } from '../core/states';
import { idProblem } from '../core/ids';
import type { IdKind } from '../core/ids';

/** A report is at most 64 KiB on the wire (DESIGN §8). */
export const MAX_REPORT_BYTES = 64 * 1024;

/** A zod refinement by the one identifier rule of `src/core/ids.ts`. */
export function idRefine(kind: IdKind) {
  return (v: string, ctx: z.RefinementCtx): void => {
    const problem = idProblem(v, kind);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  };
}

/** An identifier of `kind` from outside, by the one rule of `src/core/ids.ts`. */
export function idSchema(kind: IdKind) {
  return z.string().superRefine(idRefine(kind));
}
/** Report ids are BullMQ job ids: no ":" and not a bare integer. */
export const ReportId = z
  .string()
  .min(8)
  .max(128)
  .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only')
  .refine((s) => !/^\d+$/.test(s), 'must not be a bare number');

const Field = z
  .string()
  .max(4096)
  .regex(/^[^\0\n\r]*$/, 'no NUL or newline');

const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const ROLE = /^[A-Za-z0-9_.-]+$/;

/** The words of a space-separated list (lkp's `+`-joined lists arrive as spaces). */
export function wordsOf(value: string): string[] {
  return value.split(' ').filter((w) => w !== '');
}

/** A space-separated list whose every word passes `ok`; stored with single spaces. Empty is an empty list. */
function listOf(ok: (word: string) => boolean, what: string) {
  return Field.refine((v) => wordsOf(v).every(ok), `must be ${what} separated by spaces`).transform((v) => wordsOf(v).join(' '));
}

/**
 * What a node says about itself in `write_state` (over NATS, or through the
 * legacy endpoint, which uses these same rules). Each value ends up in other
 * nodes' environment and /etc/hosts (`roles_ip`), so each is checked to be
 * exactly what it claims: `ip` one IPv4 or IPv6 address, `direct_ips` IPv4
 * addresses, `direct_macs` MAC addresses, `node_roles` role names; empty
 * means unknown. That `node_roles` are the node's own and `direct_ips` as
 * many as its MACs is checked against its entry (`checkNodeInfo`).
 */
export const InfoFields = {
  node_roles: listOf((w) => ROLE.test(w), 'role names (letters, digits, "_", "." and "-")'),
  ip: Field.refine((v) => v === '' || isIP(v) !== 0, 'must be one IPv4 or IPv6 address'),
  direct_macs: listOf((w) => MAC.test(w), 'MAC addresses (like ec:f4:bb:cb:7b:92)'),
  direct_ips: listOf((w) => isIPv4(w), 'IPv4 addresses'),
} as const;

export const ReportInfoSchema = z
  .strictObject({
    node_roles: InfoFields.node_roles.optional(),
    ip: InfoFields.ip.optional(),
    direct_macs: InfoFields.direct_macs.optional(),
    direct_ips: InfoFields.direct_ips.optional(),
  })
  // Empty roles are "not told": they never blank the roles the split gave the node.
  .transform((info) => {
    const out = { ...info };
    if (out.node_roles === '') delete out.node_roles;
    return out;
  });
export type ReportInfo = z.infer<typeof ReportInfoSchema>;

export const MsgName = idSchema('message id');
/** Data a node attaches to one message ID, in all its sends together: `key=value` lines of at most this many bytes. */
export const MAX_MSG_NODE_BYTES = 4096;
/** Message IDs one cluster may hold. */
export const MAX_MSG_IDS = 256;

/**
 * Bytes a string takes once stored: inside a JSON string as Redis's Lua
 * cjson writes it (`"`, `\\`, `/` and TAB escaped to two bytes each;
 * other control characters are refused before this), UTF-8 otherwise. What
 * the limits below count, so a value full of escapes cannot be stored at
 * several times its allowance.
 */
export function storedBytes(s: string): number {
  let n = Buffer.byteLength(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c === 0x2f || c === 0x09) n++;
  }
  return n;
}

/** Stored bytes of a data map as `key=value` lines (`storedBytes` of each key and value, + 2 per line). */
export function dataBytes(data: Record<string, string>): number {
  return Object.entries(data).reduce((n, [k, v]) => n + storedBytes(k) + storedBytes(v) + 2, 0);
}

/**
 * A message value: no control character but TAB (no NUL, CR, LF, ESC, DEL, ...).
 * They would end up escaped at six bytes each in Redis and raw in other nodes'
 * cache files and terminals; LAVA's values are words, addresses, numbers.
 */
const MsgValue = z
  .string()
  .max(MAX_MSG_NODE_BYTES)
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  .regex(/^[^\u0000-\u0008\u000a-\u001f\u007f]*$/, 'no control characters (TAB is allowed)');

export const MsgDataSchema = z
  .record(z.string(), MsgValue)
  .superRefine((d, ctx) => {
    // Checked here rather than as the record's key schema, so the reason names the rule (zod says only "Invalid key in record").
    for (const key of Object.keys(d)) {
      const problem = idProblem(key, 'data key');
      if (problem !== undefined) return void ctx.addIssue({ code: 'custom', message: `a key ${problem}` });
    }
  })
  .refine((d) => Object.keys(d).length <= 256, 'at most 256 keys')
  .refine((d) => dataBytes(d) <= MAX_MSG_NODE_BYTES, `at most ${MAX_MSG_NODE_BYTES} bytes as key=value lines, counted as stored (", \\ , / and TAB count two)`);
export type MsgData = z.infer<typeof MsgDataSchema>;

/** How a wait is satisfied: `any` node sent the ID (lava-wait), or `all` nodes (of `role`) did (lava-wait-all, lava-sync). */
export const WaitMode = z.enum(['any', 'all']);
export type WaitMode = z.infer<typeof WaitMode>;

export const ReportSchema = z
  .strictObject({
    v: z.literal(1),
    id: ReportId,
    cluster: idSchema('cluster id'),
    job: idSchema('job id'),
    state: z.enum(REPORT_KINDS),
    /** Node clock, ms since the epoch. */
    at: z.number().int().nonnegative(),
    token: z.string().min(1).max(256),
    info: ReportInfoSchema.optional(),
    /** Why a node fails or aborts, shown to the other nodes and to operators. */
    reason: z
      .string()
      .max(1024)
      // It ends up in logs, `watch` lines and other nodes' output: no control characters.
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .transform((s) => s.replace(/[\u0000-\u001f\u007f]/g, ' '))
      .optional(),
    /** `send` and `wait_msg`: the message ID. */
    msg: MsgName.optional(),
    /** `send`: this node's key=value data for the ID. */
    data: MsgDataSchema.optional(),
    /** `wait_msg` (and `send` for lava-sync): how the wait is satisfied. */
    mode: WaitMode.optional(),
    /** With mode `all`: only nodes of this role count. */
    role: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[^\s\0]+$/, 'one role name, no white space')
      .optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.state === 'send' || r.state === 'wait_msg') && r.msg === undefined) ctx.addIssue({ code: 'custom', path: ['msg'], message: `is required for ${r.state}` });
    if (r.state === 'wait_msg' && r.mode === undefined) ctx.addIssue({ code: 'custom', path: ['mode'], message: 'is required for wait_msg' });
    if (r.state !== 'send' && r.state !== 'wait_msg' && (r.msg !== undefined || r.data !== undefined || r.mode !== undefined || r.role !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['msg'], message: `msg, data, mode and role belong to send and wait_msg, not ${r.state}` });
    }
    if (r.state === 'wait_msg' && r.data !== undefined) ctx.addIssue({ code: 'custom', path: ['data'], message: 'wait_msg carries no data' });
    if (r.role !== undefined && r.mode !== 'all') ctx.addIssue({ code: 'custom', path: ['role'], message: 'needs mode all' });
  });
export type Report = z.infer<typeof ReportSchema>;

/** The bridge's reply to a report. */
export type ReportReply = { ok: true; id: string } | { ok: false; reason: string; code: RefusalCode; retryable?: boolean };

export const QuerySchema = z.strictObject({
  v: z.literal(1),
  cluster: idSchema('cluster id'),
  job: idSchema('job id'),
  token: z.string().min(1).max(256),
  what: z.enum(['roles_ip', 'state']),
});
export type Query = z.infer<typeof QuerySchema>;

/** Short, one-line description of the first zod issue: "field: message". */
export function describeZodError(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'invalid';
  const where = issue.path.length > 0 ? issue.path.join('.') : 'message';
  if (issue.code === 'unrecognized_keys') return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  return `${where}: ${issue.message}`;
}
