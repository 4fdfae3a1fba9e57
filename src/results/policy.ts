import { z } from 'zod';
import { InvalidInputError } from '../core/errors';
import { isMapping } from '../core/safe-yaml';
import type { Plain } from '../core/safe-yaml';

/** The most `cluster_retries` a job may ask for. */
export const MAX_CLUSTER_RETRIES = 5;

/** Which nodes must pass for the verdict `passed` (JobSet's success policy). */
export type SuccessPolicy = { mode: 'all' } | { mode: 'any' } | { mode: 'roles'; roles: string[] };

/** A job's failure policy (DESIGN §10), fully defaulted. */
export interface ClusterPolicy {
  /** Roles whose nodes may fail without aborting the others (`if role R: essential: false`). Default none. */
  optionalRoles: string[];
  /** Default `all`. */
  success: SuccessPolicy;
  /** How often a cluster that ended for an infrastructure cause is submitted again. Default 0, at most {@link MAX_CLUSTER_RETRIES}. */
  clusterRetries: number;
}

export const DEFAULT_POLICY: ClusterPolicy = { optionalRoles: [], success: { mode: 'all' }, clusterRetries: 0 };

const RoleName = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'role names hold only letters, digits, "_", "." and "-"');
const RolesText = z
  .string()
  .regex(/^roles\s*\[[^\]]*\]$/, 'must be all, any, or roles [r1, r2]')
  .transform((s) =>
    (/\[([^\]]*)\]/.exec(s)?.[1] ?? '')
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean),
  )
  .pipe(z.array(RoleName).min(1, 'roles [...] names no role'));

const SuccessSchema = z.union(
  [
    z.enum(['all', 'any']).transform((mode): SuccessPolicy => ({ mode })),
    RolesText.transform((roles): SuccessPolicy => ({ mode: 'roles', roles })),
    z.strictObject({ roles: z.array(RoleName).min(1, 'names no role') }).transform(({ roles }): SuccessPolicy => ({ mode: 'roles', roles })),
  ],
  { error: 'must be all, any, or roles [r1, r2]' },
);

const RetriesSchema = z
  .number({ error: `must be a whole number from 0 to ${MAX_CLUSTER_RETRIES}` })
  .int(`must be a whole number from 0 to ${MAX_CLUSTER_RETRIES}`)
  .min(0, 'must be at least 0')
  .max(MAX_CLUSTER_RETRIES, `must be at most ${MAX_CLUSTER_RETRIES}`);
const EssentialSchema = z.boolean({ error: 'must be true or false' });

function check<T>(schema: z.ZodType<T>, value: unknown, source: string, field: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new InvalidInputError(source, r.error.issues[0]?.message ?? 'invalid', field);
}

/**
 * Reads the failure policy of one expanded job: `success`, `cluster_retries`
 * and each `if role R: essential`. A bad value is an error naming its field
 * (the submit answers 400 and creates nothing).
 */
export function parsePolicy(doc: Plain, source: string): ClusterPolicy {
  if (!isMapping(doc)) return DEFAULT_POLICY;
  const success = doc.success === undefined || doc.success === null ? DEFAULT_POLICY.success : check(SuccessSchema, doc.success, source, 'success');
  const retries = doc.cluster_retries === undefined || doc.cluster_retries === null ? 0 : check(RetriesSchema, doc.cluster_retries, source, 'cluster_retries');
  const optionalRoles: string[] = [];
  const roles = new Set<string>();
  for (const [key, block] of Object.entries(doc)) {
    const m = /^if role (.+)$/.exec(key);
    if (!m) continue;
    const role = (m[1] ?? '').trim();
    roles.add(role);
    if (!isMapping(block) || block.essential === undefined) continue;
    if (!check(EssentialSchema, block.essential, source, `${key}.essential`)) optionalRoles.push(role);
  }
  if (success.mode === 'roles') {
    const unknown = success.roles.filter((r) => !roles.has(r));
    if (unknown.length > 0) throw new InvalidInputError(source, `names role${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} that no "if role" block has`, 'success');
  }
  return { optionalRoles, success, clusterRetries: retries };
}

/** The policy as meta fields of the cluster (read by the fold: `optional_roles`; by the result and the retries: the rest). */
export function policyMeta(p: ClusterPolicy): Record<string, string | number> {
  return { optional_roles: p.optionalRoles.join(' '), success: JSON.stringify(p.success), cluster_retries: p.clusterRetries };
}

/** The policy back from meta fields; defaults for a cluster submitted before policies existed. */
export function policyFromMeta(meta: Record<string, string>): ClusterPolicy {
  let success: SuccessPolicy = DEFAULT_POLICY.success;
  try {
    if (meta.success) success = JSON.parse(meta.success) as SuccessPolicy;
  } catch {
    /* default */
  }
  return { optionalRoles: (meta.optional_roles ?? '').split(' ').filter(Boolean), success, clusterRetries: Number(meta.cluster_retries) || 0 };
}
