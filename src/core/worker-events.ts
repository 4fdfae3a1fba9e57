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
}

/**
 * The workers' in-process events. Defined here, in src/, so that what
 * listens (src/ops metrics and routes) does not import workers/: the
 * workers build on src/, never the reverse.
 */
export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
