/**
 * How a node's life ended, and the exit code the node agent returns for it
 * (documented in docs/node-agent.md, "Exit codes").
 */
export const Outcome = {
  /** Every test ran and passed, and the cluster reached `finish`. */
  Passed: 'passed',
  /** A test of this node exited non-zero, or one of its daemons failed. */
  TestFailed: 'test_failed',
  /** Another node (or an operator, or dead-node detection) aborted the cluster. */
  Aborted: 'aborted',
  /** A barrier reached its deadline (`cluster_timeout`). */
  TimedOut: 'timed_out',
  /** This node could not run its job: missing program, bad scripts tree, direct network, rejected report. */
  SetupError: 'setup_error',
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export const EXIT_CODES: Record<Outcome, number> = {
  passed: 0,
  test_failed: 1,
  aborted: 3,
  timed_out: 4,
  setup_error: 5,
};

/** Exit code of `cluster-sync node --once` when no node job came within `--take-timeout`. */
export const EXIT_NO_JOB = 6;

export interface LifeResult {
  outcome: Outcome;
  /** Why, in one line; empty when passed. */
  reason: string;
}

/** Reads an abort resolution's reason: a barrier deadline, or anything else. */
export function abortOutcome(reason: string | undefined): Outcome {
  return reason !== undefined && /^barrier \w+ timed out/.test(reason) ? Outcome.TimedOut : Outcome.Aborted;
}
