import { parseDuration } from '../core/duration';
import { InvalidInputError } from '../core/errors';
import type { NodeJob } from '../split/node-job';

/** How node jobs reach machines (`cluster-sync node --admission`). */
export const AdmissionMode = {
  /** All or nothing per cluster, one Lua script (DESIGN §9). The default. */
  Admission: 'admission',
  /** Each machine takes the next node job of its testbox queue, as Compass-CI hands them out. */
  Fifo: 'fifo',
} as const;
export type AdmissionMode = (typeof AdmissionMode)[keyof typeof AdmissionMode];

/** Default of `--admit-timeout`: a cluster not admitted within this long ends `not_admitted`, ms. */
export const DEFAULT_ADMIT_TIMEOUT_MS = 3_600_000;
/** Default of `--reserve-after`: a cluster waiting this long starts reserving idle machines, ms. */
export const DEFAULT_RESERVE_AFTER_MS = 600_000;
/** Default machine lease (`cluster-sync node --lease`), ms. */
export const DEFAULT_MACHINE_LEASE_MS = 15_000;
/** A gone machine stays listed in `status` this long after its lease lapsed, ms. */
export const GONE_KEEP_MS = 600_000;
/** Waiting clusters one admission pass looks at, oldest first. */
export const ADMIT_PASS_LIMIT = 500;

/** A cluster's admission settings, from its job (`admit_timeout:`, `priority:`), checked at submit. */
export interface ClusterAdmission {
  /** Undefined: the workers' `--admit-timeout`. */
  admitTimeoutMs?: number;
  /** Higher first; default 0. */
  priority: number;
}

export function admissionOf(params: Record<string, unknown>, source: string): ClusterAdmission {
  const out: ClusterAdmission = { priority: 0 };
  const t = params.admit_timeout;
  if (t !== undefined && t !== null) {
    out.admitTimeoutMs = parseDuration(t, 'admit_timeout', source);
    if (!(out.admitTimeoutMs >= 1000 && out.admitTimeoutMs <= 30 * 86_400_000)) throw new InvalidInputError(source, `must lie between 1s and 30d, got ${JSON.stringify(t)}`, 'admit_timeout');
  }
  const p = params.priority;
  if (p !== undefined && p !== null) {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < -100 || p > 100) throw new InvalidInputError(source, `must be a whole number between -100 and 100, got ${JSON.stringify(p)}`, 'priority');
    out.priority = p;
  }
  return out;
}

/** {testbox: [node job ids]}: how many machines of each testbox the cluster needs, from its node jobs. */
export function needsOfJobs(jobs: readonly Pick<NodeJob, 'job_id' | 'queue'>[]): Record<string, string[]> {
  const needs: Record<string, string[]> = {};
  for (const j of jobs) (needs[j.queue] ??= []).push(j.job_id);
  return needs;
}
