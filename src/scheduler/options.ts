import { z } from 'zod';
import { InvalidInputError } from '../core/errors';

/** Settings of the scheduler's HTTP side. Validated once, at the edge. */
export const SchedulerOptionsSchema = z.object({
  /** Bearer token `POST /jobs` requires. Env `CS_API_TOKEN`. Required: the scheduler does not start without one. */
  apiToken: z.string().min(16, 'must be at least 16 characters'),
  /** Directory of cluster specs named like a job's `cluster:` (lkp-tests' `cluster/`). Default: none (inline specs and cs-localhost only). */
  clusterDir: z.string().min(1).optional(),
  /** How long a legacy `wait_*` request is held open before it answers `retry`, ms. Default 300 000 (5 min; lkp's wget gives up after 1800 s). */
  longPollMs: z.number().int().positive().max(1_700_000).default(300_000),
  /** How long a legacy `write_state` / `failed` / `abort` waits to see its report folded before answering the state anyway, ms. Default 10 000. */
  foldWaitMs: z.number().int().positive().default(10_000),
});
export type SchedulerOptionsInput = z.input<typeof SchedulerOptionsSchema>;
export type SchedulerOptions = z.output<typeof SchedulerOptionsSchema>;

export function parseSchedulerOptions(input: SchedulerOptionsInput): SchedulerOptions {
  const parsed = SchedulerOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? '');
    const hint = field === 'apiToken' ? 'apiToken (env CS_API_TOKEN or --token)' : field;
    throw new InvalidInputError('scheduler configuration', issue?.message ?? 'invalid', hint);
  }
  return parsed.data;
}
