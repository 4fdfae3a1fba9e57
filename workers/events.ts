import { EventEmitter } from 'node:events';
import type { Report } from '../src/bus/messages';
import type { ClusterEvent, FoldOutcome } from '../src/fold/outcome';

/** What the workers tell in-process listeners (metrics, tests). */
export interface WorkerEventMap {
  folded: [report: Report, outcome: FoldOutcome, ms: number];
  rejected: [code: string, reason: string];
  event: [event: ClusterEvent];
  dead: [cluster: string, job: string];
}

export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
