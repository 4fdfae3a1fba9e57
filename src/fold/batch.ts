import { z } from 'zod';
import { ReportId, ReportSchema, describeZodError } from '../bus/messages';
import type { Report } from '../bus/messages';
import type { Keys } from '../core/keys';
import type { QueueSet } from '../queue/queues';

/**
 * One BullMQ job of the reports queue: the reports a bridge accepted while
 * its previous add was in flight (group commit, DESIGN §5 "Batches"), folded
 * together by one fold-batch.lua call, each on its own. The BullMQ job id is
 * BullMQ's own; a report's id deduplicates it inside its cluster.
 */
export interface BatchJob {
  reports: Report[];
}

/** BullMQ job name of a batch. */
export const BATCH_JOB = 'batch';

/**
 * BullMQ options of a batch job. The job id is BullMQ's own: a report's id
 * deduplicates it inside its cluster's fold. A fold that fails because of
 * Redis is retried inside the fold worker until Redis recovers; these
 * attempts cover anything else (a fault of the worker itself).
 */
export const BATCH_JOB_OPTIONS = {
  removeOnComplete: true,
  removeOnFail: 5000,
  attempts: 5,
  backoff: { type: 'exponential', delay: 200 },
} as const;

/** Adds one batch of reports to the reports queue (the bridge, and the dead-node sweep). */
export async function enqueueReports(queues: QueueSet, reports: Report[]): Promise<void> {
  const data: BatchJob = { reports };
  await queues.reports.add(BATCH_JOB, data, BATCH_JOB_OPTIONS);
}

/**
 * Report ids the workers make themselves (a dead node's abort) start with this
 * character, which a report id from a node may not contain (`ReportId`): no
 * node can claim such an id before the workers use it.
 */
export const INTERNAL_ID_PREFIX = '~';

/** The report id of a dead node's abort: the same from every worker, so it is folded once. */
export function deadReportId(job: string): string {
  return `${INTERNAL_ID_PREFIX}dead-${job}`;
}

const InternalId = z
  .string()
  .max(160)
  .regex(/^~[A-Za-z0-9_.-]+$/, 'an internal id');

/** A report as it sits in the queue: a node's (validated by the bridge) or one the workers made. */
export const QueuedReportSchema = ReportSchema.safeExtend({ id: z.union([ReportId, InternalId]) });

/**
 * Checks each report of a job on its own: the valid ones, and the position and
 * reason of each one that is not (a job written by something else than a
 * bridge, or by an older version).
 */
export function parseBatch(data: unknown): { reports: Report[]; malformed: { index: number; reason: string }[] } {
  const list = typeof data === 'object' && data !== null && Array.isArray((data as { reports?: unknown }).reports) ? (data as { reports: unknown[] }).reports : undefined;
  if (!list) return { reports: [], malformed: [{ index: 0, reason: 'job data has no list of reports' }] };
  const reports: Report[] = [];
  const malformed: { index: number; reason: string }[] = [];
  list.forEach((r, index) => {
    const parsed = QueuedReportSchema.safeParse(r);
    if (parsed.success) reports.push(parsed.data);
    else malformed.push({ index, reason: describeZodError(parsed.error) });
  });
  return { reports, malformed };
}

/** Keys and arguments of one fold-batch.lua call. */
export function foldBatchCall(keys: Keys, reports: readonly Report[], maxEvents: number): [number, ...(string | number)[]] {
  const cids: string[] = [];
  const index = new Map<string, number>();
  const clusterKeys: string[] = [];
  const body = reports.map((r) => {
    let c = index.get(r.cluster);
    if (c === undefined) {
      cids.push(r.cluster);
      c = cids.length;
      index.set(r.cluster, c);
      clusterKeys.push(keys.meta(r.cluster), keys.events(r.cluster), keys.reports(r.cluster));
    }
    return { c, id: r.id, job: r.job, state: r.state, token: r.token, at: r.at, info: r.info, reason: r.reason, ...messageFields(r) };
  });
  const globals = [keys.clusterState, keys.id2cluster, keys.allEvents, keys.heartbeats, keys.openClusters, keys.deadlines, keys.endedClusters, keys.retryDue];
  return [globals.length + clusterKeys.length, ...globals, ...clusterKeys, JSON.stringify(body), JSON.stringify(cids), maxEvents];
}

/** The named-message fields of a `send` / `wait_msg` report, for the fold (messages.lua). */
export function messageFields(report: Report): { msg?: string; data?: Record<string, string>; mode?: string; role?: string } {
  return report.msg === undefined ? {} : { msg: report.msg, data: report.data ?? {}, mode: report.mode, role: report.role };
}
