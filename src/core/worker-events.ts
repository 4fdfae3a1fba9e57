import { EventEmitter } from 'node:events';
import type { Report } from '../bus/messages';
import type { ClusterEvent, FoldOutcome } from '../fold/outcome';
import type { RefusalCode } from './refusal-codes';

/** What one sweep of the workers did. */
export interface SweepResult {
  /** Barriers resolved `abort` at their deadline. */
  timedOut: number;
  /** Nodes found silent (their abort queued). */
  dead: number;
  reaped: number;
  completed: number;
  deleted: number;
  /** Clusters submitted again as a new attempt (`cluster_retries`). */
  retried: number;
}

/** What one admission sweep did (workers/admission.ts). */
export interface AdmissionSweep {
  admitted: number;
  notAdmitted: number;
  reaped: number;
  /** Node jobs of ended clusters failed before any machine took them. */
  failedJobs: number;
  /** Machines by state after the sweep (gone: lease lapsed, still listed). */
  machines: Record<'idle' | 'reserved' | 'running' | 'gone', number>;
  /** Clusters waiting for admission after the sweep. */
  waiting: number;
}

/** What the workers tell in-process listeners (metrics, tests). */
export interface WorkerEventMap {
  /** `acceptedAt`: when the bridge accepted the report (ms, a worker's clock: the BullMQ job's timestamp). */
  folded: [report: Report, outcome: FoldOutcome, ms: number, acceptedAt?: number];
  rejected: [code: RefusalCode, reason: string];
  event: [event: ClusterEvent];
  dead: [cluster: string, job: string];
  /** A sweep of this process ran to its end (the process that held that period's lease). */
  swept: [result: SweepResult];
  /** A sweep period of this process failed (Redis refused or was unreachable); the next period tries again. */
  sweepFailed: [error: unknown];
  /** An admission sweep of this process ran (src/admission, workers/admission.ts). */
  admissionSwept: [result: AdmissionSweep];
  /** A waiting cluster ended `not_admitted` at its admit timeout. */
  notAdmitted: [cluster: string, reason: string];
  /** A machine was handed a node job by admission, the first time (`waitedMs`: from submit to admission). */
  handed: [cluster: string, job: string, machine: string, waitedMs: number];
  /** A node's machine waited `ms` inside its node job, from its wait_start report to the start barrier's resolution (Redis clock). */
  idleBeforeStart: [cluster: string, job: string, testbox: string, ms: number];
}

/**
 * The workers' in-process events. Defined here, in src/, so that what
 * listens (src/ops metrics and routes) does not import workers/: the
 * workers build on src/, never the reverse.
 */
export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
