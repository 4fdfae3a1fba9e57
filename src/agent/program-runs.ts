import type { ProgramRun } from '../results/node-end';
import type { ProgramExit } from './runner';

/** Ends one program's record: how it exited (undefined: never started) and what that means. */
export type EndRun = (exit: ProgramExit | undefined, result: string) => void;

/**
 * The programs a node's life ran, each with its exit and duration, in start
 * order: what the agent tells the dispatcher at the end of the node job, for
 * the cluster's result.
 */
export class ProgramRuns {
  private readonly runs: { run: ProgramRun; t0: number; open: boolean }[] = [];

  /** Starts a record now; the returned function ends it (only its first call counts). */
  begin(name: string, kind: 'daemon' | 'test'): EndRun {
    const entry = { run: { name, kind, exit: null, signal: null, ms: 0, result: 'running' } as ProgramRun, t0: Date.now(), open: true };
    this.runs.push(entry);
    return (exit, result) => {
      if (!entry.open) return;
      entry.open = false;
      entry.run = { ...entry.run, exit: exit?.code ?? null, signal: exit?.signal ?? null, ms: Date.now() - entry.t0, result };
    };
  }

  /** Every record; one still running counts up to now, as `running`. */
  list(): ProgramRun[] {
    return this.runs.map((e) => (e.open ? { ...e.run, ms: Date.now() - e.t0 } : e.run));
  }
}
