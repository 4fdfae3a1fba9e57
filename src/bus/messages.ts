import { z } from 'zod';
import { REPORT_KINDS } from '../core/states';

/** A report is at most 64 KiB on the wire (DESIGN §8). */
export const MAX_REPORT_BYTES = 64 * 1024;

const Ident = z.string().min(1).max(128).regex(/^[A-Za-z0-9_+=,@%.-]+$/, 'letters, digits and _+=,@%.- only');
/** Report ids are BullMQ job ids: no ":" and not a bare integer. */
export const ReportId = z
  .string()
  .min(8)
  .max(128)
  .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only')
  .refine((s) => !/^\d+$/.test(s), 'must not be a bare number');

const Field = z.string().max(4096).regex(/^[^\0\n\r]*$/, 'no NUL or newline');

export const ReportInfoSchema = z.strictObject({
  node_roles: Field.optional(),
  ip: Field.optional(),
  direct_macs: Field.optional(),
  direct_ips: Field.optional(),
});
export type ReportInfo = z.infer<typeof ReportInfoSchema>;

export const ReportSchema = z.strictObject({
  v: z.literal(1),
  id: ReportId,
  cluster: Ident,
  job: Ident,
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
});
export type Report = z.infer<typeof ReportSchema>;

/** The bridge's reply to a report. */
export type ReportReply = { ok: true; id: string } | { ok: false; reason: string; code: string; retryable?: boolean };

export const QuerySchema = z.strictObject({
  v: z.literal(1),
  cluster: Ident,
  job: Ident,
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
