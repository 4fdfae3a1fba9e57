/**
 * The one exit-code table of the whole command line (docs/exit-codes.md).
 * The node agent's outcomes, the verdicts of `result --wait`, `submit
 * --watch` and `status CLUSTER`, and the errors of every command map here.
 */
export const ExitCode = {
  /** Done; the cluster passed; the node's job passed. */
  Ok: 0,
  /** A test failed (verdict `failed`, agent `test_failed`), or an error no other code names. */
  Failed: 1,
  /** A bad command line or input file: nothing was done. */
  Usage: 2,
  /** The cluster aborted (verdict `aborted`: a dead node, a setup error elsewhere, an lkp abort). */
  Aborted: 3,
  /** A barrier timed out (verdict `timed_out`). */
  TimedOut: 4,
  /** This node could not set up its job (agent `setup_error`: missing program, another testbox's credentials). */
  SetupError: 5,
  /** `node --once --take-timeout`: no node job came. */
  NoJob: 6,
  /** The cluster was cancelled by an operator (verdict `cancelled`). */
  Cancelled: 7,
  /** The cluster was not admitted to machines in time (verdict `not_admitted`). */
  NotAdmitted: 8,
  /** No such cluster (never existed, or retention removed it). */
  NotFound: 9,
  /** The request conflicts with the cluster's state: a cancel of a cluster that had ended. */
  Conflict: 10,
  /** The cluster has not ended yet (`status CLUSTER`, `result` without `--wait`). */
  NotEnded: 11,
  /** The scheduler refused the bearer token. */
  Unauthorized: 77,
  /** A server (scheduler, Redis, NATS) did not answer within the command's bounded time (sysexits EX_UNAVAILABLE). */
  Unavailable: 69,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A verdict's exit code (`result --wait`, `submit --watch`, `status CLUSTER`). */
export const VERDICT_EXIT: Readonly<Record<string, ExitCode>> = {
  passed: ExitCode.Ok,
  failed: ExitCode.Failed,
  aborted: ExitCode.Aborted,
  timed_out: ExitCode.TimedOut,
  cancelled: ExitCode.Cancelled,
  not_admitted: ExitCode.NotAdmitted,
};
