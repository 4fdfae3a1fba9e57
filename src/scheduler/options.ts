import { z } from 'zod';
import { InvalidInputError } from '../core/errors';
import { checkCidr } from './address-list';

const Cidr = z.string().superRefine((v, ctx) => {
  const problem = checkCidr(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

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
  /**
   * Addresses (IPs or CIDR ranges) that may use the legacy lkp endpoint; any
   * other gets 403 and changes nothing. Env `CS_LEGACY_ALLOW`, flag
   * `--legacy-allow`. Default: none given, the endpoint is open to anyone
   * who reaches the scheduler, as Compass-CI's was.
   */
  legacyAllow: z.array(Cidr).min(1, 'give at least one address or range').optional(),
  /**
   * Proxies (IPs or CIDR ranges) whose `X-Forwarded-For` names the client; a
   * request from anywhere else is judged by its own address. Env
   * `CS_TRUSTED_PROXY`, flag `--trusted-proxy`. Default none: the header is ignored.
   */
  trustedProxies: z.array(Cidr).optional(),
});
export type SchedulerOptionsInput = z.input<typeof SchedulerOptionsSchema>;
export type SchedulerOptions = z.output<typeof SchedulerOptionsSchema>;

export function parseSchedulerOptions(input: SchedulerOptionsInput): SchedulerOptions {
  const parsed = SchedulerOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? '');
    const hint =
      ({ apiToken: 'apiToken (env CS_API_TOKEN or --token)', legacyAllow: '--legacy-allow (env CS_LEGACY_ALLOW)', trustedProxies: '--trusted-proxy (env CS_TRUSTED_PROXY)' } as Record<string, string>)[
        field
      ] ?? field;
    throw new InvalidInputError('scheduler configuration', issue?.message ?? 'invalid', hint);
  }
  return parsed.data;
}
