import { EventEmitter } from 'node:events';
import type { Report } from '../src/bus/messages';
import type { ClusterEvent, FoldOutcome } from '../src/fold/outcome';

/** What the workers tell in-process listeners (metrics, tests). */
export interface WorkerEventMap {
  /** `acceptedAt`: when the bridge accepted the report (ms, a worker's clock: the BullMQ job's timestamp). */
  folded: [report: Report, outcome: FoldOutcome, ms: number, acceptedAt?: number];
  rejected: [code: string, reason: string];
  event: [event: ClusterEvent];
  dead: [cluster: string, job: string];
}

export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
