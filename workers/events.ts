/** The workers' in-process events: defined in src/core/worker-events.ts (so src/ops need not import workers/). */
export { WorkerEvents } from '../src/core/worker-events';
export type { AdmissionSweep, SweepResult, WorkerEventMap } from '../src/core/worker-events';
