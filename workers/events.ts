import { EventEmitter } from 'node:events';
import type { Report } from '../src/bus/messages';
import type { ClusterEvent, FoldOutcome } from '../src/fold/outcome';
import type { SweepResult } from './timers';
import type { AdmissionSweep } from './admission';

/** What the workers tell in-process listeners (metrics, tests). */
export interface WorkerEventMap {
  /** `acceptedAt`: when the bridge accepted the report (ms, a worker's clock: the BullMQ job's timestamp). */
  folded: [report: Report, outcome: FoldOutcome, ms: number, acceptedAt?: number];
  rejected: [code: string, reason: string];
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
}

export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
